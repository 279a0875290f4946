// SPDX-License-Identifier: MIT
// The tensor API suite (ops-suite.ts) on WebGPU on SwiftShader (f32), or the adapter PULLBACK_GPU_ADAPTER names; skipped, saying why, without one.
import { runOpsSuite } from './ops-suite.js';

await runOpsSuite('webgpu', 'test/tensor/ops.webgpu.test.ts');
