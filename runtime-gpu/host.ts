// SPDX-License-Identifier: MIT
// Host tensors: the reference backend's values, f64 row-major, whatever the dtype they stand for.
import { type DType, type Meta, type Shape, size } from './shape.js';

export interface HostTensor extends Meta {
  readonly data: Float64Array;
}

export function host(data: ArrayLike<number>, shape: Shape, dtype: DType = 'f32'): HostTensor {
  if (data.length !== size(shape)) throw new Error(`host tensor: ${data.length} values do not fill shape [${shape.join(', ')}]`);
  return { shape: [...shape], dtype, data: Float64Array.from(data) };
}

export function hostZeros(shape: Shape, dtype: DType = 'f32'): HostTensor {
  return { shape: [...shape], dtype, data: new Float64Array(size(shape)) };
}

/** Rounds to what the dtype can hold, as the GPU would store it. */
export function roundTo(dtype: DType, x: number): number {
  if (dtype === 'i32') return x | 0;
  if (dtype === 'f16') return f16ToF32(f32ToF16(x));
  return Math.fround(x);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** IEEE half bits of x, round to nearest even (as WGSL's pack2x16float does for in-range values). */
export function f32ToF16(x: number): number {
  f32buf[0] = x;
  const b = u32buf[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
