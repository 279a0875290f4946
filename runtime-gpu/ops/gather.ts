// SPDX-License-Identifier: MIT
// Embedding lookup (gather rows of a table by integer indices) and its backward, a scatter-add into the rows.
// The scatter is exact and deterministic without float atomics: one invocation per table row scans the indices
// in order and adds the matching cotangent rows, so repeated indices sum in index order.
import { OpError, describe, expectDtype, size } from '../shape.js';
import { hostZeros } from '../host.js';
import { bindings, grid, u32 } from '../wgsl.js';
import type { Family } from './types.js';

export const gatherOps = {
  gather: {
    name: 'gather',
    infer([table, idx]) {
      expectDtype('gather', 'table', table!, 'f32');
      expectDtype('gather', 'indices', idx!, 'i32');
      if (table!.shape.length !== 2) throw new OpError('gather', `table must be [rows, dim], got ${describe(table!)}`);
      return [{ shape: [...idx!.shape, table!.shape[1]!], dtype: 'f32' }];
    },
    reference([table, idx]) {
      const [V, D] = table!.shape as [number, number];
      const out = hostZeros([...idx!.shape, D]);
      idx!.data.forEach((r, i) => {
        if (!(r >= 0 && r < V)) throw new OpError('gather', `index ${r} at ${i} is outside [0, ${V})`);
        out.data.set(table!.data.subarray(r * D, (r + 1) * D), i * D);
      });
      return [out];
    },
    webgpu(rt, [table, idx], _, [o]) {
      const [V, D] = table!.shape as [number, number];
      const out = rt.empty(o!.shape, 'f32', 'gather');
      const n = size(o!.shape);
      // Out-of-range indices cannot throw on the GPU: they read as 0.
      const code = `${bindings([{ name: 'T', type: 'f32' }, { name: 'I', type: 'i32' }, { name: 'out', type: 'f32', write: true }])}
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= ${u32(n)}) { return; }
  let r = I[i / ${u32(D)}];
  out[i] = select(0.0, T[u32(r) * ${u32(D)} + i % ${u32(D)}], r >= 0i && r < ${V}i);
}`;
      if (n) rt.dispatch(code, [table!.buf('gather'), idx!.buf('gather'), out.buf('gather')], grid(n));
      return [out];
    },
    saves: 'the indices (and the table\'s row count)',
    pullback: (x, { inputs: [table, idx], cot: [g] }) => [x.op('scatterAdd', [idx!, g!], { rows: x.meta(table!).shape[0]! })[0]!, null],
  },
  scatterAdd: {
    name: 'scatterAdd',
    infer([idx, vals], { rows }) {
      const op = 'scatterAdd';
      expectDtype(op, 'indices', idx!, 'i32');
      expectDtype(op, 'values', vals!, 'f32');
      if (!Number.isInteger(rows) || rows < 0) throw new OpError(op, `rows must be a non-negative integer, got ${rows}`);
      const lead = vals!.shape.slice(0, -1);
      if (vals!.shape.length < 1 || lead.join() !== idx!.shape.join()) throw new OpError(op, `values ${describe(vals!)} must be the indices' shape ${describe(idx!)} plus one dimension`);
      return [{ shape: [rows, vals!.shape[vals!.shape.length - 1]!], dtype: 'f32' }];
    },
    reference([idx, vals], { rows }) {
      const D = vals!.shape[vals!.shape.length - 1]!;
      const out = hostZeros([rows, D]);
      idx!.data.forEach((r, i) => { if (r >= 0 && r < rows) for (let d = 0; d < D; d++) out.data[r * D + d] += vals!.data[i * D + d]!; });
      return [out];
    },
    webgpu(rt, [idx, vals], { rows }) {
      const D = vals!.shape[vals!.shape.length - 1]!;
      const N = idx!.size;
      const out = rt.empty([rows, D], 'f32', 'scatterAdd');
      const code = `${bindings([{ name: 'I', type: 'i32' }, { name: 'G', type: 'f32' }, { name: 'out', type: 'f32', write: true }])}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= ${u32(rows)}) { return; }
  for (var d = 0u; d < ${u32(D)}; d++) { out[r * ${u32(D)} + d] = 0.0; }
  for (var i = 0u; i < ${u32(N)}; i++) {
    if (I[i] == i32(r)) { for (var d = 0u; d < ${u32(D)}; d++) { out[r * ${u32(D)} + d] += G[i * ${u32(D)} + d]; } }
  }
}`;
      if (rows && D) rt.dispatch(code, [idx!.buf('scatterAdd'), vals!.buf('scatterAdd'), out.buf('scatterAdd')], grid(rows, 64));
      return [out];
    },
    saves: '-',
    pullback: null,
  },
} satisfies Family<'gather' | 'scatterAdd'>;
