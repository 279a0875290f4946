// SPDX-License-Identifier: MIT
// The rules-and-conventions suite (rules-suite.ts) on the Wasm CPU backend (f32).
import { runRulesSuite } from './rules-suite.js';

await runRulesSuite('cpu', 'test/tensor/rules.cpu.test.ts');
