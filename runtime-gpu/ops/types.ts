// SPDX-License-Identifier: MIT
// The op table's types. An op = name + shape check + reference (the f64 spec) + WebGPU kernel + pullback.
// A backend is a set of kernels for these ops; pullbacks are written once, against any backend, in terms of ops.
import type { DType, Meta, Shape } from '../shape.js';
import type { HostTensor } from '../host.js';
import type { GpuRuntime, Tensor } from '../runtime.js';

export type UnaryFn = 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'tanh' | 'sigmoid' | 'relu' | 'gelu' | 'abs';
export type ArithFn = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'max' | 'min';
export type CompareFn = 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne';
export type BinaryFn = ArithFn | CompareFn;
export type Activation = 'none' | 'relu' | 'gelu';
export type Pair = number | readonly [number, number];

/** Attributes of each op; the keys are the op names. */
export interface OpAttrs {
  unary: { fn: UnaryFn };
  /** dx = dy * f'(x), from x, y = f(x) and dy. */
  unaryBackward: { fn: UnaryFn };
  /** Broadcasting; comparisons give an f32 mask of 0 and 1. */
  binary: { fn: BinaryFn };
  /** where(cond, a, b): a where cond != 0, else b; broadcasting. */
  where: Record<string, never>;
  broadcastTo: { shape: Shape };
  cast: { dtype: DType };
  /** Sum over axes (all when omitted) times `scale` (default 1; mean = sum with scale 1/n). Drops the axes. */
  sum: { axes?: readonly number[]; scale?: number };
  /** Max over axes and the argmax as a flat row-major index into the reduced axes (ties: the first). */
  max: { axes?: readonly number[] };
  logsumexp: { axes?: readonly number[] };
  /** a [..., M, K] (or [..., K, M] with transA) times b [..., K, N] (or [..., N, K] with transB); a batch
   * shape on one side only is broadcast. Optional bias [N] and activation fused into the store. */
  matmul: { transA?: boolean; transB?: boolean; activation?: Activation };
  softmax: Record<string, never>;
  logSoftmax: Record<string, never>;
  /** logits [N, C] f32, labels [N] i32 -> loss [N], lse [N] (saved). */
  softmaxCrossEntropy: Record<string, never>;
  /** (logits, labels, lse, dloss) -> dlogits = (softmax - onehot) * dloss. */
  softmaxCrossEntropyBackward: Record<string, never>;
  /** x [..., D], gamma [D], beta [D] -> y, mean [...], rstd [...]. */
  layerNorm: { eps?: number };
  /** (x, gamma, mean, rstd, dy) -> dx, dgamma, dbeta. */
  layerNormBackward: Record<string, never>;
  /** x [N, Ci, H, W], w [Co, Ci, KH, KW] -> [N, Co, OH, OW]. */
  conv2d: { stride?: Pair; padding?: Pair };
  /** (dy, w) -> dx, given the input's H and W. */
  conv2dBackwardInput: { stride?: Pair; padding?: Pair; inputHW: readonly [number, number] };
  /** (dy, x) -> dw, given the kernel's KH and KW. */
  conv2dBackwardFilter: { stride?: Pair; padding?: Pair; kernelHW: readonly [number, number] };
  /** x [N, C, H, W] -> y, argmax (i32 index ih * W + iw within the input plane; ties: the first). */
  maxPool2d: { kernel: Pair; stride?: Pair; padding?: Pair };
  /** (argmax, dy) -> dx, given the input's H and W. */
  maxPool2dBackward: { kernel: Pair; stride?: Pair; padding?: Pair; inputHW: readonly [number, number] };
  /** q [..., Sq, D], k [..., Sk, D], v [..., Sk, Dv] -> out [..., Sq, Dv], lse [..., Sq] (saved). */
  attention: { causal?: boolean; scale?: number };
  /** (q, k, v, out, lse, dout) -> dq, dk, dv; recomputes the weights from lse. */
  attentionBackward: { causal?: boolean; scale?: number };
  /** table [V, D], indices i32 [...] -> [..., D]. */
  gather: Record<string, never>;
  /** (indices [...], values [..., D]) -> [rows, D], summing repeated indices in index order (exact, no atomics). */
  scatterAdd: { rows: number };
  permute: { perm: readonly number[] };
  slice: { begin: readonly number[]; size: readonly number[] };
  /** Zero padding: the inverse of slice. */
  pad: { before: readonly number[]; shape: Shape };
  concat: { axis: number };
}

export type OpName = keyof OpAttrs;

/** How pullbacks run ops: on whichever backend the values live. */
export interface Exec<T> {
  readonly backend: string;
  op<K extends OpName>(name: K, inputs: readonly T[], attrs: OpAttrs[K]): T[];
  meta(t: T): Meta;
  reshape(t: T, shape: Shape): T;
  /** A constant tensor. */
  full(shape: Shape, value: number, dtype?: DType): T;
}

export interface PullbackArgs<T, K extends OpName> {
  inputs: readonly T[];
  outputs: readonly T[];
  attrs: OpAttrs[K];
  /** Cotangents of the outputs (null: zero, or an auxiliary output). */
  cot: readonly (T | null)[];
  /** Which inputs need a cotangent. */
  needs: readonly boolean[];
}

/** Returns one cotangent per input (null: zero or not needed). */
export type Pullback<K extends OpName> = <T>(x: Exec<T>, a: PullbackArgs<T, K>) => (T | null)[];

export interface OpRule<K extends OpName> {
  name: K;
  /** Output shapes and dtypes; throws OpError naming the op and the shapes on bad input. */
  infer(inputs: readonly Meta[], attrs: OpAttrs[K]): Meta[];
  /** The spec, in f64. Returns all outputs, auxiliary ones included. */
  reference(inputs: readonly HostTensor[], attrs: OpAttrs[K]): HostTensor[];
  /** The WebGPU kernel(s). `outs` is what infer returned. */
  webgpu(rt: GpuRuntime, inputs: readonly Tensor[], attrs: OpAttrs[K], outs: readonly Meta[]): Tensor[];
  /** What the pullback keeps from the forward pass (documentation, and the contract for a tape). */
  saves: string;
  /** null: not differentiable (integer or auxiliary outputs only; backward kernels are not differentiated twice). */
  pullback: Pullback<K> | null;
}

export type OpTable = { [K in OpName]: OpRule<K> };
export type Family<K extends OpName> = { [P in K]: OpRule<P> };

/** A kernel of one backend: values in, values out; shapes were already checked by the op's infer. */
export type Kernel<T, K extends OpName> = (inputs: readonly T[], attrs: OpAttrs[K], outs: readonly Meta[]) => T[];

/** A backend = a set of kernels for the op table plus how to make, reshape and inspect its values. */
export interface Backend<T> {
  readonly name: string;
  /** Missing kernels fail with an Error naming the op and the backend (a partial backend is allowed). */
  readonly kernels: { readonly [K in OpName]?: Kernel<T, K> };
  meta(t: T): Meta;
  reshape(t: T, shape: Shape): T;
  full(shape: Shape, value: number, dtype: DType): T;
}
