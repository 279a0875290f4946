// SPDX-License-Identifier: MIT
// matmul and batched matmul, with transpose flags on either side (so backward never materialises a transpose)
// and a fused epilogue: + bias [N], then relu or gelu.
import { OpError, describe, expectDtype, fmt, size, type Meta, type Shape } from '../shape.js';
import { type HostTensor, hostZeros } from '../host.js';
import { gemm } from '../gemm.js';
import { matmulVec4, vec4Layout } from '../gemv4.js';
import { MATH, bindings, enableF16, loadElement, storageType, u32 } from '../wgsl.js';
import type { Activation, Exec, Family, OpAttrs, PullbackArgs } from './types.js';
import { UNARY } from './elementwise.js';
import { sumTo } from './util.js';

interface Dims { batch: number[]; M: number; K: number; N: number; aBatched: boolean; bBatched: boolean }

function dims(ins: readonly Meta[], { transA = false, transB = false, activation = 'none' }: OpAttrs['matmul']): Dims {
  const [a, b, bias] = ins;
  const op = 'matmul';
  if (!a || !b || ins.length > 3) throw new OpError(op, `expects (a, b) or (a, b, bias), got ${ins.length} inputs`);
  // a and b may be stored in f16 (read into f32; the products are summed in f32 and the output is f32).
  expectDtype(op, 'a', a, 'f32', 'f16');
  expectDtype(op, 'b', b, 'f32', 'f16');
  if (bias) expectDtype(op, 'bias', bias, 'f32');
  if (a.shape.length < 2 || b.shape.length < 2) throw new OpError(op, `inputs must have rank >= 2, got ${describe(a)} and ${describe(b)}`);
  if (!['none', 'relu', 'gelu'].includes(activation)) throw new OpError(op, `unknown activation '${activation}'`);
  const ra = a.shape.length, rb = b.shape.length;
  const M = transA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const K = transA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const Kb = transB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const N = transB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  const flags = `${transA ? ' transA' : ''}${transB ? ' transB' : ''}`;
  if (K !== Kb) throw new OpError(op, `inner dimensions differ: ${describe(a)} x ${describe(b)}${flags} (${K} vs ${Kb})`);
  const ba = a.shape.slice(0, -2), bb = b.shape.slice(0, -2);
  let batch: number[];
  if (fmt(ba) === fmt(bb) || bb.length === 0) batch = ba;
  else if (ba.length === 0) batch = bb;
  else throw new OpError(op, `batch shapes ${fmt(ba)} and ${fmt(bb)} differ (${describe(a)} x ${describe(b)}); they must be equal or one side unbatched`);
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== N)) throw new OpError(op, `bias must have shape [${N}], got ${describe(bias)}`);
  return { batch, M, K, N, aBatched: ba.length > 0 && size(ba) > 0, bBatched: bb.length > 0 && size(bb) > 0 };
}

const act = (a: Activation, x: number) => (a === 'relu' ? UNARY.relu.f(x) : a === 'gelu' ? UNARY.gelu.f(x) : x);

export const matmulOps = {
  matmul: {
    name: 'matmul',
    infer(ins, attrs) {
      const d = dims(ins, attrs);
      const out: Meta = { shape: [...d.batch, d.M, d.N], dtype: 'f32' };
      return attrs.activation === 'gelu' ? [out, out] : [out];
    },
    reference(ins, attrs) {
      const [a, b, bias] = ins;
      const d = dims(ins, attrs);
      const { transA = false, transB = false, activation = 'none' } = attrs;
      const nb = size(d.batch);
      const out = hostZeros([...d.batch, d.M, d.N]);
      const pre = hostZeros([...d.batch, d.M, d.N]);
      for (let t = 0; t < nb; t++) {
        const ao = d.aBatched ? t * d.M * d.K : 0, bo = d.bBatched ? t * d.K * d.N : 0;
        for (let m = 0; m < d.M; m++) for (let n = 0; n < d.N; n++) {
          let s = 0;
          for (let k = 0; k < d.K; k++) {
            s += a!.data[ao + (transA ? k * d.M + m : m * d.K + k)]! * b!.data[bo + (transB ? n * d.K + k : k * d.N + n)]!;
          }
          if (bias) s += bias.data[n]!;
          const o = (t * d.M + m) * d.N + n;
          pre.data[o] = s;
          out.data[o] = act(activation, s);
        }
      }
      return activation === 'gelu' ? [out, pre] : [out];
    },
    webgpu(rt, ins, attrs, outs) {
      const d = dims(ins, attrs);
      const { transA = false, transB = false, activation = 'none' } = attrs;
      const [a, b, bias] = ins;
      const out = rt.empty(outs[0]!.shape, 'f32', 'matmul');
      const pre = activation === 'gelu' ? rt.empty(outs[0]!.shape, 'f32', 'matmul') : null;
      const layout = vec4Layout(d.M, d.N, d.K, transA, transB);
      if (layout && d.K > 0 && rt.vec4Matmul) {
        matmulVec4(rt, { layout, M: d.M, N: d.N, K: d.K, batch: size(d.batch), aBatched: d.aBatched, bBatched: d.bBatched, activation,
          aDtype: a!.dtype, bDtype: b!.dtype,
          a: a!.buf('matmul'), b: b!.buf('matmul'), c: out.buf('matmul'), bias: bias ? bias.buf('matmul') : null, pre: pre ? pre.buf('matmul') : null });
        return pre ? [out, pre] : [out];
      }
      const names = ['A', 'B', 'C', ...(bias ? ['bias'] : []), ...(pre ? ['pre'] : [])];
      const decls = enableF16(rt, a!.dtype, b!.dtype) + bindings([{ name: 'A', type: storageType(rt, a!.dtype) }, { name: 'B', type: storageType(rt, b!.dtype) }, { name: 'C', type: 'f32', write: true },
        ...(bias ? [{ name: 'bias', type: 'f32' }] : []), ...(pre ? [{ name: 'pre', type: 'f32', write: true }] : [])]);
      const { M, N, K } = d;
      const aOff = d.aBatched ? `bt * ${u32(M * K)}` : '0u';
      const bOff = d.bBatched ? `bt * ${u32(K * N)}` : '0u';
      const actExpr = activation === 'relu' ? 'max(r, 0.0)' : activation === 'gelu' ? 'gelu_s(r)' : 'r';
      gemm(rt, 'matmul', {
        M, N, K, batch: size(d.batch), decls, names,
        buffers: [a!.buf('matmul'), b!.buf('matmul'), out.buf('matmul'), ...(bias ? [bias.buf('matmul')] : []), ...(pre ? [pre.buf('matmul')] : [])],
        loadA: `let i = ${aOff} + ${transA ? `k * ${u32(M)} + m` : `m * ${u32(K)} + k`}; return ${loadElement(rt, 'A', a!.dtype, 'i')};`,
        loadB: `let i = ${bOff} + ${transB ? `n * ${u32(K)} + k` : `k * ${u32(N)} + n`}; return ${loadElement(rt, 'B', b!.dtype, 'i')};`,
        aContig: transA ? 'm' : 'k',
        bContig: transB ? 'k' : 'n',
        prelude: activation === 'gelu' ? MATH : '',
        store: `let o = (bt * ${u32(M)} + m) * ${u32(N)} + n; let r = v${bias ? ' + bias[n]' : ''}; C[o] = ${actExpr};${pre ? ' pre[o] = r;' : ''}`,
      });
      return pre ? [out, pre] : [out];
    },
    saves: 'a and b; the output for relu; the pre-activation (second output) for gelu',
    pullback(x, args) {
      const [a, b, bias] = args.inputs;
      const { transA = false, transB = false } = args.attrs;
      return matmulPullback(x, a!, b!, bias ?? null, preActivationGrad(x, args), transA, transB, args.needs);
    },
  },
} satisfies Family<'matmul'>;

/** The cotangent before the fused activation: z̄ ⊙ act'(z). */
function preActivationGrad<T>(x: Exec<T>, { outputs, attrs: { activation = 'none' }, cot }: PullbackArgs<T, 'matmul'>): T {
  const g = cot[0]!;
  if (activation === 'relu') return x.op('unaryBackward', [outputs[0]!, outputs[0]!, g], { fn: 'relu' })[0]!;
  if (activation === 'gelu') return x.op('unaryBackward', [outputs[1]!, outputs[1]!, g], { fn: 'gelu' })[0]!; // gelu' reads x only
  return g;
}

/**
 * The matmul pullback with b̄ (b a 2-D matrix [K, N], not transposed) computed in blocks of `rows` rows, each handed
 * to `block(value, firstRow)` as soon as it is computed: rows k0..k1 of b̄ = op(a)ᵀ g need only the k0..k1 slice
 * of a along its K axis. Data-parallel training reduces the first blocks of a large weight gradient while the
 * device computes the next ones, when that gradient is the last one of the backward pass (the first layer's).
 * Returns what the pullback returns, b̄ being the blocks concatenated; ā and the bias' gradient come first.
 */
export function matmulPullbackInRows<T>(x: Exec<T>, args: PullbackArgs<T, 'matmul'>, rows: number, block: (value: T, firstRow: number) => void): (T | null)[] {
  const [a, b, bias] = args.inputs;
  const { transA = false, transB = false } = args.attrs;
  const bs = x.meta(b!).shape;
  if (transB || bs.length !== 2 || !(rows >= 1) || x.meta(a!).dtype !== 'f32' || x.meta(b!).dtype !== 'f32') throw new OpError('matmul', `a gradient in blocks of rows needs f32 inputs and an untransposed 2-D b, got ${describe(x.meta(a!))} x ${describe(x.meta(b!))}${transB ? ' transB' : ''}`);
  const g = preActivationGrad(x, args);
  const out = matmulPullback(x, a!, b!, bias ?? null, g, transA, false, args.needs.map((n, i) => n && i !== 1));
  const as = x.meta(a!).shape, kAxis = as.length - (transA ? 2 : 1);
  const [K, N] = bs as [number, number];
  const blocks: T[] = [];
  for (let k0 = 0; k0 < K; k0 += rows) {
    const k1 = Math.min(K, k0 + rows);
    const ak = x.op('slice', [a!], { begin: as.map((_, i) => (i === kAxis ? k0 : 0)), size: as.map((d, i) => (i === kAxis ? k1 - k0 : d)) })[0]!;
    const part = weightGrad(x, ak, g, [k1 - k0, N], transA, false);
    blocks.push(part);
    block(part, k0);
  }
  out[1] = blocks.length === 1 ? blocks[0]! : x.op('concat', blocks, { axis: 0 })[0]!;
  return out;
}

/** ā = g op(b)ᵀ, b̄ = op(a)ᵀ g, written with the transpose flags; bias̄ = g summed over rows. */
function matmulPullback<T>(x: Exec<T>, a: T, b: T, bias: T | null, g: T, tA: boolean, tB: boolean, needs: readonly boolean[]): (T | null)[] {
  const mm = (p: T, q: T, transA: boolean, transB: boolean) => x.op('matmul', [p, q], { transA, transB })[0]!;
  const as: Shape = x.meta(a).shape, bs: Shape = x.meta(b).shape;
  let ga: T | null = null, gb: T | null = null, gbias: T | null = null;
  if (needs[0]) ga = like(x, sumTo(x, tA ? mm(b, g, tB, true) : mm(g, b, false, !tB), as), a);
  if (needs[1]) gb = like(x, weightGrad(x, a, g, bs, tA, tB), b);
  if (bias && needs[2]) {
    const gs = x.meta(g).shape;
    gbias = x.op('sum', [g], { axes: gs.slice(0, -1).map((_, i) => i) })[0]!;
  }
  return bias ? [ga, gb, gbias] : [ga, gb];
}

/** `v` (f32) in the dtype of `ref`: the cotangent of an f16 input is stored in f16, as the input is. */
function like<T>(x: Exec<T>, v: T, ref: T): T {
  return x.meta(ref).dtype === 'f16' ? x.op('cast', [v], { dtype: 'f16' })[0]! : v;
}

/** b̄ = op(a)ᵀ g summed to b's shape `bs` (or its transpose). */
function weightGrad<T>(x: Exec<T>, a: T, g: T, bs: Shape, tA: boolean, tB: boolean): T {
  const mm = (p: T, q: T, transA: boolean, transB: boolean) => x.op('matmul', [p, q], { transA, transB })[0]!;
  const as = x.meta(a).shape, gs = x.meta(g).shape;
  if (bs.length === 2 && as.length > 2 && !tA && !tB) {
    // Unbatched weight: fold the batch into rows, one GEMM instead of a batched one and a sum.
    const K = as[as.length - 1]!, N = gs[gs.length - 1]!;
    return mm(x.reshape(a, [size(as) / K, K]), x.reshape(g, [size(gs) / N, N]), true, false);
  }
  return sumTo(x, tB ? mm(g, a, true, tA) : mm(a, g, !tA, false), bs);
}
