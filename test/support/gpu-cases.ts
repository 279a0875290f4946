// SPDX-License-Identifier: MIT
// One list of op cases shared by the kernel-parity and pullback tests: inputs of awkward sizes (1, primes,
// non-multiples of the 64-wide tiles, several workgroups) drawn from each op's domain.
import type { HostTensor } from '../../runtime-gpu/host.js';
import { run, referenceBackend } from '../../runtime-gpu/backend.js';
import type { OpAttrs, OpName, UnaryFn } from '../../runtime-gpu/ops/types.js';
import { type Domain, Rng, rand } from './gpu.js';

export interface Case<K extends OpName = OpName> {
  op: K;
  label: string;
  attrs: OpAttrs[K];
  inputs(rng: Rng): HostTensor[];
  /** Tolerances for the GPU (f32) against the reference (f64). */
  rtol?: number;
  atol?: number;
}

const c = <K extends OpName>(op: K, label: string, attrs: OpAttrs[K], inputs: (rng: Rng) => HostTensor[], tol: { rtol?: number; atol?: number } = {}): Case =>
  ({ op, label, attrs, inputs, ...tol }) as Case;

const r = (shape: number[], domain: Domain = 'any') => (rng: Rng) => rand(rng, shape, domain);
/** f16 values (drawn in f64, rounded to f16). */
const h = (shape: number[]) => (rng: Rng) => rand(rng, shape, 'any', 'f16');
const ints = (shape: number[], hi: number) => (rng: Rng) => rand(rng, shape, 'int', 'i32', hi);
const mask = (shape: number[]) => (rng: Rng) => { const t = rand(rng, shape, 'int', 'f32', 2); return t; };
const all = (...fs: ((rng: Rng) => HostTensor)[]) => (rng: Rng) => fs.map((f) => f(rng));

const UNARY_DOMAIN: Record<UnaryFn, Domain> = {
  neg: 'any', exp: 'any', log: 'positive', sqrt: 'positive', rsqrt: 'positive', tanh: 'any', sigmoid: 'any', relu: 'awayFromZero', gelu: 'any', abs: 'awayFromZero',
};

export const cases: Case[] = [
  ...(Object.keys(UNARY_DOMAIN) as UnaryFn[]).flatMap((fn) => [
    c('unary', `${fn} [3, 37]`, { fn }, all(r([3, 37], UNARY_DOMAIN[fn]))),
    c('unary', `${fn} [1]`, { fn }, all(r([1], UNARY_DOMAIN[fn]))),
  ]),
  ...(Object.keys(UNARY_DOMAIN) as UnaryFn[]).map((fn) => c('unaryBackward', `${fn} [5, 13]`, { fn }, (rng) => {
    const x = rand(rng, [5, 13], UNARY_DOMAIN[fn]);
    const y = run(referenceBackend, 'unary', [x], { fn })[0]!;
    return [x, y, rand(rng, [5, 13])];
  })),
  c('binary', 'add [4, 1, 5] + [3, 5]', { fn: 'add' }, all(r([4, 1, 5]), r([3, 5]))),
  c('binary', 'sub [7] - []', { fn: 'sub' }, all(r([7]), r([]))),
  c('binary', 'mul [2, 3, 67] * [67]', { fn: 'mul' }, all(r([2, 3, 67]), r([67]))),
  c('binary', 'div [5, 3] / [5, 1]', { fn: 'div' }, all(r([5, 3]), r([5, 1], 'positive'))),
  c('binary', 'pow [4, 6] ^ [6]', { fn: 'pow' }, all(r([4, 6], 'positive'), r([6], 'unit'))),
  c('binary', 'max [5, 3] [3]', { fn: 'max' }, all(r([5, 3]), r([3]))),
  c('binary', 'min [1, 9] [4, 1]', { fn: 'min' }, all(r([1, 9]), r([4, 1]))),
  ...(['lt', 'le', 'gt', 'ge', 'eq', 'ne'] as const).map((fn) => c('binary', `${fn} [5, 3] [3]`, { fn }, (rng) => {
    const a = rand(rng, [5, 3], 'int', 'f32', 3), b = rand(rng, [3], 'int', 'f32', 3);
    return [a, b];
  })),
  c('binary', 'add i32 [6, 2] + [2]', { fn: 'add' }, all(ints([6, 2], 50), ints([2], 50))),
  c('binary', 'mul [300, 301] (many workgroups)', { fn: 'mul' }, all(r([300, 301]), r([300, 301]))),
  c('where', 'where [4, 1] ? [4, 6] : [6]', {}, all(mask([4, 1]), r([4, 6]), r([6]))),
  c('broadcastTo', '[3, 1] -> [2, 3, 5]', { shape: [2, 3, 5] }, all(r([3, 1]))),
  c('cast', 'f32 -> f16 [3, 7]', { dtype: 'f16' }, all(r([3, 7]))),
  c('cast', 'f32 -> f16 [5]: overflow to ±inf at 65520, 65519 to 65504, odd count', { dtype: 'f16' },
    () => [{ shape: [5], dtype: 'f32', data: Float64Array.from([70000, -65520, 65504, 65519, 0.1]) }]),
  c('cast', 'f16 -> f32 [5, 9]', { dtype: 'f32' }, all(h([5, 9]))),
  c('cast', 'f16 -> i32 [7]', { dtype: 'i32' }, (rng) => [{ ...rand(rng, [7], 'unit', 'f16'), data: Float64Array.from([-3.5, -0.75, 0, 0.5, 2.25, 100, -1000]) }]),
  c('cast', 'f32 -> i32 [11]', { dtype: 'i32' }, (rng) => [rand(rng, [11], 'unit')].map((t) => ({ ...t, data: t.data.map((v) => v * 40) }))),
  c('sum', '[5, 257] axis 1 (workgroup per row)', { axes: [1] }, all(r([5, 257]))),
  c('sum', '[37, 3, 11] axes 0, 2 (thread per output)', { axes: [0, 2] }, all(r([37, 3, 11]))),
  c('sum', '[7, 13] all, scale 1/91 (mean)', { scale: 1 / 91 }, all(r([7, 13]))),
  c('sum', '[4500, 3] axis 1 (many outputs)', { axes: [-1] }, all(r([4500, 3]))),
  c('max', '[5, 300] axis 1', { axes: [1] }, all(r([5, 300]))),
  c('max', '[6, 7, 5] axes 0, 2', { axes: [0, 2] }, all(r([6, 7, 5]))),
  c('logsumexp', '[4, 129] axis -1', { axes: [-1] }, all(r([4, 129]))),
  c('logsumexp', '[3, 5, 7] axis 0', { axes: [0] }, all(r([3, 5, 7]))),
  c('matmul', '[1, 1] x [1, 1]', {}, all(r([1, 1]), r([1, 1]))),
  c('matmul', '[67, 33] x [33, 130]', {}, all(r([67, 33]), r([33, 130]))),
  c('matmul', '[13, 7]ᵀ x [13, 5] transA', { transA: true }, all(r([13, 7]), r([13, 5]))),
  c('matmul', '[9, 70] x [11, 70]ᵀ transB', { transB: true }, all(r([9, 70]), r([11, 70]))),
  c('matmul', 'transA transB [31, 5]ᵀ x [6, 31]ᵀ', { transA: true, transB: true }, all(r([31, 5]), r([6, 31]))),
  c('matmul', 'batched [3, 17, 19] x [3, 19, 23]', {}, all(r([3, 17, 19]), r([3, 19, 23]))),
  c('matmul', 'broadcast weight [2, 5, 7] x [7, 3]', {}, all(r([2, 5, 7]), r([7, 3]))),
  c('matmul', 'bias + relu [6, 9] x [9, 10] + [10]', { activation: 'relu' }, (rng) => {
    // Keep pre-activations away from the kink at 0 (for the pullback's finite differences).
    const a = rand(rng, [6, 9]), b = rand(rng, [9, 10]), bias = rand(rng, [10]);
    const pre = run(referenceBackend, 'matmul', [a, b, bias], {})[0]!;
    for (let i = 0; i < pre.data.length; i++) if (Math.abs(pre.data[i]!) < 0.05) bias.data[i % 10] += 0.2;
    return [a, b, bias];
  }),
  c('matmul', 'bias + gelu [5, 8] x [8, 4] + [4]', { activation: 'gelu' }, all(r([5, 8]), r([8, 4]), r([4]))),
  c('matmul', 'split-K [5, 2000] x [2000, 7]', {}, all(r([5, 2000]), r([2000, 7])), { rtol: 1e-3, atol: 1e-4 }),
  c('matmul', '[130, 70] x [70, 150] (9 tiles)', {}, all(r([130, 70]), r([70, 150]))),
  // Aligned shapes take the register-blocked vec4 kernels (NN, NT, TN); rows past M exercise the clamps.
  c('matmul', 'vec4 NN [13, 36] x [36, 20]', {}, all(r([13, 36]), r([36, 20]))),
  c('matmul', 'vec4 NN [9, 40] x [40, 300] (two column groups)', {}, all(r([9, 40]), r([40, 300]))),
  c('matmul', 'vec4 NN batched [3, 9, 12] x [3, 12, 8]', {}, all(r([3, 9, 12]), r([3, 12, 8]))),
  c('matmul', 'vec4 NN unbatched a [9, 12] x batched [2, 12, 8]', {}, all(r([9, 12]), r([2, 12, 8]))),
  c('matmul', 'vec4 NT [11, 36] x [7, 36]ᵀ (ragged N)', { transB: true }, all(r([11, 36]), r([7, 36]))),
  c('matmul', 'vec4 NT bias + relu [5, 12] x [6, 12]ᵀ + [6]', { transB: true, activation: 'relu' }, all(r([5, 12]), r([6, 12]), r([6]))),
  c('matmul', 'vec4 TN [20, 12]ᵀ x [20, 8]', { transA: true }, all(r([20, 12]), r([20, 8]))),
  c('matmul', 'vec4 TN [9, 4]ᵀ x [9, 16] batched [2, ...]', { transA: true }, all(r([2, 9, 4]), r([2, 9, 16]))),
  // f16 operands (read into f32, summed in f32, f32 out): the vec4 layouts and the GEMM, odd element counts.
  c('matmul', 'f16 a: vec4 NN [37, 20] x [20, 12] + [12], relu', { activation: 'relu' }, all(h([37, 20]), r([20, 12]), r([12]))),
  c('matmul', 'f16 b: vec4 NT [19, 8] x [5, 8]ᵀ', { transB: true }, all(r([19, 8]), h([5, 8]))),
  c('matmul', 'f16 a and b: vec4 TN batched [2, 9, 4]ᵀ x [2, 9, 16]', { transA: true }, all(h([2, 9, 4]), h([2, 9, 16]))),
  c('matmul', 'f16 a and b: [7, 13] x [13, 5] + [5], gelu (odd sizes)', { activation: 'gelu' }, all(h([7, 13]), h([13, 5]), r([5]))),
  c('matmul', 'f16 a: transA transB [31, 5]ᵀ x [6, 31]ᵀ', { transA: true, transB: true }, all(h([31, 5]), r([6, 31]))),
  c('matmul', 'f16 a: broadcast weight [2, 5, 7] x [7, 3]', {}, all(h([2, 5, 7]), r([7, 3]))),
  c('softmax', '[3, 1000]', {}, all(r([3, 1000]))),
  c('softmax', '[7, 5]', {}, all(r([7, 5]))),
  c('logSoftmax', '[2, 3, 130]', {}, all(r([2, 3, 130]))),
  c('softmaxCrossEntropy', '[13, 1000]', {}, all(r([13, 1000]), ints([13], 1000))),
  c('softmaxCrossEntropy', '[1, 3]', {}, all(r([1, 3]), ints([1], 3))),
  c('softmaxCrossEntropyBackward', '[6, 37]', {}, (rng) => {
    const x = rand(rng, [6, 37]), l = rand(rng, [6], 'int', 'i32', 37);
    const [, lse] = run(referenceBackend, 'softmaxCrossEntropy', [x, l], {});
    return [x, l, lse!, rand(rng, [6])];
  }),
  c('layerNorm', '[5, 130]', {}, all(r([5, 130]), r([130]), r([130]))),
  c('layerNorm', '[2, 3, 7] eps 1e-3', { eps: 1e-3 }, all(r([2, 3, 7]), r([7]), r([7]))),
  c('layerNormBackward', '[9, 67]', {}, (rng) => {
    const x = rand(rng, [9, 67]), g = rand(rng, [67]), b = rand(rng, [67]);
    const [, mean, rstd] = run(referenceBackend, 'layerNorm', [x, g, b], {});
    return [x, g, mean!, rstd!, rand(rng, [9, 67])];
  }),
  c('conv2d', '[2, 3, 9, 11] * [5, 3, 3, 3] pad 1', { padding: 1 }, all(r([2, 3, 9, 11]), r([5, 3, 3, 3]))),
  c('conv2d', '[1, 2, 10, 7] * [3, 2, 3, 2] stride 2', { stride: 2 }, all(r([1, 2, 10, 7]), r([3, 2, 3, 2]))),
  c('conv2d', '[2, 8, 12, 12] * [16, 8, 3, 3] stride [1, 2] pad [2, 1]', { stride: [1, 2], padding: [2, 1] }, all(r([2, 8, 12, 12]), r([16, 8, 3, 3]))),
  c('conv2dBackwardInput', 'dy [2, 5, 9, 11], w [5, 3, 3, 3] pad 1', { padding: 1, inputHW: [9, 11] }, all(r([2, 5, 9, 11]), r([5, 3, 3, 3]))),
  c('conv2dBackwardInput', 'dy [1, 3, 4, 3], w [3, 2, 3, 2] stride 2 (from 10x7)', { stride: 2, inputHW: [10, 7] }, all(r([1, 3, 4, 3]), r([3, 2, 3, 2]))),
  c('conv2dBackwardInput', 'dy [1, 4, 6, 7], w [4, 17, 3, 3] pad 1 (16-row blocks)', { padding: 1, inputHW: [6, 7] }, all(r([1, 4, 6, 7]), r([4, 17, 3, 3]))),
  c('conv2dBackwardFilter', 'dy [2, 5, 9, 11], x [2, 3, 9, 11] pad 1', { padding: 1, kernelHW: [3, 3] }, all(r([2, 5, 9, 11]), r([2, 3, 9, 11]))),
  c('conv2dBackwardFilter', 'split-K dy [4, 4, 20, 20], x [4, 4, 20, 20] pad 1', { padding: 1, kernelHW: [3, 3] }, all(r([4, 4, 20, 20]), r([4, 4, 20, 20])), { rtol: 1e-3, atol: 1e-4 }),
  c('conv2dBackwardFilter', 'dy [1, 3, 4, 3], x [1, 2, 10, 7] stride 2', { stride: 2, kernelHW: [3, 2] }, all(r([1, 3, 4, 3]), r([1, 2, 10, 7]))),
  c('maxPool2d', '[2, 3, 9, 9] 2x2', { kernel: 2 }, all(r([2, 3, 9, 9]))),
  c('maxPool2d', '[1, 2, 10, 7] 3x3 stride 2 pad 1', { kernel: 3, stride: 2, padding: 1 }, all(r([1, 2, 10, 7]))),
  c('maxPool2dBackward', '[1, 2, 10, 7] 3x3 stride 2 pad 1', { kernel: 3, stride: 2, padding: 1, inputHW: [10, 7] }, (rng) => {
    const [, arg] = run(referenceBackend, 'maxPool2d', [rand(rng, [1, 2, 10, 7])], { kernel: 3, stride: 2, padding: 1 });
    return [arg!, rand(rng, arg!.shape as number[])];
  }),
  c('attention', 'q [2, 5, 8], k [2, 7, 8], v [2, 7, 6]', {}, all(r([2, 5, 8]), r([2, 7, 8]), r([2, 7, 6]))),
  c('attention', 'causal [1, 2, 70, 16] (two query tiles)', { causal: true }, all(r([1, 2, 70, 16]), r([1, 2, 70, 16]), r([1, 2, 70, 16]))),
  c('attention', 'head dim 32, 130 keys, scale 0.3', { scale: 0.3 }, all(r([3, 4, 32]), r([3, 130, 32]), r([3, 130, 32]))),
  ...([false, true] as const).map((causal) => c('attentionBackward', `${causal ? 'causal ' : ''}[2, 67, 8]`, { causal }, (rng) => {
    const q = rand(rng, [2, 67, 8]), k = rand(rng, [2, 67, 8]), v = rand(rng, [2, 67, 5]);
    const [o, lse] = run(referenceBackend, 'attention', [q, k, v], { causal });
    return [q, k, v, o!, lse!, rand(rng, [2, 67, 5])];
  })),
  ...([false, true] as const).map((causal) => c('attentionBackward', `vec4 ${causal ? 'causal ' : ''}[3, 70, 8], dv 12`, { causal }, (rng) => {
    const q = rand(rng, [3, 70, 8]), k = rand(rng, [3, 70, 8]), v = rand(rng, [3, 70, 12]);
    const [o, lse] = run(referenceBackend, 'attention', [q, k, v], { causal });
    return [q, k, v, o!, lse!, rand(rng, [3, 70, 12])];
  })),
  c('attention', 'short path: causal [2, 12, 16]', { causal: true }, all(r([2, 12, 16]), r([2, 12, 16]), r([2, 12, 16]))),
  c('attention', 'short path: q [3, 5, 8], k [3, 20, 8], v [3, 20, 4]', {}, all(r([3, 5, 8]), r([3, 20, 8]), r([3, 20, 4]))),
  ...([false, true] as const).map((causal) => c('attentionBackward', `short path ${causal ? 'causal ' : ''}q [2, 6, 8], k [2, 8, 8], v [2, 8, 4]`, { causal }, (rng) => {
    const q = rand(rng, [2, 6, 8]), k = rand(rng, [2, 8, 8]), v = rand(rng, [2, 8, 4]);
    const [o, lse] = run(referenceBackend, 'attention', [q, k, v], { causal });
    return [q, k, v, o!, lse!, rand(rng, [2, 6, 4])];
  })),
  c('attention', 'scalar path: head dim 6, dv 5', { causal: true }, all(r([2, 9, 6]), r([2, 9, 6]), r([2, 9, 5]))),
  c('gather', 'table [11, 5], indices [3, 4] with repeats', {}, all(r([11, 5]), ints([3, 4], 11))),
  c('scatterAdd', 'indices [17] into 5 rows', { rows: 5 }, all(ints([17], 5), r([17, 3]))),
  c('scatterAdd', 'indices [2, 40] into 70 rows', { rows: 70 }, all(ints([2, 40], 70), r([2, 40, 9]))),
  c('permute', '[2, 3, 4] -> [4, 2, 3]', { perm: [2, 0, 1] }, all(r([2, 3, 4]))),
  c('permute', '[67, 65] transpose', { perm: [1, 0] }, all(r([67, 65]))),
  c('slice', '[5, 7] [1:4, 2:6]', { begin: [1, 2], size: [3, 4] }, all(r([5, 7]))),
  c('pad', '[3, 4] into [5, 7] at [1, 2]', { before: [1, 2], shape: [5, 7] }, all(r([3, 4]))),
  c('concat', '[2, 3] [2, 1] [2, 4] axis 1', { axis: 1 }, all(r([2, 3]), r([2, 1]), r([2, 4]))),
  c('concat', '[1, 5] [3, 5] axis 0', { axis: 0 }, all(r([1, 5]), r([3, 5]))),
];
