// SPDX-License-Identifier: MIT
// Softmax and log-softmax over the last axis, and fused softmax-cross-entropy with integer labels.
// One workgroup per row: each invocation folds part of the row into an online (max, sum of exp) pair, the pairs are
// merged in workgroup memory, then the row is written in a second sweep (on SwiftShader: one invocation per row).
// Backward of the fused loss is softmax - onehot, recomputed from the saved logsumexp: the Jacobian is never formed.
import { OpError, describe, expectDtype, expectRank, type Meta } from '../shape.js';
import { type HostTensor, hostZeros } from '../host.js';
import type { GpuRuntime, Tensor } from '../runtime.js';
import { NEG_INF, bindings, grid, u32, workgroupMaxSumExp } from '../wgsl.js';
import type { Family } from './types.js';
import { bin, un } from './util.js';

const WGR = 64;

/** How the body of a row kernel walks a row: a column loop's start and step, and the invocation that writes per-row results. */
interface RowWalk { from: string; step: string; lead: string }

/**
 * A row kernel: `body` runs once per row with `row` and `st` = (row max, sum of exp(x - max)) in scope.
 * One workgroup per row with a tree in workgroup memory (real GPUs), or, under the runtime's rowPerInvocation
 * (SwiftShader: a workgroup is a CPU thread, each tree step a pass over it), one invocation per row and no barriers
 * unless the rows are long and few.
 */
function rowKernel(rt: GpuRuntime, decls: string, C: number, rows: number, body: (w: RowWalk) => string): { code: string; groups: [number, number] } {
  const perInvocation = rt.rowPerInvocation && (rows >= 64 || C <= 8192);
  const fold = `
    if (v > m) { l = l * exp(m - v) + 1.0; m = v; } else if (v != ${NEG_INF}) { l += exp(v - m); }`;
  if (perInvocation) {
    return { groups: grid(rows, 64), code: `${decls}
fn rowStats(row: u32) -> vec2f {
  var m = ${NEG_INF}; var l = 0.0;
  for (var c = 0u; c < ${u32(C)}; c++) {
    let v = x[row * ${u32(C)} + c];${fold}
  }
  return vec2f(m, l);
}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= ${u32(rows)}) { return; }
  let st = rowStats(row);
  ${body({ from: '0u', step: '1u', lead: 'true' })}
}` };
  }
  return { groups: grid(rows, 1), code: `${decls}
var<workgroup> sm: array<f32, ${WGR}>;
var<workgroup> sl: array<f32, ${WGR}>;
fn rowStats(row: u32, t: u32) -> vec2f {
  var m = ${NEG_INF}; var l = 0.0;
  for (var c = t; c < ${u32(C)}; c += ${WGR}u) {
    let v = x[row * ${u32(C)} + c];${fold}
  }
  ${workgroupMaxSumExp(WGR)}
  let r = vec2f(sm[0], sl[0]);
  workgroupBarrier();
  return r;
}
@compute @workgroup_size(${WGR}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = wid.x + wid.y * nwg.x;
  let st = rowStats(row, lid.x);
  ${body({ from: 'lid.x', step: `${WGR}u`, lead: 'lid.x == 0u' })}
}` };
}

function refRows(x: HostTensor, f: (row: Float64Array, lse: number, out: Float64Array) => void): HostTensor {
  const C = x.shape[x.shape.length - 1] ?? 1;
  const out = hostZeros(x.shape);
  for (let r = 0; r * C < x.data.length; r++) {
    const row = x.data.subarray(r * C, (r + 1) * C);
    const m = row.reduce((a, b) => Math.max(a, b), -Infinity);
    let s = 0;
    for (const v of row) s += Math.exp(v - m);
    f(row, m + Math.log(s), out.data.subarray(r * C, (r + 1) * C));
  }
  return out;
}

function gpuRows(rt: GpuRuntime, op: string, x: Tensor, log: boolean): Tensor {
  const C = x.shape[x.rank - 1] ?? 1;
  const rows = C === 0 ? 0 : x.size / C;
  const out = rt.empty(x.shape, 'f32', op);
  const { code, groups } = rowKernel(rt, bindings([{ name: 'x', type: 'f32' }, { name: 'y', type: 'f32', write: true }]), C, rows, (w) => `
  let lse = st.x + log(st.y);
  for (var c = ${w.from}; c < ${u32(C)}; c += ${w.step}) {
    let i = row * ${u32(C)} + c;
    y[i] = ${log ? 'x[i] - lse' : 'exp(x[i] - lse)'};
  }`);
  rt.dispatch(code, [x.buf(op), out.buf(op)], groups);
  return out;
}

function inferRows(op: string, x: Meta): Meta[] {
  expectDtype(op, 'input', x, 'f32');
  if (x.shape.length === 0) throw new OpError(op, `input must have rank >= 1, got ${describe(x)}`);
  return [{ shape: x.shape, dtype: 'f32' }];
}

export const softmaxOps = {
  softmax: {
    name: 'softmax',
    infer: ([x]) => inferRows('softmax', x!),
    reference: ([x]) => [refRows(x!, (row, lse, out) => row.forEach((v, i) => (out[i] = Math.exp(v - lse))))],
    webgpu: (rt, [x]) => [gpuRows(rt, 'softmax', x!, false)],
    saves: 'the output y',
    // x̄ = y ⊙ (ȳ - Σ ȳ ⊙ y)
    pullback(x, { outputs: [y], cot: [g] }) {
      const s = x.meta(y!).shape;
      const dot = x.reshape(x.op('sum', [bin(x, 'mul', g!, y!)], { axes: [-1] })[0]!, [...s.slice(0, -1), 1]);
      return [bin(x, 'mul', y!, bin(x, 'sub', g!, dot))];
    },
  },
  logSoftmax: {
    name: 'logSoftmax',
    infer: ([x]) => inferRows('logSoftmax', x!),
    reference: ([x]) => [refRows(x!, (row, lse, out) => row.forEach((v, i) => (out[i] = v - lse)))],
    webgpu: (rt, [x]) => [gpuRows(rt, 'logSoftmax', x!, true)],
    saves: 'the output y',
    // x̄ = ȳ - exp(y) Σ ȳ
    pullback(x, { outputs: [y], cot: [g] }) {
      const s = x.meta(y!).shape;
      const tot = x.reshape(x.op('sum', [g!], { axes: [-1] })[0]!, [...s.slice(0, -1), 1]);
      return [bin(x, 'sub', g!, bin(x, 'mul', un(x, 'exp', y!), tot))];
    },
  },
  softmaxCrossEntropy: {
    name: 'softmaxCrossEntropy',
    infer([logits, labels]) {
      const op = 'softmaxCrossEntropy';
      expectDtype(op, 'logits', logits!, 'f32');
      expectDtype(op, 'labels', labels!, 'i32');
      expectRank(op, 'logits', logits!, 2);
      expectRank(op, 'labels', labels!, 1);
      if (labels!.shape[0] !== logits!.shape[0]) throw new OpError(op, `labels ${describe(labels!)} do not match logits ${describe(logits!)} (one label per row)`);
      const n = [logits!.shape[0]!];
      return [{ shape: n, dtype: 'f32' }, { shape: n, dtype: 'f32' }];
    },
    reference([logits, labels]) {
      const [N, C] = logits!.shape as [number, number];
      const loss = hostZeros([N]), lse = hostZeros([N]);
      for (let r = 0; r < N; r++) {
        const row = logits!.data.subarray(r * C, (r + 1) * C);
        const m = row.reduce((a, b) => Math.max(a, b), -Infinity);
        let s = 0;
        for (const v of row) s += Math.exp(v - m);
        const label = labels!.data[r]!;
        if (!(label >= 0 && label < C)) throw new OpError('softmaxCrossEntropy', `label ${label} at row ${r} is outside [0, ${C})`);
        lse.data[r] = m + Math.log(s);
        loss.data[r] = lse.data[r]! - row[label]!;
      }
      return [loss, lse];
    },
    webgpu(rt, [logits, labels]) {
      const op = 'softmaxCrossEntropy';
      const [N, C] = logits!.shape as [number, number];
      const loss = rt.empty([N], 'f32', op), lse = rt.empty([N], 'f32', op);
      const decls = bindings([{ name: 'x', type: 'f32' }, { name: 'labels', type: 'i32' }, { name: 'loss', type: 'f32', write: true }, { name: 'lse', type: 'f32', write: true }]);
      const { code, groups } = rowKernel(rt, decls, C, N, (w) => `
  if (${w.lead}) {
    let z = st.x + log(st.y);
    let label = labels[row];
    lse[row] = z;
    // Out-of-range labels cannot throw on the GPU: they give NaN.
    if (label < 0 || label >= ${C}i) { loss[row] = bitcast<f32>(NAN_BITS); } else { loss[row] = z - x[row * ${u32(C)} + u32(label)]; }
  }`);
      rt.dispatch(code, [logits!.buf(op), labels!.buf(op), loss.buf(op), lse.buf(op)], groups);
      return [loss, lse];
    },
    saves: 'logits, labels and the per-row logsumexp (second output)',
    pullback: (x, { inputs: [logits, labels], outputs: [, lse], cot: [g] }) =>
      [x.op('softmaxCrossEntropyBackward', [logits!, labels!, lse!, g!], {})[0]!, null],
  },
  softmaxCrossEntropyBackward: {
    name: 'softmaxCrossEntropyBackward',
    infer([logits, labels, lse, g]) {
      const op = 'softmaxCrossEntropyBackward';
      expectRank(op, 'logits', logits!, 2);
      expectDtype(op, 'labels', labels!, 'i32');
      const N = logits!.shape[0];
      for (const m of [labels!, lse!, g!]) if (m.shape.length !== 1 || m.shape[0] !== N) throw new OpError(op, `expected [${N}] for labels, lse and dloss, got ${describe(m)}`);
      return [{ shape: logits!.shape, dtype: 'f32' }];
    },
    reference([logits, labels, lse, g]) {
      const [N, C] = logits!.shape as [number, number];
      const out = hostZeros([N, C]);
      for (let r = 0; r < N; r++) for (let c = 0; c < C; c++) {
        const p = Math.exp(logits!.data[r * C + c]! - lse!.data[r]!);
        out.data[r * C + c] = (p - (labels!.data[r] === c ? 1 : 0)) * g!.data[r]!;
      }
      return [out];
    },
    webgpu(rt, [logits, labels, lse, g]) {
      const op = 'softmaxCrossEntropyBackward';
      const [N, C] = logits!.shape as [number, number];
      const out = rt.empty([N, C], 'f32', op);
      const n = N * C;
      const code = `${bindings([{ name: 'x', type: 'f32' }, { name: 'labels', type: 'i32' }, { name: 'lse', type: 'f32' }, { name: 'g', type: 'f32' }, { name: 'dx', type: 'f32', write: true }])}
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= ${u32(n)}) { return; }
  let r = i / ${u32(C)}; let c = i % ${u32(C)};
  let p = exp(x[i] - lse[r]);
  dx[i] = (p - select(0.0, 1.0, labels[r] == i32(c))) * g[r];
}`;
      rt.dispatch(code, [logits!.buf(op), labels!.buf(op), lse!.buf(op), g!.buf(op), out.buf(op)], grid(n));
      return [out];
    },
    saves: '-',
    pullback: null,
  },
} satisfies Family<'softmax' | 'logSoftmax' | 'softmaxCrossEntropy' | 'softmaxCrossEntropyBackward'>;
