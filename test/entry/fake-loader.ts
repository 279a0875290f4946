// SPDX-License-Identifier: MIT
// The loader's hooks over the fake compiler (not itself a test file).
import { createHooks } from '../../transformer/entry/loader.js';
import type { Compiler } from '../../transformer/compiler.js';
import { fakeCompiler } from './support.js';

let compiler: Compiler | undefined;
export const { resolve, load } = createHooks(() => (compiler ??= fakeCompiler()));
