// SPDX-License-Identifier: MIT
// Parameter initialisers: each draws its values on the host from a seeded generator (xoshiro128**, the one of
// runtime-gpu/rng.ts) and uploads them once to the current backend, so the same seed gives the same values on
// every backend (up to the backend's rounding to the dtype).
//
// Fans. A weight's fan-in is the number of inputs that feed one output, its fan-out the number of outputs one
// input feeds. With the layouts of this module's layers:
//   rank 2, a linear weight [in, out]:                 fanIn = in,               fanOut = out;
//   rank 3+, a convolution weight [out, in, ...kernel]: fanIn = in · prod(kernel), fanOut = out · prod(kernel);
//   rank 0 or 1:                                       fanIn = fanOut = the number of elements.
// Note the order: a linear weight is stored [in, out] (x @ w), unlike PyTorch's [out, in]. Pass fanIn/fanOut
// explicitly for any other layout.
import { Rng } from '../../runtime-gpu/rng.js';
import { OpError, checkShape, size } from '../../runtime-gpu/shape.js';
import type { Tensor } from '../tensor/engine.js';
import { type Shape, tensor } from '../tensor/ops.js';

/** Makes a tensor of `shape` from a seed. Every initialiser here has this shape (extra options come third). */
export type Initializer = (shape: Shape, seed: number) => Tensor;

export interface FanOptions {
  /** Overrides the fan-in computed from the shape (see the module comment for the layouts). */
  fanIn?: number;
  /** Overrides the fan-out computed from the shape. */
  fanOut?: number;
  /**
   * The gain of the nonlinearity that follows: √2 for ReLU (the default of the Kaiming initialisers),
   * 1 for linear, tanh ≈ 5/3 (the default of the Xavier initialisers is 1).
   */
  gain?: number;
}

/** Fan-in and fan-out of a weight of `shape` (see the module comment for the layouts). */
export function fans(shape: Shape): { fanIn: number; fanOut: number } {
  checkShape('fans', shape);
  if (shape.length < 2) { const n = Math.max(1, size(shape)); return { fanIn: n, fanOut: n }; }
  if (shape.length === 2) return { fanIn: shape[0]!, fanOut: shape[1]! };
  const receptive = size(shape.slice(2));
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

function fansOf(op: string, shape: Shape, o: FanOptions): { fanIn: number; fanOut: number } {
  const f = fans(shape);
  const fanIn = o.fanIn ?? f.fanIn, fanOut = o.fanOut ?? f.fanOut;
  for (const [name, v] of [['fanIn', fanIn], ['fanOut', fanOut]] as const) {
    if (!(Number.isFinite(v) && v > 0)) throw new OpError(op, `${name} must be a positive number, got ${v} (shape [${shape.join(', ')}])`);
  }
  return { fanIn, fanOut };
}

function checkSeed(op: string, seed: unknown): number {
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new OpError(op, `seed must be a number, got ${String(seed)}`);
  return seed;
}

/** N(mean, std²) values drawn on the host. */
function gaussian(op: string, shape: Shape, seed: number, mean: number, std: number): Tensor {
  checkShape(op, shape);
  const g = new Rng(checkSeed(op, seed));
  return tensor(Float64Array.from({ length: size(shape) }, () => mean + std * g.normal()), shape);
}

/** U[-bound, bound) values drawn on the host. */
function uniformIn(op: string, shape: Shape, seed: number, lo: number, hi: number): Tensor {
  checkShape(op, shape);
  const g = new Rng(checkSeed(op, seed));
  return tensor(Float64Array.from({ length: size(shape) }, () => g.range(lo, hi)), shape);
}

/**
 * He (Kaiming) normal: N(0, std²) with std = gain / √fanIn, which keeps the variance of activations constant
 * through ReLU layers (He et al., 2015). gain defaults to √2.
 * @example const w = kaimingNormal([784, 256], 1);
 */
export function kaimingNormal(shape: Shape, seed: number, opts: FanOptions = {}): Tensor {
  const { fanIn } = fansOf('kaimingNormal', shape, opts);
  return gaussian('kaimingNormal', shape, seed, 0, (opts.gain ?? Math.SQRT2) / Math.sqrt(fanIn));
}

/**
 * He (Kaiming) uniform: U[-b, b) with b = gain · √(3 / fanIn), the same variance as kaimingNormal.
 * @example const w = kaimingUniform([32, 16, 3, 3], 2);
 */
export function kaimingUniform(shape: Shape, seed: number, opts: FanOptions = {}): Tensor {
  const { fanIn } = fansOf('kaimingUniform', shape, opts);
  const b = (opts.gain ?? Math.SQRT2) * Math.sqrt(3 / fanIn);
  return uniformIn('kaimingUniform', shape, seed, -b, b);
}

/**
 * Glorot (Xavier) normal: N(0, std²) with std = gain · √(2 / (fanIn + fanOut)) (Glorot & Bengio, 2010).
 * gain defaults to 1.
 * @example const w = xavierNormal([64, 64], 3);
 */
export function xavierNormal(shape: Shape, seed: number, opts: FanOptions = {}): Tensor {
  const { fanIn, fanOut } = fansOf('xavierNormal', shape, opts);
  return gaussian('xavierNormal', shape, seed, 0, (opts.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut)));
}

/**
 * Glorot (Xavier) uniform: U[-b, b) with b = gain · √(6 / (fanIn + fanOut)).
 * @example const w = xavierUniform([64, 64], 4);
 */
export function xavierUniform(shape: Shape, seed: number, opts: FanOptions = {}): Tensor {
  const { fanIn, fanOut } = fansOf('xavierUniform', shape, opts);
  const b = (opts.gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut));
  return uniformIn('xavierUniform', shape, seed, -b, b);
}

/**
 * N(mean, std²), std defaulting to 1 (embeddings; GPT-style models use std 0.02).
 * @example const table = normal([1000, 64], 5, { std: 0.02 });
 */
export function normal(shape: Shape, seed: number, opts: { std?: number; mean?: number } = {}): Tensor {
  const std = opts.std ?? 1;
  if (!(std >= 0)) throw new OpError('normal', `std must be a non-negative number, got ${std}`);
  return gaussian('normal', shape, seed, opts.mean ?? 0, std);
}

/**
 * U[lo, hi), by default U[0, 1).
 * @example const b = uniform([10], 6, { lo: -0.1, hi: 0.1 });
 */
export function uniform(shape: Shape, seed: number, opts: { lo?: number; hi?: number } = {}): Tensor {
  const lo = opts.lo ?? 0, hi = opts.hi ?? 1;
  if (!(lo <= hi)) throw new OpError('uniform', `lo ${lo} must not be above hi ${hi}`);
  return uniformIn('uniform', shape, seed, lo, hi);
}

/** Zeros (biases, LayerNorm's beta); the seed is accepted for the Initializer shape and not used. @example const b = zeros([10]); */
export function zeros(shape: Shape, _seed = 0): Tensor {
  checkShape('zeros', shape);
  return tensor(new Float64Array(size(shape)), shape);
}

/** Ones (LayerNorm's gamma); the seed is not used. @example const g = ones([64]); */
export function ones(shape: Shape, _seed = 0): Tensor {
  checkShape('ones', shape);
  return tensor(new Float64Array(size(shape)).fill(1), shape);
}

/**
 * The k-th seed derived from `seed`: a layer with several tensors, a model with several layers, or dropout
 * at step k gets independent streams from one number (MurmurHash3's 32-bit finaliser over seed, then over seed and k).
 * @example const [s1, s2] = [split(seed, 0), split(seed, 1)];
 */
export function split(seed: number, k: number): number {
  const fmix = (h: number): number => {
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    return (h ^ (h >>> 16)) >>> 0;
  };
  const h = fmix(((seed >>> 0) ^ fmix(Math.floor(seed / 2 ** 32) >>> 0)) >>> 0);
  return fmix((h + Math.imul(k + 1, 0x9e3779b9)) >>> 0);
}
