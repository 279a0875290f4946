// SPDX-License-Identifier: MIT
// IEEE 754 binary16 (f16) and bfloat16 (bf16) conversions. Node 20 has no Float16Array, so 16-bit
// floats travel as their raw bits in a Uint16Array; these helpers turn them into f32 and back.
// Rounding from f32 is to nearest, ties to even, the same as a hardware conversion (and PyTorch's).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Rounds one number to the nearest f16 (ties to even) and returns its 16 bits. The number is first
 * rounded to f32 (as storing it in a Float32Array would), then to f16: overflow gives ±Infinity,
 * NaN stays NaN (a quiet NaN with the sign kept), tiny values become subnormals or ±0.
 * @example
 * toF16Bits(1) // 0x3c00
 * toF16Bits(65520) // 0x7c00 (Infinity: 65520 is the tie between 65504 and 65536)
 */
export function toF16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // Inf or NaN (kept quiet)
  // Unbiased exponent e = exp - 127; f16 normals have e in [-14, 15].
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    // Normal: keep 10 of the 23 mantissa bits; round on the 13 dropped ones. A carry out of the
    // mantissa correctly bumps the exponent (and 0x7bff + 1 = 0x7c00 is Infinity).
    const h = ((e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    return sign | (h + (rest > 0x1000 || (rest === 0x1000 && (h & 1)) ? 1 : 0));
  }
  // Subnormal f16 (value = m · 2^-24) or zero. With the implicit bit, the f32 significand is
  // (0x800000 | mant) · 2^(e-23); shifting it right by (-e - 1) gives m in units of 2^-24.
  if (e < -25) return sign; // below half the smallest subnormal (2^-25): rounds to ±0
  if (exp !== 0) mant |= 0x800000;
  const shift = -e - 1; // in [14, 24]
  const m = mant >>> shift;
  const rest = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  // m + 1 may reach 0x400, which is exactly the smallest normal's bit pattern: correct.
  return sign | (m + (rest > half || (rest === half && (m & 1)) ? 1 : 0));
}

/**
 * The value of 16 f16 bits, as a number (exact: every f16 is an f32 and an f64).
 * @example
 * fromF16Bits(0x3c00) // 1
 * fromF16Bits(0x0001) // 5.960464477539063e-8 (2^-24, the smallest subnormal)
 */
export function fromF16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/**
 * Converts f32 values (or plain numbers) to f16 bits, rounding to nearest even.
 * @example
 * const bits = f32ToF16(new Float32Array([1, 0.1, -2])); // Uint16Array [0x3c00, 0x2e66, 0xc000]
 */
export function f32ToF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toF16Bits(values[i]!);
  return out;
}

/**
 * Widens f16 bits to f32 values (exact).
 * @example
 * f16ToF32(new Uint16Array([0x3c00, 0xc000])) // Float32Array [1, -2]
 */
export function f16ToF32(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = fromF16Bits(bits[i]!);
  return out;
}

/**
 * Converts f32 values to bfloat16 bits (the top 16 bits of an f32), rounding to nearest even;
 * NaN stays a quiet NaN.
 * @example
 * f32ToBf16(new Float32Array([1, -2.5])) // Uint16Array [0x3f80, 0xc020]
 */
export function f32ToBf16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    f32[0] = values[i]!;
    const b = u32[0]!;
    if ((b & 0x7fffffff) > 0x7f800000) { out[i] = (b >>> 16) | 0x40; continue; }
    out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * Widens bfloat16 bits to f32 values (exact).
 * @example
 * bf16ToF32(new Uint16Array([0x3f80])) // Float32Array [1]
 */
export function bf16ToF32(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  const o32 = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) o32[i] = (bits[i]! & 0xffff) << 16;
  return out;
}
