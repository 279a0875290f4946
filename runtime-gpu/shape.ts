// SPDX-License-Identifier: MIT
// Shapes, dtypes and the error every op throws on bad input. Shared by every backend.

export type DType = 'f32' | 'i32' | 'f16';
export type Shape = readonly number[];

/** What an op needs to know about a tensor to check its inputs: no data. */
export interface Meta {
  readonly shape: Shape;
  readonly dtype: DType;
}

/** Bad shapes, dtypes or attributes given to an op: the message names the op and the shapes. */
export class OpError extends Error {
  constructor(readonly op: string, message: string) {
    super(`${op}: ${message}`);
    this.name = 'OpError';
  }
}

export const fmt = (s: Shape): string => `[${s.join(', ')}]`;
export const describe = (m: Meta): string => `${m.dtype}${fmt(m.shape)}`;

export function size(s: Shape): number {
  let n = 1;
  for (const d of s) n *= d;
  return n;
}

/** Row-major strides. */
export function strides(s: Shape): number[] {
  const st = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) { st[i] = acc; acc *= s[i]!; }
  return st;
}

export function checkShape(op: string, s: Shape): void {
  for (const d of s) {
    if (!Number.isInteger(d) || d < 0) throw new OpError(op, `invalid shape ${fmt(s)}: dimensions must be non-negative integers`);
  }
}

/** NumPy broadcasting of any number of shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) { out[o] = d; continue; }
      throw new OpError(op, `shapes ${shapes.map(fmt).join(' and ')} do not broadcast (axis ${o}: ${out[o]} vs ${d})`);
    }
  }
  return out;
}

/** Strides of `s` read as the (right-aligned) broadcast shape `out`: 0 along broadcast axes. */
export function broadcastStrides(s: Shape, out: Shape): number[] {
  const st = strides(s);
  const r = new Array<number>(out.length).fill(0);
  for (let i = 0; i < s.length; i++) {
    const o = out.length - s.length + i;
    r[o] = s[i] === 1 && out[o] !== 1 ? 0 : st[i]!;
  }
  return r;
}

/** Normalises axes (negative counts from the end), sorted and unique; throws on out-of-range. */
export function normAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = new Set<number>();
  for (const a of list) {
    if (!Number.isInteger(a) || a < -rank || a >= rank) throw new OpError(op, `axis ${a} is out of range for rank ${rank}`);
    out.add(a < 0 ? a + rank : a);
  }
  return [...out].sort((x, y) => x - y);
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function expectDtype(op: string, what: string, m: Meta, ...ok: DType[]): void {
  if (!ok.includes(m.dtype)) {
    const hint = m.dtype === 'f16' ? ' (f16 is a storage format: cast to f32 first)' : '';
    throw new OpError(op, `${what} must be ${ok.join(' or ')}, got ${describe(m)}${hint}`);
  }
}

export function expectRank(op: string, what: string, m: Meta, ...ranks: number[]): void {
  if (!ranks.includes(m.shape.length)) throw new OpError(op, `${what} must have rank ${ranks.join(' or ')}, got ${describe(m)}`);
}

export function bytesPerElement(d: DType): number {
  return d === 'f16' ? 2 : 4;
}
