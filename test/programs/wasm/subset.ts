// What lowers to WebAssembly and what stays on the JS adjoint (test/wasm/explain.test.ts).
import { grad } from 'pullback';
import { usesSoftplus } from './rules.js';

const K = 2.5;
let counter = 3;

/** @differentiable */
export function inSubset(x: Float64Array, a: number): number {
  const w = new Float64Array(x.length);
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    w[i] = Math.tanh(K * x[i] + a);
    s += w[i] * w[i];
  }
  return s + damped(a) + Number.EPSILON;
}

/** @differentiable */
export function damped(a: number): number {
  return a * Math.exp(-a);
}

/** One value overwritten per iteration: the tape grows by one number per trip. @differentiable */
export function longLoop(x: number, n: number): number {
  let s = x;
  for (let i = 0; i < n; i++) s = Math.sin(s) * 0.5 + x * 0.1;
  return s;
}

/** @differentiable */
export function logs(x: number): number {
  console.log(x);
  return x * x;
}

/** @differentiable */
export function throws(x: number): number {
  if (x < 0) throw new Error(`negative x: ${x}`);
  return Math.sqrt(x);
}

/** @differentiable */
export function checksThenCalls(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += throws(x[i]!);
  return s;
}

export function softplus(x: number): number {
  return Math.log1p(Math.exp(x));
}

/** @derivative softplus */
export function softplusRule(x: number, g: number): number {
  return g / (1 + Math.exp(-x));
}

/** @differentiable */
export function usesRule(x: number): number {
  return softplus(x) * x;
}

/** @differentiable */
export function returnsArray(x: Float64Array): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i] * x[i];
  return y;
}

/** @differentiable */
export function readsMutable(x: number): number {
  return x * counter;
}

/** @differentiable */
export function callsJsOnly(x: number): number {
  return usesRule(x) + x;
}

/** Primal of a rule that takes a Wasm gradient inside itself (re-entrancy). */
export function wrapped(x: number): number {
  return longLoop(x, 10);
}

/** @derivative wrapped */
export function wrappedRule(x: number, g: number): number {
  return g * grad(longLoop)(x, 10);
}

/** @differentiable */
export function outer(x: number): number {
  return 2 * wrapped(x) + longLoop(x, 3);
}

export function bump(): void {
  counter++;
}

/** Calls a marked function of another file: lowers, with the callee's sweeps compiled into this file's module. */
/** @differentiable */
export function crossFile(x: Float64Array, w: number): number {
  return 2 * usesSoftplus(x, w);
}

/** Calls a marked function of this file that stays on JS: the reason carries the callee's. */
/** @differentiable */
export function callsArrayValued(x: Float64Array): number {
  const y = returnsArray(x);
  return y[0]!;
}

/** @differentiable */
export function weighted(x: Float64Array, w: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += w[i] * x[i] * x[i];
  return s;
}

/** Passes an array nobody differentiates: its adjoint is the empty sink $pb.EMPTY, which the callee's sweeps write into. @differentiable */
export function constantWeights(x: Float64Array): number {
  const w = new Float64Array(x.length);
  for (let i = 0; i < w.length; i++) w[i] = i + 1;
  return weighted(x, w);
}
