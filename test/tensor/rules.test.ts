// SPDX-License-Identifier: MIT
// The rules-and-conventions suite (rules-suite.ts) on the reference backend (f64): gradients by finite differences.
import { runRulesSuite } from './rules-suite.js';

await runRulesSuite('reference', 'test/tensor/rules.test.ts');
