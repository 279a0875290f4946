// SPDX-License-Identifier: MIT
// The page of test/wasm/browser.test.ts: bundled by Rollup with the pullback plugin and `wasm: true`, it takes one
// gradient of the benchmark's Rosenbrock, with its hand-written gradient beside it, and leaves them on
// `globalThis.result` for the test to read.
import { explain, grad } from 'pullback';
import { rosenbrock, rosenbrockGrad } from '../../../bench/programs/scalar.js';

const x = Float64Array.from({ length: 50 }, (_, i) => Math.sin(i) * 0.9);
const e = explain(rosenbrock);
(globalThis as { result?: unknown }).result = { backend: e.backend, reason: e.reason ?? null, gradient: Array.from(grad(rosenbrock)(x)), want: Array.from(rosenbrockGrad(x)) };
