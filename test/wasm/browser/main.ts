// SPDX-License-Identifier: MIT
// The page of test/wasm/browser.test.ts: bundled by Rollup with the pullback plugin and `wasm: true`, it takes one
// gradient and leaves what it found on `globalThis.result` for the test to read.
import { explain, grad } from 'pullback';

/** @differentiable */
export function rosenbrock(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length - 1; i++) {
    const a = x[i + 1] - x[i] * x[i];
    const b = 1 - x[i];
    s += 100 * a * a + b * b;
  }
  return s;
}

const x = Float64Array.from({ length: 50 }, (_, i) => Math.sin(i) * 0.9);
const e = explain(rosenbrock);
(globalThis as { result?: unknown }).result = { backend: e.backend, reason: e.reason ?? null, x: Array.from(x), gradient: Array.from(grad(rosenbrock)(x)) };
