// SPDX-License-Identifier: MIT
// Small helpers shared by the op families: reference-side broadcasting and pullback building blocks.
import type { Meta, Shape } from '../shape.js';
import { broadcastStrides, sameShape, size, strides } from '../shape.js';
import type { HostTensor } from '../host.js';
import type { BinaryFn, Exec, UnaryFn } from './types.js';

/** For each flat index of `out`, the flat offset into a tensor of shape `src` broadcast to it. */
export function broadcastIndex(src: Shape, out: Shape): Int32Array | null {
  if (sameShape(src, out)) return null;
  const n = size(out);
  const bs = broadcastStrides(src, out);
  const os = strides(out);
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let o = 0;
    for (let d = 0; d < out.length; d++) o += (Math.floor(i / os[d]!) % out[d]!) * bs[d]!;
    idx[i] = o;
  }
  return idx;
}

export function at(t: HostTensor, idx: Int32Array | null, i: number): number {
  return t.data[idx ? idx[i]! : i]!;
}

// ---- pullback building blocks (backend-generic) ----
export const un = <T>(x: Exec<T>, fn: UnaryFn, a: T): T => x.op('unary', [a], { fn })[0]!;
export const bin = <T>(x: Exec<T>, fn: BinaryFn, a: T, b: T): T => x.op('binary', [a, b], { fn })[0]!;
export const scalar = <T>(x: Exec<T>, v: number): T => x.full([], v, 'f32');

/** Sums a broadcast cotangent back to `shape` (the inverse of broadcasting). */
export function sumTo<T>(x: Exec<T>, g: T, shape: Shape): T {
  const gs = x.meta(g).shape;
  if (sameShape(gs, shape)) return g;
  const lead = gs.length - shape.length;
  const axes: number[] = [];
  for (let d = 0; d < gs.length; d++) {
    if (d < lead || (shape[d - lead] === 1 && gs[d] !== 1)) axes.push(d);
  }
  const s = axes.length ? x.op('sum', [g], { axes })[0]! : g;
  return x.reshape(s, shape);
}

/** Shape with the reduced axes kept as 1. */
export function keepDims(m: Meta, axes: readonly number[]): number[] {
  return m.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

export function pair(p: number | readonly [number, number] | undefined, dflt: number): [number, number] {
  if (p === undefined) return [dflt, dflt];
  return typeof p === 'number' ? [p, p] : [p[0], p[1]];
}
