// SPDX-License-Identifier: MIT
// Reductions over any set of axes: sum (and mean, as sum with a scale), max with argmax, logsumexp.
import { expectDtype, normAxes, size, strides, type Meta, type Shape } from '../shape.js';
import { type HostTensor, hostZeros } from '../host.js';
import type { GpuRuntime, Tensor } from '../runtime.js';
import { NEG_INF, bindings, f32, grid, u32 } from '../wgsl.js';
import type { Family } from './types.js';
import { bin, keepDims, scalar, un } from './util.js';

/** How output and reduced indices map to input offsets. */
interface Plan { kept: number[]; keptStrides: number[]; red: number[]; redStrides: number[]; nOut: number; nRed: number }

function plan(shape: Shape, axes: readonly number[]): Plan {
  const st = strides(shape);
  const p: Plan = { kept: [], keptStrides: [], red: [], redStrides: [], nOut: 1, nRed: 1 };
  shape.forEach((d, i) => {
    if (axes.includes(i)) { p.red.push(d); p.redStrides.push(st[i]!); p.nRed *= d; }
    else { p.kept.push(d); p.keptStrides.push(st[i]!); p.nOut *= d; }
  });
  return p;
}

function offset(i: number, dims: number[], st: number[]): number {
  let o = 0;
  for (let d = dims.length - 1; d >= 0; d--) { o += (i % dims[d]!) * st[d]!; i = Math.floor(i / dims[d]!); }
  return o;
}

/** WGSL function `name(i)` mapping a flat index over `dims` to an offset with strides `st`. */
function offsetFn(name: string, dims: number[], st: number[]): string {
  const contiguous = dims.every((_, d) => st[d] === size(dims.slice(d + 1)) * (st[dims.length - 1] ?? 1)) && (st[dims.length - 1] ?? 1) === 1;
  if (dims.length === 0) return `fn ${name}(i: u32) -> u32 { return 0u; }`;
  if (contiguous) return `fn ${name}(i: u32) -> u32 { return i; }`;
  const lines = ['var o = 0u; var r = i;'];
  for (let d = dims.length - 1; d >= 0; d--) lines.push(`o += (r % ${u32(dims[d]!)}) * ${u32(st[d]!)}; r = r / ${u32(dims[d]!)};`);
  return `fn ${name}(i: u32) -> u32 { ${lines.join(' ')} return o; }`;
}

type Kind = 'sum' | 'max' | 'logsumexp';

function refReduce(x: HostTensor, axes: readonly number[], kind: Kind, scale = 1): HostTensor[] {
  const p = plan(x.shape, axes);
  const out = hostZeros(p.kept, 'f32');
  const arg = hostZeros(p.kept, 'i32');
  for (let o = 0; o < p.nOut; o++) {
    const base = offset(o, p.kept, p.keptStrides);
    const v = (r: number) => x.data[base + offset(r, p.red, p.redStrides)]!;
    if (kind === 'sum') {
      let s = 0;
      for (let r = 0; r < p.nRed; r++) s += v(r);
      out.data[o] = s * scale;
    } else if (kind === 'max') {
      let best = -Infinity, bi = 0;
      for (let r = 0; r < p.nRed; r++) if (v(r) > best) { best = v(r); bi = r; }
      out.data[o] = best; arg.data[o] = bi;
    } else {
      let m = -Infinity;
      for (let r = 0; r < p.nRed; r++) m = Math.max(m, v(r));
      let s = 0;
      if (m !== -Infinity) for (let r = 0; r < p.nRed; r++) s += Math.exp(v(r) - m);
      out.data[o] = m === -Infinity ? -Infinity : m + Math.log(s);
    }
  }
  return kind === 'max' ? [out, arg] : [out];
}


/**
 * One kernel for the three reductions. Many outputs or short rows (on SwiftShader: most shapes): one invocation
 * per output, looping over the reduced elements (adjacent invocations read adjacent columns). Otherwise one
 * workgroup per output, each invocation folding a strided part of the row, then a tree in workgroup memory. The per-invocation and tree
 * steps are the same associative merge, so results do not depend on which path ran beyond rounding.
 */
function gpuReduce(rt: GpuRuntime, op: string, x: Tensor, axes: readonly number[], kind: Kind, scale = 1): Tensor[] {
  const p = plan(x.shape, axes);
  const out = rt.empty(p.kept, 'f32', op);
  const arg = kind === 'max' ? rt.empty(p.kept, 'i32', op) : null;
  if (p.nOut === 0) return arg ? [out, arg] : [out];
  // SwiftShader (rowPerInvocation): a workgroup is a CPU thread and each step of the tree is a pass over it, so a
  // column sum such as a bias gradient ([128, 256] over the batch: 256 trees) costs ~60 ms as trees and ~1 ms as
  // loops; the tree stays only for long reductions into few outputs, where one loop would serialise the work.
  const perThread = p.nRed <= 64 || p.nOut >= 4096 || (rt.rowPerInvocation && (p.nOut >= 64 || p.nRed <= 8192));
  const WGR = 128;
  // State: (a, b): sum: (s, -); max: (best, index as f32 bits); logsumexp: (m, s).
  const init = kind === 'sum' ? 'var a = 0.0; var b = 0u;' : kind === 'max' ? `var a = ${NEG_INF}; var b = ${u32(p.nRed)};` : `var a = ${NEG_INF}; var b = 0.0;`;
  const step = kind === 'sum' ? 'a += v;'
    : kind === 'max' ? 'if (v > a) { a = v; b = r; }'
    : `if (v != ${NEG_INF}) { if (v > a) { b = b * exp(a - v) + 1.0; a = v; } else { b += exp(v - a); } }`;
  const bType = kind === 'logsumexp' ? 'f32' : 'u32';
  const merge = kind === 'sum' ? 'a = a + a2;'
    : kind === 'max' ? 'if (a2 > a || (a2 == a && b2 < b)) { a = a2; b = b2; }'
    : `let m = max(a, a2); if (m != ${NEG_INF}) { b = b * exp(a - m) + b2 * exp(a2 - m); a = m; }`;
  const finish = kind === 'sum' ? `out[o] = a * ${f32(scale)};`
    : kind === 'max' ? `out[o] = a; arg[o] = i32(select(b, 0u, b >= ${u32(p.nRed)}));`
    : `out[o] = select(a + log(b), ${NEG_INF}, a == ${NEG_INF});`;
  const decl = bindings([{ name: 'x', type: 'f32' }, { name: 'out', type: 'f32', write: true }, ...(arg ? [{ name: 'arg', type: 'i32', write: true }] : [])]);
  const fns = `${offsetFn('base', p.kept, p.keptStrides)}\n${offsetFn('roff', p.red, p.redStrides)}`;
  let code: string;
  if (perThread) {
    code = `${decl}\n${fns}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * 64u;
  if (o >= ${u32(p.nOut)}) { return; }
  let bo = base(o);
  ${init}
  for (var r = 0u; r < ${u32(p.nRed)}; r++) { let v = x[bo + roff(r)]; ${step} }
  ${finish}
}`;
    rt.dispatch(code, [x.buf(op), out.buf(op), ...(arg ? [arg.buf(op)] : [])], grid(p.nOut, 64));
  } else {
    code = `${decl}\n${fns}
var<workgroup> sa: array<f32, ${WGR}>;
var<workgroup> sb: array<${bType}, ${WGR}>;
@compute @workgroup_size(${WGR}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = wid.x + wid.y * nwg.x;
  let bo = base(o);
  ${init}
  for (var r = lid.x; r < ${u32(p.nRed)}; r += ${WGR}u) { let v = x[bo + roff(r)]; ${step} }
  sa[lid.x] = a; sb[lid.x] = b;
  for (var w = ${WGR / 2}u; w > 0u; w = w / 2u) {
    workgroupBarrier();
    if (lid.x < w) { let a2 = sa[lid.x + w]; let b2 = sb[lid.x + w]; ${merge} sa[lid.x] = a; sb[lid.x] = b; }
  }
  if (lid.x == 0u) { ${finish} }
}`;
    rt.dispatch(code, [x.buf(op), out.buf(op), ...(arg ? [arg.buf(op)] : [])], grid(p.nOut, 1));
  }
  return arg ? [out, arg] : [out];
}

function inferReduce(op: string, x: Meta, axes: readonly number[] | undefined, withArg: boolean): Meta[] {
  expectDtype(op, 'input', x, 'f32');
  const ax = normAxes(op, axes, x.shape.length);
  const shape = x.shape.filter((_, i) => !ax.includes(i));
  return withArg ? [{ shape, dtype: 'f32' }, { shape, dtype: 'i32' }] : [{ shape, dtype: 'f32' }];
}

export const reduceOps = {
  sum: {
    name: 'sum',
    infer: ([x], { axes }) => inferReduce('sum', x!, axes, false),
    reference: ([x], { axes, scale }) => refReduce(x!, normAxes('sum', axes, x!.shape.length), 'sum', scale),
    webgpu: (rt, [x], { axes, scale }) => gpuReduce(rt, 'sum', x!, normAxes('sum', axes, x!.rank), 'sum', scale),
    saves: 'nothing (the input shape)',
    pullback(x, { inputs: [a], attrs: { axes, scale = 1 }, cot: [g] }) {
      const m = x.meta(a!);
      const gb = x.op('broadcastTo', [x.reshape(g!, keepDims(m, normAxes('sum', axes, m.shape.length)))], { shape: m.shape })[0]!;
      return [scale !== 1 ? bin(x, 'mul', gb, scalar(x, scale)) : gb];
    },
  },
  max: {
    name: 'max',
    infer: ([x], { axes }) => inferReduce('max', x!, axes, true),
    reference: ([x], { axes }) => refReduce(x!, normAxes('max', axes, x!.shape.length), 'max'),
    webgpu: (rt, [x], { axes }) => gpuReduce(rt, 'max', x!, normAxes('max', axes, x!.rank), 'max'),
    saves: 'the input and the max',
    pullback(x, { inputs: [a], outputs: [y], attrs: { axes }, cot: [g] }) {
      // As JAX: the cotangent is shared evenly between tied maxima.
      const m = x.meta(a!);
      const ax = normAxes('max', axes, m.shape.length);
      const kd = keepDims(m, ax);
      const mask = bin(x, 'eq', a!, x.reshape(y!, kd));
      const count = x.op('sum', [mask], { axes: ax })[0]!;
      const share = x.reshape(bin(x, 'div', g!, count), kd);
      return [bin(x, 'mul', mask, share)];
    },
  },
  logsumexp: {
    name: 'logsumexp',
    infer: ([x], { axes }) => inferReduce('logsumexp', x!, axes, false),
    reference: ([x], { axes }) => refReduce(x!, normAxes('logsumexp', axes, x!.shape.length), 'logsumexp'),
    webgpu: (rt, [x], { axes }) => gpuReduce(rt, 'logsumexp', x!, normAxes('logsumexp', axes, x!.rank), 'logsumexp'),
    saves: 'the input and the output',
    pullback(x, { inputs: [a], outputs: [y], attrs: { axes }, cot: [g] }) {
      const m = x.meta(a!);
      const kd = keepDims(m, normAxes('logsumexp', axes, m.shape.length));
      const p = un(x, 'exp', bin(x, 'sub', a!, x.reshape(y!, kd)));
      return [bin(x, 'mul', p, x.reshape(g!, kd))];
    },
  },
} satisfies Family<'sum' | 'max' | 'logsumexp'>;
