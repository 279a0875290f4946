// SPDX-License-Identifier: MIT
// The rules-and-conventions suite (rules-suite.ts) on WebGPU on SwiftShader (f32); skipped, saying why, without one.
import { runRulesSuite } from './rules-suite.js';

await runRulesSuite('webgpu', 'test/tensor/rules.webgpu.test.ts');
