// SPDX-License-Identifier: MIT
// The tensor API on one default WebGPU runtime: `await initGpu()` once, then ops run without waiting;
// `await t.data()` reads back. Each function is a thin call into the op table (shape checks included).
import { run, vjp as vjpOn, webgpuBackend, type Vjp } from './backend.js';
import { GpuRuntime, type MemoryStats, type RuntimeOptions, Tensor } from './runtime.js';
import { Rng } from './rng.js';
import { type DType, type Shape, size, normAxes } from './shape.js';
import type { Backend, OpAttrs, OpName, Pair, UnaryFn } from './ops/types.js';

let current: { rt: GpuRuntime; be: Backend<Tensor> } | undefined;
let starting: Promise<GpuRuntime> | undefined;

/**
 * Starts the default WebGPU runtime (idempotent).
 * @example await initGpu({ adapter: 'swiftshader' }); const t = tensor([1, 2, 3], [3]);
 */
export async function initGpu(opts: RuntimeOptions = {}): Promise<GpuRuntime> {
  if (current) return current.rt;
  starting ??= GpuRuntime.create(opts).then((rt) => {
    current = { rt, be: webgpuBackend(rt) };
    return rt;
  }, (e: unknown) => { starting = undefined; throw e; });
  return starting;
}

/** Uses an existing runtime as the default one (e.g. one made with GpuRuntime.create). */
export function useRuntime(rt: GpuRuntime): void {
  current = { rt, be: webgpuBackend(rt) };
}

function cur(): { rt: GpuRuntime; be: Backend<Tensor> } {
  if (!current) throw new Error('pullback: no WebGPU runtime; call `await initGpu()` first');
  return current;
}

export interface BackendInfo {
  name: 'webgpu' | 'none';
  adapter: string | null;
  vendor?: string;
  architecture?: string;
  software?: boolean;
}

/** Which backend and adapter are in use. */
export function backend(): BackendInfo {
  if (!current) return { name: 'none', adapter: null };
  const a = current.rt.adapter;
  return { name: 'webgpu', adapter: a.description, vendor: a.vendor, architecture: a.architecture, software: a.software };
}

export const memoryStats = (): MemoryStats => cur().rt.memoryStats();
export const tidy = <R>(fn: () => R): R => cur().rt.tidy(fn);
export const keep = <T extends Tensor>(t: T): T => cur().rt.keep(t);
/** Submits queued work and waits for the GPU. */
export const sync = (): Promise<void> => cur().rt.sync();

// ---- creation ----
export function tensor(data: ArrayLike<number>, shape?: Shape, dtype: DType = 'f32'): Tensor {
  return cur().rt.fromArray(data, shape ?? [data.length], dtype);
}
export const zeros = (shape: Shape, dtype: DType = 'f32'): Tensor => cur().rt.fill(shape, 0, dtype);
export const ones = (shape: Shape, dtype: DType = 'f32'): Tensor => cur().rt.fill(shape, 1, dtype);
export const full = (shape: Shape, value: number, dtype: DType = 'f32'): Tensor => cur().rt.fill(shape, value, dtype);
/** Uniform in [0, 1) from a seeded generator (values made on the CPU, so they match across backends). */
export function rand(shape: Shape, seed = 0): Tensor {
  const g = new Rng(seed);
  return tensor(Float32Array.from({ length: size(shape) }, () => g.uniform()), shape);
}
/** Standard normal from a seeded generator. */
export function randn(shape: Shape, seed = 0): Tensor {
  const g = new Rng(seed);
  return tensor(Float32Array.from({ length: size(shape) }, () => g.normal()), shape);
}

// ---- ops ----
function op<K extends OpName>(name: K, inputs: readonly Tensor[], attrs: OpAttrs[K]): Tensor[] {
  return run(cur().be, name, inputs, attrs);
}
/** Runs an op and returns its pullback (see backend.ts `vjp`). */
export function vjp<K extends OpName>(name: K, inputs: readonly Tensor[], attrs: OpAttrs[K]): Vjp<Tensor> {
  return vjpOn(cur().be, name, inputs, attrs);
}

const un = (fn: UnaryFn) => (x: Tensor): Tensor => op('unary', [x], { fn })[0]!;
export const neg = un('neg'), exp = un('exp'), log = un('log'), sqrt = un('sqrt'), rsqrt = un('rsqrt');
export const tanh = un('tanh'), sigmoid = un('sigmoid'), relu = un('relu'), gelu = un('gelu'), abs = un('abs');

type Operand = Tensor | number;
const lift = (a: Operand): Tensor => (typeof a === 'number' ? cur().rt.fill([], a) : a);
const bin = (fn: OpAttrs['binary']['fn']) => (a: Operand, b: Operand): Tensor => {
  const ta = lift(a), tb = lift(b);
  const out = op('binary', [ta, tb], { fn })[0]!;
  if (ta !== a) ta.dispose();
  if (tb !== b) tb.dispose();
  return out;
};
export const add = bin('add'), sub = bin('sub'), mul = bin('mul'), div = bin('div'), pow = bin('pow');
export const maximum = bin('max'), minimum = bin('min');
export const lt = bin('lt'), le = bin('le'), gt = bin('gt'), ge = bin('ge'), eq = bin('eq'), ne = bin('ne');
export const where = (cond: Tensor, a: Tensor, b: Tensor): Tensor => op('where', [cond, a, b], {})[0]!;
export const broadcastTo = (x: Tensor, shape: Shape): Tensor => op('broadcastTo', [x], { shape })[0]!;
export const cast = (x: Tensor, dtype: DType): Tensor => op('cast', [x], { dtype })[0]!;

export const sum = (x: Tensor, axes?: number | number[]): Tensor => op('sum', [x], { axes: axes === undefined ? undefined : [axes].flat() })[0]!;
export function mean(x: Tensor, axes?: number | number[]): Tensor {
  const ax = normAxes('mean', axes, x.rank);
  const n = ax.reduce((s, a) => s * x.shape[a]!, 1);
  return op('sum', [x], { axes: ax, scale: 1 / n })[0]!;
}
/** Max over axes and its argmax (flat index into the reduced axes; ties: the first). */
export function max(x: Tensor, axes?: number | number[]): { values: Tensor; indices: Tensor } {
  const [values, indices] = op('max', [x], { axes: axes === undefined ? undefined : [axes].flat() });
  return { values: values!, indices: indices! };
}
export const logsumexp = (x: Tensor, axes?: number | number[]): Tensor => op('logsumexp', [x], { axes: axes === undefined ? undefined : [axes].flat() })[0]!;

export interface MatmulOptions extends Omit<OpAttrs['matmul'], never> { bias?: Tensor }
/** a @ b, optional transposes, + bias, then activation, in one kernel. */
export function matmul(a: Tensor, b: Tensor, { bias, ...attrs }: MatmulOptions = {}): Tensor {
  const outs = op('matmul', bias ? [a, b, bias] : [a, b], attrs);
  for (const t of outs.slice(1)) t.dispose();
  return outs[0]!;
}
export const softmax = (x: Tensor): Tensor => op('softmax', [x], {})[0]!;
export const logSoftmax = (x: Tensor): Tensor => op('logSoftmax', [x], {})[0]!;
/** Per-row loss of softmax cross-entropy with integer labels. */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  const [loss, lse] = op('softmaxCrossEntropy', [logits, labels], {});
  lse!.dispose();
  return loss!;
}
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps?: number): Tensor {
  const [y, m, r] = op('layerNorm', [x, gamma, beta], { eps });
  m!.dispose(); r!.dispose();
  return y!;
}
export const conv2d = (x: Tensor, w: Tensor, opts: { stride?: Pair; padding?: Pair } = {}): Tensor => op('conv2d', [x, w], opts)[0]!;
export function maxPool2d(x: Tensor, opts: { kernel: Pair; stride?: Pair; padding?: Pair }): Tensor {
  const [y, arg] = op('maxPool2d', [x], opts);
  arg!.dispose();
  return y!;
}
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: { causal?: boolean; scale?: number } = {}): Tensor {
  const [o, lse] = op('attention', [q, k, v], opts);
  lse!.dispose();
  return o!;
}
export const embedding = (table: Tensor, indices: Tensor): Tensor => op('gather', [table, indices], {})[0]!;
export const permute = (x: Tensor, perm: readonly number[]): Tensor => op('permute', [x], { perm })[0]!;
/** Swaps the last two axes. */
export function transpose(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 1], perm[x.rank - 2]] = [perm[x.rank - 2]!, perm[x.rank - 1]!];
  return permute(x, perm);
}
export const slice = (x: Tensor, begin: readonly number[], sizes: readonly number[]): Tensor => op('slice', [x], { begin, size: sizes })[0]!;
export const concat = (xs: readonly Tensor[], axis = 0): Tensor => op('concat', xs, { axis })[0]!;
