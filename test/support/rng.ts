// SPDX-License-Identifier: MIT
// The tests' seeded generator (mulberry32), in a module of its own with no imports: worker threads and browser
// pages of the tests load it as well as Node test files.

/** Uniform numbers in [0, 1) from a 32-bit seed; the same sequence everywhere. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
