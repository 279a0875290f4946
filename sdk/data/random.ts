// SPDX-License-Identifier: MIT
import { Rng } from '../../runtime-gpu/rng.js';
// The seeded generator behind shuffling, so that an order depends on the seed and nothing else, on
// every machine and in every version: data splits and batch orders are part of an experiment.
//
// Algorithm (fixed; changing it changes everyone's splits, and a test pins its output):
// - the seed, any safe integer, is split into its low and high 32 bits; SplitMix32 (add the golden
//   ratio 0x9e3779b9, then the MurmurHash3 finalizer) turns them into the four 32-bit words of
// - xoshiro128** (Blackman & Vigna, 2018), which gives the stream of uniform 32-bit integers;
// - a uniform integer in [0, n) is drawn without bias by rejection: draw u until u < 2^32 − (2^32 mod n),
//   then take u mod n;
// - shuffling is Fisher–Yates as Durstenfeld wrote it: for i = n−1 down to 1, swap a[i] with a[j],
//   j uniform in [0, i].

/**
 * A seeded stream of random numbers (xoshiro128** seeded by SplitMix32).
 * @example
 * const r = new SeededRandom(42);
 * r.u32();   // a uniform 32-bit integer
 * r.int(6);  // a uniform integer in [0, 6)
 * r.float(); // uniform in [0, 1), 53 random bits
 */
export class SeededRandom extends Rng {
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`SeededRandom: the seed must be a safe integer, got ${seed}`);
    super(seed); // the runtime's xoshiro128** (runtime-gpu/rng.ts): one generator in the project
  }

  /** A uniform integer in [0, n), without modulo bias; 1 ≤ n ≤ 2^32. */
  override int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`SeededRandom.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    let u = this.u32();
    while (u >= limit) u = this.u32();
    return u % n;
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  float(): number {
    return ((this.u32() >>> 5) * 2 ** 26 + (this.u32() >>> 6)) / 2 ** 53;
  }
}

/** Anything `shuffle` can permute in place. */
export type Shufflable = { length: number; [i: number]: unknown };

/**
 * Shuffles an array or typed array in place (Fisher–Yates with {@link SeededRandom}) and returns it.
 * The same seed and length always give the same order.
 * @example
 * shuffle([1, 2, 3, 4, 5], 7); // the same permutation on every run and machine
 */
export function shuffle<A extends Shufflable>(array: A, seed: number | SeededRandom): A {
  const r = typeof seed === 'number' ? new SeededRandom(seed) : seed;
  for (let i = array.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    const t = array[i]; array[i] = array[j]; array[j] = t;
  }
  return array;
}

/**
 * A seeded random permutation of 0..n−1: `shuffle` applied to [0, 1, ..., n−1].
 * @example
 * permutation(5, 42); // Int32Array of 0..4 in a fixed, seed-determined order
 */
export function permutation(n: number, seed: number | SeededRandom): Int32Array {
  if (!Number.isSafeInteger(n) || n < 0 || n > 2 ** 31 - 1) throw new RangeError(`permutation: n must be an integer in [0, 2^31), got ${n}`);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffle(p, seed);
}
