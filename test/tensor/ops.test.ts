// SPDX-License-Identifier: MIT
// The tensor API suite (ops-suite.ts) on the reference backend (f64): values by hand, gradients by finite differences.
import { runOpsSuite } from './ops-suite.js';

await runOpsSuite('reference', 'test/tensor/ops.test.ts');
