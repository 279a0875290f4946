// Calls into marked functions of other files, which the Wasm module of this file compiles in
// (test/wasm/cross-file.test.ts).
import { energy, shifted, scaled, LIB_SCALE, LIB_SCALE as S } from './cross-lib.js';
import * as lib from './cross-lib.js';
import { usesSoftplus } from './rules.js';

const K = 0.5;

/** @differentiable */
function sq(v: number): number {
  return v * v + K;
}

/** @differentiable */
export function total(x: Float64Array, k: number): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += sq(x[i]);
  return s + energy(x, k) * k;
}

/** Through a namespace import, and a file with custom rules (rules.ts). @differentiable */
export function viaNamespace(x: Float64Array, w: number): number {
  return lib.softened(x[0]) + usesSoftplus(x, w) * sq(w);
}

/** Two views of one array passed to another file's function. @differentiable */
export function overlapping(y: Float64Array): number {
  return shifted(y.subarray(1, 4), y.subarray(0, 3)) + y[0];
}

/** @differentiable */
export function callsScaled(x: Float64Array): number {
  return scaled(x[0]) + x[1];
}

/** Numeric constants of another file: imported by name, renamed, and through the namespace. @differentiable */
export function importedConstants(x: Float64Array): number {
  return LIB_SCALE * x[0] * x[0] + S * x[1] + lib.LIB_SCALE * K * x[2] * x[2];
}
