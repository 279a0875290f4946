// SPDX-License-Identifier: MIT
// Layers as data plus functions (the spirit of Flax and Equinox): a layer's parameters are a plain tree of
// Tensors that `initX(...)` makes from a seed, and the layer itself is a `/** @differentiable */` function
// `x(params, input, options)`. Gradients come back as a tree of the same shape; an optimizer, or a hand-written
// `p - lr·g`, makes the next tree. Weight sharing is the user's choice: pass the same parameter object twice
// and its gradient is the sum of both uses.
//
// This file goes through the transformer at build time (package.json's build compiles sdk/nn), so the apply
// functions are differentiated by generated code like a user's own; keep them within what marked functions
// support (no storing tensors into objects, no data()/item()).
//
// Layouts: a linear weight is [in, out] (y = x @ w + b); a convolution weight is [out, in, kh, kw] on NCHW
// inputs; attention inputs are [..., S, D].
import type { Activation, Pair } from '../../runtime-gpu/ops/types.js';
import { Rng } from '../../runtime-gpu/rng.js';
import { OpError } from '../../runtime-gpu/shape.js';
import { type Tensor, upload } from '../tensor/engine.js';
import {
  attention, conv2d as conv2dOp, embedding as embeddingOp, flatten, gelu, layerNorm as layerNormOp, matmul, maxPool2d,
  mul, permute, relu, reshape, sigmoid, softmax, tanh,
} from '../tensor/ops.js';
import { type Initializer, kaimingUniform, normal, ones, split, xavierUniform, zeros } from './init.js';

const positiveInt = (op: string, name: string, v: unknown): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new OpError(op, `${name} must be a positive integer, got ${String(v)}`);
  return v;
};

// ---- Linear ----

/** A linear layer's parameters: w [in, out], and b [out] unless made with `bias: false`. */
export interface LinearParams { w: Tensor; b?: Tensor }

export interface LinearInit {
  /** Whether to make a bias (default true). */
  bias?: boolean;
  /** Seed of the weight (and, split from it, of the bias); default 0. */
  seed?: number;
  /** Default: kaimingUniform (He, gain √2). */
  weightInit?: Initializer;
  /** Default: zeros. */
  biasInit?: Initializer;
}

/**
 * Parameters of a linear layer from `inFeatures` to `outFeatures`.
 * @example const fc = initLinear(784, 128, { seed: 1 }); const h = linear(fc, x, { activation: 'relu' });
 */
export function initLinear(inFeatures: number, outFeatures: number, opts: LinearInit = {}): LinearParams {
  const i = positiveInt('initLinear', 'inFeatures', inFeatures), o = positiveInt('initLinear', 'outFeatures', outFeatures);
  const seed = opts.seed ?? 0;
  const w = (opts.weightInit ?? kaimingUniform)([i, o], split(seed, 0));
  if (opts.bias === false) return { w };
  return { w, b: (opts.biasInit ?? zeros)([o], split(seed, 1)) };
}

export interface LinearOptions {
  /** Applied after the bias in the same matmul kernel (default 'none'). */
  activation?: Activation;
}

/**
 * y = activation(x @ w + b) for x [..., in] -> [..., out], one fused matmul.
 * @example const y = linear(p.fc1, x, { activation: 'gelu' });
 * @differentiable
 */
export function linear(p: LinearParams, x: Tensor, opts: LinearOptions = {}): Tensor {
  return matmul(x, p.w, { bias: p.b, activation: opts.activation });
}

// ---- Conv2d ----

/** A 2-D convolution's parameters: w [out, in, kh, kw], and b [out] unless made with `bias: false`. */
export interface Conv2dParams { w: Tensor; b?: Tensor }

/**
 * Parameters of a convolution from `inChannels` to `outChannels` with a `kernel` (one size or [kh, kw]).
 * Options as initLinear's (the weight's fan-in is in·kh·kw).
 * @example const c1 = initConv2d(1, 8, 3, { seed: 2 });
 */
export function initConv2d(inChannels: number, outChannels: number, kernel: Pair, opts: LinearInit = {}): Conv2dParams {
  const op = 'initConv2d';
  const ci = positiveInt(op, 'inChannels', inChannels), co = positiveInt(op, 'outChannels', outChannels);
  const [kh, kw] = typeof kernel === 'number' ? [kernel, kernel] : kernel;
  const seed = opts.seed ?? 0;
  const w = (opts.weightInit ?? kaimingUniform)([co, ci, positiveInt(op, 'kernel height', kh), positiveInt(op, 'kernel width', kw)], split(seed, 0));
  if (opts.bias === false) return { w };
  return { w, b: (opts.biasInit ?? zeros)([co], split(seed, 1)) };
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  /** Applied after the bias, as linear's (default 'none'). */
  activation?: Activation;
}

/**
 * activation(cross-correlation of x [N, in, H, W] with w, plus the bias per output channel) -> [N, out, OH, OW].
 * @example const y = conv2d(p.c1, img, { padding: 1, activation: 'relu' });
 * @differentiable
 */
export function conv2d(p: Conv2dParams, x: Tensor, opts: Conv2dOptions = {}): Tensor {
  if (opts.activation !== undefined && !['none', 'relu', 'gelu'].includes(opts.activation)) throw new OpError('conv2d', `unknown activation '${String(opts.activation)}' (relu, gelu or none)`);
  const y = conv2dOp(x, p.w, { stride: opts.stride, padding: opts.padding, bias: p.b });
  if (opts.activation === 'relu') return relu(y);
  if (opts.activation === 'gelu') return gelu(y);
  return y;
}

// ---- LayerNorm ----

/** LayerNorm's parameters over the last axis of size D: gamma [D] (scale, ones) and beta [D] (shift, zeros). */
export interface LayerNormParams { gamma: Tensor; beta: Tensor }

/** @example const ln = initLayerNorm(64); */
export function initLayerNorm(dim: number): LayerNormParams {
  const d = positiveInt('initLayerNorm', 'dim', dim);
  return { gamma: ones([d]), beta: zeros([d]) };
}

export interface LayerNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
}

/**
 * (x - mean) / sqrt(var + eps) · gamma + beta over the last axis (biased variance, as PyTorch and Flax).
 * @example const y = layerNorm(p.ln, x);
 * @differentiable
 */
export function layerNorm(p: LayerNormParams, x: Tensor, opts: LayerNormOptions = {}): Tensor {
  return layerNormOp(x, p.gamma, p.beta, opts.eps);
}

// ---- Embedding ----

/** An embedding table [vocab, dim]. */
export interface EmbeddingParams { table: Tensor }

/**
 * A table of `vocab` rows of size `dim`, N(0, 1) by default (pass `init` for another, e.g. std 0.02).
 * @example const emb = initEmbedding(1000, 64, { seed: 3 });
 */
export function initEmbedding(vocab: number, dim: number, opts: { seed?: number; init?: Initializer } = {}): EmbeddingParams {
  const v = positiveInt('initEmbedding', 'vocab', vocab), d = positiveInt('initEmbedding', 'dim', dim);
  return { table: (opts.init ?? normal)([v, d], split(opts.seed ?? 0, 0)) };
}

/**
 * The rows of the table picked by i32 indices [...] -> [..., dim]; repeated indices sum their gradients.
 * For tied input/output embeddings use the table again: `matmul(h, p.table, { transB: true })`.
 * @example const e = embedding(p.emb, tokens);
 * @differentiable
 */
export function embedding(p: EmbeddingParams, indices: Tensor): Tensor {
  return embeddingOp(p.table, indices);
}

// ---- Dropout ----

export interface DropoutOptions {
  /** The probability of zeroing an element, in [0, 1). */
  p: number;
  /** In training, elements are dropped; otherwise dropout is the identity. Required, so that it is a decision. */
  training: boolean;
  /** The mask's seed; required in training (use a new one each step, e.g. split(runSeed, step)). */
  seed?: number;
}

/**
 * The kept elements scaled by 1/(1-p), so that the expected value does not change (inverted dropout);
 * the mask is drawn on the host from the seed, so it is the same on every backend.
 */
function keepScale(op: string, x: Tensor, p: number, seed: number | undefined): Float64Array {
  if (seed === undefined || !Number.isFinite(seed)) throw new OpError(op, `training needs a seed for the mask, got ${String(seed)}; pass a new one each step`);
  const g = new Rng(seed), scale = 1 / (1 - p);
  return Float64Array.from({ length: x.size }, () => (g.uniform() < p ? 0 : scale));
}

function checkRate(op: string, p: unknown): number {
  if (typeof p !== 'number' || !(p >= 0 && p < 1)) throw new OpError(op, `p must be a probability in [0, 1), got ${String(p)}`);
  return p;
}

/**
 * Inverted dropout: in training each element is zeroed with probability p and the rest scaled by 1/(1-p);
 * otherwise (or with p = 0) the values pass through unchanged (a view, no copy).
 * @example const h = dropout(x, { p: 0.1, training: true, seed: step });
 * @differentiable
 */
export function dropout(x: Tensor, opts: DropoutOptions): Tensor {
  const p = checkRate('dropout', opts.p);
  if (typeof opts.training !== 'boolean') throw new OpError('dropout', `training must be true or false, got ${String(opts.training)}`);
  // Not x itself: a caller's memory plan may free x after this call while the result lives on.
  if (!opts.training || p === 0) return reshape(x, x.shape);
  const mask = upload(keepScale('dropout', x, p, opts.seed), x.shape, x.dtype, x.backend);
  return mul(x, mask);
}

// ---- MultiHeadAttention ----

/** Query, key, value and output projections, each [dModel, dModel]. */
export interface MultiHeadAttentionParams { q: LinearParams; k: LinearParams; v: LinearParams; o: LinearParams }

/**
 * The four projections of multi-head attention over `dModel` features (heads are chosen when applying; dModel
 * must divide by them). Weights xavierUniform, biases zeros (as PyTorch's MultiheadAttention).
 * @example const att = initMultiHeadAttention(64, { seed: 4 });
 */
export function initMultiHeadAttention(dModel: number, opts: { bias?: boolean; seed?: number } = {}): MultiHeadAttentionParams {
  const d = positiveInt('initMultiHeadAttention', 'dModel', dModel);
  const seed = opts.seed ?? 0;
  const proj = (k: number) => initLinear(d, d, { bias: opts.bias, seed: split(seed, k), weightInit: xavierUniform });
  return { q: proj(0), k: proj(1), v: proj(2), o: proj(3) };
}

export interface MultiHeadAttentionOptions {
  heads: number;
  /** Query i sees keys j <= i (default false). */
  causal?: boolean;
  /** Keys and values come from here instead of x (cross-attention): [..., Sk, dModel]. */
  context?: Tensor;
}

/** [..., S, H·Dh] -> [..., H, S, Dh]. @differentiable */
function splitHeads(t: Tensor, heads: number): Tensor {
  const r = t.rank;
  const s = t.shape[r - 2]!, d = t.shape[r - 1]!;
  const lead = t.shape.slice(0, r - 2);
  const perm = [...lead.map((_, i) => i), r - 1, r - 2, r];
  return permute(reshape(t, [...lead, s, heads, d / heads]), perm);
}

/** [..., H, S, Dh] -> [..., S, H·Dh]. @differentiable */
function mergeHeads(t: Tensor): Tensor {
  const r = t.rank;
  const h = t.shape[r - 3]!, s = t.shape[r - 2]!, dh = t.shape[r - 1]!;
  const lead = t.shape.slice(0, r - 3);
  const perm = [...lead.map((_, i) => i), r - 2, r - 3, r - 1];
  return reshape(permute(t, perm), [...lead, s, h * dh]);
}

/**
 * Multi-head scaled dot-product attention over x [..., S, dModel]: project to q, k, v, split into `heads`
 * heads of dModel/heads features, attend (scale 1/√(dModel/heads), optionally causal), merge, project out.
 * @example const y = multiHeadAttention(p.att, x, { heads: 4, causal: true });
 * @differentiable
 */
export function multiHeadAttention(p: MultiHeadAttentionParams, x: Tensor, opts: MultiHeadAttentionOptions): Tensor {
  const op = 'multiHeadAttention';
  const heads = positiveInt(op, 'heads', opts.heads);
  const dModel = x.shape[x.rank - 1]!;
  if (x.rank < 2 || dModel % heads !== 0) throw new OpError(op, `x must be [..., S, dModel] with dModel divisible by heads (${heads}), got [${x.shape.join(', ')}]`);
  const kvIn = opts.context ?? x;
  const q = splitHeads(linear(p.q, x), heads);
  const k = splitHeads(linear(p.k, kvIn), heads);
  const v = splitHeads(linear(p.v, kvIn), heads);
  const o = attention(q, k, v, { causal: opts.causal ?? false });
  return linear(p.o, mergeHeads(o));
}

// ---- Sequential ----

/** A layer of a Sequential: a tagged union on `kind`, with its parameters (if any) and its options. */
export type Layer =
  | { kind: 'linear'; params: LinearParams; activation?: Activation }
  | { kind: 'conv2d'; params: Conv2dParams; stride?: Pair; padding?: Pair }
  | { kind: 'maxPool2d'; kernel: Pair; stride?: Pair; padding?: Pair }
  | { kind: 'layerNorm'; params: LayerNormParams; eps?: number }
  | { kind: 'embedding'; params: EmbeddingParams }
  | { kind: 'multiHeadAttention'; params: MultiHeadAttentionParams; heads: number; causal?: boolean }
  | { kind: 'dropout'; p: number }
  // flatten merges the axes from startAxis (default 1, keeping the batch axis): [N, C, H, W] -> [N, C·H·W].
  | { kind: 'flatten'; startAxis?: number }
  | { kind: 'relu' } | { kind: 'gelu' } | { kind: 'tanh' } | { kind: 'sigmoid' }
  // softmax is over the last axis; before a loss, leave it out and use the losses' fused forms.
  | { kind: 'softmax' };

export type LayerKind = Layer['kind'];

export interface SequentialOptions {
  /** Whether dropout layers drop (required when the model has one). */
  training?: boolean;
  /** Dropout masks' seed: layer i uses split(seed, i); pass a new one each step. */
  seed?: number;
}

/**
 * The layers applied in order: a list of `{ kind, params, ...options }` is the model, and its gradient is a
 * list of the same shape (kinds and options kept, Tensors replaced by their gradients).
 * @example
 * const model: Layer[] = [
 *   { kind: 'linear', params: initLinear(2, 16, { seed: 1 }), activation: 'relu' },
 *   { kind: 'dropout', p: 0.1 },
 *   { kind: 'linear', params: initLinear(16, 3, { seed: 2 }) },
 * ];
 * const logits = sequential(model, x, { training: true, seed: step });
 * @differentiable
 */
export function sequential(layers: readonly Layer[], x: Tensor, opts: SequentialOptions = {}): Tensor {
  let h = x;
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i]!;
    switch (l.kind) {
      case 'linear': h = linear(l.params, h, { activation: l.activation }); break;
      case 'conv2d': h = conv2d(l.params, h, { stride: l.stride, padding: l.padding }); break;
      case 'maxPool2d': h = maxPool2d(h, { kernel: l.kernel, stride: l.stride, padding: l.padding }); break;
      case 'layerNorm': h = layerNorm(l.params, h, { eps: l.eps }); break;
      case 'embedding': h = embedding(l.params, h); break;
      case 'multiHeadAttention': h = multiHeadAttention(l.params, h, { heads: l.heads, causal: l.causal }); break;
      case 'dropout': {
        if (opts.training === undefined) throw new OpError('sequential', `layer ${i} is dropout: pass { training: true | false } (and a seed when training)`);
        h = dropout(h, { p: l.p, training: opts.training, seed: opts.seed === undefined ? undefined : split(opts.seed, i) });
        break;
      }
      case 'flatten': h = flatten(h, l.startAxis ?? 1); break;
      case 'relu': h = relu(h); break;
      case 'gelu': h = gelu(h); break;
      case 'tanh': h = tanh(h); break;
      case 'sigmoid': h = sigmoid(h); break;
      case 'softmax': h = softmax(h); break;
      default: {
        const unknown: never = l;
        throw new OpError('sequential', `layer ${i} has an unknown kind ${JSON.stringify((unknown as { kind: unknown }).kind)}`);
      }
    }
  }
  return h;
}
