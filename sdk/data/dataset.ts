// SPDX-License-Identifier: MIT
// In-memory datasets and batching. Samples are rows of one flat array (row-major, one sample after
// another), which is what a device upload wants; a batch is a fresh copy of the rows it holds, as
// plain { dtype, shape, data } records that a Tensor can be made from.
import { permutation, SeededRandom } from './random.js';

/** Labels: class indices (Int32Array) or regression targets (Float32Array). */
export type Labels = Int32Array | Float32Array;

/** A host array with its shape and element type; the form tensors are made from. */
export interface HostArray<D extends 'f32' | 'i32', A extends Float32Array | Int32Array> {
  dtype: D;
  shape: number[];
  data: A;
}

/** The labels' record type for a label array type. */
export type LabelArray<L extends Labels> = L extends Int32Array ? HostArray<'i32', Int32Array> : HostArray<'f32', Float32Array>;

/** One batch: inputs [b, ...sampleShape], labels [b, ...labelShape], the dataset rows it holds, its number in the epoch. */
export interface Batch<L extends Labels = Labels> {
  inputs: HostArray<'f32', Float32Array>;
  labels: LabelArray<L>;
  indices: Int32Array;
  index: number;
}

/** What a {@link Dataset} is made of. */
export interface DatasetInit<L extends Labels> {
  /** All samples back to back: length × prod(sampleShape) values. */
  inputs: Float32Array;
  /** The shape of one sample, e.g. [28, 28, 1] or [784]. */
  sampleShape: readonly number[];
  /** All labels back to back: length × prod(labelShape) values. */
  labels: L;
  /** The shape of one sample's label; [] (one value per sample) by default. */
  labelShape?: readonly number[];
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

function checkShape(what: string, s: readonly number[]): void {
  if (!Array.isArray(s) || !s.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new RangeError(`Dataset: ${what} must be an array of positive integers, got ${JSON.stringify(s)}`);
  }
}

/**
 * Samples and labels held in memory. The arrays are not copied; batches are.
 * @example
 * const ds = new Dataset({ inputs: images, sampleShape: [784], labels: digits }); // images: Float32Array(n * 784), digits: Int32Array(n)
 * ds.length;              // n
 * ds.gather([0, 5]).inputs.shape; // [2, 784]
 */
export class Dataset<L extends Labels = Labels> {
  readonly inputs: Float32Array;
  readonly labels: L;
  readonly sampleShape: readonly number[];
  readonly labelShape: readonly number[];
  /** Values per sample and per label. */
  readonly sampleSize: number;
  readonly labelSize: number;
  /** Number of samples. */
  readonly length: number;

  constructor(init: DatasetInit<L>) {
    const { inputs, labels } = init;
    const sampleShape = [...init.sampleShape], labelShape = [...(init.labelShape ?? [])];
    if (!(inputs instanceof Float32Array)) throw new TypeError(`Dataset: inputs must be a Float32Array, got ${describe(inputs)}`);
    if (!(labels instanceof Int32Array || labels instanceof Float32Array)) throw new TypeError(`Dataset: labels must be an Int32Array or a Float32Array, got ${describe(labels)}`);
    checkShape('sampleShape', sampleShape);
    checkShape('labelShape', labelShape);
    this.sampleSize = prod(sampleShape);
    this.labelSize = prod(labelShape);
    if (inputs.length % this.sampleSize !== 0) {
      throw new RangeError(`Dataset: inputs has ${inputs.length} values, not a multiple of the sample shape ${fmt(sampleShape)} (${this.sampleSize} values)`);
    }
    this.length = inputs.length / this.sampleSize;
    if (labels.length !== this.length * this.labelSize) {
      throw new RangeError(`Dataset: ${this.length} samples of shape ${fmt(sampleShape)} need ${this.length * this.labelSize} label values of shape ${fmt(labelShape)}, got ${labels.length}`);
    }
    this.inputs = inputs; this.labels = labels;
    this.sampleShape = Object.freeze(sampleShape); this.labelShape = Object.freeze(labelShape);
  }

  /**
   * Copies the given samples, in the given order, into one batch.
   * @example
   * const b = ds.gather([3, 1, 4]); // b.inputs.shape = [3, ...ds.sampleShape], b.labels.data = labels 3, 1, 4
   */
  gather(indices: ArrayLike<number>, index = 0): Batch<L> {
    const b = indices.length, ss = this.sampleSize, ls = this.labelSize;
    const x = new Float32Array(b * ss);
    const y = new (this.labels.constructor as new (n: number) => L)(b * ls);
    const idx = new Int32Array(b);
    for (let k = 0; k < b; k++) {
      const i = indices[k]!;
      if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`Dataset.gather: index ${i} is outside the dataset's ${this.length} samples`);
      idx[k] = i;
      x.set(this.inputs.subarray(i * ss, (i + 1) * ss), k * ss);
      y.set(this.labels.subarray(i * ls, (i + 1) * ls), k * ls);
    }
    const labels = { dtype: y instanceof Int32Array ? 'i32' : 'f32', shape: [b, ...this.labelShape], data: y } as LabelArray<L>;
    return { inputs: { dtype: 'f32', shape: [b, ...this.sampleShape], data: x }, labels, indices: idx, index };
  }

  /**
   * A new dataset holding copies of the given samples, in that order (for splits).
   * @example
   * const [train, val] = [ds.subset(order.subarray(0, 900)), ds.subset(order.subarray(900))];
   */
  subset(indices: ArrayLike<number>): Dataset<L> {
    const b = this.gather(indices);
    return new Dataset<L>({ inputs: b.inputs.data, sampleShape: this.sampleShape, labels: b.labels.data as L, labelShape: this.labelShape });
  }
}

function describe(x: unknown): string {
  return x === null ? 'null' : typeof x === 'object' ? (x as object).constructor?.name ?? 'object' : typeof x;
}

/** How {@link batches} walks a dataset. */
export interface BatchOptions {
  /** Samples per batch (the last one may be smaller unless `dropLast`). */
  batchSize: number;
  /** Visit samples in a seeded random order; in dataset order otherwise. Default false. */
  shuffle?: boolean;
  /** The shuffle seed. Default 0. */
  seed?: number;
  /** Give each epoch its own order: the order is a function of (seed, epoch). Default 0. */
  epoch?: number;
  /** Leave out a last batch smaller than batchSize. Default false. */
  dropLast?: boolean;
}

function checkOptions(o: BatchOptions): void {
  if (!Number.isSafeInteger(o.batchSize) || o.batchSize < 1) throw new RangeError(`batches: batchSize must be a positive integer, got ${o.batchSize}`);
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) throw new RangeError(`batches: seed must be a safe integer, got ${o.seed}`);
  if (o.epoch !== undefined && (!Number.isSafeInteger(o.epoch) || o.epoch < 0)) throw new RangeError(`batches: epoch must be a non-negative integer, got ${o.epoch}`);
}

/**
 * The number of batches {@link batches} gives for these options.
 * @example
 * batchCount(ds, { batchSize: 32 }); // Math.ceil(ds.length / 32)
 */
export function batchCount(dataset: Dataset, options: BatchOptions): number {
  checkOptions(options);
  const n = dataset.length / options.batchSize;
  return options.dropLast ? Math.floor(n) : Math.ceil(n);
}

/**
 * The order in which {@link batches} visits the samples: 0..n−1, or with `shuffle` a seeded
 * permutation. Epoch e uses the generator seeded with `seed`, advanced through e earlier permutations,
 * so epochs differ from one another yet the whole run is fixed by the seed.
 * @example
 * sampleOrder(100, { shuffle: true, seed: 1, epoch: 3 }); // Int32Array(100)
 */
export function sampleOrder(n: number, options: Pick<BatchOptions, 'shuffle' | 'seed' | 'epoch'> = {}): Int32Array {
  if (!options.shuffle) return Int32Array.from({ length: n }, (_, i) => i);
  const r = new SeededRandom(options.seed ?? 0);
  for (let e = 0; e < (options.epoch ?? 0); e++) permutation(n, r);
  return permutation(n, r);
}

/**
 * Iterates one epoch of batches, each a fresh copy of its samples; the last, partial batch is
 * included unless `dropLast`.
 * @example
 * for (let epoch = 0; epoch < 10; epoch++) {
 *   for (const { inputs, labels } of batches(train, { batchSize: 64, shuffle: true, seed: 1, epoch })) {
 *     // inputs: { dtype: 'f32', shape: [64, 784], data }, labels: { dtype: 'i32', shape: [64], data }
 *   }
 * }
 */
export function* batches<L extends Labels>(dataset: Dataset<L>, options: BatchOptions): Generator<Batch<L>, void, undefined> {
  const count = batchCount(dataset, options);
  const order = sampleOrder(dataset.length, options);
  for (let k = 0; k < count; k++) {
    yield dataset.gather(order.subarray(k * options.batchSize, Math.min((k + 1) * options.batchSize, dataset.length)), k);
  }
}
