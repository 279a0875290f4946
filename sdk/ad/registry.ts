// SPDX-License-Identifier: MIT
// Where generated code registers each differentiable function's sweeps, keyed by the function object.
import type { Tape } from './tape.js';
import { wasmSweeps, type ScalarWasmModule } from './wasm.js';

export type ParamKind = 'num' | 'arr';

export interface Adjoint {
  name: string;
  /** `file.ts:line` of the source function. */
  where: string;
  params: ParamKind[];
  returns: 'num' | 'arr';
  /** fwd($t, ...args, ...arrayShadows) -> value */
  fwd: (this: unknown, t: Tape, ...args: any[]) => any;
  /** rev($t, ...args, ...arrayShadows, seed) -> adjoint of the number parameter, or writes t.d when several. */
  rev: (this: unknown, t: Tape, ...args: any[]) => any;
  /** jvp(...args, ...tangents) -> value, with the tangent of the result left in `fw`. */
  jvp?: (this: unknown, ...args: any[]) => any;
  /** The directional derivative f$dd(...args, ...tangents), itself differentiable (second order). */
  dd?: Function;
  /** The generated TypeScript of both sweeps. */
  source: string;
  /** `this` for static methods. */
  self?: unknown;
  /** Which gradient backend runs (see `explain`). */
  backend: 'js' | 'wasm';
  /** Why a scalar function stays on the JS sweeps (when the transformer or the runtime knows). */
  reason?: string;
  /** The JS sweeps, kept beside Wasm ones: vjp's pullback may run more than once, which they allow. */
  js?: { fwd: Adjoint['fwd']; rev: Adjoint['rev'] };
  /**
   * The sweeps `grad` uses when only array parameters are differentiated (number parameters held constant,
   * the value not computed), where they differ from `fwd`/`rev`. Their tape records pair with each other only.
   */
  grad?: { fwd: Adjoint['fwd']; rev: Adjoint['rev']; direct?: DirectGradient };
  /** For a Wasm function of one array and nothing else: valueAndGrad's value and gradient in one frame. */
  valueOne?: (x: Float64Array | number[]) => [number, Float64Array];
}

/**
 * The gradient with respect to array parameter `which` in one call, without a JS tape or adjoint arrays of its
 * own (the Wasm gradient sweeps: both run in one call into the module, and the result is copied out of linear memory).
 */
export type DirectGradient = ((args: ArrayLike<unknown>, which: number, out?: Float64Array) => Float64Array) & {
  /** For a function of one array and nothing else: the same, with that array as the argument. */
  one?: (x: Float64Array | number[], out?: Float64Array) => Float64Array;
};

/** How generated code asks for the Wasm sweeps: the module of its file, and the function's generated prefix. */
export interface WasmRequest {
  module: () => ScalarWasmModule;
  prefix: string;
}

const table = new WeakMap<Function, Adjoint>();
const rules = new WeakMap<Function, Function>();
const tangentRules = new WeakMap<Function, Function>();

/** Links f to its directional derivative f$dd (see the transformer's second pass). */
export function registerDirectional(f: Function, dd: Function): void {
  const a = table.get(f);
  if (a) a.dd = dd;
}

/** Where a tangent sweep leaves the tangent of its result: `t` for a number, `a` for an array. */
export const fw: { t: number; a: Float64Array } = { t: 0, a: new Float64Array(0) };

/** `/** @tangent f *\/ rule(...args, ...tangents)` returns the tangent of f's result. */
export function registerTangent(f: Function, rule: Function): void {
  tangentRules.set(f, rule);
  const a = table.get(f);
  if (a) a.jvp = tangentOf(f);
}

/** The tangent sweep of a function that has a custom rule: its primal and its @tangent rule. */
export function tangentOf(f: Function): (...xs: any[]) => any {
  return function (this: unknown, ...xs: any[]) {
    const rule = tangentRules.get(f);
    if (!rule) {
      throw new Error(`pullback: ${f.name} has a /** @derivative */ rule for reverse mode but no forward rule: ` +
        `declare /** @tangent ${f.name} */ function rule(...args, ...tangents) returning the tangent of the result`);
    }
    const n = xs.length / 2;
    const y = f.apply(this, xs.slice(0, n));
    const t = rule.apply(this, xs);
    if (typeof y === 'number') fw.t = t; else fw.a = Float64Array.from(t);
    return y;
  };
}

export function register(f: Function, a: Omit<Adjoint, 'backend'> & { backend?: 'js' | 'wasm'; wasm?: WasmRequest }): void {
  if (table.has(f)) throw new Error(`pullback: ${a.name} (${a.where}) is registered twice`);
  const { wasm, ...rest } = a;
  const entry: Adjoint = { backend: 'js', ...rest, ...(tangentRules.has(f) ? { jvp: tangentOf(f) } : {}) };
  if (wasm) {
    const m = wasm.module();
    if (m.error) entry.reason = m.error;
    else {
      entry.js = { fwd: entry.fwd, rev: entry.rev };
      Object.assign(entry, wasmSweeps(m, wasm.prefix, a.name, a.params, false, f), { backend: 'wasm', reason: undefined });
      // grad runs the Wasm gradient sweeps where the module has them, else the Wasm general ones.
      if (entry.grad && typeof m.exports?.[`${wasm.prefix}$gfwd$w`] === 'function') entry.grad = wasmSweeps(m, wasm.prefix, a.name, a.params, true, f);
      else delete entry.grad;
    }
  }
  table.set(f, entry);
}

export function lookupAdjoint(f: Function): Adjoint | undefined {
  return table.get(f);
}

export function notTransformed(f: Function): Error {
  const name = f.name || 'this function';
  return new Error(`pullback: ${name} has no generated adjoint: it was not transformed. Mark it with /** @differentiable */ ` +
    '(or the @differentiable decorator on a method) and build with the pullback transformer: the tsc plugin ' +
    '({ "transform": "pullback/transformer" } under compilerOptions.plugins, built with tspc), the rollup plugin ' +
    "(import pullback from 'pullback/rollup'), `pullback compile`, or `node --import pullback/register`.");
}

export function adjointOf(f: Function): Adjoint {
  const a = table.get(f);
  if (!a) throw notTransformed(f);
  return a;
}

export function ruleOf(f: Function): Function {
  const r = rules.get(f);
  if (!r) throw new Error(`pullback: no /** @derivative ${f.name} */ rule is registered`);
  return r;
}

/** A user-written reverse rule: `rule(...args, cotangent)` returns the gradient of each argument. */
export function registerRule(f: Function, rule: Function, meta: { name: string; where: string; params: ParamKind[]; returns: 'num' | 'arr'; source?: string }): void {
  rules.set(f, rule);
  const nArr = meta.params.filter((k) => k === 'arr').length;
  const nNum = meta.params.length - nArr;
  const n = meta.params.length;
  register(f, {
    ...meta,
    jvp: tangentOf(f),
    source: meta.source ?? `// ${meta.name} uses the custom derivative ${rule.name} (${meta.where})`,
    fwd(_t, ...args) { return f.apply(this, args.slice(0, n)); },
    rev(t, ...rest) {
      const args = rest.slice(0, n);
      const shadows = rest.slice(n, n + nArr) as Float64Array[];
      const seed = rest[n + nArr];
      const out = rule.apply(this, [...args, seed]);
      const grads: unknown[] = n === 1 ? [out] : out;
      if (!Array.isArray(grads) || grads.length !== n) {
        throw new Error(`pullback: the derivative rule ${rule.name} of ${meta.name} returned ${String(out)}; it must return ${n === 1 ? 'the gradient of its argument' : `a tuple of ${n} gradients`}`);
      }
      let a = 0, j = 0, single = 0;
      meta.params.forEach((k, i) => {
        if (k === 'arr') addTo(shadows[a++]!, grads[i] as ArrayLike<number>);
        else if (nNum === 1) single = grads[i] as number;
        else t.d[j++] = grads[i] as number;
      });
      return nNum === 1 ? single : undefined;
    },
  });
}

/** dst += src, elementwise (dst may be the empty sink for inactive arrays). */
export function addTo(dst: Float64Array, src: ArrayLike<number>): void {
  const n = Math.min(dst.length, src.length);
  for (let i = 0; i < n; i++) dst[i]! += src[i]!;
}

/** Index of the first maximum (ties go to the first argument: documented convention). */
export function argmax(...xs: number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

export function argmin(...xs: number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! < xs[best]!) best = i;
  return best;
}

/** Adjoint sink for arrays whose gradient is not wanted: writes past its (zero) length are dropped. */
export const EMPTY = new Float64Array(0);
