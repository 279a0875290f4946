// SPDX-License-Identifier: MIT
// Data movement: permute (transpose), slice, pad (zero padding, slice's adjoint) and concat.
import { OpError, describe, expectDtype, size, strides, type Meta, type Shape } from '../shape.js';
import { type HostTensor, hostZeros } from '../host.js';
import type { GpuRuntime, Tensor } from '../runtime.js';
import { bindings, grid, u32, wgslType } from '../wgsl.js';
import type { Family } from './types.js';

function checkPerm(x: Meta, perm: readonly number[]): void {
  const r = x.shape.length;
  if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw new OpError('permute', `[${perm.join(', ')}] is not a permutation of the axes of ${describe(x)}`);
}

function checkSlice(op: string, x: Meta, begin: readonly number[], sz: readonly number[]): void {
  if (begin.length !== x.shape.length || sz.length !== x.shape.length) throw new OpError(op, `begin [${begin}] and size [${sz}] must have one entry per axis of ${describe(x)}`);
  x.shape.forEach((d, i) => {
    const b = begin[i]!, s = sz[i]!;
    if (!Number.isInteger(b) || !Number.isInteger(s) || b < 0 || s < 0 || b + s > d) throw new OpError(op, `axis ${i}: [${b}, ${b + s}) is outside 0..${d} of ${describe(x)}`);
  });
}

/**
 * A generic "each output element reads one input element (or a constant)" kernel; `src` maps the output
 * coordinate c0, c1, ... to the WGSL expression of the input offset, and `inside` to a bool (else 0).
 */
function gatherKernel(rt: GpuRuntime, op: string, x: Tensor, outShape: Shape, src: (c: string[]) => string, inside?: (c: string[]) => string): Tensor {
  const out = rt.empty(outShape, x.dtype, op);
  const n = size(outShape);
  if (n === 0) return out;
  const t = wgslType(x.dtype);
  const os = strides(outShape);
  const c = outShape.map((_, d) => `c${d}`);
  const coords = outShape.map((d, k) => `let c${k} = (i / ${u32(os[k]!)}) % ${u32(d)};`).join(' ');
  const read = inside ? `select(${t}(0), x[min(${src(c)}, ${u32(Math.max(0, x.size - 1))})], ${inside(c)})` : `x[${src(c)}]`;
  const code = `${bindings([{ name: 'x', type: t }, { name: 'out', type: t, write: true }])}
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= ${u32(n)}) { return; }
  ${coords}
  out[i] = ${read};
}`;
  rt.dispatch(code, [x.buf(op), out.buf(op)], grid(n));
  return out;
}

function refGather(x: HostTensor, outShape: Shape, src: (c: number[]) => number | null): HostTensor {
  const out = hostZeros(outShape, x.dtype);
  const os = strides(outShape);
  for (let i = 0; i < out.data.length; i++) {
    const c = outShape.map((d, k) => Math.floor(i / os[k]!) % d);
    const s = src(c);
    out.data[i] = s === null ? 0 : x.data[s]!;
  }
  return out;
}

const dot = (c: readonly (number | string)[], st: readonly number[], off: readonly number[] = []) => c.map((v, k) => `(${v} + ${u32(off[k] ?? 0)}) * ${u32(st[k]!)}`).join(' + ') || '0u';

export const layoutOps = {
  permute: {
    name: 'permute',
    infer([x], { perm }) {
      checkPerm(x!, perm);
      expectDtype('permute', 'input', x!, 'f32', 'i32');
      return [{ shape: perm.map((p) => x!.shape[p]!), dtype: x!.dtype }];
    },
    reference([x], { perm }) {
      const st = strides(x!.shape);
      return [refGather(x!, perm.map((p) => x!.shape[p]!), (c) => c.reduce((s, v, k) => s + v * st[perm[k]!]!, 0))];
    },
    webgpu(rt, [x], { perm }) {
      const st = strides(x!.shape);
      return [gatherKernel(rt, 'permute', x!, perm.map((p) => x!.shape[p]!), (c) => dot(c, perm.map((p) => st[p]!)))];
    },
    saves: 'nothing',
    pullback(x, { attrs: { perm }, cot: [g] }) {
      const inv = new Array<number>(perm.length);
      perm.forEach((p, k) => (inv[p] = k));
      return [x.op('permute', [g!], { perm: inv })[0]!];
    },
  },
  slice: {
    name: 'slice',
    infer([x], { begin, size: sz }) {
      checkSlice('slice', x!, begin, sz);
      expectDtype('slice', 'input', x!, 'f32', 'i32');
      return [{ shape: [...sz], dtype: x!.dtype }];
    },
    reference([x], { begin, size: sz }) {
      const st = strides(x!.shape);
      return [refGather(x!, sz, (c) => c.reduce((s, v, k) => s + (v + begin[k]!) * st[k]!, 0))];
    },
    webgpu(rt, [x], { begin, size: sz }) {
      const st = strides(x!.shape);
      return [gatherKernel(rt, 'slice', x!, sz, (c) => dot(c, st, begin))];
    },
    saves: 'nothing (the input shape)',
    pullback: (x, { inputs: [a], attrs: { begin }, cot: [g] }) => [x.op('pad', [g!], { before: begin, shape: x.meta(a!).shape })[0]!],
  },
  pad: {
    name: 'pad',
    infer([x], { before, shape }) {
      checkSlice('pad', { shape, dtype: x!.dtype }, before, x!.shape);
      expectDtype('pad', 'input', x!, 'f32', 'i32');
      return [{ shape: [...shape], dtype: x!.dtype }];
    },
    reference([x], { before, shape }) {
      const st = strides(x!.shape);
      return [refGather(x!, shape, (c) => {
        let s = 0;
        for (let k = 0; k < c.length; k++) {
          const v = c[k]! - before[k]!;
          if (v < 0 || v >= x!.shape[k]!) return null;
          s += v * st[k]!;
        }
        return s;
      })];
    },
    webgpu(rt, [x], { before, shape }) {
      const st = strides(x!.shape);
      return [gatherKernel(rt, 'pad', x!, shape,
        (c) => c.map((v, k) => `(${v} - ${u32(before[k]!)}) * ${u32(st[k]!)}`).join(' + ') || '0u',
        (c) => c.map((v, k) => `(${v} >= ${u32(before[k]!)} && ${v} < ${u32(before[k]! + x!.shape[k]!)})`).join(' && ') || 'true')];
    },
    saves: 'nothing',
    pullback: (x, { inputs: [a], attrs: { before }, cot: [g] }) => [x.op('slice', [g!], { begin: before, size: x.meta(a!).shape })[0]!],
  },
  concat: {
    name: 'concat',
    infer(ins, { axis }) {
      if (ins.length === 0) throw new OpError('concat', 'needs at least one input');
      const r = ins[0]!.shape.length;
      const ax = axis < 0 ? axis + r : axis;
      if (!Number.isInteger(ax) || ax < 0 || ax >= r) throw new OpError('concat', `axis ${axis} is out of range for rank ${r}`);
      for (const m of ins) {
        if (m.dtype !== ins[0]!.dtype || m.shape.length !== r || m.shape.some((d, i) => i !== ax && d !== ins[0]!.shape[i])) {
          throw new OpError('concat', `inputs ${ins.map(describe).join(', ')} differ outside axis ${ax}`);
        }
      }
      expectDtype('concat', 'inputs', ins[0]!, 'f32', 'i32');
      const shape = [...ins[0]!.shape];
      shape[ax] = ins.reduce((s, m) => s + m.shape[ax]!, 0);
      return [{ shape, dtype: ins[0]!.dtype }];
    },
    reference(ins, { axis }) {
      const r = ins[0]!.shape.length, ax = axis < 0 ? axis + r : axis;
      const shape = [...ins[0]!.shape];
      shape[ax] = ins.reduce((s, m) => s + m.shape[ax]!, 0);
      const out = hostZeros(shape, ins[0]!.dtype);
      const outer = size(shape.slice(0, ax)), inner = size(shape.slice(ax + 1));
      let off = 0;
      for (const t of ins) {
        const w = t.shape[ax]! * inner;
        for (let o = 0; o < outer; o++) out.data.set(t.data.subarray(o * w, (o + 1) * w), o * shape[ax]! * inner + off);
        off += w;
      }
      return [out];
    },
    webgpu(rt, ins, { axis }, [o]) {
      // One copy kernel per input into its band of the output (a kernel with one binding per input would hit
      // the storage-buffer binding limit for long lists).
      const r = ins[0]!.rank, ax = axis < 0 ? axis + r : axis;
      const shape = o!.shape;
      const out = rt.empty(shape, o!.dtype, 'concat');
      const inner = size(shape.slice(ax + 1));
      const t = wgslType(o!.dtype);
      let off = 0;
      for (const x of ins) {
        const w = x.shape[ax]! * inner, n = x.size;
        const code = `${bindings([{ name: 'x', type: t }, { name: 'out', type: t, write: true }])}
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= ${u32(n)}) { return; }
  out[(i / ${u32(w)}) * ${u32(shape[ax]! * inner)} + ${u32(off)} + i % ${u32(w)}] = x[i];
}`;
        if (n) rt.dispatch(code, [x.buf('concat'), out.buf('concat')], grid(n));
        off += w;
      }
      return [out];
    },
    saves: 'nothing (the input shapes)',
    pullback(x, { inputs, attrs: { axis }, cot: [g] }) {
      const shapes = inputs.map((t) => x.meta(t).shape);
      const r = shapes[0]!.length, ax = axis < 0 ? axis + r : axis;
      let off = 0;
      return shapes.map((s) => {
        const begin = s.map((_, k) => (k === ax ? off : 0));
        off += s[ax]!;
        return x.op('slice', [g!], { begin, size: s })[0]!;
      });
    },
  },
} satisfies Family<'permute' | 'slice' | 'pad' | 'concat'>;
