// SPDX-License-Identifier: MIT
// Host tensors: the reference backend's values, f64 row-major, whatever the dtype they stand for.
import { type DType, type Meta, type Shape, size } from './shape.js';
import { fromF16Bits, toF16Bits } from './float16.js';

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
  if (dtype === 'f16') return fromF16Bits(toF16Bits(x));
  return Math.fround(x);
}

