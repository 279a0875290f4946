// SPDX-License-Identifier: MIT
// Layer normalisation over the last axis. Forward saves the mean and the inverse standard deviation per row;
// backward uses them for dx, row by row, and one invocation per column for dgamma and dbeta (column sums in row
// order: deterministic, no atomics). Rows go to one workgroup each (a tree reduction in workgroup memory: real
// GPUs) or to one invocation each (no barriers: SwiftShader), as the runtime's rowPerInvocation says.
import { OpError, describe, expectDtype, fmt, type Meta } from '../shape.js';
import { hostZeros } from '../host.js';
import { bindings, f32, grid, u32 } from '../wgsl.js';
import type { Family } from './types.js';

const WGR = 64;

function rowsOf(op: string, x: Meta): [number, number] {
  if (x.shape.length === 0) throw new OpError(op, `x must have rank >= 1, got ${describe(x)}`);
  const D = x.shape[x.shape.length - 1]!;
  return [D === 0 ? 0 : x.shape.reduce((a, b) => a * b, 1) / D, D];
}

/** WGSL: workgroup sum of `v` (all invocations get the result). */
const WG_SUM = `
var<workgroup> red: array<f32, ${WGR}>;
fn wgSum(v: f32, t: u32) -> f32 {
  red[t] = v;
  for (var w = ${WGR / 2}u; w > 0u; w = w / 2u) {
    workgroupBarrier();
    if (t < w) { red[t] = red[t] + red[t + w]; }
  }
  workgroupBarrier();
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

/** Per-invocation rows: vec4 loads when the row length allows, and the horizontal sum that goes with them. */
function rowVec(D: number): { T: 'vec4f' | 'f32'; n: number; hsum: (v: string) => string } {
  return D % 4 === 0 ? { T: 'vec4f', n: D / 4, hsum: (v) => `dot(${v}, vec4f(1.0))` } : { T: 'f32', n: D, hsum: (v) => v };
}

export const normOps = {
  layerNorm: {
    name: 'layerNorm',
    infer([x, gamma, beta]) {
      const op = 'layerNorm';
      for (const m of [x!, gamma!, beta!]) expectDtype(op, 'inputs', m, 'f32');
      const [, D] = rowsOf(op, x!);
      for (const m of [gamma!, beta!]) if (m.shape.length !== 1 || m.shape[0] !== D) throw new OpError(op, `gamma and beta must have shape [${D}] for x ${describe(x!)}, got ${describe(m)}`);
      const rows = x!.shape.slice(0, -1);
      return [{ shape: x!.shape, dtype: 'f32' }, { shape: rows, dtype: 'f32' }, { shape: rows, dtype: 'f32' }];
    },
    reference([x, gamma, beta], { eps = 1e-5 }) {
      const [R, D] = rowsOf('layerNorm', x!);
      const y = hostZeros(x!.shape), mean = hostZeros(x!.shape.slice(0, -1)), rstd = hostZeros(x!.shape.slice(0, -1));
      for (let r = 0; r < R; r++) {
        let m = 0;
        for (let d = 0; d < D; d++) m += x!.data[r * D + d]!;
        m /= D;
        let v = 0;
        for (let d = 0; d < D; d++) v += (x!.data[r * D + d]! - m) ** 2;
        const rs = 1 / Math.sqrt(v / D + eps);
        mean.data[r] = m; rstd.data[r] = rs;
        for (let d = 0; d < D; d++) y.data[r * D + d] = (x!.data[r * D + d]! - m) * rs * gamma!.data[d]! + beta!.data[d]!;
      }
      return [y, mean, rstd];
    },
    webgpu(rt, [x, gamma, beta], { eps = 1e-5 }, outs) {
      const op = 'layerNorm';
      const [R, D] = rowsOf(op, x!);
      const y = rt.empty(outs[0]!.shape, 'f32', op), mean = rt.empty(outs[1]!.shape, 'f32', op), rstd = rt.empty(outs[2]!.shape, 'f32', op);
      // Two passes over the row (mean, then squared deviations): stabler than E[x²] - E[x]².
      const code = `${bindings([{ name: 'x', type: 'f32' }, { name: 'gamma', type: 'f32' }, { name: 'beta', type: 'f32' },
        { name: 'y', type: 'f32', write: true }, { name: 'mean', type: 'f32', write: true }, { name: 'rstd', type: 'f32', write: true }])}
${WG_SUM}
@compute @workgroup_size(${WGR}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = wid.x + wid.y * nwg.x;
  let t = lid.x;
  let base = r * ${u32(D)};
  var s = 0.0;
  for (var d = t; d < ${u32(D)}; d += ${WGR}u) { s += x[base + d]; }
  let m = wgSum(s, t) / ${f32(D)};
  var q = 0.0;
  for (var d = t; d < ${u32(D)}; d += ${WGR}u) { let c = x[base + d] - m; q += c * c; }
  let rs = inverseSqrt(wgSum(q, t) / ${f32(D)} + ${f32(eps)});
  for (var d = t; d < ${u32(D)}; d += ${WGR}u) { y[base + d] = (x[base + d] - m) * rs * gamma[d] + beta[d]; }
  if (t == 0u) { mean[r] = m; rstd[r] = rs; }
}`;
      const bufs = [x!.buf(op), gamma!.buf(op), beta!.buf(op), y.buf(op), mean.buf(op), rstd.buf(op)];
      if (D === 0 || R === 0) return [y, mean, rstd];
      if (rt.rowPerInvocation) {
        const v = rowVec(D);
        rt.dispatch(`${bindings([{ name: 'x', type: v.T }, { name: 'gamma', type: v.T }, { name: 'beta', type: v.T },
          { name: 'y', type: v.T, write: true }, { name: 'mean', type: 'f32', write: true }, { name: 'rstd', type: 'f32', write: true }])}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= ${u32(R)}) { return; }
  let base = r * ${u32(v.n)};
  var s = ${v.T}(0.0);
  for (var c = 0u; c < ${u32(v.n)}; c++) { s += x[base + c]; }
  let m = ${v.hsum('s')} / ${f32(D)};
  var q = ${v.T}(0.0);
  for (var c = 0u; c < ${u32(v.n)}; c++) { let e = x[base + c] - m; q += e * e; }
  let rs = inverseSqrt(${v.hsum('q')} / ${f32(D)} + ${f32(eps)});
  for (var c = 0u; c < ${u32(v.n)}; c++) { y[base + c] = (x[base + c] - m) * rs * gamma[c] + beta[c]; }
  mean[r] = m; rstd[r] = rs;
}`, bufs, grid(R, 64));
      } else rt.dispatch(code, bufs, grid(R, 1));
      return [y, mean, rstd];
    },
    saves: 'x, gamma, and the per-row mean and inverse std (second and third outputs)',
    pullback: (x, { inputs: [xin, gamma], outputs: [, mean, rstd], cot: [g] }) =>
      x.op('layerNormBackward', [xin!, gamma!, mean!, rstd!, g!], {}),
  },
  layerNormBackward: {
    name: 'layerNormBackward',
    infer([x, gamma, mean, rstd, dy]) {
      const op = 'layerNormBackward';
      const [, D] = rowsOf(op, x!);
      if (fmt(dy!.shape) !== fmt(x!.shape)) throw new OpError(op, `dy ${describe(dy!)} must match x ${describe(x!)}`);
      if (gamma!.shape[0] !== D) throw new OpError(op, `gamma ${describe(gamma!)} must have shape [${D}]`);
      const rows = fmt(x!.shape.slice(0, -1));
      if (fmt(mean!.shape) !== rows || fmt(rstd!.shape) !== rows) throw new OpError(op, `mean and rstd must have shape ${rows}`);
      return [{ shape: x!.shape, dtype: 'f32' }, { shape: [D], dtype: 'f32' }, { shape: [D], dtype: 'f32' }];
    },
    reference([x, gamma, mean, rstd, dy]) {
      const [R, D] = rowsOf('layerNormBackward', x!);
      const dx = hostZeros(x!.shape), dg = hostZeros([D]), db = hostZeros([D]);
      for (let r = 0; r < R; r++) {
        const m = mean!.data[r]!, rs = rstd!.data[r]!;
        let sg = 0, sgx = 0;
        for (let d = 0; d < D; d++) {
          const xh = (x!.data[r * D + d]! - m) * rs;
          const gd = dy!.data[r * D + d]! * gamma!.data[d]!;
          sg += gd; sgx += gd * xh;
          dg.data[d] += dy!.data[r * D + d]! * xh;
          db.data[d] += dy!.data[r * D + d]!;
        }
        // dx = rstd (g - mean(g) - x̂ mean(g x̂)), g = dy ⊙ gamma
        for (let d = 0; d < D; d++) {
          const xh = (x!.data[r * D + d]! - m) * rs;
          const gd = dy!.data[r * D + d]! * gamma!.data[d]!;
          dx.data[r * D + d] = rs * (gd - sg / D - xh * sgx / D);
        }
      }
      return [dx, dg, db];
    },
    webgpu(rt, [x, gamma, mean, rstd, dy]) {
      const op = 'layerNormBackward';
      const [R, D] = rowsOf(op, x!);
      const dx = rt.empty(x!.shape, 'f32', op), dg = rt.empty([D], 'f32', op), db = rt.empty([D], 'f32', op);
      const rowCode = `${bindings([{ name: 'x', type: 'f32' }, { name: 'gamma', type: 'f32' }, { name: 'mean', type: 'f32' }, { name: 'rstd', type: 'f32' },
        { name: 'dy', type: 'f32' }, { name: 'dx', type: 'f32', write: true }])}
${WG_SUM}
@compute @workgroup_size(${WGR}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = wid.x + wid.y * nwg.x;
  let t = lid.x;
  let base = r * ${u32(D)};
  let m = mean[r]; let rs = rstd[r];
  var sg = 0.0; var sgx = 0.0;
  for (var d = t; d < ${u32(D)}; d += ${WGR}u) { let gd = dy[base + d] * gamma[d]; sg += gd; sgx += gd * (x[base + d] - m) * rs; }
  let mg = wgSum(sg, t) / ${f32(D)};
  let mgx = wgSum(sgx, t) / ${f32(D)};
  for (var d = t; d < ${u32(D)}; d += ${WGR}u) {
    let gd = dy[base + d] * gamma[d];
    dx[base + d] = rs * (gd - mg - (x[base + d] - m) * rs * mgx);
  }
}`;
      const colCode = `${bindings([{ name: 'x', type: 'f32' }, { name: 'mean', type: 'f32' }, { name: 'rstd', type: 'f32' },
        { name: 'dy', type: 'f32' }, { name: 'dg', type: 'f32', write: true }, { name: 'db', type: 'f32', write: true }])}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let d = gid.x;
  if (d >= ${u32(D)}) { return; }
  var sg = 0.0; var sb = 0.0;
  for (var r = 0u; r < ${u32(R)}; r++) {
    let i = r * ${u32(D)} + d;
    sg += dy[i] * (x[i] - mean[r]) * rstd[r]; sb += dy[i];
  }
  dg[d] = sg; db[d] = sb;
}`;
      const rowBufs = [x!.buf(op), gamma!.buf(op), mean!.buf(op), rstd!.buf(op), dy!.buf(op), dx.buf(op)];
      if (D > 0 && R > 0 && rt.rowPerInvocation) {
        const v = rowVec(D);
        rt.dispatch(`${bindings([{ name: 'x', type: v.T }, { name: 'gamma', type: v.T }, { name: 'mean', type: 'f32' }, { name: 'rstd', type: 'f32' },
          { name: 'dy', type: v.T }, { name: 'dx', type: v.T, write: true }])}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * 64u;
  if (r >= ${u32(R)}) { return; }
  let base = r * ${u32(v.n)};
  let m = mean[r]; let rs = rstd[r];
  var sg = ${v.T}(0.0); var sgx = ${v.T}(0.0);
  for (var c = 0u; c < ${u32(v.n)}; c++) { let gd = dy[base + c] * gamma[c]; sg += gd; sgx += gd * (x[base + c] - m); }
  let mg = ${v.hsum('sg')} / ${f32(D)};
  let mgx = ${v.hsum('sgx')} * rs / ${f32(D)};
  for (var c = 0u; c < ${u32(v.n)}; c++) { dx[base + c] = rs * (dy[base + c] * gamma[c] - mg - (x[base + c] - m) * rs * mgx); }
}`, rowBufs, grid(R, 64));
      } else if (D > 0 && R > 0) rt.dispatch(rowCode, rowBufs, grid(R, 1));
      if (D > 0) rt.dispatch(colCode, [x!.buf(op), mean!.buf(op), rstd!.buf(op), dy!.buf(op), dg.buf(op), db.buf(op)], [Math.ceil(D / 64)]);
      return [dx, dg, db];
    },
    saves: '-',
    pullback: null,
  },
} satisfies Family<'layerNorm' | 'layerNormBackward'>;
