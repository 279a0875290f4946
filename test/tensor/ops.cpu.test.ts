// SPDX-License-Identifier: MIT
// The tensor API suite (ops-suite.ts) on the Wasm CPU backend (f32).
import { runOpsSuite } from './ops-suite.js';

await runOpsSuite('cpu', 'test/tensor/ops.cpu.test.ts');
