// SPDX-License-Identifier: MIT
// One tiled GEMM kernel generator for matmul and for the three convolutions (implicit GEMM): C[m, n] = sum_k A[m, k] B[k, n].
// A 64x64 output tile per workgroup of 16x16 invocations, each computing a 4x4 block in registers (vec4 rows), with
// 16-deep slices of A and B staged in workgroup memory. The caller supplies how A and B are read (any index
// arithmetic: transposes, im2col, col2im) and how results are stored (epilogues: bias, activation, layout).
// Optional split-K: partial products over K chunks go to a scratch buffer, and a second kernel sums them in order.
import type { GpuRuntime } from './runtime.js';
import { grid, u32 } from './wgsl.js';

export interface GemmSpec {
  M: number; N: number; K: number;
  /** Independent problems (wid.z). */
  batch: number;
  /** WGSL declarations: bindings 0.. for the buffers in `buffers`, in order (extra bindings follow for split-K scratch). */
  decls: string;
  buffers: GPUBuffer[];
  /** The variable names of those bindings (each kernel touches all of them, as layout 'auto' requires). */
  names: string[];
  /** Body of fn loadA(bt: u32, m: u32, k: u32) -> f32, called only with m < M and k < K. */
  loadA: string;
  /** Body of fn loadB(bt: u32, k: u32, n: u32) -> f32, called only with k < K and n < N. */
  loadB: string;
  /** Which index of A (and B) is contiguous in memory: decides which invocation loads which element. */
  aContig: 'm' | 'k';
  bContig: 'n' | 'k';
  /** Body of fn store(bt: u32, m: u32, n: u32, v: f32), called only with m < M and n < N. */
  store: string;
  /** Extra WGSL (helper functions). */
  prelude?: string;
  /** Rows of C per invocation in the register-blocked style (default 8; more amortises costly B loads). */
  rows?: number;
}

const TM = 64, TN = 64, TK = 16;

/** Chooses a split of K when there are too few output tiles to keep the device busy. */
function chooseSplit(s: GemmSpec): number {
  const tiles = Math.ceil(s.M / TM) * Math.ceil(s.N / TN) * s.batch;
  if (tiles >= 32 || s.K < 1024) return 1;
  return Math.min(Math.floor(s.K / 512), Math.ceil(64 / tiles), 32);
}

export function gemm(rt: GpuRuntime, op: string, s: GemmSpec): void {
  if (s.M === 0 || s.N === 0 || s.batch === 0) return;
  const split = chooseSplit(s);
  const kChunk = Math.ceil(Math.ceil(s.K / split) / TK) * TK;
  const nb = s.buffers.length;
  let scratch: GPUBuffer | null = null;
  let scratchTensor = null;
  if (split > 1) {
    scratchTensor = rt.empty([split * s.batch * s.M * s.N], 'f32', op);
    scratch = scratchTensor.buf(op);
  }
  const storeCall = split > 1
    ? `part[((sp * ${u32(s.batch)} + bt) * ${u32(s.M)} + m) * ${u32(s.N)} + n] = v;`
    : 'store(bt, m, n, v);';
  const touch = s.names.map((n) => `_ = arrayLength(&${n});`).join(' ');
  const aLoad = s.aContig === 'm'
    ? `{ let kk = lid.x / 16u; let mq = lid.x % 16u; let k = k0 + kk;
        var v = vec4f(0.0);
        for (var j = 0u; j < 4u; j++) { let m = m0 + mq * 4u + j; if (m < ${u32(s.M)} && k < kEnd) { v[j] = loadA(bt, m, k); } }
        As[kk * 16u + mq] = v; }`
    : `{ let ml = lid.x / 4u; let kq = lid.x % 4u; let m = m0 + ml;
        for (var j = 0u; j < 4u; j++) { let kk = kq * 4u + j; let k = k0 + kk; var v = 0.0;
          if (m < ${u32(s.M)} && k < kEnd) { v = loadA(bt, m, k); }
          As[kk * 16u + ml / 4u][ml % 4u] = v; } }`;
  const bLoad = s.bContig === 'n'
    ? `{ let kk = lid.x / 16u; let nq = lid.x % 16u; let k = k0 + kk;
        var v = vec4f(0.0);
        for (var j = 0u; j < 4u; j++) { let n = n0 + nq * 4u + j; if (n < ${u32(s.N)} && k < kEnd) { v[j] = loadB(bt, k, n); } }
        Bs[kk * 16u + nq] = v; }`
    : `{ let nl = lid.x / 4u; let kq = lid.x % 4u; let n = n0 + nl;
        for (var j = 0u; j < 4u; j++) { let kk = kq * 4u + j; let k = k0 + kk; var v = 0.0;
          if (n < ${u32(s.N)} && k < kEnd) { v = loadB(bt, k, n); }
          Bs[kk * 16u + nl / 4u][nl % 4u] = v; } }`;
  const code = `${s.decls}
${split > 1 ? `@group(0) @binding(${nb}) var<storage, read_write> part: array<f32>;` : ''}
${s.prelude ?? ''}
fn loadA(bt: u32, m: u32, k: u32) -> f32 { ${s.loadA} }
fn loadB(bt: u32, k: u32, n: u32) -> f32 { ${s.loadB} }
${split > 1 ? '' : `fn store(bt: u32, m: u32, n: u32, v: f32) { ${s.store} }`}
var<workgroup> As: array<vec4f, ${(TK * TM) / 4}>;
var<workgroup> Bs: array<vec4f, ${(TK * TN) / 4}>;
@compute @workgroup_size(256) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  ${touch}
  let bt = wid.z / ${u32(split)};
  let sp = wid.z % ${u32(split)};
  let m0 = wid.y * ${TM}u;
  let n0 = wid.x * ${TN}u;
  let tx = lid.x % 16u;
  let ty = lid.x / 16u;
  let kBegin = sp * ${u32(kChunk)};
  let kEnd = min(${u32(s.K)}, kBegin + ${u32(kChunk)});
  var c0 = vec4f(0.0); var c1 = vec4f(0.0); var c2 = vec4f(0.0); var c3 = vec4f(0.0);
  for (var k0 = kBegin; k0 < kEnd; k0 += ${TK}u) {
    ${aLoad}
    ${bLoad}
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk++) {
      let a = As[kk * 16u + ty];
      let b = Bs[kk * 16u + tx];
      c0 += a.x * b; c1 += a.y * b; c2 += a.z * b; c3 += a.w * b;
    }
    workgroupBarrier();
  }
  let rows = array<vec4f, 4>(c0, c1, c2, c3);
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty * 4u + i;
    if (m >= ${u32(s.M)}) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx * 4u + j;
      if (n < ${u32(s.N)}) { let v = rows[i][j]; ${storeCall} }
    }
  }
}`;
  const groups: [number, number, number] = [Math.ceil(s.N / TN), Math.ceil(s.M / TM), s.batch * split];
  if (rt.tiledGemm) rt.dispatch(code, scratch ? [...s.buffers, scratch] : s.buffers, groups);
  else {
    // Register-blocked: an 8x4 block of C per invocation, no workgroup memory. Rows and columns past the edge are
    // clamped on load (always in bounds) and skipped on store.
    const R = s.rows ?? 8;
    const rows = [...Array(R).keys()];
    const direct = `${s.decls}
${split > 1 ? `@group(0) @binding(${nb}) var<storage, read_write> part: array<f32>;` : ''}
${s.prelude ?? ''}
fn loadA(bt: u32, m: u32, k: u32) -> f32 { ${s.loadA} }
fn loadB(bt: u32, k: u32, n: u32) -> f32 { ${s.loadB} }
${split > 1 ? '' : `fn store(bt: u32, m: u32, n: u32, v: f32) { ${s.store} }`}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  ${touch}
  let n0 = gid.x * 4u;
  if (n0 >= ${u32(s.N)}) { return; }
  let m0 = wid.y * ${R}u;
  let bt = wid.z / ${u32(split)};
  let sp = wid.z % ${u32(split)};
  let kBegin = sp * ${u32(kChunk)};
  let kEnd = min(${u32(s.K)}, kBegin + ${u32(kChunk)});
  ${rows.map((r) => `let mr${r} = min(m0 + ${r}u, ${u32(s.M - 1)}); var c${r} = vec4f(0.0);`).join(' ')}
  let n1 = min(n0 + 1u, ${u32(s.N - 1)}); let n2 = min(n0 + 2u, ${u32(s.N - 1)}); let n3 = min(n0 + 3u, ${u32(s.N - 1)});
  for (var k = kBegin; k < kEnd; k++) {
    let b = vec4f(loadB(bt, k, n0), loadB(bt, k, n1), loadB(bt, k, n2), loadB(bt, k, n3));
    ${rows.map((r) => `c${r} += loadA(bt, mr${r}, k) * b;`).join(' ')}
  }
  let rows = array<vec4f, ${R}>(${rows.map((r) => `c${r}`).join(', ')});
  for (var i = 0u; i < ${R}u; i++) {
    let m = m0 + i;
    if (m >= ${u32(s.M)}) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + j;
      if (n < ${u32(s.N)}) { let v = rows[i][j]; ${storeCall} }
    }
  }
}`;
    rt.dispatch(direct, scratch ? [...s.buffers, scratch] : s.buffers, [Math.ceil(s.N / 4 / 64), Math.ceil(s.M / R), s.batch * split]);
  }
  if (scratch) {
    const total = s.batch * s.M * s.N;
    const reduce = `${s.decls}
@group(0) @binding(${nb}) var<storage, read_write> part: array<f32>;
${s.prelude ?? ''}
fn store(bt: u32, m: u32, n: u32, v: f32) { ${s.store} }
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  ${touch}
  if (i >= ${u32(total)}) { return; }
  var v = 0.0;
  for (var sp = 0u; sp < ${u32(split)}; sp++) { v += part[sp * ${u32(total)} + i]; }
  let n = i % ${u32(s.N)};
  let m = (i / ${u32(s.N)}) % ${u32(s.M)};
  let bt = i / ${u32(s.M * s.N)};
  store(bt, m, n, v);
}`;
    rt.dispatch(reduce, [...s.buffers, scratch], grid(total));
    scratchTensor!.dispose();
  }
}
