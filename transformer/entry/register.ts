// SPDX-License-Identifier: MIT
// `node --import pullback/register script.ts` runs TypeScript with the pullback transformation applied.
// Installs ./loader.js as module hooks (Node ≥ 20.6). PULLBACK_WASM=1 turns on the Wasm lowering; PULLBACK_SECOND_ORDER=0 leaves out second-order code.
import { register } from 'node:module';
import type { CompilerOptions } from '../compiler.js';

const data: CompilerOptions = process.env.PULLBACK_WASM === '1' ? { wasm: true } : {};
register('./loader.js', { parentURL: import.meta.url, data });
// Stack traces point into the .ts files, through the source maps the loader inlines.
process.setSourceMapsEnabled(true);
