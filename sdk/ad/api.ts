// SPDX-License-Identifier: MIT
// The differentiation operators users call. Each looks up the sweeps the transformer generated for `f`.
import { acquireTape, releaseTape, Tape } from './tape.js';
import { adjointOf, fw, lookupAdjoint, notTransformed, register, type Adjoint } from './registry.js';
import { Tensor, currentBackend, hasBackend } from '../tensor/engine.js';
import { containsTensor, explainTensor, lookupTensor, mapTree, stopGradientTensor, tensorsIn, tensorValueAndGrad, tensorVjp } from '../tensor/ad.js';

type Fn = (...args: any[]) => any;
/**
 * The gradient of one parameter: a number for a number, a Float64Array for an array, and for a Tensor or a tree
 * of Tensors (parameters as plain objects and arrays) the same tree with a gradient Tensor at each leaf.
 */
export type Gradient<T> = T extends number ? number : T extends Float64Array | number[] ? Float64Array : T;
type Grads<F extends Fn, A> = A extends number ? Gradient<Parameters<F>[A]>
  : A extends readonly number[] ? { [K in keyof A]: Gradient<Parameters<F>[A[K] & number]> } : never;

function checkArgs(ad: Adjoint, args: ArrayLike<unknown>): void {
  const ps = ad.params;
  if (args.length !== ps.length) {
    throw new Error(`pullback: ${ad.name} (${ad.where}) takes ${ps.length} arguments, got ${args.length}`);
  }
  for (let i = 0; i < ps.length; i++) {
    const a = args[i], k = ps[i];
    const ok = k === 'num' ? typeof a === 'number' : a instanceof Float64Array || Array.isArray(a);
    if (!ok) throw new Error(`pullback: argument ${i} of ${ad.name} (${ad.where}) must be ${k === 'num' ? 'a number' : 'a Float64Array or number[]'}, got ${describe(a)}`);
  }
}

function describe(a: unknown): string {
  if (a === null) return 'null';
  if (typeof a === 'object') return (a as object).constructor?.name ?? 'an object';
  return typeof a;
}

function checkArgnums(ad: Adjoint, argnums: number | readonly number[]): void {
  for (const i of typeof argnums === 'number' ? [argnums] : argnums) {
    if (!Number.isInteger(i) || i < 0 || i >= ad.params.length) {
      throw new Error(`pullback: argnums ${i} is out of range for ${ad.name} (${ad.where}), which has ${ad.params.length} parameters`);
    }
  }
}

/**
 * Runs both sweeps once on a pooled tape: one argument array serves both sweeps (the hot path of an
 * optimisation loop allocates nothing else than the gradients it returns). Returns the value and every
 * parameter's gradient.
 */
function run(ad: Adjoint, self: unknown, args: unknown[], seed: unknown, t: Tape, sweeps: Pick<Adjoint, 'fwd' | 'rev'> = ad): { value: any; grads: unknown[] } {
  const ps = ad.params;
  const call: unknown[] = [t, ...args];
  const shadows: Float64Array[] = [];
  for (let i = 0; i < ps.length; i++) {
    if (ps[i] === 'arr') {
      const s = new Float64Array((args[i] as ArrayLike<number>).length);
      shadows.push(s);
      call.push(s);
    }
  }
  const value = sweeps.fwd.apply(self, call as [Tape, ...any[]]);
  call.push(seed);
  const single = sweeps.rev.apply(self, call as [Tape, ...any[]]);
  return { value, grads: collect(ad, shadows, single, t) };
}

function collect(ad: Adjoint, shadows: Float64Array[], single: unknown, t: Tape): unknown[] {
  const ps = ad.params;
  let nNum = 0;
  for (const k of ps) if (k === 'num') nNum++;
  const grads = new Array<unknown>(ps.length);
  let a = 0, j = 0;
  for (let i = 0; i < ps.length; i++) grads[i] = ps[i] === 'arr' ? shadows[a++] : nNum === 1 ? single : t.d[j++];
  return grads;
}

function reverse(ad: Adjoint, self: unknown, args: unknown[], shadows: Float64Array[], seed: unknown, t: Tape): unknown[] {
  const single = (ad.js ?? ad).rev.call(self, t, ...args, ...shadows, seed);
  return collect(ad, shadows, single, t);
}

function select(grads: unknown[], argnums: number | readonly number[]): any {
  return typeof argnums === 'number' ? grads[argnums] : argnums.map((i) => grads[i]);
}

function scalarOnly(ad: Adjoint, op: string): void {
  if (ad.returns !== 'num') {
    throw new Error(`pullback: ${op} needs a function that returns a number, but ${ad.name} (${ad.where}) returns an array; ` +
      'use vjp(f, ...args) to pull back a cotangent, or jacobian(f) for the full matrix');
  }
}

const selfOf = (ad: Adjoint, self: unknown) => (self === undefined || self === globalThis ? ad.self : self);

/**
 * The argument check of an entry of a function of one array: `full` runs only when the argument is not the one
 * it last passed, or the call has another number of arguments. Its checks hold for as long as a Float64Array
 * lives (its length and buffer are fixed, unless the buffer is resizable; a number[] can change length, so it
 * is checked every call): an optimisation loop passes the same array every step, and reading `.buffer` each
 * call was a tenth of a gradient of 100 values.
 */
function checkedOnce(full: (args: IArguments) => void): (args: IArguments, x: unknown) => void {
  let checked: unknown;
  return (args, x) => {
    if (x === checked && args.length === 1) return;
    full(args);
    checked = x instanceof Float64Array && !(x.buffer as ArrayBuffer & { resizable?: boolean }).resizable ? x : undefined;
  };
}

/**
 * NO_FINALLY: the entry points release their tape after the sweeps, not in a `finally`. A sweep that throws
 * leaves its tape to the collector (the pool hands out another), and V8 compiled the sweeps it inlined into a
 * try block 2.6x slower: Rosenbrock n = 100, grad into a given array, 0.65 against 0.25 us for the same calls
 * without it (.cache/bench/jsparts.mjs; the hand-written gradient takes 0.22 us).
 */

/** Options of `grad`. */
export interface GradOptions {
  /**
   * Where the gradient goes, for one array parameter: every call overwrites and returns this array instead of
   * allocating a new one (for small problems in a hot loop the allocation is most of a call's time).
   */
  out?: Float64Array;
}

/**
 * The gradient of a number-valued function with respect to the parameter `argnums` (or a tuple of them).
 * @example
 *   /** @differentiable *\/ function f(x: number) { return x * Math.sin(x); }
 *   grad(f)(2); // sin(2) + 2 cos(2)
 *   const g = new Float64Array(100), df = grad(rosenbrock, 0, { out: g });
 *   df(x); // writes ∂f/∂x into g (and returns g)
 */
export function grad<F extends Fn, A extends number | readonly number[] = 0>(f: F, argnums?: A, options: GradOptions = {}): (...args: Parameters<F>) => Grads<F, A> {
  const an = (argnums ?? 0) as number | readonly number[];
  const { out } = options;
  if (!lookupAdjoint(f)) {
    if (out !== undefined) throw new Error('pullback: grad(f, argnums, { out }) is for scalar functions (numbers and Float64Arrays); a tensor function returns new tensors');
    return function (this: unknown, ...args: Parameters<F>) {
      const { value, grads } = tensorRun(f, this, args, an);
      value.dispose();
      return (typeof an === 'number' ? grads[0] : grads) as Grads<F, A>;
    };
  }
  const ad = adjointOf(f);
  scalarOnly(ad, 'grad');
  checkArgnums(ad, an);
  if (out !== undefined) {
    if (!(out instanceof Float64Array)) throw new Error(`pullback: grad(${ad.name}, ${String(an)}, { out }) needs out to be a Float64Array, got ${describe(out)}`);
    if (typeof an !== 'number' || ad.params[an] !== 'arr') {
      throw new Error(`pullback: grad(${ad.name}, ${JSON.stringify(an)}, { out }) writes the gradient of one array parameter; argnums must name one (${ad.name}'s parameters: ${ad.params.join(', ')})`);
    }
  }
  const fast = scalarFastPath(ad, an);
  if (fast) {
    secondOrder(ad, an as number, fast);
    return fast as never;
  }
  // Only arrays differentiated: the gradient sweeps, which hold number parameters constant and skip the value.
  const sweeps = ad.grad && (typeof an === 'number' ? [an] : an).every((i) => ad.params[i] === 'arr') ? ad.grad : ad;
  if (typeof an === 'number' && ad.params[an] === 'arr') return arrayFastPath(ad, an, sweeps, out) as never;
  const g = function (this: unknown, ...args: Parameters<F>) {
    checkArgs(ad, args);
    const t = acquireTape();
    const grads = select(run(ad, selfOf(ad, this), args, 1, t, sweeps).grads, an);
    releaseTape(t); // not in a finally: see NO_FINALLY
    return grads;
  };
  if (typeof an === 'number' && ad.params.every((k) => k === 'num')) secondOrder(ad, an, g);
  return g;
}

/**
 * Makes `g = grad(f, a)` (f of numbers only) differentiable in turn: g(x) = f$dd(x, e_a), the directional
 * derivative along the a-th unit vector, whose sweeps the transformer wrote. So grad(grad(f)) works.
 */
function secondOrder(ad: Adjoint, a: number, g: Function): void {
  const dd = ad.dd && lookupAdjoint(ad.dd);
  if (!dd || lookupAdjoint(g)) return;
  const n = ad.params.length;
  const e = Array.from({ length: n }, (_, i) => (i === a ? 1 : 0));
  const zeros = e.map(() => 0);
  register(g, {
    name: `grad(${ad.name})`, where: ad.where, params: ad.params, returns: 'num', self: ad.self,
    source: `// grad(${ad.name}) is ${ad.name}$dd(...x, e_${a}), its directional derivative along the unit vector e_${a}\n${dd.source}`,
    fwd(t, ...xs) { return dd.fwd.call(this, t, ...xs, ...e); },
    rev(t, ...xs) {
      const seed = xs.pop();
      dd.rev.call(this, t, ...xs, ...e, seed);
      return n === 1 ? t.d[0] : undefined;
    },
    jvp(...xs) { return dd.jvp!.call(this, ...xs.slice(0, n), ...e, ...xs.slice(n), ...zeros); },
  });
}

/**
 * Hessian-vector product H·v of a number-valued f with respect to parameter `argnums`, by reverse mode over
 * the transformer's directional derivative (forward mode): `hvp(f)(...args, v)`, at the cost of a few
 * gradients and without forming H.
 */
export function hvp<F extends Fn>(f: F, argnums = 0): (...argsAndV: [...Parameters<F>, any]) => any {
  const ad = adjointOf(f);
  scalarOnly(ad, 'hvp');
  checkArgnums(ad, argnums);
  const n = ad.params.length;
  return (...xs: unknown[]) => {
    if (xs.length !== n + 1) throw new Error(`pullback: hvp(${ad.name}) takes ${n} arguments and the vector v, got ${xs.length} values`);
    const dd = ad.dd;
    if (!dd || !lookupAdjoint(dd)) {
      throw new Error(`pullback: ${ad.name} (${ad.where}) has no second-order code: the transformer writes it only when every function ` +
        `${ad.name} calls is in the same module and has no custom rule (a /** @tangent */ rule does not give second order yet), and not in ` +
        'a build with secondOrder: false (--no-second-order, PULLBACK_SECOND_ORDER=0)');
    }
    const args = xs.slice(0, n);
    checkArgs(ad, args);
    const v = xs[n];
    const tangents = ad.params.map((k, i) => (i === argnums ? v : k === 'num' ? 0 : new Float64Array((args[i] as ArrayLike<number>).length)));
    if (ad.params[argnums] === 'num' ? typeof v !== 'number' : (v as ArrayLike<number>)?.length !== (args[argnums] as ArrayLike<number>).length) {
      throw new Error(`pullback: v must have the shape of argument ${argnums} of ${ad.name}`);
    }
    return grad(dd as Fn, argnums)(...args, ...tangents);
  };
}

/** The Hessian of a number-valued f with respect to parameter `argnums`, one hvp per column (for small inputs). */
export function hessian<F extends Fn>(f: F, argnums = 0): (...args: Parameters<F>) => Float64Array[] {
  const ad = adjointOf(f);
  const h = hvp(f, argnums);
  return (...args: Parameters<F>) => {
    if (ad.params[argnums] === 'num') return [Float64Array.of(h(...args, 1) as number)];
    const m = (args[argnums] as ArrayLike<number>).length;
    const rows: Float64Array[] = [];
    for (let j = 0; j < m; j++) {
      const e = new Float64Array(m);
      e[j] = 1;
      rows.push(Float64Array.from(h(...args, e) as Float64Array));
    }
    return rows;
  };
}

/**
 * grad of a function of one or two numbers with respect to one of them: called in inner loops (Newton
 * steps, line searches), where the general path's argument arrays cost as much as a small function.
 */
function scalarFastPath(ad: Adjoint, an: number | readonly number[]): Function | undefined {
  if (typeof an !== 'number' || ad.params.some((k) => k !== 'num') || ad.params.length > 2) return undefined;
  const { fwd, rev } = ad;
  const bad = (a: unknown) => typeof a !== 'number';
  if (ad.params.length === 1) {
    return function (this: unknown, x: number) {
      if (arguments.length !== 1 || bad(x)) checkArgs(ad, [...arguments]);
      const t = acquireTape();
      const self = selfOf(ad, this);
      fwd.call(self, t, x);
      const g = rev.call(self, t, x, 1);
      releaseTape(t); // not in a finally: see NO_FINALLY
      return g;
    };
  }
  return function (this: unknown, x: number, y: number) {
    if (arguments.length !== 2 || bad(x) || bad(y)) checkArgs(ad, [...arguments]);
    const t = acquireTape();
    const self = selfOf(ad, this);
    fwd.call(self, t, x, y);
    rev.call(self, t, x, y, 1);
    const g = t.d[an];
    releaseTape(t); // not in a finally: see NO_FINALLY
    return g;
  };
}

/**
 * grad with respect to one array parameter, the call of an optimisation loop: the sweeps' argument list is
 * built in place (t, the arguments, one new adjoint array per array parameter, then the seed) and serves both
 * sweeps, without the rest parameters, spreads and result lists of the general path, which cost as much as
 * the gradient of a 100-element function (Rosenbrock n = 100: 1.5 -> 0.84 µs, bench:scalar). Wasm-backed
 * functions go straight to their module (`direct`): no JS tape, and the result is copied out once.
 */
function arrayFastPath(ad: Adjoint, an: number, sweeps: Pick<Adjoint, 'fwd' | 'rev'>, out?: Float64Array): Function {
  const ps = ad.params, n = ps.length;
  const { fwd, rev } = sweeps;
  let nArr = 0, mine = 0;
  for (let i = 0; i < n; i++) if (ps[i] === 'arr') { if (i === an) mine = nArr; nArr++; }
  /** `out`, checked against the argument it is the gradient of (and against every argument: the sweeps read them while they write it). */
  const into = (args: ArrayLike<unknown>): Float64Array | undefined => {
    if (!out) return undefined;
    const len = (args[an] as ArrayLike<number>).length;
    if (out.length !== len) throw new Error(`pullback: grad(${ad.name}, ${an}, { out }): out has ${out.length} elements, argument ${an} has ${len}`);
    for (let i = 0; i < n; i++) {
      const a = args[i];
      if (a instanceof Float64Array && a.buffer === out.buffer) throw new Error(`pullback: grad(${ad.name}, ${an}, { out }): out shares its memory with argument ${i}; pass an array of its own`);
    }
    return out;
  };
  const direct = (sweeps as Adjoint['grad'])?.direct;
  const one = direct?.one;
  const check = checkedOnce((args) => { checkArgs(ad, args); into(args); });
  if (one) {
    return function (this: unknown, x: unknown) {
      check(arguments, x);
      return one(x as Float64Array | number[], out);
    };
  }
  if (n === 1 && !direct) {
    // The sweeps called as they are, without building their argument lists: the general path below cost
    // as much as the sweeps themselves at Rosenbrock n = 100 (0.51 against 0.25 us).
    return function (this: unknown, x: unknown) {
      check(arguments, x);
      const g = out ? out.fill(0) : new Float64Array((x as ArrayLike<number>).length);
      const t = acquireTape();
      const self = selfOf(ad, this);
      fwd.call(self, t, x, g);
      rev.call(self, t, x, g, 1);
      releaseTape(t); // not in a finally: see NO_FINALLY
      return g;
    };
  }
  if (direct) {
    return function (this: unknown) {
      checkArgs(ad, arguments);
      return direct(arguments, an, into(arguments));
    };
  }
  return function (this: unknown) {
    checkArgs(ad, arguments);
    // The sweeps' arguments: $t, the n arguments and their adjoints; the reverse sweep's also the seed.
    const call = new Array<unknown>(1 + n + nArr);
    const given = into(arguments);
    let s = 1 + n, result!: Float64Array;
    for (let i = 0; i < n; i++) {
      const a = arguments[i];
      if (ps[i] === 'arr') {
        const shadow = given && s - 1 - n === mine ? given.fill(0) : new Float64Array((a as ArrayLike<number>).length);
        if (s - 1 - n === mine) result = shadow;
        call[s++] = shadow;
      }
      call[1 + i] = a;
    }
    const t = acquireTape();
    call[0] = t;
    const self = selfOf(ad, this);
    fwd.apply(self, call as [Tape, ...any[]]);
    call.push(1);
    rev.apply(self, call as [Tape, ...any[]]);
    releaseTape(t); // not in a finally: see NO_FINALLY
    return result;
  };
}

/** Like `grad`, but returns `[value, gradient]` from the same evaluation. */
export function valueAndGrad<F extends Fn, A extends number | readonly number[] = 0>(f: F, argnums?: A): (...args: Parameters<F>) => [ReturnType<F>, Grads<F, A>] {
  const an = (argnums ?? 0) as number | readonly number[];
  if (!lookupAdjoint(f)) {
    return function (this: unknown, ...args: Parameters<F>) {
      const { value, grads } = tensorRun(f, this, args, an);
      return [value as ReturnType<F>, (typeof an === 'number' ? grads[0] : grads) as Grads<F, A>];
    };
  }
  const ad = adjointOf(f);
  scalarOnly(ad, 'valueAndGrad');
  checkArgnums(ad, an);
  if (an === 0 && ad.params.length === 1 && ad.params[0] === 'arr' && ad.returns === 'num') {
    // f(x) of one array, the call of an optimisation loop that logs its loss: the sweeps called as they are
    // (or both Wasm sweeps in one frame), the argument checked again only when it is a new array.
    const { fwd, rev, valueOne } = ad;
    const check = checkedOnce((args) => checkArgs(ad, args));
    return function (this: unknown, x: unknown) {
      check(arguments, x);
      if (valueOne) return valueOne(x as Float64Array);
      const g = new Float64Array((x as ArrayLike<number>).length);
      const t = acquireTape();
      const self = selfOf(ad, this);
      const value = fwd.call(self, t, x, g);
      rev.call(self, t, x, g, 1);
      releaseTape(t); // not in a finally: see NO_FINALLY
      return [value, g];
    } as never;
  }
  return function (this: unknown, ...args: Parameters<F>) {
    checkArgs(ad, args);
    const t = acquireTape();
    const { value, grads } = run(ad, selfOf(ad, this), args, 1, t);
    releaseTape(t); // not in a finally: see NO_FINALLY
    return [value, select(grads, an)];
  };
}

/** The gradients of every parameter, in order. */
export type Pullback<F extends Fn> = (cotangent: ReturnType<F> extends number ? number : ArrayLike<number>) => { [K in keyof Parameters<F>]: Gradient<Parameters<F>[K]> };

/**
 * Runs the forward sweep once and returns `[value, pullback]`; `pullback(cotangent)` returns the gradients of
 * all parameters and can be called any number of times without re-running the forward sweep.
 */
export function vjp<F extends Fn>(this: unknown, f: F, ...args: Parameters<F>): [ReturnType<F>, Pullback<F>] {
  if (!lookupAdjoint(f)) {
    if (!lookupTensor(f) && !args.some(containsTensor)) throw notTransformed(f);
    return tensorVjp(f, this, args) as [ReturnType<F>, Pullback<F>];
  }
  const ad = adjointOf(f);
  checkArgs(ad, args);
  // The reverse sweep reads the argument arrays when the pullback runs, which may be after the caller has
  // changed them: differentiate at the arguments as they are now.
  args = args.map((a) => (ArrayBuffer.isView(a) || Array.isArray(a) ? (a as Float64Array | number[]).slice() : a)) as Parameters<F>;
  const t = new Tape();
  const fwdShadows = ad.params.flatMap((k, i) => (k === 'arr' ? [new Float64Array((args[i] as ArrayLike<number>).length)] : []));
  // For an instance method: vjp.call(receiver, C.prototype.m, ...args), as with grad's result.
  const self = selfOf(ad, this);
  // The JS sweeps even where Wasm ones exist: the pullback may run any number of times, at any later moment.
  const value = (ad.js ?? ad).fwd.call(self, t, ...args, ...fwdShadows);
  const sp = t.sp, rp = t.rp;
  const outLen = ad.returns === 'arr' ? (value as ArrayLike<number>).length : 0;
  // A reverse sweep rewinds the arrays it restores element by element to their state before the forward
  // sweep. To run it again, put every recorded array back as the forward sweep left it.
  const recorded = new Map<Float64Array | number[], Float64Array | number[]>();
  for (let i = 0; i < rp; i++) {
    const o = t.refs[i];
    if ((o instanceof Float64Array || Array.isArray(o)) && !recorded.has(o)) recorded.set(o, o.slice());
  }
  let calls = 0;
  const pullback = (cotangent: unknown) => {
    if (ad.returns === 'num' && typeof cotangent !== 'number') throw new Error(`pullback: the cotangent of ${ad.name} must be a number, got ${describe(cotangent)}`);
    if (ad.returns === 'arr') {
      const c = cotangent as ArrayLike<number>;
      if (c === null || typeof c !== 'object' || typeof c.length !== 'number') throw new Error(`pullback: the cotangent of ${ad.name} must be an array of length ${outLen}, got ${describe(cotangent)}`);
      if (c.length !== outLen) throw new Error(`pullback: the cotangent of ${ad.name} has length ${c.length}; the output has length ${outLen}`);
    }
    t.sp = sp; t.rp = rp;
    if (calls++ > 0) for (const [o, copy] of recorded) for (let i = 0; i < copy.length; i++) o[i] = copy[i]!;
    // The forward sweep may have aliased the parameters' shadows into local arrays (`const a = c ? x : y`),
    // so the reverse sweep must accumulate into those very arrays: hand out copies and clear them after.
    const grads = reverse(ad, self, args, fwdShadows, cotangent, t);
    let a = 0;
    const out = grads.map((g, i) => (ad.params[i] === 'arr' ? Float64Array.from(fwdShadows[a++]!) : g));
    for (const s of fwdShadows) s.fill(0);
    return out;
  };
  const out = ad.returns === 'arr' ? (value as Float64Array | number[]).slice() : value;
  return [out, pullback as Pullback<F>];
}

/**
 * Forward mode: one run of f carrying `tangents` alongside `primals`; returns `[value, tangentOut]`, the
 * derivative of f along the tangent direction (J·t). A number parameter takes a number tangent, an array
 * parameter an array of the same length.
 */
export function jvp<F extends Fn>(this: unknown, f: F, primals: Parameters<F>, tangents: { [K in keyof Parameters<F>]: Parameters<F>[K] extends number ? number : ArrayLike<number> }): [ReturnType<F>, ReturnType<F> extends number ? number : Float64Array] {
  const ad = adjointOf(f);
  checkArgs(ad, primals);
  if (!ad.jvp) throw new Error(`pullback: ${ad.name} (${ad.where}) has no tangent sweep; rebuild it with this version of pullback`);
  const ts = ad.params.map((k, i) => {
    const t = (tangents as unknown[])[i];
    if (k === 'num') {
      if (typeof t !== 'number') throw new Error(`pullback: the tangent of argument ${i} of ${ad.name} must be a number, got ${describe(t)}`);
      return t;
    }
    const n = (primals[i] as ArrayLike<number>).length;
    const a = t as ArrayLike<number>;
    if (a === null || typeof a !== 'object' || a.length !== n) throw new Error(`pullback: the tangent of argument ${i} of ${ad.name} must be an array of length ${n}, got ${describe(t)}`);
    return Float64Array.from(a);
  });
  const value = ad.jvp.apply(selfOf(ad, this), [...primals, ...ts]);
  const out = ad.returns === 'num' ? fw.t : Float64Array.from(fw.a);
  return [(ad.returns === 'arr' ? (value as Float64Array | number[]).slice() : value) as ReturnType<F>, out as never];
}

/**
 * The Jacobian by forward mode, with respect to parameter `argnums` (a number): one tangent sweep per input
 * entry, returned as rows like `jacobian`'s. Cheaper than reverse mode when f has more outputs than inputs.
 */
export function jacfwd<F extends Fn>(f: F, argnums = 0): (...args: Parameters<F>) => any[] {
  const ad = adjointOf(f);
  checkArgnums(ad, argnums);
  return (...args: Parameters<F>) => {
    const zero = ad.params.map((k, i) => (k === 'num' ? 0 : new Float64Array((args[i] as ArrayLike<number>).length)));
    const n = ad.params[argnums] === 'num' ? 1 : (args[argnums] as ArrayLike<number>).length;
    const columns: (number | Float64Array)[] = [];
    for (let j = 0; j < n; j++) {
      const t: (number | Float64Array)[] = zero.map((z) => (typeof z === "number" ? 0 : new Float64Array(z.length)));
      if (ad.params[argnums] === 'num') t[argnums] = 1; else (t[argnums] as Float64Array)[j] = 1;
      columns.push(jvp(f, args, t as never)[1] as number | Float64Array);
    }
    const numIn = ad.params[argnums] === 'num';
    if (ad.returns === 'num') return [numIn ? columns[0] : Float64Array.from(columns as number[])];
    const m = (columns[0] as Float64Array).length;
    return Array.from({ length: m }, (_, i) => (numIn ? (columns[0] as Float64Array)[i] : Float64Array.from(columns, (c) => (c as Float64Array)[i]!)));
  };
}

/**
 * The Jacobian of an array-valued function with respect to parameter `argnums`, as an array of rows.
 * Picks the mode by shape: reverse (one forward sweep, one reverse sweep per output) when there are no more
 * outputs than inputs, forward (one tangent sweep per input) otherwise, for a single `argnums`.
 */
export function jacobian<F extends Fn, A extends number | readonly number[] = 0>(f: F, argnums?: A): (...args: Parameters<F>) => Grads<F, A>[] {
  const ad = adjointOf(f);
  const an = (argnums ?? 0) as number | readonly number[];
  checkArgnums(ad, an);
  return (...args: Parameters<F>) => {
    const [value, pb] = vjp(f, ...args);
    if (typeof an === 'number' && ad.jvp && ad.returns === 'arr') {
      const inputs = ad.params[an] === 'num' ? 1 : (args[an] as ArrayLike<number>).length;
      if (inputs < (value as ArrayLike<number>).length) return jacfwd(f, an)(...args) as never;
    }
    if (ad.returns === 'num') return [select(pb(1 as never) as unknown[], an)];
    const m = (value as ArrayLike<number>).length;
    const rows = [];
    const e = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      e[i] = 1;
      rows.push(select(pb(e as never) as unknown[], an));
      e[i] = 0;
    }
    return rows;
  };
}

/** Identity in the forward sweep, zero derivative: blocks gradient flow through `x` (a number, an array or a Tensor). */
export function stopGradient<T extends number | Float64Array | number[] | Tensor>(x: T): T {
  return (x instanceof Tensor ? stopGradientTensor(x) : x) as T;
}

/**
 * Marks a class method as differentiable (TypeScript 5 standard decorator). The transformer does the work;
 * at run time this is the identity.
 */
export function differentiable<T extends Function>(value: T, _context?: ClassMethodDecoratorContext | unknown): T {
  return value;
}

/** The TypeScript the transformer generated for `f`'s forward and reverse sweeps. */
export function adjointSource(f: Fn): string {
  const t = lookupTensor(f);
  if (t) return t.source;
  return adjointOf(f).source;
}

/** What `explain(f)` returns: the backend that runs f's gradient, why when it is not the fast one, and a sentence. */
export interface Explanation {
  backend: 'wasm' | 'js' | 'webgpu';
  reason?: string;
  /** The sentence: `String(explain(f))`. */
  toString(): string;
}

/**
 * How `f` is differentiated: which backend runs its gradient (`'wasm'` for scalar functions compiled to
 * WebAssembly, `'js'` for scalar functions on their JS sweeps, and for tensor code the
 * current tensor backend: `'webgpu'`, `'wasm'` for the CPU kernels, `'js'` for the reference), why, and a sentence saying so.
 * @example
 *   const e = explain(rosenbrock);
 *   e.backend; // 'wasm'
 *   String(e); // 'rosenbrock (model.ts:3) is differentiated by the scalar sweeps pullback generated at build time (wasm)...'
 */
export function explain(f: Fn): Explanation {
  const ad = lookupAdjoint(f);
  if (ad) {
    const text = `${ad.name} (${ad.where}) is differentiated by the scalar sweeps pullback generated at build time (${ad.backend}${ad.reason ? `: ${ad.reason}` : ''}); adjointSource(${ad.name}) shows them.`;
    return { backend: ad.backend, ...(ad.reason ? { reason: ad.reason } : {}), toString: () => text };
  }
  const text = explainTensor(f);
  // Tensor code runs on the current tensor backend: WebGPU, the Wasm SIMD kernels ('cpu') or the f64 reference.
  const name = hasBackend() ? currentBackend().name : 'reference';
  return { backend: name === 'webgpu' ? 'webgpu' : name === 'cpu' ? 'wasm' : 'js', toString: () => text };
}

/** grad and valueAndGrad over tensors: the generated pullbacks when f was transformed, the eager tape otherwise. */
function tensorRun(f: Fn, self: unknown, args: unknown[], an: number | readonly number[]): { value: Tensor; grads: unknown[] } {
  if (!lookupTensor(f) && !args.some(containsTensor)) throw notTransformed(f);
  return tensorValueAndGrad(f, self, args, typeof an === 'number' ? [an] : an);
}

export interface GradcheckOptions {
  /** Parameters to check (default: all). */
  argnums?: number | readonly number[];
  /** Relative step of the central difference (default 1e-6). */
  eps?: number;
  /** Seed of the random cotangent used for array-valued functions. */
  seed?: number;
  /** Tolerance for `ok` (default 1e-6). */
  tolerance?: number;
}

export interface GradcheckResult {
  /** max over checked entries of |analytic − numeric| / max(1, |analytic|, |numeric|). */
  maxError: number;
  where: { arg: number; index: number };
  analytic: number;
  numeric: number;
  ok: boolean;
}

/**
 * Compares the generated gradient with central finite differences (in f64) and reports the worst entry.
 * For an array-valued f, compares ⟨c, f⟩ for a random cotangent c.
 */
export function gradcheck<F extends Fn>(f: F, args: Parameters<F>, options: GradcheckOptions = {}): GradcheckResult {
  if (!lookupAdjoint(f) && (lookupTensor(f) || args.some(containsTensor))) return tensorGradcheck(f, args, options);
  const ad = adjointOf(f);
  const eps = options.eps ?? 1e-6;
  const tol = options.tolerance ?? 1e-6;
  const which = options.argnums === undefined ? ad.params.map((_, i) => i) : typeof options.argnums === 'number' ? [options.argnums] : [...options.argnums];
  const [value, pb] = vjp(f, ...args);
  let c: Float64Array | number = 1;
  if (ad.returns === 'arr') {
    let s = (options.seed ?? 1) >>> 0 || 1;
    c = new Float64Array((value as ArrayLike<number>).length).map(() => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296 - 0.5; });
  }
  const grads = pb(c as never) as unknown[];
  const scalar = (xs: unknown[]): number => {
    const y = f.apply(ad.self, xs);
    if (typeof c === 'number') return y;
    let acc = 0;
    for (let i = 0; i < c.length; i++) acc += c[i]! * y[i];
    return acc;
  };
  const result: GradcheckResult = { maxError: 0, where: { arg: -1, index: -1 }, analytic: 0, numeric: 0, ok: true };
  const consider = (arg: number, index: number, analytic: number, numeric: number) => {
    const err = Math.abs(analytic - numeric) / Math.max(1, Math.abs(analytic), Math.abs(numeric));
    if (err > result.maxError || Number.isNaN(err)) Object.assign(result, { maxError: Number.isNaN(err) ? Infinity : err, where: { arg, index }, analytic, numeric });
  };
  for (const i of which) {
    const a = args[i];
    if (typeof a === 'number') {
      const h = eps * Math.max(1, Math.abs(a));
      const xs = [...args];
      xs[i] = a + h; const up = scalar(xs);
      xs[i] = a - h; const down = scalar(xs);
      consider(i, -1, grads[i] as number, (up - down) / (2 * h));
    } else {
      const arr = a as Float64Array | number[];
      for (let k = 0; k < arr.length; k++) {
        const copy = arr.slice();
        const h = eps * Math.max(1, Math.abs(arr[k]!));
        const xs = [...args];
        copy[k] = arr[k]! + h; xs[i] = copy; const up = scalar(xs);
        const copy2 = arr.slice(); copy2[k] = arr[k]! - h; xs[i] = copy2; const down = scalar(xs);
        consider(i, k, (grads[i] as Float64Array)[k]!, (up - down) / (2 * h));
      }
    }
  }
  result.ok = result.maxError <= tol;
  return result;
}

/**
 * gradcheck over tensors: central differences in f64, on the reference backend (whose values are f64 host arrays,
 * perturbed in place and restored), against the gradient of the generated code (or of the eager tape).
 */
function tensorGradcheck(f: Fn, args: unknown[], options: GradcheckOptions): GradcheckResult {
  const eps = options.eps ?? 1e-6;
  const tol = options.tolerance ?? 1e-6;
  const which = options.argnums === undefined ? args.map((_, i) => i).filter((i) => containsTensor(args[i])) : typeof options.argnums === 'number' ? [options.argnums] : [...options.argnums];
  for (const i of which) for (const t of tensorsIn(args[i])) {
    if (t.backend.name !== 'reference') throw new Error(`pullback: gradcheck over tensors runs in f64 on the reference backend; argument ${i} holds a ${t.backend.name} tensor (make the tensors after init({ backend: 'reference' }), or inside withBackend(referenceTensorBackend, ...))`);
  }
  const { value, grads } = tensorValueAndGrad(f, undefined, args, which);
  value.dispose();
  const evaluate = (): number => {
    const y = f(...args) as Tensor;
    const v = (y.value('gradcheck') as { data: Float64Array }).data[0]!;
    y.dispose();
    return v;
  };
  const result: GradcheckResult = { maxError: 0, where: { arg: -1, index: -1 }, analytic: 0, numeric: 0, ok: true };
  which.forEach((arg, w) => {
    const leaves = tensorsIn(args[arg]);
    const gl = tensorsIn(mapTree(grads[w], (t) => t));
    let offset = 0;
    leaves.forEach((leaf, li) => {
      const data = (leaf.value('gradcheck') as { data: Float64Array }).data;
      const g = (gl[li]!.value('gradcheck') as { data: Float64Array }).data;
      for (let k = 0; k < data.length; k++) {
        const x = data[k]!, h = eps * Math.max(1, Math.abs(x));
        data[k] = x + h; const up = evaluate();
        data[k] = x - h; const down = evaluate();
        data[k] = x;
        const numeric = (up - down) / (2 * h), analytic = g[k]!;
        const err = Math.abs(analytic - numeric) / Math.max(1, Math.abs(analytic), Math.abs(numeric));
        if (err > result.maxError || Number.isNaN(err)) Object.assign(result, { maxError: Number.isNaN(err) ? Infinity : err, where: { arg, index: offset + k }, analytic, numeric });
      }
      offset += data.length;
    });
  });
  for (const g of grads) for (const t of tensorsIn(g)) t.dispose();
  result.ok = result.maxError <= tol;
  return result;
}
