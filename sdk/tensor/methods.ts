// SPDX-License-Identifier: MIT
// Tensor methods: `x.matmul(w).add(b).relu()` is `relu(add(matmul(x, w), b))`. Each method is the function of
// ops.ts with the tensor as its first argument, so both record the same ops. ops.ts imports this module, so that
// importing either gives both.
import type { Activation, Pair } from '../../runtime-gpu/ops/types.js';
import type { DType, Shape } from '../../runtime-gpu/shape.js';
import { Tensor } from './engine.js';
import * as O from './ops.js';

type Operand = Tensor | number;
type Axes = number | readonly number[];

/** The methods every Tensor has (see ops.ts for each function). */
export interface TensorMethods {
  /** this + b (broadcasting). */ add(b: Operand): Tensor;
  /** this - b. */ sub(b: Operand): Tensor;
  /** this * b. */ mul(b: Operand): Tensor;
  /** this / b. */ div(b: Operand): Tensor;
  /** this ** b. */ pow(b: Operand): Tensor;
  /** Elementwise max with b. */ maximum(b: Operand): Tensor;
  /** Elementwise min with b. */ minimum(b: Operand): Tensor;
  /** this < b as an f32 mask. */ lt(b: Operand): Tensor;
  /** this <= b as an f32 mask. */ le(b: Operand): Tensor;
  /** this > b as an f32 mask. */ gt(b: Operand): Tensor;
  /** this >= b as an f32 mask. */ ge(b: Operand): Tensor;
  /** this == b as an f32 mask. */ eq(b: Operand): Tensor;
  /** this != b as an f32 mask. */ ne(b: Operand): Tensor;
  /** -this. */ neg(): Tensor;
  /** e^this. */ exp(): Tensor;
  /** Natural logarithm. */ log(): Tensor;
  /** Square root. */ sqrt(): Tensor;
  /** 1 / sqrt(this). */ rsqrt(): Tensor;
  /** Hyperbolic tangent. */ tanh(): Tensor;
  /** Logistic sigmoid. */ sigmoid(): Tensor;
  /** max(this, 0). */ relu(): Tensor;
  /** GELU (tanh approximation). */ gelu(): Tensor;
  /** |this|. */ abs(): Tensor;
  /** this * this. */ square(): Tensor;
  /** Limited to [lo, hi]; the gradient flows only strictly inside. */ clip(lo: Operand, hi: Operand): Tensor;
  /** this @ b (see matmul). */ matmul(b: Tensor, opts?: { transA?: boolean; transB?: boolean; bias?: Tensor; activation?: Activation }): Tensor;
  /** Sum over axes (all when omitted). */ sum(axes?: Axes, keepDims?: boolean): Tensor;
  /** Mean over axes (all when omitted). */ mean(axes?: Axes, keepDims?: boolean): Tensor;
  /** Max over axes (all when omitted). */ max(axes?: Axes, keepDims?: boolean): Tensor;
  /** i32 index of the first maximum along axis (flat over all axes when omitted). */ argmax(axis?: number): Tensor;
  /** log(sum(exp(this))) over axes. */ logsumexp(axes?: Axes, keepDims?: boolean): Tensor;
  /** Softmax over the last axis. */ softmax(): Tensor;
  /** Log-softmax over the last axis. */ logSoftmax(): Tensor;
  /** The same values in a new shape (one dimension may be -1). */ reshape(shape: Shape): Tensor;
  /** Merges the axes from startAxis on. */ flatten(startAxis?: number): Tensor;
  /** Swaps the last two axes. */ transpose(): Tensor;
  /** Axes reordered: output axis k is axis perm[k]. */ permute(perm: readonly number[]): Tensor;
  /** The block at begin with sizes (-1: to the end). */ slice(begin: readonly number[], sizes: readonly number[]): Tensor;
  /** Converted to dtype. */ cast(dtype: DType): Tensor;
  /** Broadcast to shape. */ broadcastTo(shape: Shape): Tensor;
  /** Max pooling (see maxPool2d). */ maxPool2d(opts: { kernel: Pair; stride?: Pair; padding?: Pair }): Tensor;
}

declare module './engine.js' {
  interface Tensor extends TensorMethods {
  /** The last two axes swapped: a new tensor on each access, which the caller owns. */
    readonly T: Tensor;
  }
}

const methods: TensorMethods & ThisType<Tensor> = {
  add(b) { return O.add(this, b); },
  sub(b) { return O.sub(this, b); },
  mul(b) { return O.mul(this, b); },
  div(b) { return O.div(this, b); },
  pow(b) { return O.pow(this, b); },
  maximum(b) { return O.maximum(this, b); },
  minimum(b) { return O.minimum(this, b); },
  lt(b) { return O.lt(this, b); },
  le(b) { return O.le(this, b); },
  gt(b) { return O.gt(this, b); },
  ge(b) { return O.ge(this, b); },
  eq(b) { return O.eq(this, b); },
  ne(b) { return O.ne(this, b); },
  neg() { return O.neg(this); },
  exp() { return O.exp(this); },
  log() { return O.log(this); },
  sqrt() { return O.sqrt(this); },
  rsqrt() { return O.rsqrt(this); },
  tanh() { return O.tanh(this); },
  sigmoid() { return O.sigmoid(this); },
  relu() { return O.relu(this); },
  gelu() { return O.gelu(this); },
  abs() { return O.abs(this); },
  square() { return O.square(this); },
  clip(lo, hi) { return O.clip(this, lo, hi); },
  matmul(b, opts) { return O.matmul(this, b, opts); },
  sum(axes, keep) { return O.sum(this, axes, keep); },
  mean(axes, keep) { return O.mean(this, axes, keep); },
  max(axes, keep) { return O.max(this, axes, keep); },
  argmax(axis) { return O.argmax(this, axis); },
  logsumexp(axes, keep) { return O.logsumexp(this, axes, keep); },
  softmax() { return O.softmax(this); },
  logSoftmax() { return O.logSoftmax(this); },
  reshape(shape) { return O.reshape(this, shape); },
  flatten(startAxis) { return O.flatten(this, startAxis); },
  transpose() { return O.transpose(this); },
  permute(perm) { return O.permute(this, perm); },
  slice(begin, sizes) { return O.slice(this, begin, sizes); },
  cast(dtype) { return O.cast(this, dtype); },
  broadcastTo(shape) { return O.broadcastTo(this, shape); },
  maxPool2d(opts) { return O.maxPool2d(this, opts); },
};

// Non-enumerable, like methods declared in the class.
for (const [name, value] of Object.entries(methods)) {
  Object.defineProperty(Tensor.prototype, name, { value, writable: true, configurable: true });
}
Object.defineProperty(Tensor.prototype, 'T', { get(this: Tensor) { return O.transpose(this); }, configurable: true });
