// SPDX-License-Identifier: MIT
// Losses as `/** @differentiable */` compositions of library ops (differentiated by generated code: this file
// goes through the transformer at build time). Each returns a scalar, reduced over the batch as asked:
//
//   reduction 'mean' (the default): L = (1/n) Σ_i ℓ_i, so each ∂L/∂ℓ_i = 1/n and the gradient does not grow
//                                    with the batch: a learning rate carries over between batch sizes;
//   reduction 'sum':                L = Σ_i ℓ_i, so each ∂L/∂ℓ_i = 1: the value and every gradient are n times
//                                    those of 'mean'.
//
// n counts elements for the elementwise losses (mse, l1, huber, binaryCrossEntropyWithLogits) and rows
// (examples) for softmaxCrossEntropy, as in PyTorch.
import { OpError } from '../../runtime-gpu/shape.js';
import type { Tensor } from '../tensor/engine.js';
import {
  abs, add, concat, div, logSoftmax, logsumexp, maximum, mean, minimum, mul, ne, neg, reshape, softmaxCrossEntropy as crossEntropyRows,
  square, sub, sum, where, zerosLike,
} from '../tensor/ops.js';

export type Reduction = 'mean' | 'sum';

export interface LossOptions {
  /** 'mean' (default) or 'sum'; see the module comment for the gradient scale of each. */
  reduction?: Reduction;
}

/**
 * The mean or the sum of the per-example losses. With `kept` (1 for an example that counts, 0 for one left out,
 * `per` already multiplied by it) the mean is over the examples kept, and 0 when there are none.
 * @differentiable
 */
function reduce(per: Tensor, reduction: Reduction | undefined, op: string, kept?: Tensor): Tensor {
  if (reduction === 'sum') return sum(per);
  if (reduction !== undefined && reduction !== 'mean') throw new OpError(op, `reduction must be 'mean' or 'sum', got ${JSON.stringify(reduction)}`);
  return kept ? div(sum(per), maximum(sum(kept), 1)) : mean(per);
}

function sameShape(op: string, a: Tensor, b: Tensor, names: [string, string]): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new OpError(op, `${names[0]} [${a.shape.join(', ')}] and ${names[1]} [${b.shape.join(', ')}] must have the same shape (reshape one; broadcasting here is usually a bug)`);
  }
}

export interface CrossEntropyOptions extends LossOptions {
  /**
   * ε in [0, 1]: the target is (1-ε)·onehot(label) + ε/C, so the loss of a row is
   * (1-ε)·(-log p_label) + ε·(1/C)Σ_c(-log p_c). Default 0.
   */
  labelSmoothing?: number;
  /**
   * Rows whose label is this value are left out (PyTorch's ignore_index; e.g. -100 for padding, or for the
   * positions of a sequence that are not trained): they add nothing to the loss or the gradient, and 'mean'
   * divides by the number of rows kept (a batch with none kept has loss 0). Default: every row counts.
   */
  ignoreIndex?: number;
}

/**
 * Cross-entropy of softmax(logits) against integer class labels: logits [..., C], labels i32 [...]; every
 * position is one example (n = the number of rows). Without smoothing this is the fused softmaxCrossEntropy
 * op (gradient softmax - onehot per row, divided by n for 'mean'); with smoothing it adds the mean of -logSoftmax.
 * @example const loss = losses.softmaxCrossEntropy(logits, labels, { labelSmoothing: 0.1 });
 * @differentiable
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'losses.softmaxCrossEntropy';
  const eps = opts.labelSmoothing ?? 0;
  if (typeof eps !== 'number' || !(eps >= 0 && eps <= 1)) throw new OpError(op, `labelSmoothing must be in [0, 1], got ${String(eps)}`);
  if (logits.rank < 1) throw new OpError(op, `logits must be [..., C], got a scalar`);
  const classes = logits.shape[logits.rank - 1]!;
  if (labels.rank !== logits.rank - 1 || labels.shape.some((d, i) => d !== logits.shape[i])) {
    throw new OpError(op, `labels must have the shape of logits without its class axis: logits [${logits.shape.join(', ')}], labels [${labels.shape.join(', ')}]`);
  }
  const ignore = opts.ignoreIndex;
  if (ignore !== undefined && !Number.isInteger(ignore)) throw new OpError(op, `ignoreIndex must be an integer, got ${String(ignore)}`);
  const rows = reshape(logits, [-1, classes]);
  if (ignore === undefined) return reduce(rowLosses(rows, reshape(labels, [-1]), eps), opts.reduction, op);
  // Left-out rows get label 0 (any class in range) and weight 0.
  const all = reshape(labels, [-1]);
  const keep = ne(all, ignore);
  return reduce(mul(rowLosses(rows, where(keep, all, 0), eps), keep), opts.reduction, op, keep);
}

/** Each row's cross-entropy against its label, with label smoothing eps. @differentiable */
function rowLosses(rows: Tensor, targets: Tensor, eps: number): Tensor {
  const nll = crossEntropyRows(rows, targets);
  if (eps === 0) return nll;
  const uniform = neg(mean(logSoftmax(rows), -1));
  return add(mul(nll, 1 - eps), mul(uniform, eps));
}

/** log(1 + e^x) as logsumexp over {x, 0}: no overflow for large x, and the exact gradient sigmoid(x), also at 0. @differentiable */
function softplus(x: Tensor): Tensor {
  const column = reshape(x, [...x.shape, 1]);
  const pair = concat([column, zerosLike(column)], -1);
  return logsumexp(pair, -1);
}

/**
 * Binary cross-entropy of sigmoid(logits) against targets in [0, 1] (same shape), in the stable form
 * ℓ = softplus(x) - x·t = -[t·log σ(x) + (1-t)·log(1-σ(x))]: finite for any logit. ∂ℓ/∂x = σ(x) - t
 * (divided by the number of elements for 'mean').
 * @example const loss = losses.binaryCrossEntropyWithLogits(logits, targets);
 * @differentiable
 */
export function binaryCrossEntropyWithLogits(logits: Tensor, targets: Tensor, opts: LossOptions = {}): Tensor {
  const op = 'losses.binaryCrossEntropyWithLogits';
  sameShape(op, logits, targets, ['logits', 'targets']);
  return reduce(sub(softplus(logits), mul(logits, targets)), opts.reduction, op);
}

/**
 * Mean squared error: ℓ = (pred - target)², ∂ℓ/∂pred = 2(pred - target) (divided by the number of elements
 * for 'mean').
 * @example const loss = losses.mse(pred, y);
 * @differentiable
 */
export function mse(pred: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  sameShape('losses.mse', pred, target, ['pred', 'target']);
  return reduce(square(sub(pred, target)), opts.reduction, 'losses.mse');
}

/**
 * Mean absolute error: ℓ = |pred - target|, ∂ℓ/∂pred = sign(pred - target) (0 where they are equal; divided
 * by the number of elements for 'mean').
 * @example const loss = losses.l1(pred, y, { reduction: 'sum' });
 * @differentiable
 */
export function l1(pred: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  sameShape('losses.l1', pred, target, ['pred', 'target']);
  return reduce(abs(sub(pred, target)), opts.reduction, 'losses.l1');
}

export interface HuberOptions extends LossOptions {
  /** Where the loss turns from quadratic to linear (default 1, > 0). */
  delta?: number;
}

/**
 * Huber loss: with d = pred - target, ℓ = d²/2 where |d| ≤ δ and δ(|d| - δ/2) beyond, so ∂ℓ/∂pred is d
 * clipped to [-δ, δ] (divided by the number of elements for 'mean'). Computed as q²/2 + δ(|d| - q) with
 * q = min(|d|, δ).
 * @example const loss = losses.huber(pred, y, { delta: 0.5 });
 * @differentiable
 */
export function huber(pred: Tensor, target: Tensor, opts: HuberOptions = {}): Tensor {
  const op = 'losses.huber';
  const delta = opts.delta ?? 1;
  if (typeof delta !== 'number' || !(delta > 0 && Number.isFinite(delta))) throw new OpError(op, `delta must be a positive number, got ${String(delta)}`);
  sameShape(op, pred, target, ['pred', 'target']);
  const a = abs(sub(pred, target));
  const q = minimum(a, delta);
  const per = add(mul(square(q), 0.5), mul(sub(a, q), delta));
  return reduce(per, opts.reduction, op);
}
