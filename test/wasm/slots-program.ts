// SPDX-License-Identifier: MIT
// Two functions of one Wasm module whose array arguments share the frames' slots (test/wasm/explain.test.ts).

/** One array: slots 0 (x) and 1 (its adjoint). @differentiable */
export function oneArray(x: Float64Array, a: number): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.tanh(2.5 * x[i] + a) * x[i];
  return s;
}

/** Two arrays of unrelated lengths: slots 0-1 (w) and 2-3 (x). @differentiable */
export function twoArrays(w: Float64Array, x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.sin(x[i]) * w[0];
  for (let j = 0; j < w.length; j++) s += w[j] * w[j] * (j + 1);
  return s;
}
