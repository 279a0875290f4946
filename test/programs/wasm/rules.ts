// Custom derivatives on the Wasm path (test/wasm/rules.test.ts): a marked function that calls a function with a
// /** @derivative */ rule lowers when the primal and the rule (and what they call) are in the scalar subset.

const LIMIT = 30;

/** One argument, one gradient. */
export function softplus(x: number): number {
  return x > LIMIT ? x : Math.log1p(Math.exp(x));
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** @derivative softplus */
export function softplusRule(x: number, g: number): number {
  return g * sigmoid(x);
}

/** Two arguments: the rule returns a tuple. */
export function logaddexp(a: number, b: number): number {
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

/** @derivative logaddexp */
export function logaddexpRule(a: number, b: number, g: number): [number, number] {
  const l = logaddexp(a, b);
  return [g * Math.exp(a - l), g * Math.exp(b - l)];
}

/** An array argument: the rule returns an array. */
export function sumSquares(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/** @derivative sumSquares */
export function sumSquaresRule(x: Float64Array, g: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = 2 * g * x[i];
  return out;
}

/** An array and a number: a tuple with an array in it. */
export function scaledSum(x: Float64Array, k: number): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return k * s;
}

/** @derivative scaledSum */
export function scaledSumRule(x: Float64Array, k: number, g: number) {
  const gx = new Float64Array(x.length);
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    gx[i] = g * k;
    s += x[i];
  }
  return [gx, g * s];
}

/** A rule written with JavaScript-only features: whoever calls it stays on JS. */
export function cube(x: number): number {
  return x * x * x;
}

/** @derivative cube */
export function cubeRule(x: number, g: number): number {
  return [x].map((v) => 3 * v * v * g)[0]!;
}

/** @differentiable */
export function usesSoftplus(x: Float64Array, w: number): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += softplus(w * x[i]) * x[i];
  return s;
}

/** @differentiable */
export function usesTuple(a: number, b: number): number {
  return logaddexp(a * b, Math.sin(a)) * b;
}

/** @differentiable */
export function usesArrayRule(x: Float64Array, k: number): number {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = Math.tanh(k * x[i]);
  return sumSquares(y) + scaledSum(y, k) + softplus(k);
}

/** Through another marked function. @differentiable */
export function nested(x: Float64Array, w: number): number {
  return usesSoftplus(x, w) * usesTuple(w, 0.5);
}

/** @differentiable */
export function usesJsOnlyRule(x: number): number {
  return cube(x) + softplus(x);
}

/** @differentiable */
export function callsJsOnly(x: number): number {
  return usesJsOnlyRule(x) * x;
}
