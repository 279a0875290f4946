// SPDX-License-Identifier: MIT
// Scaled dot-product attention, optionally causal (key j is seen by query i when j <= i), flash-style:
// forward keeps an online softmax per query row over key/value tiles in workgroup memory and saves only the
// output and the per-row logsumexp. Backward recomputes the weights P = exp(s - lse) instead of storing the
// [Sq, Sk] matrix: D_i = dO_i·O_i, then one kernel per query row for dQ and one per key row for dK and dV
// (each output written by one invocation: deterministic, no atomics).
import { OpError, describe, expectDtype, fmt, size, type Meta } from '../shape.js';
import { type HostTensor, hostZeros } from '../host.js';
import type { GpuRuntime, Tensor } from '../runtime.js';
import { NEG_INF, bindings, f32, grid, u32, workgroupMaxSumExp } from '../wgsl.js';
import type { Family } from './types.js';
import { matmulOps } from './matmul.js';

interface AttnDims { batch: number[]; B: number; Sq: number; Sk: number; D: number; Dv: number }

function attnDims(op: string, q: Meta, k: Meta, v: Meta): AttnDims {
  for (const m of [q, k, v]) {
    expectDtype(op, 'q, k and v', m, 'f32');
    if (m.shape.length < 2) throw new OpError(op, `q, k and v must have rank >= 2, got ${describe(m)}`);
  }
  const r = q.shape.length;
  const batch = q.shape.slice(0, -2);
  if (k.shape.length !== r || v.shape.length !== r || fmt(k.shape.slice(0, -2)) !== fmt(batch) || fmt(v.shape.slice(0, -2)) !== fmt(batch)) {
    throw new OpError(op, `q ${describe(q)}, k ${describe(k)} and v ${describe(v)} must share their leading dimensions`);
  }
  const [Sq, D] = q.shape.slice(-2) as [number, number];
  const [Sk, Dk] = k.shape.slice(-2) as [number, number];
  const [Sv, Dv] = v.shape.slice(-2) as [number, number];
  if (Dk !== D) throw new OpError(op, `q ${describe(q)} and k ${describe(k)} must have the same head dimension`);
  if (Sv !== Sk) throw new OpError(op, `k ${describe(k)} and v ${describe(v)} must have the same sequence length`);
  if (Sk === 0 || D === 0 || Dv === 0) throw new OpError(op, `empty keys or head dimension: q ${describe(q)}, k ${describe(k)}, v ${describe(v)}`);
  if (D > 256 || Dv > 256) throw new OpError(op, `head dimensions above 256 are not supported (q ${describe(q)}, v ${describe(v)})`);
  return { batch, B: size(batch), Sq, Sk, D, Dv };
}

const scaleOf = (d: AttnDims, s: number | undefined) => s ?? 1 / Math.sqrt(d.D);

function refAttention(q: HostTensor, k: HostTensor, v: HostTensor, causal: boolean, scale: number, d: AttnDims) {
  const P = new Float64Array(d.B * d.Sq * d.Sk);
  const o = hostZeros([...d.batch, d.Sq, d.Dv]), lse = hostZeros([...d.batch, d.Sq]);
  for (let b = 0; b < d.B; b++) for (let i = 0; i < d.Sq; i++) {
    const row = P.subarray((b * d.Sq + i) * d.Sk, (b * d.Sq + i + 1) * d.Sk);
    let m = -Infinity;
    for (let j = 0; j < d.Sk; j++) {
      if (causal && j > i) { row[j] = -Infinity; continue; }
      let s = 0;
      for (let e = 0; e < d.D; e++) s += q.data[(b * d.Sq + i) * d.D + e]! * k.data[(b * d.Sk + j) * d.D + e]!;
      row[j] = s * scale;
      m = Math.max(m, row[j]!);
    }
    let l = 0;
    for (let j = 0; j < d.Sk; j++) l += row[j] === -Infinity ? 0 : Math.exp(row[j]! - m);
    const z = m + Math.log(l);
    lse.data[b * d.Sq + i] = z;
    for (let j = 0; j < d.Sk; j++) {
      row[j] = row[j] === -Infinity ? 0 : Math.exp(row[j]! - z);
      for (let e = 0; e < d.Dv; e++) o.data[(b * d.Sq + i) * d.Dv + e] += row[j]! * v.data[(b * d.Sk + j) * d.Dv + e]!;
    }
  }
  return { o, lse, P };
}

const TQ = 64;

/** Keys (or queries) per tile so that the tiles fit in 32 KiB of workgroup memory. */
const tileOf = (floatsPerRow: number) => Math.max(1, Math.min(64, Math.floor(7680 / floatsPerRow)));

function gpuForward(rt: GpuRuntime, q: Tensor, k: Tensor, v: Tensor, causal: boolean, scale: number, d: AttnDims): Tensor[] {
  const op = 'attention';
  const o = rt.empty([...d.batch, d.Sq, d.Dv], 'f32', op), lse = rt.empty([...d.batch, d.Sq], 'f32', op);
  const TK = tileOf(d.D + d.Dv);
  const code = `${bindings([{ name: 'Q', type: 'f32' }, { name: 'K', type: 'f32' }, { name: 'V', type: 'f32' }, { name: 'O', type: 'f32', write: true }, { name: 'L', type: 'f32', write: true }])}
var<workgroup> Ks: array<f32, ${TK * d.D}>;
var<workgroup> Vs: array<f32, ${TK * d.Dv}>;
@compute @workgroup_size(${TQ}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let b = wid.y;
  let i = wid.x * ${TQ}u + lid.x;
  let valid = i < ${u32(d.Sq)};
  let qi = min(i, ${u32(d.Sq - 1)});
  var q: array<f32, ${d.D}>;
  for (var e = 0u; e < ${u32(d.D)}; e++) { q[e] = Q[(b * ${u32(d.Sq)} + qi) * ${u32(d.D)} + e] * ${f32(scale)}; }
  var acc: array<f32, ${d.Dv}>;
  var m = ${NEG_INF}; var l = 0.0;
  let kEnd = ${causal ? `min(${u32(d.Sk)}, wid.x * ${TQ}u + ${TQ}u)` : u32(d.Sk)};
  for (var j0 = 0u; j0 < kEnd; j0 += ${TK}u) {
    workgroupBarrier();
    for (var t = lid.x; t < ${u32(TK * d.D)}; t += ${TQ}u) { let j = j0 + t / ${u32(d.D)}; Ks[t] = select(0.0, K[(b * ${u32(d.Sk)} + j) * ${u32(d.D)} + t % ${u32(d.D)}], j < ${u32(d.Sk)}); }
    for (var t = lid.x; t < ${u32(TK * d.Dv)}; t += ${TQ}u) { let j = j0 + t / ${u32(d.Dv)}; Vs[t] = select(0.0, V[(b * ${u32(d.Sk)} + j) * ${u32(d.Dv)} + t % ${u32(d.Dv)}], j < ${u32(d.Sk)}); }
    workgroupBarrier();
    let jn = min(${u32(TK)}, ${u32(d.Sk)} - j0);
    for (var jj = 0u; jj < jn; jj++) {
      ${causal ? 'if (j0 + jj > qi) { break; }' : ''}
      var s = 0.0;
      for (var e = 0u; e < ${u32(d.D)}; e++) { s += q[e] * Ks[jj * ${u32(d.D)} + e]; }
      if (s > m) {
        let c = exp(m - s);
        l = l * c + 1.0;
        for (var e = 0u; e < ${u32(d.Dv)}; e++) { acc[e] = acc[e] * c + Vs[jj * ${u32(d.Dv)} + e]; }
        m = s;
      } else {
        let p = exp(s - m);
        l += p;
        for (var e = 0u; e < ${u32(d.Dv)}; e++) { acc[e] += p * Vs[jj * ${u32(d.Dv)} + e]; }
      }
    }
  }
  if (valid) {
    for (var e = 0u; e < ${u32(d.Dv)}; e++) { O[(b * ${u32(d.Sq)} + i) * ${u32(d.Dv)} + e] = acc[e] / l; }
    L[b * ${u32(d.Sq)} + i] = m + log(l);
  }
}`;
  if (d.Sq > 0 && d.B > 0) rt.dispatch(code, [q.buf(op), k.buf(op), v.buf(op), o.buf(op), lse.buf(op)], [Math.ceil(d.Sq / TQ), d.B]);
  return [o, lse];
}

function gpuBackward(rt: GpuRuntime, [q, k, v, o, lse, dO]: readonly Tensor[], causal: boolean, scale: number, d: AttnDims): Tensor[] {
  const op = 'attentionBackward';
  const dq = rt.empty(q!.shape, 'f32', op), dk = rt.empty(k!.shape, 'f32', op), dv = rt.empty(v!.shape, 'f32', op);
  if (d.B === 0) return [dq, dk, dv];
  const Dvec = rt.empty([d.B * d.Sq], 'f32', op);
  const { Sq, Sk, D, Dv } = d;
  // D_i = dO_i · O_i
  rt.dispatch(`${bindings([{ name: 'O', type: 'f32' }, { name: 'dO', type: 'f32' }, { name: 'Dv', type: 'f32', write: true }])}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= ${u32(d.B * Sq)}) { return; }
  var s = 0.0;
  for (var e = 0u; e < ${u32(Dv)}; e++) { s += dO[r * ${u32(Dv)} + e] * O[r * ${u32(Dv)} + e]; }
  Dv[r] = s;
}`, [o!.buf(op), dO!.buf(op), Dvec.buf(op)], [Math.ceil((d.B * Sq) / 64)]);
  // dQ_i = scale Σ_j P_ij (dO_i·v_j - D_i) k_j, one invocation per query row.
  const TK = tileOf(D + Dv);
  rt.dispatch(`${bindings([{ name: 'Q', type: 'f32' }, { name: 'K', type: 'f32' }, { name: 'V', type: 'f32' }, { name: 'L', type: 'f32' },
    { name: 'dO', type: 'f32' }, { name: 'Dd', type: 'f32' }, { name: 'dQ', type: 'f32', write: true }])}
var<workgroup> Ks: array<f32, ${TK * D}>;
var<workgroup> Vs: array<f32, ${TK * Dv}>;
@compute @workgroup_size(${TQ}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let b = wid.y;
  let i = wid.x * ${TQ}u + lid.x;
  let qi = min(i, ${u32(Sq - 1)});
  let row = b * ${u32(Sq)} + qi;
  var q: array<f32, ${D}>; var g: array<f32, ${Dv}>; var acc: array<f32, ${D}>;
  for (var e = 0u; e < ${u32(D)}; e++) { q[e] = Q[row * ${u32(D)} + e] * ${f32(scale)}; }
  for (var e = 0u; e < ${u32(Dv)}; e++) { g[e] = dO[row * ${u32(Dv)} + e]; }
  let z = L[row]; let Di = Dd[row];
  let kEnd = ${causal ? `min(${u32(Sk)}, wid.x * ${TQ}u + ${TQ}u)` : u32(Sk)};
  for (var j0 = 0u; j0 < kEnd; j0 += ${TK}u) {
    workgroupBarrier();
    for (var t = lid.x; t < ${u32(TK * D)}; t += ${TQ}u) { let j = j0 + t / ${u32(D)}; Ks[t] = select(0.0, K[(b * ${u32(Sk)} + j) * ${u32(D)} + t % ${u32(D)}], j < ${u32(Sk)}); }
    for (var t = lid.x; t < ${u32(TK * Dv)}; t += ${TQ}u) { let j = j0 + t / ${u32(Dv)}; Vs[t] = select(0.0, V[(b * ${u32(Sk)} + j) * ${u32(Dv)} + t % ${u32(Dv)}], j < ${u32(Sk)}); }
    workgroupBarrier();
    let jn = min(${u32(TK)}, ${u32(Sk)} - j0);
    for (var jj = 0u; jj < jn; jj++) {
      ${causal ? 'if (j0 + jj > qi) { break; }' : ''}
      var s = 0.0;
      for (var e = 0u; e < ${u32(D)}; e++) { s += q[e] * Ks[jj * ${u32(D)} + e]; }
      var dp = 0.0;
      for (var e = 0u; e < ${u32(Dv)}; e++) { dp += g[e] * Vs[jj * ${u32(Dv)} + e]; }
      let ds = exp(s - z) * (dp - Di);
      for (var e = 0u; e < ${u32(D)}; e++) { acc[e] += ds * Ks[jj * ${u32(D)} + e]; }
    }
  }
  if (i < ${u32(Sq)}) { for (var e = 0u; e < ${u32(D)}; e++) { dQ[row * ${u32(D)} + e] = acc[e] * ${f32(scale)}; } }
}`, [q!.buf(op), k!.buf(op), v!.buf(op), lse!.buf(op), dO!.buf(op), Dvec.buf(op), dq.buf(op)], [Math.ceil(Sq / TQ), d.B]);
  // dV_j = Σ_i P_ij dO_i and dK_j = scale Σ_i P_ij (dO_i·v_j - D_i) q_i, one invocation per key row.
  const TI = tileOf(D + Dv + 2);
  rt.dispatch(`${bindings([{ name: 'Q', type: 'f32' }, { name: 'K', type: 'f32' }, { name: 'V', type: 'f32' }, { name: 'L', type: 'f32' },
    { name: 'dO', type: 'f32' }, { name: 'Dd', type: 'f32' }, { name: 'dK', type: 'f32', write: true }, { name: 'dV', type: 'f32', write: true }])}
var<workgroup> Qs: array<f32, ${TI * D}>;
var<workgroup> Gs: array<f32, ${TI * Dv}>;
var<workgroup> Ls: array<f32, ${TI}>;
var<workgroup> Ds: array<f32, ${TI}>;
@compute @workgroup_size(${TQ}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let b = wid.y;
  let j = wid.x * ${TQ}u + lid.x;
  let kj = min(j, ${u32(Sk - 1)});
  let row = b * ${u32(Sk)} + kj;
  var kv: array<f32, ${D}>; var vv: array<f32, ${Dv}>; var ak: array<f32, ${D}>; var av: array<f32, ${Dv}>;
  for (var e = 0u; e < ${u32(D)}; e++) { kv[e] = K[row * ${u32(D)} + e]; }
  for (var e = 0u; e < ${u32(Dv)}; e++) { vv[e] = V[row * ${u32(Dv)} + e]; }
  let iStart = ${causal ? `(wid.x * ${TQ}u / ${u32(TI)}) * ${u32(TI)}` : '0u'};
  for (var i0 = iStart; i0 < ${u32(Sq)}; i0 += ${TI}u) {
    workgroupBarrier();
    for (var t = lid.x; t < ${u32(TI * D)}; t += ${TQ}u) { let i = i0 + t / ${u32(D)}; Qs[t] = select(0.0, Q[(b * ${u32(Sq)} + i) * ${u32(D)} + t % ${u32(D)}], i < ${u32(Sq)}); }
    for (var t = lid.x; t < ${u32(TI * Dv)}; t += ${TQ}u) { let i = i0 + t / ${u32(Dv)}; Gs[t] = select(0.0, dO[(b * ${u32(Sq)} + i) * ${u32(Dv)} + t % ${u32(Dv)}], i < ${u32(Sq)}); }
    for (var t = lid.x; t < ${u32(TI)}; t += ${TQ}u) { let i = min(i0 + t, ${u32(Sq - 1)}); Ls[t] = L[b * ${u32(Sq)} + i]; Ds[t] = Dd[b * ${u32(Sq)} + i]; }
    workgroupBarrier();
    let inum = min(${u32(TI)}, ${u32(Sq)} - i0);
    for (var ii = 0u; ii < inum; ii++) {
      ${causal ? 'if (kj > i0 + ii) { continue; }' : ''}
      var s = 0.0;
      for (var e = 0u; e < ${u32(D)}; e++) { s += Qs[ii * ${u32(D)} + e] * kv[e]; }
      let p = exp(s * ${f32(scale)} - Ls[ii]);
      var dp = 0.0;
      for (var e = 0u; e < ${u32(Dv)}; e++) { let gg = Gs[ii * ${u32(Dv)} + e]; dp += gg * vv[e]; av[e] += p * gg; }
      let ds = p * (dp - Ds[ii]) * ${f32(scale)};
      for (var e = 0u; e < ${u32(D)}; e++) { ak[e] += ds * Qs[ii * ${u32(D)} + e]; }
    }
  }
  if (j < ${u32(Sk)}) {
    for (var e = 0u; e < ${u32(D)}; e++) { dK[row * ${u32(D)} + e] = ak[e]; }
    for (var e = 0u; e < ${u32(Dv)}; e++) { dV[row * ${u32(Dv)} + e] = av[e]; }
  }
}`, [q!.buf(op), k!.buf(op), v!.buf(op), lse!.buf(op), dO!.buf(op), Dvec.buf(op), dk.buf(op), dv.buf(op)], [Math.ceil(Sk / TQ), d.B]);
  Dvec.dispose();
  return [dq, dk, dv];
}

/** Emits f(0) ... f(n-1) joined: the head dimension is unrolled so per-row vectors live in registers. */
const E = (n: number, f: (i: number) => string, sep = ' ') => Array.from({ length: n }, (_, i) => f(i)).join(sep);

/** Head dimensions that are multiples of 4: unrolled vec4 code (no private arrays, which SwiftShader spills). */
function gpuForward4(rt: GpuRuntime, q: Tensor, k: Tensor, v: Tensor, causal: boolean, scale: number, d: AttnDims): Tensor[] {
  const op = 'attention';
  const o = rt.empty([...d.batch, d.Sq, d.Dv], 'f32', op), lse = rt.empty([...d.batch, d.Sq], 'f32', op);
  const D4 = d.D / 4, V4 = d.Dv / 4;
  const TK = tileOf(d.D + d.Dv);
  const code = `${bindings([{ name: 'Q', type: 'vec4f' }, { name: 'K', type: 'vec4f' }, { name: 'V', type: 'vec4f' }, { name: 'O', type: 'vec4f', write: true }, { name: 'L', type: 'f32', write: true }])}
var<workgroup> Ks: array<vec4f, ${TK * D4}>;
var<workgroup> Vs: array<vec4f, ${TK * V4}>;
@compute @workgroup_size(${TQ}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let b = wid.y;
  let i = wid.x * ${TQ}u + lid.x;
  let qi = min(i, ${u32(d.Sq - 1)});
  let qrow = (b * ${u32(d.Sq)} + qi) * ${u32(D4)};
  ${E(D4, (e) => `let q${e} = Q[qrow + ${e}u] * ${f32(scale)};`)}
  ${E(V4, (e) => `var a${e} = vec4f(0.0);`)}
  var m = ${NEG_INF}; var l = 0.0;
  let kEnd = ${causal ? `min(${u32(d.Sk)}, wid.x * ${TQ}u + ${TQ}u)` : u32(d.Sk)};
  for (var j0 = 0u; j0 < kEnd; j0 += ${TK}u) {
    workgroupBarrier();
    for (var t = lid.x; t < ${u32(TK * D4)}; t += ${TQ}u) { let j = min(j0 + t / ${u32(D4)}, ${u32(d.Sk - 1)}); Ks[t] = K[(b * ${u32(d.Sk)} + j) * ${u32(D4)} + t % ${u32(D4)}]; }
    for (var t = lid.x; t < ${u32(TK * V4)}; t += ${TQ}u) { let j = min(j0 + t / ${u32(V4)}, ${u32(d.Sk - 1)}); Vs[t] = V[(b * ${u32(d.Sk)} + j) * ${u32(V4)} + t % ${u32(V4)}]; }
    workgroupBarrier();
    let jn = min(${u32(TK)}, ${u32(d.Sk)} - j0);
    for (var jj = 0u; jj < jn; jj++) {
      ${causal ? 'if (j0 + jj > qi) { break; }' : ''}
      let kb = jj * ${u32(D4)}; let vb = jj * ${u32(V4)};
      let s = ${E(D4, (e) => `dot(q${e}, Ks[kb + ${e}u])`, ' + ')};
      if (s > m) {
        let c = exp(m - s);
        l = l * c + 1.0;
        ${E(V4, (e) => `a${e} = a${e} * c + Vs[vb + ${e}u];`)}
        m = s;
      } else {
        let p = exp(s - m);
        l += p;
        ${E(V4, (e) => `a${e} += p * Vs[vb + ${e}u];`)}
      }
    }
  }
  if (i < ${u32(d.Sq)}) {
    let orow = (b * ${u32(d.Sq)} + i) * ${u32(V4)};
    ${E(V4, (e) => `O[orow + ${e}u] = a${e} / l;`)}
    L[b * ${u32(d.Sq)} + i] = m + log(l);
  }
}`;
  if (d.Sq > 0 && d.B > 0) rt.dispatch(code, [q.buf(op), k.buf(op), v.buf(op), o.buf(op), lse.buf(op)], [Math.ceil(d.Sq / TQ), d.B]);
  return [o, lse];
}

function gpuBackward4(rt: GpuRuntime, [q, k, v, o, lse, dO]: readonly Tensor[], causal: boolean, scale: number, d: AttnDims): Tensor[] {
  const op = 'attentionBackward';
  const dq = rt.empty(q!.shape, 'f32', op), dk = rt.empty(k!.shape, 'f32', op), dv = rt.empty(v!.shape, 'f32', op);
  if (d.B === 0) return [dq, dk, dv];
  const { Sq, Sk } = d;
  const D4 = d.D / 4, V4 = d.Dv / 4;
  const Dvec = rt.empty([d.B * Sq], 'f32', op);
  rt.dispatch(`${bindings([{ name: 'O', type: 'vec4f' }, { name: 'dO', type: 'vec4f' }, { name: 'Dv', type: 'f32', write: true }])}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  if (r >= ${u32(d.B * Sq)}) { return; }
  Dv[r] = ${E(V4, (e) => `dot(dO[r * ${u32(V4)} + ${e}u], O[r * ${u32(V4)} + ${e}u])`, ' + ')};
}`, [o!.buf(op), dO!.buf(op), Dvec.buf(op)], [Math.ceil((d.B * Sq) / 64)]);
  const TK = tileOf(d.D + d.Dv);
  rt.dispatch(`${bindings([{ name: 'Q', type: 'vec4f' }, { name: 'K', type: 'vec4f' }, { name: 'V', type: 'vec4f' }, { name: 'L', type: 'f32' },
    { name: 'dO', type: 'vec4f' }, { name: 'Dd', type: 'f32' }, { name: 'dQ', type: 'vec4f', write: true }])}
var<workgroup> Ks: array<vec4f, ${TK * D4}>;
var<workgroup> Vs: array<vec4f, ${TK * V4}>;
@compute @workgroup_size(${TQ}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let b = wid.y;
  let i = wid.x * ${TQ}u + lid.x;
  let qi = min(i, ${u32(Sq - 1)});
  let row = b * ${u32(Sq)} + qi;
  ${E(D4, (e) => `let q${e} = Q[row * ${u32(D4)} + ${e}u] * ${f32(scale)}; var a${e} = vec4f(0.0);`)}
  ${E(V4, (e) => `let g${e} = dO[row * ${u32(V4)} + ${e}u];`)}
  let z = L[row]; let Di = Dd[row];
  let kEnd = ${causal ? `min(${u32(Sk)}, wid.x * ${TQ}u + ${TQ}u)` : u32(Sk)};
  for (var j0 = 0u; j0 < kEnd; j0 += ${TK}u) {
    workgroupBarrier();
    for (var t = lid.x; t < ${u32(TK * D4)}; t += ${TQ}u) { let j = min(j0 + t / ${u32(D4)}, ${u32(Sk - 1)}); Ks[t] = K[(b * ${u32(Sk)} + j) * ${u32(D4)} + t % ${u32(D4)}]; }
    for (var t = lid.x; t < ${u32(TK * V4)}; t += ${TQ}u) { let j = min(j0 + t / ${u32(V4)}, ${u32(Sk - 1)}); Vs[t] = V[(b * ${u32(Sk)} + j) * ${u32(V4)} + t % ${u32(V4)}]; }
    workgroupBarrier();
    let jn = min(${u32(TK)}, ${u32(Sk)} - j0);
    for (var jj = 0u; jj < jn; jj++) {
      ${causal ? 'if (j0 + jj > qi) { break; }' : ''}
      let kb = jj * ${u32(D4)}; let vb = jj * ${u32(V4)};
      let s = ${E(D4, (e) => `dot(q${e}, Ks[kb + ${e}u])`, ' + ')};
      let dp = ${E(V4, (e) => `dot(g${e}, Vs[vb + ${e}u])`, ' + ')};
      let ds = exp(s - z) * (dp - Di);
      ${E(D4, (e) => `a${e} += ds * Ks[kb + ${e}u];`)}
    }
  }
  if (i < ${u32(Sq)}) { ${E(D4, (e) => `dQ[row * ${u32(D4)} + ${e}u] = a${e} * ${f32(scale)};`)} }
}`, [q!.buf(op), k!.buf(op), v!.buf(op), lse!.buf(op), dO!.buf(op), Dvec.buf(op), dq.buf(op)], [Math.ceil(Sq / TQ), d.B]);
  const TI = tileOf(d.D + d.Dv + 2);
  rt.dispatch(`${bindings([{ name: 'Q', type: 'vec4f' }, { name: 'K', type: 'vec4f' }, { name: 'V', type: 'vec4f' }, { name: 'L', type: 'f32' },
    { name: 'dO', type: 'vec4f' }, { name: 'Dd', type: 'f32' }, { name: 'dK', type: 'vec4f', write: true }, { name: 'dV', type: 'vec4f', write: true }])}
var<workgroup> Qs: array<vec4f, ${TI * D4}>;
var<workgroup> Gs: array<vec4f, ${TI * V4}>;
var<workgroup> Ls: array<f32, ${TI}>;
var<workgroup> Ds: array<f32, ${TI}>;
@compute @workgroup_size(${TQ}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let b = wid.y;
  let j = wid.x * ${TQ}u + lid.x;
  let kj = min(j, ${u32(Sk - 1)});
  let row = b * ${u32(Sk)} + kj;
  ${E(D4, (e) => `let k${e} = K[row * ${u32(D4)} + ${e}u]; var ak${e} = vec4f(0.0);`)}
  ${E(V4, (e) => `let v${e} = V[row * ${u32(V4)} + ${e}u]; var av${e} = vec4f(0.0);`)}
  let iStart = ${causal ? `(wid.x * ${TQ}u / ${u32(TI)}) * ${u32(TI)}` : '0u'};
  for (var i0 = iStart; i0 < ${u32(Sq)}; i0 += ${TI}u) {
    workgroupBarrier();
    for (var t = lid.x; t < ${u32(TI * D4)}; t += ${TQ}u) { let i = min(i0 + t / ${u32(D4)}, ${u32(Sq - 1)}); Qs[t] = Q[(b * ${u32(Sq)} + i) * ${u32(D4)} + t % ${u32(D4)}]; }
    for (var t = lid.x; t < ${u32(TI * V4)}; t += ${TQ}u) { let i = min(i0 + t / ${u32(V4)}, ${u32(Sq - 1)}); Gs[t] = dO[(b * ${u32(Sq)} + i) * ${u32(V4)} + t % ${u32(V4)}]; }
    for (var t = lid.x; t < ${u32(TI)}; t += ${TQ}u) { let i = min(i0 + t, ${u32(Sq - 1)}); Ls[t] = L[b * ${u32(Sq)} + i]; Ds[t] = Dd[b * ${u32(Sq)} + i]; }
    workgroupBarrier();
    let inum = min(${u32(TI)}, ${u32(Sq)} - i0);
    for (var ii = 0u; ii < inum; ii++) {
      ${causal ? 'if (kj > i0 + ii) { continue; }' : ''}
      let qb = ii * ${u32(D4)}; let gb = ii * ${u32(V4)};
      let s = ${E(D4, (e) => `dot(Qs[qb + ${e}u], k${e})`, ' + ')};
      let p = exp(s * ${f32(scale)} - Ls[ii]);
      let dp = ${E(V4, (e) => `dot(Gs[gb + ${e}u], v${e})`, ' + ')};
      ${E(V4, (e) => `av${e} += p * Gs[gb + ${e}u];`)}
      let ds = p * (dp - Ds[ii]) * ${f32(scale)};
      ${E(D4, (e) => `ak${e} += ds * Qs[qb + ${e}u];`)}
    }
  }
  if (j < ${u32(Sk)}) {
    ${E(D4, (e) => `dK[row * ${u32(D4)} + ${e}u] = ak${e};`)}
    ${E(V4, (e) => `dV[row * ${u32(V4)} + ${e}u] = av${e};`)}
  }
}`, [q!.buf(op), k!.buf(op), v!.buf(op), lse!.buf(op), dO!.buf(op), Dvec.buf(op), dk.buf(op), dv.buf(op)], [Math.ceil(Sk / TQ), d.B]);
  Dvec.dispose();
  return [dq, dk, dv];
}

const aligned = (d: AttnDims) => d.D % 4 === 0 && d.Dv % 4 === 0 && d.D <= 128 && d.Dv <= 128;

/**
 * Short sequences: materialise S = QKᵀ per head and use the register-blocked matmuls (7 GEMMs for forward and
 * backward), which beat the flash-style kernels when Sq·Sk is small. Backward still recomputes P from the saved
 * logsumexp; nothing of size Sq·Sk is kept between forward and backward.
 */
const materialise = (d: AttnDims) => d.D % 4 === 0 && d.Dv % 4 === 0 && d.Sk % 4 === 0 && d.Sq * d.Sk <= 256 * 256 && d.B * d.Sq * d.Sk <= 1 << 22;

function mm(rt: GpuRuntime, a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  const [B, ra, ca] = a.shape as [number, number, number];
  const [, rb, cb] = b.shape as [number, number, number];
  const shape = [B, transA ? ca : ra, transB ? rb : cb];
  return matmulOps.matmul.webgpu(rt, [a, b], { transA, transB }, [{ shape, dtype: 'f32' }])[0]!;
}

/**
 * P = softmax(scale · S) row by row and the rows' logsumexp, one invocation per row (Sk is a multiple of 4: vec4
 * loads): three sweeps over a row that stays in cache (max, sum of exp, write), no workgroup memory or barriers.
 */
function rowSoftmax(rt: GpuRuntime, S: Tensor, P: Tensor, lse: Tensor, causal: boolean, scale: number, d: AttnDims): void {
  const op = 'attention';
  const K4 = d.Sk / 4;
  // Lanes j >= jEnd are masked out (causal); the vec4 of lane indices j4·4 + (0, 1, 2, 3) is compared against it.
  const masked = causal ? `let live = vec4u(j4 * 4u) + vec4u(0u, 1u, 2u, 3u) < vec4u(jEnd);` : 'let live = vec4<bool>(true);';
  rt.dispatch(`${bindings([{ name: 'S', type: 'vec4f' }, { name: 'P', type: 'vec4f', write: true }, { name: 'L', type: 'f32', write: true }])}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= ${u32(d.B * d.Sq)}) { return; }
  let jEnd = ${causal ? `min(row % ${u32(d.Sq)} + 1u, ${u32(d.Sk)})` : u32(d.Sk)};
  let j4End = (jEnd + 3u) / 4u;
  let base = row * ${u32(K4)};
  var m4 = vec4f(${NEG_INF});
  for (var j4 = 0u; j4 < j4End; j4++) { ${masked} m4 = select(m4, max(m4, S[base + j4] * ${f32(scale)}), live); }
  let m = max(max(m4.x, m4.y), max(m4.z, m4.w));
  var l4 = vec4f(0.0);
  for (var j4 = 0u; j4 < j4End; j4++) { ${masked} l4 += select(vec4f(0.0), exp(S[base + j4] * ${f32(scale)} - m), live); }
  let z = m + log(l4.x + l4.y + l4.z + l4.w);
  for (var j4 = 0u; j4 < ${u32(K4)}; j4++) { ${masked} P[base + j4] = select(vec4f(0.0), exp(S[base + j4] * ${f32(scale)} - z), live); }
  L[row] = z;
}`, [S.buf(op), P.buf(op), lse.buf(op)], grid(d.B * d.Sq, 64));
}

/** The same with one workgroup per row: a tree of (max, sum of exp) pairs in workgroup memory. */
function workgroupSoftmax(rt: GpuRuntime, S: Tensor, P: Tensor, lse: Tensor, causal: boolean, scale: number, d: AttnDims): void {
  const op = 'attention';
  const WGR = 64;
  rt.dispatch(`${bindings([{ name: 'S', type: 'f32' }, { name: 'P', type: 'f32', write: true }, { name: 'L', type: 'f32', write: true }])}
var<workgroup> sm: array<f32, ${WGR}>;
var<workgroup> sl: array<f32, ${WGR}>;
@compute @workgroup_size(${WGR}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= ${u32(d.B * d.Sq)}) { return; }
  let i = row % ${u32(d.Sq)};
  let t = lid.x;
  let jEnd = ${causal ? `min(i + 1u, ${u32(d.Sk)})` : u32(d.Sk)};
  var m = ${NEG_INF}; var l = 0.0;
  for (var j = t; j < jEnd; j += ${WGR}u) {
    let v = S[row * ${u32(d.Sk)} + j] * ${f32(scale)};
    if (v > m) { l = l * exp(m - v) + 1.0; m = v; } else { l += exp(v - m); }
  }
  ${workgroupMaxSumExp(WGR)}
  let z = sm[0] + log(sl[0]);
  for (var j = t; j < ${u32(d.Sk)}; j += ${WGR}u) {
    let o = row * ${u32(d.Sk)} + j;
    P[o] = select(exp(S[o] * ${f32(scale)} - z), 0.0, j >= jEnd);
  }
  if (t == 0u) { L[row] = z; }
}`, [S.buf(op), P.buf(op), lse.buf(op)], grid(d.B * d.Sq, 1));
}

function shortForward(rt: GpuRuntime, q: Tensor, k: Tensor, v: Tensor, causal: boolean, scale: number, d: AttnDims): Tensor[] {
  const op = 'attention';
  const q3 = q.reshape([d.B, d.Sq, d.D]), k3 = k.reshape([d.B, d.Sk, d.D]), v3 = v.reshape([d.B, d.Sk, d.Dv]);
  const S = mm(rt, q3, k3, false, true);
  const lse = rt.empty([...d.batch, d.Sq], 'f32', op);
  const P = rt.empty([d.B, d.Sq, d.Sk], 'f32', op);
  (rt.rowPerInvocation ? rowSoftmax : workgroupSoftmax)(rt, S, P, lse, causal, scale, d);
  const o3 = mm(rt, P, v3, false, false);
  const o = o3.reshape([...d.batch, d.Sq, d.Dv]);
  for (const t of [q3, k3, v3, S, P, o3]) t.dispose();
  return [o, lse];
}

function shortBackward(rt: GpuRuntime, [q, k, v, o, lse, dO]: readonly Tensor[], causal: boolean, scale: number, d: AttnDims): Tensor[] {
  const op = 'attentionBackward';
  const q3 = q!.reshape([d.B, d.Sq, d.D]), k3 = k!.reshape([d.B, d.Sk, d.D]), v3 = v!.reshape([d.B, d.Sk, d.Dv]);
  const g3 = dO!.reshape([d.B, d.Sq, d.Dv]);
  const S = mm(rt, q3, k3, false, true);
  const dP = mm(rt, g3, v3, false, true);
  const P = rt.empty([d.B, d.Sq, d.Sk], 'f32', op), dS = rt.empty([d.B, d.Sq, d.Sk], 'f32', op);
  const V4 = d.Dv / 4;
  // P = exp(s·scale - lse) (masked), dS = scale · P ⊙ (dP - D_i) with D_i = dO_i·O_i; one invocation per row.
  rt.dispatch(`${bindings([{ name: 'S', type: 'f32' }, { name: 'dP', type: 'f32' }, { name: 'L', type: 'f32' }, { name: 'O', type: 'vec4f' },
    { name: 'G', type: 'vec4f' }, { name: 'P', type: 'f32', write: true }, { name: 'dS', type: 'f32', write: true }])}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row = gid.x;
  if (row >= ${u32(d.B * d.Sq)}) { return; }
  let i = row % ${u32(d.Sq)};
  var di = 0.0;
  for (var e = 0u; e < ${u32(V4)}; e++) { di += dot(O[row * ${u32(V4)} + e], G[row * ${u32(V4)} + e]); }
  let z = L[row];
  for (var j = 0u; j < ${u32(d.Sk)}; j++) {
    let o = row * ${u32(d.Sk)} + j;
    let p = ${causal ? 'select(exp(S[o] * ' + f32(scale) + ' - z), 0.0, j > i)' : `exp(S[o] * ${f32(scale)} - z)`};
    P[o] = p;
    dS[o] = p * (dP[o] - di) * ${f32(scale)};
  }
}`, [S.buf(op), dP.buf(op), lse!.buf(op), o!.buf(op), dO!.buf(op), P.buf(op), dS.buf(op)], [Math.ceil((d.B * d.Sq) / 64)]);
  const dq3 = mm(rt, dS, k3, false, false), dk3 = mm(rt, dS, q3, true, false), dv3 = mm(rt, P, g3, true, false);
  const out = [dq3.reshape(q!.shape), dk3.reshape(k!.shape), dv3.reshape(v!.shape)];
  for (const t of [q3, k3, v3, g3, S, dP, P, dS, dq3, dk3, dv3]) t.dispose();
  return out;
}

export const attentionOps = {
  attention: {
    name: 'attention',
    infer([q, k, v]) {
      const d = attnDims('attention', q!, k!, v!);
      return [{ shape: [...d.batch, d.Sq, d.Dv], dtype: 'f32' }, { shape: [...d.batch, d.Sq], dtype: 'f32' }];
    },
    reference([q, k, v], { causal = false, scale }) {
      const d = attnDims('attention', q!, k!, v!);
      const r = refAttention(q!, k!, v!, causal, scaleOf(d, scale), d);
      return [r.o, r.lse];
    },
    webgpu(rt, [q, k, v], { causal = false, scale }) {
      const d = attnDims('attention', q!, k!, v!);
      return (materialise(d) && rt.shortAttention ? shortForward : aligned(d) ? gpuForward4 : gpuForward)(rt, q!, k!, v!, causal, scaleOf(d, scale), d);
    },
    saves: 'q, k, v, the output and the per-row logsumexp (second output); not the attention weights',
    pullback: (x, { inputs: [q, k, v], outputs: [o, lse], attrs, cot: [g] }) =>
      x.op('attentionBackward', [q!, k!, v!, o!, lse!, g!], attrs),
  },
  attentionBackward: {
    name: 'attentionBackward',
    infer([q, k, v, o, lse, g]) {
      const op = 'attentionBackward';
      const d = attnDims(op, q!, k!, v!);
      const os = fmt([...d.batch, d.Sq, d.Dv]);
      if (fmt(o!.shape) !== os || fmt(g!.shape) !== os) throw new OpError(op, `out ${describe(o!)} and dout ${describe(g!)} must be ${os}`);
      if (fmt(lse!.shape) !== fmt([...d.batch, d.Sq])) throw new OpError(op, `lse ${describe(lse!)} must be ${fmt([...d.batch, d.Sq])}`);
      return [{ shape: q!.shape, dtype: 'f32' }, { shape: k!.shape, dtype: 'f32' }, { shape: v!.shape, dtype: 'f32' }];
    },
    reference([q, k, v, o, , g], { causal = false, scale }) {
      const d = attnDims('attentionBackward', q!, k!, v!);
      const sc = scaleOf(d, scale);
      const { P } = refAttention(q!, k!, v!, causal, sc, d);
      const dq = hostZeros(q!.shape), dk = hostZeros(k!.shape), dv = hostZeros(v!.shape);
      for (let b = 0; b < d.B; b++) for (let i = 0; i < d.Sq; i++) {
        let Di = 0;
        for (let e = 0; e < d.Dv; e++) Di += g!.data[(b * d.Sq + i) * d.Dv + e]! * o!.data[(b * d.Sq + i) * d.Dv + e]!;
        for (let j = 0; j < d.Sk; j++) {
          const p = P[(b * d.Sq + i) * d.Sk + j]!;
          let dp = 0;
          for (let e = 0; e < d.Dv; e++) {
            dp += g!.data[(b * d.Sq + i) * d.Dv + e]! * v!.data[(b * d.Sk + j) * d.Dv + e]!;
            dv.data[(b * d.Sk + j) * d.Dv + e] += p * g!.data[(b * d.Sq + i) * d.Dv + e]!;
          }
          const ds = p * (dp - Di) * sc;
          for (let e = 0; e < d.D; e++) {
            dq.data[(b * d.Sq + i) * d.D + e] += ds * k!.data[(b * d.Sk + j) * d.D + e]!;
            dk.data[(b * d.Sk + j) * d.D + e] += ds * q!.data[(b * d.Sq + i) * d.D + e]!;
          }
        }
      }
      return [dq, dk, dv];
    },
    webgpu(rt, ins, { causal = false, scale }) {
      const d = attnDims('attentionBackward', ins[0]!, ins[1]!, ins[2]!);
      return (materialise(d) && rt.shortAttention ? shortBackward : aligned(d) ? gpuBackward4 : gpuBackward)(rt, ins, causal, scaleOf(d, scale), d);
    },
    saves: '-',
    pullback: null,
  },
} satisfies Family<'attention' | 'attentionBackward'>;
