// SPDX-License-Identifier: MIT
// 2-D convolution (NCHW input, OIHW filter) with stride and zero padding, as implicit GEMMs on the shared tiled
// kernel: forward (M = Co, N = batch·OH·OW, K = Ci·KH·KW), backward to the input (a transposed convolution,
// M = Ci, N = batch·H·W, K = Co·KH·KW) and backward to the filter (M = Co, N = Ci·KH·KW, K = batch·OH·OW,
// split over K when the output is small), on real GPUs; on SwiftShader (rt.tiledGemm false) direct kernels
// (convdirect.ts), except backward to the input with a stride, which stays an implicit GEMM. Max pooling saves the argmax; its backward gathers, per input element,
// the windows whose argmax it is (deterministic, no atomics).
import { OpError, describe, expectDtype, expectRank, type Meta } from '../shape.js';
import { hostZeros } from '../host.js';
import { gemm } from '../gemm.js';
import { correlate, filterGrad } from '../convdirect.js';
import { NEG_INF, bindings, grid, u32 } from '../wgsl.js';
import type { Family, Pair } from './types.js';
import { pair } from './util.js';

interface Geo { N: number; Ci: number; H: number; W: number; Co: number; KH: number; KW: number; sh: number; sw: number; ph: number; pw: number; OH: number; OW: number }

function geometry(op: string, x: readonly number[], w: readonly [number, number, number, number] | readonly number[], stride: Pair | undefined, padding: Pair | undefined): Geo {
  const [sh, sw] = pair(stride, 1), [ph, pw] = pair(padding, 0);
  if (!(sh >= 1 && sw >= 1 && ph >= 0 && pw >= 0) || ![sh, sw, ph, pw].every(Number.isInteger)) throw new OpError(op, `stride must be positive and padding non-negative integers, got stride ${sh},${sw} padding ${ph},${pw}`);
  const [N, Ci, H, W] = x as [number, number, number, number];
  const [Co, Ci2, KH, KW] = w as [number, number, number, number];
  if (Ci !== Ci2) throw new OpError(op, `input channels differ: x [${x.join(', ')}] has ${Ci}, filter [${w.join(', ')}] has ${Ci2}`);
  const OH = Math.floor((H + 2 * ph - KH) / sh) + 1, OW = Math.floor((W + 2 * pw - KW) / sw) + 1;
  if (OH <= 0 || OW <= 0) throw new OpError(op, `filter [${w.join(', ')}] does not fit input [${x.join(', ')}] with padding ${ph},${pw}`);
  return { N, Ci, H, W, Co, KH, KW, sh, sw, ph, pw, OH, OW };
}

/** Visits every (input, filter, output) index triple of the convolution: the three references accumulate over it. */
function refConv(g: Geo, visit: (xi: number, wi: number, oi: number) => void): void {
  const { N, Ci, H, W, Co, KH, KW, sh, sw, ph, pw, OH, OW } = g;
  for (let n = 0; n < N; n++) for (let co = 0; co < Co; co++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    const oi = ((n * Co + co) * OH + oh) * OW + ow;
    for (let ci = 0; ci < Ci; ci++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
      const ih = oh * sh + kh - ph, iw = ow * sw + kw - pw;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      visit(((n * Ci + ci) * H + ih) * W + iw, ((co * Ci + ci) * KH + kh) * KW + kw, oi);
    }
  }
}

const F = (m: Meta) => expectDtype('conv2d', 'inputs', m, 'f32');

export const convOps = {
  conv2d: {
    name: 'conv2d',
    infer([x, w], { stride, padding }) {
      expectRank('conv2d', 'x', x!, 4); expectRank('conv2d', 'filter', w!, 4); F(x!); F(w!);
      const g = geometry('conv2d', x!.shape, w!.shape, stride, padding);
      return [{ shape: [g.N, g.Co, g.OH, g.OW], dtype: 'f32' }];
    },
    reference([x, w], { stride, padding }) {
      const g = geometry('conv2d', x!.shape, w!.shape, stride, padding);
      const y = hostZeros([g.N, g.Co, g.OH, g.OW]);
      refConv(g, (xi, wi, oi) => (y.data[oi] += x!.data[xi]! * w!.data[wi]!));
      return [y];
    },
    webgpu(rt, [x, w], { stride, padding }, [o]) {
      const g = geometry('conv2d', x!.shape, w!.shape, stride, padding);
      const y = rt.empty(o!.shape, 'f32', 'conv2d');
      const OHW = g.OH * g.OW, KK = g.KH * g.KW;
      if (!rt.tiledGemm) {
        correlate(rt, 'conv2d', x!.buf('conv2d'), w!.buf('conv2d'), y.buf('conv2d'),
          { ...g, C: g.Ci, O: g.Co, offH: -g.ph, offW: -g.pw, flipped: false });
        return [y];
      }
      gemm(rt, 'conv2d', {
        M: g.Co, N: g.N * OHW, K: g.Ci * KK, batch: 1,
        decls: bindings([{ name: 'X', type: 'f32' }, { name: 'Wt', type: 'f32' }, { name: 'Y', type: 'f32', write: true }]),
        names: ['X', 'Wt', 'Y'], buffers: [x!.buf('conv2d'), w!.buf('conv2d'), y.buf('conv2d')],
        loadA: `return Wt[m * ${u32(g.Ci * KK)} + k];`,
        loadB: `let b = n / ${u32(OHW)}; let p = n % ${u32(OHW)}; let oh = p / ${u32(g.OW)}; let ow = p % ${u32(g.OW)};
  let ci = k / ${u32(KK)}; let q = k % ${u32(KK)}; let kh = q / ${u32(g.KW)}; let kw = q % ${u32(g.KW)};
  let ih = i32(oh * ${u32(g.sh)} + kh) - ${g.ph}i; let iw = i32(ow * ${u32(g.sw)} + kw) - ${g.pw}i;
  if (ih < 0 || ih >= ${g.H}i || iw < 0 || iw >= ${g.W}i) { return 0.0; }
  return X[((b * ${u32(g.Ci)} + ci) * ${u32(g.H)} + u32(ih)) * ${u32(g.W)} + u32(iw)];`,
        aContig: 'k', bContig: 'n', rows: g.Co >= 16 ? 16 : 8,
        store: `Y[((n / ${u32(OHW)}) * ${u32(g.Co)} + m) * ${u32(OHW)} + n % ${u32(OHW)}] = v;`,
      });
      return [y];
    },
    saves: 'x and the filter',
    pullback(x, { inputs: [xin, w], attrs: { stride, padding }, cot: [g], needs }) {
      const xs = x.meta(xin!).shape, ws = x.meta(w!).shape;
      return [
        needs[0] ? x.op('conv2dBackwardInput', [g!, w!], { stride, padding, inputHW: [xs[2]!, xs[3]!] })[0]! : null,
        needs[1] ? x.op('conv2dBackwardFilter', [g!, xin!], { stride, padding, kernelHW: [ws[2]!, ws[3]!] })[0]! : null,
      ];
    },
  },
  conv2dBackwardInput: {
    name: 'conv2dBackwardInput',
    infer([dy, w], { stride, padding, inputHW }) {
      const op = 'conv2dBackwardInput';
      expectRank(op, 'dy', dy!, 4); expectRank(op, 'filter', w!, 4);
      const [N] = dy!.shape, [, Ci] = w!.shape;
      const g = geometry(op, [N!, Ci!, inputHW[0], inputHW[1]], w!.shape, stride, padding);
      if (dy!.shape[1] !== g.Co || dy!.shape[2] !== g.OH || dy!.shape[3] !== g.OW) throw new OpError(op, `dy ${describe(dy!)} does not match the forward output [${g.N}, ${g.Co}, ${g.OH}, ${g.OW}]`);
      return [{ shape: [g.N, g.Ci, g.H, g.W], dtype: 'f32' }];
    },
    reference([dy, w], { stride, padding, inputHW }) {
      const g = geometry('conv2dBackwardInput', [dy!.shape[0]!, w!.shape[1]!, inputHW[0], inputHW[1]], w!.shape, stride, padding);
      const dx = hostZeros([g.N, g.Ci, g.H, g.W]);
      refConv(g, (xi, wi, oi) => (dx.data[xi] += dy!.data[oi]! * w!.data[wi]!));
      return [dx];
    },
    webgpu(rt, [dy, w], { stride, padding, inputHW }) {
      const op = 'conv2dBackwardInput';
      const g = geometry(op, [dy!.shape[0]!, w!.shape[1]!, inputHW[0], inputHW[1]], w!.shape, stride, padding);
      const dx = rt.empty([g.N, g.Ci, g.H, g.W], 'f32', op);
      const HW = g.H * g.W, KK = g.KH * g.KW, OHW = g.OH * g.OW;
      if (!rt.tiledGemm && g.sh === 1 && g.sw === 1) {
        // With stride 1 the transposed convolution is a correlation of dy with the flipped filter.
        correlate(rt, op, dy!.buf(op), w!.buf(op), dx.buf(op), { N: g.N, C: g.Co, H: g.OH, W: g.OW, O: g.Ci, OH: g.H, OW: g.W,
          KH: g.KH, KW: g.KW, sh: 1, sw: 1, offH: g.ph - g.KH + 1, offW: g.pw - g.KW + 1, flipped: true });
        return [dx];
      }
      gemm(rt, op, {
        M: g.Ci, N: g.N * HW, K: g.Co * KK, batch: 1,
        decls: bindings([{ name: 'DY', type: 'f32' }, { name: 'Wt', type: 'f32' }, { name: 'DX', type: 'f32', write: true }]),
        names: ['DY', 'Wt', 'DX'], buffers: [dy!.buf(op), w!.buf(op), dx.buf(op)],
        // A[ci, (co, kh, kw)] = w[co, ci, kh, kw]
        loadA: `let co = k / ${u32(KK)}; let q = k % ${u32(KK)}; return Wt[(co * ${u32(g.Ci)} + m) * ${u32(KK)} + q];`,
        // B[(co, kh, kw), (b, ih, iw)] = dy[b, co, oh, ow] where ih = oh·sh + kh - ph (when that has a solution)
        loadB: `let b = n / ${u32(HW)}; let p = n % ${u32(HW)}; let ih = p / ${u32(g.W)}; let iw = p % ${u32(g.W)};
  let co = k / ${u32(KK)}; let q = k % ${u32(KK)}; let kh = q / ${u32(g.KW)}; let kw = q % ${u32(g.KW)};
  let th = i32(ih) + ${g.ph}i - i32(kh); let tw = i32(iw) + ${g.pw}i - i32(kw);
  if (th < 0 || tw < 0 || th % ${g.sh}i != 0 || tw % ${g.sw}i != 0) { return 0.0; }
  let oh = th / ${g.sh}i; let ow = tw / ${g.sw}i;
  if (oh >= ${g.OH}i || ow >= ${g.OW}i) { return 0.0; }
  return DY[((b * ${u32(g.Co)} + co) * ${u32(OHW)}) + u32(oh) * ${u32(g.OW)} + u32(ow)];`,
        aContig: 'k', bContig: 'n', rows: g.Ci >= 16 ? 16 : 8,
        store: `DX[((n / ${u32(HW)}) * ${u32(g.Ci)} + m) * ${u32(HW)} + n % ${u32(HW)}] = v;`,
      });
      return [dx];
    },
    saves: '-',
    pullback: null,
  },
  conv2dBackwardFilter: {
    name: 'conv2dBackwardFilter',
    infer([dy, x], { stride, padding, kernelHW }) {
      const op = 'conv2dBackwardFilter';
      expectRank(op, 'dy', dy!, 4); expectRank(op, 'x', x!, 4);
      const g = geometry(op, x!.shape, [dy!.shape[1]!, x!.shape[1]!, kernelHW[0], kernelHW[1]], stride, padding);
      if (dy!.shape[0] !== g.N || dy!.shape[2] !== g.OH || dy!.shape[3] !== g.OW) throw new OpError(op, `dy ${describe(dy!)} does not match the forward output [${g.N}, ${g.Co}, ${g.OH}, ${g.OW}]`);
      return [{ shape: [g.Co, g.Ci, g.KH, g.KW], dtype: 'f32' }];
    },
    reference([dy, x], { stride, padding, kernelHW }) {
      const g = geometry('conv2dBackwardFilter', x!.shape, [dy!.shape[1]!, x!.shape[1]!, kernelHW[0], kernelHW[1]], stride, padding);
      const dw = hostZeros([g.Co, g.Ci, g.KH, g.KW]);
      refConv(g, (xi, wi, oi) => (dw.data[wi] += dy!.data[oi]! * x!.data[xi]!));
      return [dw];
    },
    webgpu(rt, [dy, x], { stride, padding, kernelHW }) {
      const op = 'conv2dBackwardFilter';
      const g = geometry(op, x!.shape, [dy!.shape[1]!, x!.shape[1]!, kernelHW[0], kernelHW[1]], stride, padding);
      const dw = rt.empty([g.Co, g.Ci, g.KH, g.KW], 'f32', op);
      const KK = g.KH * g.KW, OHW = g.OH * g.OW;
      if (!rt.tiledGemm) {
        filterGrad(rt, op, dy!.buf(op), x!.buf(op), dw.buf(op), g);
        return [dw];
      }
      gemm(rt, op, {
        M: g.Co, N: g.Ci * KK, K: g.N * OHW, batch: 1,
        decls: bindings([{ name: 'DY', type: 'f32' }, { name: 'X', type: 'f32' }, { name: 'DW', type: 'f32', write: true }]),
        names: ['DY', 'X', 'DW'], buffers: [dy!.buf(op), x!.buf(op), dw.buf(op)],
        loadA: `let b = k / ${u32(OHW)}; let p = k % ${u32(OHW)}; return DY[(b * ${u32(g.Co)} + m) * ${u32(OHW)} + p];`,
        loadB: `let b = k / ${u32(OHW)}; let p = k % ${u32(OHW)}; let oh = p / ${u32(g.OW)}; let ow = p % ${u32(g.OW)};
  let ci = n / ${u32(KK)}; let q = n % ${u32(KK)}; let kh = q / ${u32(g.KW)}; let kw = q % ${u32(g.KW)};
  let ih = i32(oh * ${u32(g.sh)} + kh) - ${g.ph}i; let iw = i32(ow * ${u32(g.sw)} + kw) - ${g.pw}i;
  if (ih < 0 || ih >= ${g.H}i || iw < 0 || iw >= ${g.W}i) { return 0.0; }
  return X[((b * ${u32(g.Ci)} + ci) * ${u32(g.H)} + u32(ih)) * ${u32(g.W)} + u32(iw)];`,
        aContig: 'k', bContig: 'k',
        store: `DW[m * ${u32(g.Ci * KK)} + n] = v;`,
      });
      return [dw];
    },
    saves: '-',
    pullback: null,
  },
  maxPool2d: {
    name: 'maxPool2d',
    infer([x], a) {
      const op = 'maxPool2d';
      expectRank(op, 'x', x!, 4); expectDtype(op, 'x', x!, 'f32');
      const p = pool(op, x!.shape, a);
      return [{ shape: [p.N, p.C, p.OH, p.OW], dtype: 'f32' }, { shape: [p.N, p.C, p.OH, p.OW], dtype: 'i32' }];
    },
    reference([x], a) {
      const p = pool('maxPool2d', x!.shape, a);
      const y = hostZeros([p.N, p.C, p.OH, p.OW]), arg = hostZeros([p.N, p.C, p.OH, p.OW], 'i32');
      for (let pl = 0; pl < p.N * p.C; pl++) for (let oh = 0; oh < p.OH; oh++) for (let ow = 0; ow < p.OW; ow++) {
        let best = -Infinity, bi = -1;
        for (let kh = 0; kh < p.kh; kh++) for (let kw = 0; kw < p.kw; kw++) {
          const ih = oh * p.sh + kh - p.ph, iw = ow * p.sw + kw - p.pw;
          if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
          const v = x!.data[(pl * p.H + ih) * p.W + iw]!;
          if (v > best || bi < 0) { best = v; bi = ih * p.W + iw; }
        }
        const o = (pl * p.OH + oh) * p.OW + ow;
        y.data[o] = best; arg.data[o] = bi;
      }
      return [y, arg];
    },
    webgpu(rt, [x], a, outs) {
      const op = 'maxPool2d';
      const p = pool(op, x!.shape, a);
      const y = rt.empty(outs[0]!.shape, 'f32', op), arg = rt.empty(outs[1]!.shape, 'i32', op);
      const n = p.N * p.C * p.OH * p.OW;
      const code = `${bindings([{ name: 'x', type: 'f32' }, { name: 'y', type: 'f32', write: true }, { name: 'arg', type: 'i32', write: true }])}
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * 256u;
  if (o >= ${u32(n)}) { return; }
  let ow = o % ${u32(p.OW)}; let oh = (o / ${u32(p.OW)}) % ${u32(p.OH)}; let pl = o / ${u32(p.OH * p.OW)};
  var best = ${NEG_INF}; var bi = -1i;
  for (var kh = 0u; kh < ${u32(p.kh)}; kh++) {
    let ih = i32(oh * ${u32(p.sh)} + kh) - ${p.ph}i;
    if (ih < 0 || ih >= ${p.H}i) { continue; }
    for (var kw = 0u; kw < ${u32(p.kw)}; kw++) {
      let iw = i32(ow * ${u32(p.sw)} + kw) - ${p.pw}i;
      if (iw < 0 || iw >= ${p.W}i) { continue; }
      let v = x[pl * ${u32(p.H * p.W)} + u32(ih * ${p.W}i + iw)];
      if (v > best || bi < 0i) { best = v; bi = ih * ${p.W}i + iw; }
    }
  }
  y[o] = best; arg[o] = bi;
}`;
      rt.dispatch(code, [x!.buf(op), y.buf(op), arg.buf(op)], grid(n));
      return [y, arg];
    },
    saves: 'the argmax (second output)',
    pullback(x, { inputs: [xin], outputs: [, arg], attrs, cot: [g] }) {
      const s = x.meta(xin!).shape;
      return [x.op('maxPool2dBackward', [arg!, g!], { ...attrs, inputHW: [s[2]!, s[3]!] })[0]!];
    },
  },
  maxPool2dBackward: {
    name: 'maxPool2dBackward',
    infer([arg, dy], a) {
      const op = 'maxPool2dBackward';
      expectDtype(op, 'argmax', arg!, 'i32'); expectRank(op, 'dy', dy!, 4);
      const p = pool(op, [dy!.shape[0]!, dy!.shape[1]!, a.inputHW[0], a.inputHW[1]], a);
      if (dy!.shape[2] !== p.OH || dy!.shape[3] !== p.OW || arg!.shape.join() !== dy!.shape.join()) throw new OpError(op, `dy ${describe(dy!)} and argmax ${describe(arg!)} must be [${p.N}, ${p.C}, ${p.OH}, ${p.OW}]`);
      return [{ shape: [p.N, p.C, p.H, p.W], dtype: 'f32' }];
    },
    reference([arg, dy], a) {
      const p = pool('maxPool2dBackward', [dy!.shape[0]!, dy!.shape[1]!, a.inputHW[0], a.inputHW[1]], a);
      const dx = hostZeros([p.N, p.C, p.H, p.W]);
      for (let pl = 0; pl < p.N * p.C; pl++) for (let q = 0; q < p.OH * p.OW; q++) {
        const o = pl * p.OH * p.OW + q;
        dx.data[pl * p.H * p.W + arg!.data[o]!] += dy!.data[o]!;
      }
      return [dx];
    },
    webgpu(rt, [arg, dy], a) {
      const op = 'maxPool2dBackward';
      const p = pool(op, [dy!.shape[0]!, dy!.shape[1]!, a.inputHW[0], a.inputHW[1]], a);
      const dx = rt.empty([p.N, p.C, p.H, p.W], 'f32', op);
      const n = p.N * p.C * p.H * p.W;
      // Windows that contain (ih, iw): oh·sh - ph <= ih < oh·sh - ph + kh.
      const code = `${bindings([{ name: 'arg', type: 'i32' }, { name: 'dy', type: 'f32' }, { name: 'dx', type: 'f32', write: true }])}
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= ${u32(n)}) { return; }
  let iw = i32(i % ${u32(p.W)}); let ih = i32((i / ${u32(p.W)}) % ${u32(p.H)}); let pl = i / ${u32(p.H * p.W)};
  let me = ih * ${p.W}i + iw;
  let oh0 = max(0i, (ih + ${p.ph}i - ${p.kh}i + ${p.sh}i) / ${p.sh}i); let oh1 = min(${p.OH - 1}i, (ih + ${p.ph}i) / ${p.sh}i);
  let ow0 = max(0i, (iw + ${p.pw}i - ${p.kw}i + ${p.sw}i) / ${p.sw}i); let ow1 = min(${p.OW - 1}i, (iw + ${p.pw}i) / ${p.sw}i);
  var s = 0.0;
  for (var oh = oh0; oh <= oh1; oh++) { for (var ow = ow0; ow <= ow1; ow++) {
    let o = pl * ${u32(p.OH * p.OW)} + u32(oh * ${p.OW}i + ow);
    if (arg[o] == me) { s += dy[o]; }
  } }
  dx[i] = s;
}`;
      rt.dispatch(code, [arg!.buf(op), dy!.buf(op), dx.buf(op)], grid(n));
      return [dx];
    },
    saves: '-',
    pullback: null,
  },
} satisfies Family<'conv2d' | 'conv2dBackwardInput' | 'conv2dBackwardFilter' | 'maxPool2d' | 'maxPool2dBackward'>;

function pool(op: string, x: readonly number[], a: { kernel: Pair; stride?: Pair; padding?: Pair }) {
  if (typeof a !== 'object' || a === null || a.kernel === undefined) {
    throw new OpError(op, `options must be { kernel, stride?, padding? } (e.g. { kernel: 2 }), got ${JSON.stringify(a)}`);
  }
  const [kh, kw] = pair(a.kernel, 1);
  const [sh, sw] = pair(a.stride, 0).map((v, i) => (a.stride === undefined ? [kh, kw][i]! : v)) as [number, number];
  const [ph, pw] = pair(a.padding, 0);
  const [N, C, H, W] = x as [number, number, number, number];
  if (!(kh >= 1 && kw >= 1 && sh >= 1 && sw >= 1 && ph >= 0 && pw >= 0 && ph < kh && pw < kw)) {
    throw new OpError(op, `kernel ${kh}x${kw}, stride ${sh}x${sw}, padding ${ph}x${pw} invalid (padding must be below the kernel size)`);
  }
  const OH = Math.floor((H + 2 * ph - kh) / sh) + 1, OW = Math.floor((W + 2 * pw - kw) / sw) + 1;
  if (OH <= 0 || OW <= 0) throw new OpError(op, `kernel ${kh}x${kw} does not fit input [${x.join(', ')}]`);
  return { N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW };
}
