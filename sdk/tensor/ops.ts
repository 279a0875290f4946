// SPDX-License-Identifier: MIT
// The tensor API, the same on every backend: each function is one op of the op table run through the engine's
// prim (so that it is recorded for reverse mode) or a short composition of them. Shape and dtype errors come from
// the ops' infer and name the op and the shapes; argument errors (a number where a Tensor is needed) are checked
// here and name the function and the argument.
//
// Memory: a function returns one tensor that the caller owns. What it made along the way (a number lifted to a
// constant, an op's auxiliary outputs such as layerNorm's statistics, a mask) is disposed before it returns; a
// pullback that needs one of those took its own reference when the op ran.
import './methods.js';
import { Rng } from '../../runtime-gpu/rng.js';
import { OpError, checkShape, fmt, normAxes, size, type DType, type Shape } from '../../runtime-gpu/shape.js';
import type { Activation, BinaryFn, Pair, UnaryFn } from '../../runtime-gpu/ops/types.js';
import { Tensor, constant, currentBackend, describe, detach, prim, reshapeTensor, upload, within } from './engine.js';

export type { DType, Shape };
/** A tensor, or a number that is lifted to a constant of the other operand's dtype on its backend. */
export type Operand = Tensor | number;
/** A number, or arrays of them nested to any depth (rectangular). */
export type NestedArray = number | readonly NestedArray[];
/** Axes to reduce over: one, several, or (omitted) all; negative ones count from the end. */
export type Axes = number | readonly number[];

// ---- argument checks ----

function what(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (v instanceof Tensor) return `a Tensor ${describe(v)}`;
  if (typeof v === 'object') {
    const ctor = (v as object).constructor;
    if (!ctor || ctor === Object) return 'a plain object';
    return ctor.name === 'Tensor' ? 'a Tensor of another API (runtime-gpu\'s, or another copy of pullback)' : `a ${ctor.name}`;
  }
  return `a ${typeof v}`;
}

/** x as a Tensor, or an OpError naming the function and the argument. */
function need(op: string, x: unknown, arg = 'x'): Tensor {
  if (x instanceof Tensor) return x;
  const hint = typeof x === 'number' ? ` (make one with scalar(${x}))` : Array.isArray(x) ? ' (make one with tensor(...))' : '';
  throw new OpError(op, `${arg} must be a Tensor, got ${what(x)}${hint}`);
}

function checkDtype(op: string, dtype: unknown): DType {
  if (dtype === 'f32' || dtype === 'i32' || dtype === 'f16') return dtype;
  throw new OpError(op, `unknown dtype ${JSON.stringify(dtype)} (f32, i32 or f16)`);
}

function checkValue(op: string, v: number, dtype: DType, at?: number): void {
  if (dtype === 'i32' && v !== (v | 0)) throw new OpError(op, `i32 values must be 32-bit integers, got ${v}${at === undefined ? '' : ` at ${at}`}`);
}

/** A number as a constant like `like` (its backend and dtype); the caller disposes it. */
function lift(op: string, v: unknown, arg: string, like: Tensor): Tensor {
  if (v instanceof Tensor) return v;
  if (typeof v !== 'number') throw new OpError(op, `${arg} must be a Tensor or a number, got ${what(v)}`);
  if (like.dtype === 'i32' && !Number.isInteger(v)) throw new OpError(op, `cannot combine ${describe(like)} with the non-integer ${v}; cast to f32 first`);
  return constant(like.backend, [], v, like.dtype);
}

/** Runs fn on the operands with numbers lifted to constants like the first Tensor among them, then frees the constants. */
function withLifted(op: string, args: readonly unknown[], names: readonly string[], fn: (ts: Tensor[]) => Tensor): Tensor {
  const like = args.find((a): a is Tensor => a instanceof Tensor);
  if (!like) {
    const bad = args.findIndex((a) => typeof a !== 'number');
    if (bad >= 0) throw new OpError(op, `${names[bad]} must be a Tensor or a number, got ${what(args[bad])}`);
    throw new OpError(op, `needs a Tensor operand, got only numbers (${args.join(', ')}); make one with scalar()`);
  }
  const ts: Tensor[] = [];
  try {
    args.forEach((a, i) => ts.push(lift(op, a, names[i]!, like)));
    return fn(ts);
  } finally {
    ts.forEach((t, i) => { if (t !== args[i]) t.dispose(); });
  }
}

/** Runs fn outside any gradient session: its results are constants (masks, indices), and nothing is kept for a pullback. */
const unrecorded = <R>(fn: () => R): R => within(null, null, fn);

// ---- creation ----

function flattenNested(op: string, data: readonly NestedArray[]): { values: number[]; shape: number[] } {
  const shape: number[] = [];
  for (let d: NestedArray = data; Array.isArray(d); d = (d as readonly NestedArray[])[0]!) {
    shape.push(d.length);
    if (d.length === 0) break;
  }
  const values: number[] = [];
  const walk = (d: NestedArray, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof d !== 'number') throw new OpError(op, `element ${path || '[]'} is ${what(d)}, not a number`);
      values.push(d);
      return;
    }
    if (!Array.isArray(d) || d.length !== shape[depth]) {
      throw new OpError(op, `nested arrays are not rectangular: ${path || 'the data'} is ${what(d)}, expected an array of length ${shape[depth]} (shape ${fmt(shape)})`);
    }
    d.forEach((e, i) => walk(e, depth + 1, `${path}[${i}]`));
  };
  walk(data, 0, '');
  return { values, shape };
}

/**
 * A tensor from values: a flat array or typed array (shape defaults to its length) or nested arrays (shape inferred).
 * The dtype defaults to i32 for an Int32Array and f32 otherwise.
 * @example const x = tensor([[1, 2], [3, 4]]); const y = tensor([1, 2, 3, 4], [2, 2]); const i = tensor([0, 2], [2], 'i32');
 */
export function tensor(data: ArrayLike<number> | readonly NestedArray[] | number, shape?: Shape, dtype?: DType): Tensor {
  const dt = checkDtype('tensor', dtype ?? (data instanceof Int32Array ? 'i32' : 'f32'));
  let values: ArrayLike<number>, inferred: number[];
  if (typeof data === 'number') { values = [data]; inferred = []; }
  else if (Array.isArray(data)) ({ values, shape: inferred } = flattenNested('tensor', data));
  else if (data !== null && typeof data === 'object' && typeof (data as ArrayLike<number>).length === 'number') {
    values = data as ArrayLike<number>;
    inferred = [values.length];
    if (!ArrayBuffer.isView(values)) for (let i = 0; i < values.length; i++) if (typeof values[i] !== 'number') throw new OpError('tensor', `element ${i} is ${what(values[i])}, not a number`);
  } else throw new OpError('tensor', `data must be an array, a typed array or a number, got ${what(data)}`);
  const s = shape ?? inferred;
  checkShape('tensor', s);
  if (dt === 'i32') for (let i = 0; i < values.length; i++) checkValue('tensor', values[i]!, dt, i);
  return upload(values, s, dt);
}

/** A rank-0 tensor. @example const lr = scalar(0.01); */
export function scalar(value: number, dtype: DType = 'f32'): Tensor {
  if (typeof value !== 'number') throw new OpError('scalar', `value must be a number, got ${what(value)}`);
  return tensor([value], [], dtype);
}

/** A tensor of one value. @example const b = full([3], 0.5); */
export function full(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  return fullOn('full', currentBackend(), shape, value, dtype);
}

function fullOn(op: string, be: Tensor['backend'], shape: Shape, value: number, dtype: DType): Tensor {
  if (!Array.isArray(shape)) throw new OpError(op, `shape must be an array of dimensions, got ${what(shape)}`);
  checkShape(op, shape);
  const dt = checkDtype(op, dtype);
  if (typeof value !== 'number') throw new OpError(op, `value must be a number, got ${what(value)}`);
  checkValue(op, value, dt);
  return constant(be, shape, value, dt);
}

/** Zeros. @example const z = zeros([2, 3]); */
export const zeros = (shape: Shape, dtype: DType = 'f32'): Tensor => fullOn('zeros', currentBackend(), shape, 0, dtype);
/** Ones. @example const o = ones([2, 3]); */
export const ones = (shape: Shape, dtype: DType = 'f32'): Tensor => fullOn('ones', currentBackend(), shape, 1, dtype);
/** Zeros of x's shape, dtype and backend. @example const g = zerosLike(w); */
export const zerosLike = (x: Tensor, dtype?: DType): Tensor => { const t = need('zerosLike', x); return fullOn('zerosLike', t.backend, t.shape, 0, dtype ?? t.dtype); };
/** Ones of x's shape, dtype and backend. @example const m = onesLike(x); */
export const onesLike = (x: Tensor, dtype?: DType): Tensor => { const t = need('onesLike', x); return fullOn('onesLike', t.backend, t.shape, 1, dtype ?? t.dtype); };
/** `value` in x's shape, dtype and backend. @example const m = fullLike(x, -1); */
export const fullLike = (x: Tensor, value: number, dtype?: DType): Tensor => { const t = need('fullLike', x); return fullOn('fullLike', t.backend, t.shape, value, dtype ?? t.dtype); };

/** Uniform in [0, 1) from a seeded generator; the values are made on the CPU, so they match across backends. @example const u = rand([2, 2], 7); */
export function rand(shape: Shape, seed = 0): Tensor {
  checkShape('rand', shape);
  const g = new Rng(seed);
  return upload(Float64Array.from({ length: size(shape) }, () => g.uniform()), shape, 'f32');
}

/** Standard normal from a seeded generator (the same values on every backend). @example const w = randn([784, 10], 1); */
export function randn(shape: Shape, seed = 0): Tensor {
  checkShape('randn', shape);
  const g = new Rng(seed);
  return upload(Float64Array.from({ length: size(shape) }, () => g.normal()), shape, 'f32');
}

/**
 * start, start + step, ... below stop (or, with one argument, 0 .. n-1).
 * @example arange(4) // [0, 1, 2, 3];  arange(1, 2, 0.25) // [1, 1.25, 1.5, 1.75]
 */
export function arange(start: number, stop?: number, step = 1, dtype: DType = 'f32'): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  for (const [n, v] of [['start', start], ['stop', stop], ['step', step]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new OpError('arange', `${n} must be a finite number, got ${what(v)}`);
  }
  if (step === 0) throw new OpError('arange', 'step must not be 0');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const values = Float64Array.from({ length: n }, (_, i) => start + i * step);
  const dt = checkDtype('arange', dtype);
  for (let i = 0; i < n; i++) checkValue('arange', values[i]!, dt, i);
  return upload(values, [n], dt);
}

// ---- elementwise ----

const unary = (fn: UnaryFn) => (x: Tensor): Tensor => prim('unary', [need(fn, x)], { fn })[0]!;
/** -x. */
export const neg = unary('neg');
/** e^x. */
export const exp = unary('exp');
/** Natural logarithm. */
export const log = unary('log');
/** Square root. */
export const sqrt = unary('sqrt');
/** 1 / sqrt(x). */
export const rsqrt = unary('rsqrt');
/** Hyperbolic tangent. */
export const tanh = unary('tanh');
/** 1 / (1 + e^-x). */
export const sigmoid = unary('sigmoid');
/** max(x, 0). */
export const relu = unary('relu');
/** GELU, tanh approximation: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export const gelu = unary('gelu');
/** |x|. */
export const abs = unary('abs');
/** x * x. @example const l2 = sum(square(w)); */
export function square(x: Tensor): Tensor {
  const t = need('square', x);
  return prim('binary', [t, t], { fn: 'mul' })[0]!;
}

const binary = (fn: BinaryFn, name: string = fn) => (a: Operand, b: Operand): Tensor =>
  withLifted(name, [a, b], ['a', 'b'], ([ta, tb]) => prim('binary', [ta!, tb!], { fn })[0]!);
/** a + b, broadcasting; either may be a number. @example const y = add(x, 1); */
export const add = binary('add');
/** a - b, broadcasting; either may be a number. @example const y = sub(1, x); */
export const sub = binary('sub');
/** a * b, broadcasting; either may be a number. */
export const mul = binary('mul');
/** a / b, broadcasting; either may be a number. */
export const div = binary('div');
/** a ** b, broadcasting; either may be a number (the gradient in b needs a > 0). */
export const pow = binary('pow');
/** Elementwise max; where a = b the gradient goes to a. */
export const maximum = binary('max', 'maximum');
/** Elementwise min; where a = b the gradient goes to a. */
export const minimum = binary('min', 'minimum');

// Comparisons are not differentiable (their gradient is zero almost everywhere): they run unrecorded, so that a
// mask is a constant and its inputs are not kept for a backward pass.
const compare = (fn: BinaryFn) => (a: Operand, b: Operand): Tensor => unrecorded(() => binary(fn)(a, b));
/** a < b as an f32 mask of 0 and 1. */
export const lt = compare('lt');
/** a <= b as an f32 mask. */
export const le = compare('le');
/** a > b as an f32 mask. */
export const gt = compare('gt');
/** a >= b as an f32 mask. */
export const ge = compare('ge');
/** a == b as an f32 mask. */
export const eq = compare('eq');
/** a != b as an f32 mask. */
export const ne = compare('ne');

/** a where cond != 0, else b (broadcasting); a or b may be a number. @example const y = where(gt(x, 0), x, 0); */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const c = need('where', cond, 'cond');
  if (typeof a === 'number' && typeof b === 'number') {
    // Both numbers: constants of the default float dtype on cond's backend.
    const [ta, tb] = [constant(c.backend, [], a), constant(c.backend, [], b)];
    try { return prim('where', [c, ta, tb], {})[0]!; } finally { ta.dispose(); tb.dispose(); }
  }
  return withLifted('where', [a, b], ['a', 'b'], ([ta, tb]) => prim('where', [c, ta!, tb!], {})[0]!);
}

/**
 * x limited to [lo, hi]. Gradient convention: it flows to x only strictly inside (lo, hi); where x is at or beyond a
 * bound, it flows to that bound (when the bound is a Tensor). NaN stays NaN.
 * @example const p = clip(x, 1e-7, 1 - 1e-7);
 */
export function clip(x: Tensor, lo: Operand, hi: Operand): Tensor {
  const t = need('clip', x);
  if (typeof lo === 'number' && typeof hi === 'number' && lo > hi) throw new OpError('clip', `lo ${lo} is above hi ${hi}`);
  const below = le(t, lo), above = ge(t, hi);
  const inner = where(above, hi, t);
  try { return where(below, lo, inner); } finally { below.dispose(); above.dispose(); inner.dispose(); }
}

/** x broadcast to `shape` (NumPy rules). */
export const broadcastTo = (x: Tensor, shape: Shape): Tensor => prim('broadcastTo', [need('broadcastTo', x)], { shape })[0]!;
/** x converted to dtype (to i32: truncated toward zero; to f16: rounded). */
export const cast = (x: Tensor, dtype: DType): Tensor => prim('cast', [need('cast', x)], { dtype: checkDtype('cast', dtype) })[0]!;

// ---- shapes ----

/** The same values in a new shape (free: no copy); one dimension may be -1. @example const m = reshape(v, [2, -1]); */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const t = need('reshape', x);
  if (!Array.isArray(shape)) throw new OpError('reshape', `shape must be an array of dimensions, got ${what(shape)}`);
  return reshapeTensor(t, shape);
}

/** Merges the axes from `startAxis` on into one: [N, C, H, W] -> flatten(x, 1) -> [N, C*H*W]. */
export function flatten(x: Tensor, startAxis = 0): Tensor {
  const t = need('flatten', x);
  if (t.rank === 0) return reshapeTensor(t, [1]);
  const [s] = normAxes('flatten', startAxis, t.rank);
  return reshapeTensor(t, [...t.shape.slice(0, s), size(t.shape.slice(s))]);
}

/** Axes reordered: output axis k is input axis perm[k]. */
export const permute = (x: Tensor, perm: readonly number[]): Tensor => prim('permute', [need('permute', x)], { perm })[0]!;

/** Swaps the last two axes. @example const y = matmul(x, transpose(w)); */
export function transpose(x: Tensor): Tensor {
  const t = need('transpose', x);
  if (t.rank < 2) throw new OpError('transpose', `needs rank 2 or more, got ${describe(t)}`);
  const perm = t.shape.map((_, i) => i);
  [perm[t.rank - 1], perm[t.rank - 2]] = [perm[t.rank - 2]!, perm[t.rank - 1]!];
  return prim('permute', [t], { perm })[0]!;
}

/** The block starting at `begin` with `sizes` (a size of -1: to the end of that axis). @example slice(x, [0, 1], [-1, 2]) */
export function slice(x: Tensor, begin: readonly number[], sizes: readonly number[]): Tensor {
  const t = need('slice', x);
  const sz = sizes.map((s, i) => (s === -1 && i < t.rank ? t.shape[i]! - (begin[i] ?? 0) : s));
  return prim('slice', [t], { begin, size: sz })[0]!;
}

/** Zero padding, one [before, after] pair per axis. @example pad(img, [[0, 0], [0, 0], [1, 1], [1, 1]]) */
export function pad(x: Tensor, widths: readonly (readonly [number, number])[]): Tensor {
  const t = need('pad', x);
  if (!Array.isArray(widths) || widths.length !== t.rank || widths.some((w) => !Array.isArray(w) || w.length !== 2)) {
    throw new OpError('pad', `widths must hold one [before, after] pair per axis of ${describe(t)}, got ${JSON.stringify(widths)}`);
  }
  widths.forEach(([b, a], i) => {
    if (!Number.isInteger(b) || !Number.isInteger(a) || b < 0 || a < 0) throw new OpError('pad', `axis ${i}: widths must be non-negative integers, got [${b}, ${a}]`);
  });
  return prim('pad', [t], { before: widths.map((w) => w[0]), shape: t.shape.map((d, i) => d + widths[i]![0] + widths[i]![1]) })[0]!;
}

/** Joins tensors along an axis (negative counts from the end). @example const xy = concat([x, y], 1); */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(xs)) throw new OpError('concat', `xs must be an array of Tensors, got ${what(xs)}`);
  return prim('concat', xs.map((x, i) => need('concat', x, `xs[${i}]`)), { axis })[0]!;
}

// ---- reductions ----

/** The reduced tensor y, reshaped with the reduced axes kept as 1 when asked (y is then disposed). */
function keepDims(x: Tensor, y: Tensor, axes: readonly number[], keep: boolean): Tensor {
  if (!keep) return y;
  const r = reshapeTensor(y, x.shape.map((d, i) => (axes.includes(i) ? 1 : d)));
  y.dispose();
  return r;
}

/** Sum over axes (all when omitted); keepDims leaves them as 1. @example const colSums = sum(x, 0); */
export function sum(x: Tensor, axes?: Axes, keep = false): Tensor {
  const t = need('sum', x);
  const ax = normAxes('sum', axes, t.rank);
  return keepDims(t, prim('sum', [t], { axes: ax })[0]!, ax, keep);
}

/** Mean over axes (all when omitted). @example const loss = mean(square(sub(y, target))); */
export function mean(x: Tensor, axes?: Axes, keep = false): Tensor {
  const t = need('mean', x);
  const ax = normAxes('mean', axes, t.rank);
  const n = ax.reduce((p, a) => p * t.shape[a]!, 1);
  return keepDims(t, prim('sum', [t], { axes: ax, scale: 1 / n })[0]!, ax, keep);
}

/** Max over axes (all when omitted); the gradient goes to the first maximum. See argmax for the indices. */
export function max(x: Tensor, axes?: Axes, keep = false): Tensor {
  const t = need('max', x);
  const ax = normAxes('max', axes, t.rank);
  const [values, indices] = prim('max', [t], { axes: ax });
  indices!.dispose();
  return keepDims(t, values!, ax, keep);
}

/** Index (i32) of the first maximum along `axis`; with no axis, the flat index over all elements. @example const pred = argmax(logits, -1); */
export function argmax(x: Tensor, axis?: number): Tensor {
  const t = need('argmax', x);
  const ax = axis === undefined ? undefined : normAxes('argmax', axis, t.rank);
  const [values, indices] = unrecorded(() => prim('max', [t], { axes: ax }));
  values!.dispose();
  return indices!;
}

/** log(sum(exp(x))) over axes, computed stably. */
export function logsumexp(x: Tensor, axes?: Axes, keep = false): Tensor {
  const t = need('logsumexp', x);
  const ax = normAxes('logsumexp', axes, t.rank);
  return keepDims(t, prim('logsumexp', [t], { axes: ax })[0]!, ax, keep);
}

// ---- networks ----

/** Options of matmul. */
export interface MatmulOptions {
  /** Use a's transpose (a is stored [..., K, M]). */
  transA?: boolean;
  /** Use b's transpose (b is stored [..., N, K]), e.g. a weight stored [out, in]. */
  transB?: boolean;
  /** Added to every row: [N]. */
  bias?: Tensor;
  /** Applied after the bias, in the same kernel. */
  activation?: Activation;
}

/** a @ b with optional transposes, bias and activation fused in one kernel; batch axes broadcast. @example const h = matmul(x, w, { bias: b, activation: 'relu' }); */
export function matmul(a: Tensor, b: Tensor, { bias, transA, transB, activation }: MatmulOptions = {}): Tensor {
  const inputs = [need('matmul', a, 'a'), need('matmul', b, 'b')];
  if (bias !== undefined) inputs.push(need('matmul', bias, 'bias'));
  const [y, ...aux] = prim('matmul', inputs, { transA, transB, activation });
  for (const t of aux) t.dispose();
  return y!;
}

/** Softmax over the last axis. */
export const softmax = (x: Tensor): Tensor => prim('softmax', [need('softmax', x)], {})[0]!;
/** log(softmax(x)) over the last axis, computed stably. */
export const logSoftmax = (x: Tensor): Tensor => prim('logSoftmax', [need('logSoftmax', x)], {})[0]!;

/** Per-row loss -log softmax(logits)[label] for logits [N, C] and i32 labels [N]; returns [N]. @example const loss = mean(softmaxCrossEntropy(logits, labels)); */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  const [loss, lse] = prim('softmaxCrossEntropy', [need('softmaxCrossEntropy', logits, 'logits'), need('softmaxCrossEntropy', labels, 'labels')], {});
  lse!.dispose();
  return loss!;
}

/** Normalises the last axis to mean 0 and variance 1 (plus eps, default 1e-5), then scales by gamma and shifts by beta. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps?: number): Tensor {
  const op = 'layerNorm';
  const [y, mean, rstd] = prim(op, [need(op, x), need(op, gamma, 'gamma'), need(op, beta, 'beta')], eps === undefined ? {} : { eps });
  mean!.dispose(); rstd!.dispose();
  return y!;
}

/** Options of conv2d. */
export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  /** Per output channel: [Co]. */
  bias?: Tensor;
}

/** 2-D convolution (cross-correlation): x [N, Ci, H, W], w [Co, Ci, KH, KW] -> [N, Co, OH, OW]. @example const y = conv2d(img, w, { padding: 1 }); */
export function conv2d(x: Tensor, w: Tensor, { stride, padding, bias }: Conv2dOptions = {}): Tensor {
  const y = prim('conv2d', [need('conv2d', x), need('conv2d', w, 'w')], { stride, padding })[0]!;
  if (bias === undefined) return y;
  const b = need('conv2d', bias, 'bias');
  if (b.rank !== 1 || b.shape[0] !== y.shape[1]) { y.dispose(); throw new OpError('conv2d', `bias must be [${y.shape[1]}] (one per output channel), got ${describe(b)}`); }
  const b4 = reshapeTensor(b, [1, b.shape[0]!, 1, 1]);
  try { return add(y, b4); } finally { y.dispose(); b4.dispose(); }
}

/** Max pooling over windows of x [N, C, H, W]; stride defaults to the kernel. @example const p = maxPool2d(y, { kernel: 2 }); */
export function maxPool2d(x: Tensor, opts: { kernel: Pair; stride?: Pair; padding?: Pair }): Tensor {
  const [y, argmax] = prim('maxPool2d', [need('maxPool2d', x)], opts);
  argmax!.dispose();
  return y!;
}

/** softmax(q kᵀ · scale) v (scale defaults to 1/sqrt(D)), optionally causal: q [..., Sq, D], k [..., Sk, D], v [..., Sk, Dv]. */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: { causal?: boolean; scale?: number } = {}): Tensor {
  const op = 'attention';
  const [out, lse] = prim(op, [need(op, q, 'q'), need(op, k, 'k'), need(op, v, 'v')], opts);
  lse!.dispose();
  return out!;
}

/** Rows of table [V, D] picked by i32 indices [...] -> [..., D]; repeated indices sum their gradients. */
export const embedding = (table: Tensor, indices: Tensor): Tensor => prim('gather', [need('embedding', table, 'table'), need('embedding', indices, 'indices')], {})[0]!;

/** The same values, never differentiated (re-exported from the engine). */
export { detach };
