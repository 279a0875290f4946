// SPDX-License-Identifier: MIT
// A small seeded generator (xoshiro128**), so that tests and `randn`/`rand` are reproducible.

export class Rng {
  private s = new Uint32Array(4);
  constructor(seed = 1) {
    // splitmix32 to spread the seed over the state; the high word of a seed beyond 2^32 enters halfway,
    // so that seeds 2^32 apart differ (for smaller seeds it is 0 and changes nothing).
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      if (i === 2) x = (x ^ hi) >>> 0;
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }
  /** Uniform 32-bit integer. */
  u32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!; s[3]! ^= s[1]!; s[1]! ^= s[2]!; s[0]! ^= s[3]!;
    s[2]! ^= t; s[3] = rotl(s[3]!, 11);
    return r;
  }
  /** Uniform in [0, 1). */
  uniform(): number {
    return (this.u32() + this.u32() / 4294967296) / 4294967296;
  }
  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.uniform();
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
