// Marked functions that test/programs/wasm/cross.ts calls from another file (test/wasm/cross-file.test.ts).
// Its constant K and helper sq have the names of cross.ts's own, with other values: the Wasm module of cross.ts
// holds both files' and must not mix them up.

const K = 3;
export const LIB_SCALE = 1.5;

/** @differentiable */
function sq(v: number): number {
  return K * v * v;
}

/** @differentiable */
export function energy(x: Float64Array, k: number): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += sq(x[i] - k) + softened(x[i]);
  return s;
}

/** Called by energy, from its own file. @differentiable */
export function softened(v: number): number {
  return Math.sqrt(v * v + 1) / K;
}

/** Views of one array as two arguments: the adjoints of both land in the caller's one array. @differentiable */
export function shifted(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i] * b[i];
  return s;
}

export let scale = 2;

/** Outside the subset (it reads a variable that may change): stays on JS, and so do its callers in other files. @differentiable */
export function scaled(x: number): number {
  return scale * x * x;
}
