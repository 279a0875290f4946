// SPDX-License-Identifier: MIT
// Direct convolution kernels for SwiftShader, where an invocation is a SIMD lane of a CPU thread and every load is a
// gather: the implicit GEMMs of ops/conv.ts redo the im2col index arithmetic for every element of every K step;
// these hoist it and compute larger output blocks per invocation. The filter is first repacked channel-last and
// padded, so that one vec4 load brings four output channels and no load needs a bounds check.
//
// correlate: y[n, o, oh, ow] = Σ_{c, kh, kw} x[n, c, oh·sh + kh + offH, ow·sw + kw + offW] · w'(o, c, kh, kw), zero
// outside x. Each invocation computes a block of PH output rows by 4 consecutive ow for R output channels; per input
// channel it loads the input values those outputs need once (rows × (3·sw + KW)) and reuses them across taps.
// On SwiftShader every component load is a gather, whatever its pattern, so the block is sized to maximise FMAs
// per loaded value (measured: PH 4, R 8 about 2x PH 1, R 8 on [32,16,28,28] ⊛ [32,16,3,3]); the accumulators
// spill, which costs less than the loads they save. The forward convolution is the case
// w' = w, off = -padding; backward to the input with stride 1 is the case w'(ci, co, a, b) = w[co, ci, KH-1-a,
// KW-1-b] (the flipped filter), off = padding - (kernel - 1).
//
// filterGrad: dw[o, c, kh, kw] = Σ_{n, oh, ow} dy[n, o, oh, ow] · x[n, c, oh·sh + kh - ph, ow·sw + kw - pw]; each
// invocation owns (c, up to 16 output channels) and keeps all KH·KW taps' sums, walking 4 ow at a time; the batch
// is split in chunks whose partial sums a second kernel adds in order (deterministic, no atomics).
import type { GpuRuntime } from './runtime.js';
import { bindings, grid, u32 } from './wgsl.js';

export interface CorrelateSpec {
  N: number; C: number; H: number; W: number; O: number; OH: number; OW: number; KH: number; KW: number;
  sh: number; sw: number; offH: number; offW: number;
  /** The filter is [O, C, KH, KW] (forward) or [C, O, KH, KW] read flipped (backward to the input). */
  flipped: boolean;
}

const range = (n: number) => [...Array(n).keys()];

/** Repacks the filter to wp[((c·KH + kh)·KW + kw)·Op + o] (Op = O rounded up to R; zeros past O). */
function repackFilter(rt: GpuRuntime, op: string, w: GPUBuffer, s: CorrelateSpec, Op: number) {
  const KK = s.KH * s.KW;
  const total = s.C * KK * Op;
  const wp = rt.empty([total], 'f32', op);
  const src = s.flipped ? `(c * ${u32(s.O)} + o) * ${u32(KK)} + ${u32(KK - 1)} - t` : `(o * ${u32(s.C)} + c) * ${u32(KK)} + t`;
  rt.dispatch(`${bindings([{ name: 'w', type: 'f32' }, { name: 'wp', type: 'f32', write: true }])}
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= ${u32(total)}) { return; }
  let o = i % ${u32(Op)}; let ct = i / ${u32(Op)}; let c = ct / ${u32(KK)}; let t = ct % ${u32(KK)};
  wp[i] = select(0.0, w[min(${src}, ${u32(s.C * s.O * KK - 1)})], o < ${u32(s.O)});
}`, [w, wp.buf(op)], grid(total));
  return wp;
}

export function correlate(rt: GpuRuntime, op: string, x: GPUBuffer, w: GPUBuffer, y: GPUBuffer, s: CorrelateSpec): void {
  const R = s.O >= 8 ? 8 : 4, R4 = R / 4;
  // Up to 4 output rows per invocation, fewer for large filters (the taps are unrolled: PH·KH·KW·4·R/4 FMAs).
  const PH = Math.max(1, Math.min(4, s.OH, Math.floor(36 / (s.KH * s.KW))));
  const Op = Math.ceil(s.O / R) * R, Op4 = Op / 4;
  const OW4 = Math.ceil(s.OW / 4), OHB = Math.ceil(s.OH / PH);
  const U = 3 * s.sw + s.KW;
  const rows = (PH - 1) * s.sh + s.KH;
  const total = s.N * OHB * OW4;
  if (total === 0 || s.O === 0) return;
  const wp = repackFilter(rt, op, w, s, Op);
  const acc = (p: number, j: number, r: number) => `a${p}_${j}_${r}`;
  // Per input channel: the rows·U input values all outputs of this invocation need, then each filter row's taps.
  const body: string[] = [];
  for (let r = 0; r < rows; r++) {
    body.push(`let ih${r} = ih0 + ${r}i; let rk${r} = ih${r} >= 0i && ih${r} < ${s.H}i; let rb${r} = plane + u32(clamp(ih${r}, 0i, ${s.H - 1}i)) * ${u32(s.W)};`);
    body.push(range(U).map((u) => `let x${r}_${u} = select(0.0, X[rb${r} + cc${u}], rk${r} && ok${u});`).join(' '));
  }
  for (let kh = 0; kh < s.KH; kh++) {
    for (let kw = 0; kw < s.KW; kw++) {
      const ws = range(R4).map((q) => `let w${q} = Wp[wb + ${u32((kh * s.KW + kw) * Op4 + q)}];`).join(' ');
      const fm = range(PH).flatMap((p) => range(4).flatMap((j) => range(R4).map((q) => `${acc(p, j, q)} += x${p * s.sh + kh}_${j * s.sw + kw} * w${q};`))).join(' ');
      body.push(`{ ${ws} ${fm} }`);
    }
  }
  const code = `${bindings([{ name: 'X', type: 'f32' }, { name: 'Wp', type: 'vec4f' }, { name: 'Y', type: 'f32', write: true }])}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= ${u32(total)}) { return; }
  let ob = wid.z;
  let owb = (i % ${u32(OW4)}) * 4u; let t = i / ${u32(OW4)}; let ohb = (t % ${u32(OHB)}) * ${u32(PH)}; let n = t / ${u32(OHB)};
  let iw0 = i32(owb * ${u32(s.sw)}) + ${s.offW}i;
  let ih0 = i32(ohb * ${u32(s.sh)}) + ${s.offH}i;
  ${range(U).map((u) => `let ok${u} = iw0 + ${u}i >= 0i && iw0 + ${u}i < ${s.W}i; let cc${u} = u32(clamp(iw0 + ${u}i, 0i, ${s.W - 1}i));`).join('\n  ')}
  ${range(PH).map((p) => range(4).map((j) => range(R4).map((q) => `var ${acc(p, j, q)} = vec4f(0.0);`).join(' ')).join(' ')).join('\n  ')}
  for (var c = 0u; c < ${u32(s.C)}; c++) {
    let plane = (n * ${u32(s.C)} + c) * ${u32(s.H)} * ${u32(s.W)};
    let wb = c * ${u32(s.KH * s.KW * Op4)} + ob * ${u32(R4)};
    ${body.join('\n    ')}
  }
  ${range(PH).flatMap((p) => range(4).map((j) => `if (ohb + ${p}u < ${u32(s.OH)} && owb + ${j}u < ${u32(s.OW)}) {
    let yb = (n * ${u32(s.O)} + ob * ${u32(R)}) * ${u32(s.OH * s.OW)} + (ohb + ${p}u) * ${u32(s.OW)} + owb + ${j}u;
    ${range(R).map((e) => `if (ob * ${u32(R)} + ${u32(e)} < ${u32(s.O)}) { Y[yb + ${u32(e * s.OH * s.OW)}] = ${acc(p, j, e >> 2)}[${e & 3}]; }`).join(' ')}
  }`)).join('\n  ')}
}`;
  const [gx, gy] = grid(total, 64);
  rt.dispatch(code, [x, wp.buf(op), y], [gx, gy, Op / R]);
  wp.dispose();
}

export interface FilterGradSpec {
  N: number; Ci: number; H: number; W: number; Co: number; OH: number; OW: number; KH: number; KW: number;
  sh: number; sw: number; ph: number; pw: number;
}

export function filterGrad(rt: GpuRuntime, op: string, dy: GPUBuffer, x: GPUBuffer, dw: GPUBuffer, s: FilterGradSpec): void {
  const { N, Ci, H, W, Co, OH, OW, KH, KW, sh, sw, ph, pw } = s;
  // Up to 16 output channels per invocation for small filters (KH·KW·R/4 vec4 sums live per invocation).
  const R = Co >= 16 && KH * KW <= 9 ? 16 : Co >= 8 && KH * KW <= 25 ? 8 : 4, R4 = R / 4;
  const Op = Math.ceil(Co / R) * R, OHW = OH * OW, OW4 = Math.ceil(OW / 4);
  const U = 3 * sw + KW;
  // Invocations: (c, R output channels) with c fastest, each keeping all KH·KW taps; batch chunks on wid.z.
  const inv = Ci * (Op / R);
  const groups = Math.ceil(inv / 64);
  const chunks = Math.min(N, Math.max(1, Math.ceil(64 / groups)));
  const per = Math.ceil(N / chunks), splits = Math.ceil(N / per);
  const outN = Co * Ci * KH * KW;
  const part = splits > 1 ? rt.empty([splits * outN], 'f32', op) : null;
  const target = part ? 'P' : 'DW';
  const acc = (kh: number, kw: number, q: number) => `a${kh}_${kw}_${q}`;
  const code = `${bindings([{ name: 'DY', type: 'f32' }, { name: 'X', type: 'f32' }, { name: target, type: 'f32', write: true }])}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let i = gid.x;
  if (i >= ${u32(inv)}) { return; }
  let c = i % ${u32(Ci)}; let ob = i / ${u32(Ci)};
  let sp = wid.z;
  ${range(R).map((e) => `let ch${e} = min(ob * ${u32(R)} + ${u32(e)}, ${u32(Co - 1)}) * ${u32(OHW)};`).join(' ')}
  ${range(KH).map((kh) => range(KW).map((kw) => range(R4).map((q) => `var ${acc(kh, kw, q)} = vec4f(0.0);`).join(' ')).join(' ')).join('\n  ')}
  for (var n = sp * ${u32(per)}; n < min(${u32(N)}, sp * ${u32(per)} + ${u32(per)}); n++) {
    let plane = (n * ${u32(Ci)} + c) * ${u32(H * W)};
    for (var oh = 0u; oh < ${u32(OH)}; oh++) {
      let ih0 = i32(oh * ${u32(sh)}) - ${ph}i;
      ${range(KH).map((kh) => `let rk${kh} = ih0 + ${kh}i >= 0i && ih0 + ${kh}i < ${H}i; let rb${kh} = plane + u32(clamp(ih0 + ${kh}i, 0i, ${H - 1}i)) * ${u32(W)};`).join('\n      ')}
      let db = n * ${u32(Co * OHW)} + oh * ${u32(OW)};
      for (var owb = 0u; owb < ${u32(OW4 * 4)}; owb += 4u) {
        let iw0 = i32(owb * ${u32(sw)}) - ${pw}i;
        ${range(U).map((u) => `let ok${u} = iw0 + ${u}i >= 0i && iw0 + ${u}i < ${W}i; let cc${u} = u32(clamp(iw0 + ${u}i, 0i, ${W - 1}i));`).join(' ')}
        ${range(4).map((j) => `let p${j} = db + min(owb + ${j}u, ${u32(OW - 1)});
        ${range(R4).map((q) => `let d${j}_${q} = select(vec4f(0.0), vec4f(${range(4).map((e) => `DY[p${j} + ch${4 * q + e}]`).join(', ')}), owb + ${j}u < ${u32(OW)});`).join(' ')}`).join('\n        ')}
        ${range(KH).map((kh) => `{ ${range(U).map((u) => `let x${u} = select(0.0, X[rb${kh} + cc${u}], rk${kh} && ok${u});`).join(' ')}
          ${range(KW).map((kw) => range(R4).map((q) => `${acc(kh, kw, q)} += ${range(4).map((j) => `x${j * sw + kw} * d${j}_${q}`).join(' + ')};`).join(' ')).join('\n          ')} }`).join('\n        ')}
      }
    }
  }
  ${range(KH).flatMap((kh) => range(KW).map((kw) => range(R).map((e) => `if (ob * ${u32(R)} + ${u32(e)} < ${u32(Co)}) { ${target}[${part ? `sp * ${u32(outN)} + ` : ''}((ob * ${u32(R)} + ${u32(e)}) * ${u32(Ci)} + c) * ${u32(KH * KW)} + ${u32(kh * KW + kw)}] = ${acc(kh, kw, e >> 2)}[${e & 3}]; }`).join(' '))).join('\n  ')}
}`;
  rt.dispatch(code, [dy, x, part ? part.buf(op) : dw], [groups, 1, splits]);
  if (part) {
    rt.dispatch(`${bindings([{ name: 'P', type: 'f32' }, { name: 'DW', type: 'f32', write: true }])}
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= ${u32(outN)}) { return; }
  var v = 0.0;
  for (var sp = 0u; sp < ${u32(splits)}; sp++) { v += P[sp * ${u32(outN)} + i]; }
  DW[i] = v;
}`, [part.buf(op), dw], grid(outN));
    part.dispose();
  }
}
