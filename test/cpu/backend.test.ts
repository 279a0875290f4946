// SPDX-License-Identifier: MIT
// The Wasm CPU backend against the f64 reference backend: every op it implements on the shared op cases
// (test/support/gpu-cases.ts) plus awkward cases of its own, in the best SIMD build and the scalar build; the
// pullbacks of every differentiable op through vjp(); missing ops fail naming the op; tidy / dispose / reshape
// bookkeeping; memory stays flat over 10,000 ops.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, referenceBackend, vjp } from '../../runtime-gpu/backend.js';
import { opNames, ops } from '../../runtime-gpu/ops/index.js';
import type { OpAttrs, OpName } from '../../runtime-gpu/ops/types.js';
import type { HostTensor } from '../../runtime-gpu/host.js';
import { Rng, assertClose, rand, type Domain } from '../support/gpu.js';
import { type Case, cases } from '../support/gpu-cases.js';
import { type CpuTensor, type WasmBackend, wasmBackend } from '../../runtime-wasm/backend.js';

const best = await wasmBackend();
const scalar = await wasmBackend({ variant: 'scalar' });
const implemented = new Set(Object.keys(best.kernels) as OpName[]);

const c = <K extends OpName>(op: K, label: string, attrs: OpAttrs[K], inputs: (rng: Rng) => HostTensor[], tol: { rtol?: number; atol?: number } = {}): Case =>
  ({ op, label, attrs, inputs, ...tol }) as Case;
const r = (shape: number[], domain: Domain = 'any') => (rng: Rng) => rand(rng, shape, domain);
const ints = (shape: number[], hi: number) => (rng: Rng) => rand(rng, shape, 'int', 'i32', hi);
const all = (...fs: ((rng: Rng) => HostTensor)[]) => (rng: Rng) => fs.map((f) => f(rng));
const shift = (f: (rng: Rng) => HostTensor, by: number) => (rng: Rng) => { const t = f(rng); return { ...t, data: t.data.map((v) => v + by) }; };

/** Cases beyond the shared list: the paths this backend splits on (kernel or loop, one kernel call or several). */
const extra: Case[] = [
  c('binary', 'add rank 4 [2, 1, 4, 1] + [3, 1, 5]', { fn: 'add' }, all(r([2, 1, 4, 1]), r([3, 1, 5]))),
  c('binary', 'div [] / []', { fn: 'div' }, all(r([]), r([], 'positive'))),
  c('binary', 'mul [1, 1031] * [7, 1] (SIMD tails)', { fn: 'mul' }, all(r([1, 1031]), r([7, 1]))),
  c('binary', 'max [6, 5] [6, 1]', { fn: 'max' }, all(r([6, 5]), r([6, 1]))),
  c('binary', 'pow [3, 5] ^ []', { fn: 'pow' }, all(r([3, 5], 'positive'), r([], 'unit'))),
  c('binary', 'sub i32 [5, 3] - [3]', { fn: 'sub' }, all(ints([5, 3], 40), ints([3], 40))),
  c('binary', 'mul i32 [4, 1] * [1, 6]', { fn: 'mul' }, all(ints([4, 1], 40), ints([1, 6], 40))),
  c('binary', 'max i32 [7] [1]', { fn: 'max' }, all(ints([7], 9), ints([1], 9))),
  c('binary', 'min i32 [2, 3] [2, 3]', { fn: 'min' }, all(ints([2, 3], 9), ints([2, 3], 9))),
  c('binary', 'lt i32 [4, 3] [3]', { fn: 'lt' }, all(ints([4, 3], 4), ints([3], 4))),
  c('where', 'where i32 cond [3] ? i32 [2, 3] : i32 []', {}, all(ints([3], 2), ints([2, 3], 50), ints([], 50))),
  c('broadcastTo', 'i32 [1, 4] -> [3, 2, 4]', { shape: [3, 2, 4] }, all(ints([1, 4], 9))),
  c('broadcastTo', '[] -> [5, 3]', { shape: [5, 3] }, all(r([]))),
  c('cast', 'i32 -> f32 [9]', { dtype: 'f32' }, all(ints([9], 100))),
  c('cast', 'f32 -> f32 [2, 3]', { dtype: 'f32' }, all(r([2, 3]))),
  c('sum', '[3, 4, 5, 6] axes 0, 2 (two kernel calls)', { axes: [0, 2] }, all(r([3, 4, 5, 6]))),
  c('sum', '[3, 4, 5, 6] axes 1, 2 (merged run) scale 0.25', { axes: [1, 2], scale: 0.25 }, all(r([3, 4, 5, 6]))),
  c('sum', '[3, 4, 5, 6] axes 0, 1, 3', { axes: [0, 1, 3] }, all(r([3, 4, 5, 6]))),
  c('sum', '[4, 5] axes [] (copy)', { axes: [] }, all(r([4, 5]))),
  c('sum', '[1031] all', {}, all(r([1031]))),
  c('max', '[3, 4, 5] axes 0, 2 with ties', { axes: [0, 2] }, (rng) => [{ ...rand(rng, [3, 4, 5], 'int', 'f32', 4) }]),
  c('max', '[7, 9] all', {}, all(r([7, 9]))),
  c('max', '[5, 6] axis 0', { axes: [0] }, all(r([5, 6]))),
  c('logsumexp', '[4, 5, 6] axes 0, 2 (transposed)', { axes: [0, 2] }, all(r([4, 5, 6]))),
  c('logsumexp', '[4, 5, 6] axis 1', { axes: [1] }, all(r([4, 5, 6]))),
  c('logsumexp', '[2, 3, 4] all', {}, all(r([2, 3, 4]))),
  c('matmul', 'transA unbatched a [7, 5]ᵀ x batched [3, 7, 9]', { transA: true }, all(r([7, 5]), r([3, 7, 9]))),
  c('matmul', 'batched [2, 3, 6, 7] x [7, 5]ᵀ transB + bias + relu', { transB: true, activation: 'relu' }, all(r([2, 3, 6, 7]), r([5, 7]), shift(r([5]), 0.3))),
  c('matmul', 'gelu batched transA transB [2, 9, 4]ᵀ x [2, 6, 9]ᵀ + bias', { transA: true, transB: true, activation: 'gelu' }, all(r([2, 9, 4]), r([2, 6, 9]), r([6]))),
  c('matmul', '[33, 257] x [65, 257]ᵀ', { transB: true }, all(r([33, 257]), r([65, 257])), { rtol: 5e-4, atol: 5e-5 }),
  c('matmul', '[130, 200] x [200, 161] (split across threads)', {}, all(r([130, 200]), r([200, 161])), { rtol: 5e-4, atol: 5e-5 }),
  c('matmul', 'K = 0 [3, 0] x [0, 4] + bias', {}, all(r([3, 0]), r([0, 4]), r([4]))),
  c('softmax', 'rank 1 [11]', {}, all(r([11]))),
  c('logSoftmax', '[1, 1]', {}, all(r([1, 1]))),
  c('logSoftmax', '[4, 1031]', {}, all(r([4, 1031]))),
  c('softmaxCrossEntropy', '[37, 5]', {}, all(r([37, 5]), ints([37], 5))),
  c('conv2d', '[3, 4, 7, 5] * [2, 4, 1, 3] stride [3, 1] pad [0, 2]', { stride: [3, 1], padding: [0, 2] }, all(r([3, 4, 7, 5]), r([2, 4, 1, 3]))),
  c('conv2dBackwardInput', 'dy [3, 2, 3, 7], w [2, 4, 1, 3] stride [3, 1] pad [0, 2] (from 7x5)', { stride: [3, 1], padding: [0, 2], inputHW: [7, 5] }, all(r([3, 2, 3, 7]), r([2, 4, 1, 3]))),
  c('conv2dBackwardFilter', 'dy [3, 2, 3, 7], x [3, 4, 7, 5] stride [3, 1] pad [0, 2]', { stride: [3, 1], padding: [0, 2], kernelHW: [1, 3] }, all(r([3, 2, 3, 7]), r([3, 4, 7, 5]))),
  c('layerNorm', '[3, 1031] eps 1e-2', { eps: 1e-2 }, all(r([3, 1031]), r([1031]), r([1031]))),
  c('layerNormBackward', '[2, 3, 5]', {}, (rng) => {
    const x = rand(rng, [2, 3, 5]), g = rand(rng, [5]), b = rand(rng, [5]);
    const [, mean, rstd] = run(referenceBackend, 'layerNorm', [x, g, b], {});
    return [x, g, mean!, rstd!, rand(rng, [2, 3, 5])];
  }),
  c('maxPool2d', '[2, 2, 7, 8] kernel [2, 3] stride [1, 2] pad [1, 1], ties', { kernel: [2, 3], stride: [1, 2], padding: [1, 1] }, (rng) => [rand(rng, [2, 2, 7, 8], 'int', 'f32', 3)]),
  c('maxPool2dBackward', '[2, 2, 7, 8] kernel [2, 3] stride [1, 2] pad [1, 1]', { kernel: [2, 3], stride: [1, 2], padding: [1, 1], inputHW: [7, 8] }, (rng) => {
    const [, arg] = run(referenceBackend, 'maxPool2d', [rand(rng, [2, 2, 7, 8])], { kernel: [2, 3], stride: [1, 2], padding: [1, 1] });
    return [arg!, rand(rng, arg!.shape as number[])];
  }),
  c('attention', 'causal Sq > Sk: q [2, 9, 5], k [2, 4, 5], v [2, 4, 3]', { causal: true }, all(r([2, 9, 5]), r([2, 4, 5]), r([2, 4, 3]))),
  c('attention', 'causal Sq < Sk, rank 4, scale 0.7: q [2, 2, 3, 6], k/v [2, 2, 11, 6]', { causal: true, scale: 0.7 }, all(r([2, 2, 3, 6]), r([2, 2, 11, 6]), r([2, 2, 11, 6]))),
  ...([false, true] as const).map((causal) => c('attentionBackward', `${causal ? 'causal ' : ''}q [3, 7, 5], k [3, 9, 5], v [3, 9, 2]`, { causal }, (rng) => {
    const q = rand(rng, [3, 7, 5]), k = rand(rng, [3, 9, 5]), v = rand(rng, [3, 9, 2]);
    const [o, lse] = run(referenceBackend, 'attention', [q, k, v], { causal });
    return [q, k, v, o!, lse!, rand(rng, [3, 7, 2])];
  })),
  c('permute', 'i32 [2, 3, 4, 5] -> [3, 0, 2, 1]', { perm: [3, 0, 2, 1] }, all(ints([2, 3, 4, 5], 99))),
  c('slice', '[4, 5, 6] [1:3, 0:5, 2:3]', { begin: [1, 0, 2], size: [2, 5, 1] }, all(r([4, 5, 6]))),
  c('pad', 'i32 [2, 3] into [4, 3] at [1, 0]', { before: [1, 0], shape: [4, 3] }, all(ints([2, 3], 9))),
  c('concat', 'i32 [2, 2, 3] [2, 1, 3] axis -2', { axis: -2 }, all(ints([2, 2, 3], 9), ints([2, 1, 3], 9))),
  c('scatterAdd', 'out-of-range indices are dropped', { rows: 4 }, (rng) => [{ shape: [5], dtype: 'i32', data: Float64Array.from([0, -1, 3, 4, 3]) }, rand(rng, [5, 2])]),
];

const allCases = [...cases, ...extra];
const mine = allCases.map((k, i) => ({ k, i })).filter(({ k }) => implemented.has(k.op));

function close(what: string, got: HostTensor, want: HostTensor, rtol: number, atol: number): void {
  if (want.dtype === 'f16') assertClose(what, got, want, 1e-3, 1e-4);
  else assertClose(what, got, want, rtol, atol);
}

test('the backend implements the required ops, and only ops of the table', () => {
  for (const n of implemented) assert.ok(opNames.includes(n), `${n} is not an op`);
  for (const n of ['unary', 'unaryBackward', 'binary', 'sum', 'max', 'logsumexp', 'matmul', 'softmax', 'logSoftmax', 'softmaxCrossEntropy',
    'softmaxCrossEntropyBackward', 'conv2d', 'conv2dBackwardInput', 'conv2dBackwardFilter'] as OpName[]) {
    assert.ok(implemented.has(n), `${n} is missing`);
  }
  const covered = new Set(mine.map(({ k }) => k.op));
  assert.equal([...implemented].filter((n) => !covered.has(n)), [], 'every implemented op has a case');
});

test('a missing op fails naming the op and the backend', () => {
  // Every op of the table has a kernel here today; ops without one must be absent from `kernels`.
  for (const n of opNames.filter((n) => !implemented.has(n))) assert.is(best.kernels[n], undefined);
  const { attention: _, ...rest } = best.kernels;
  const partial: WasmBackend = { ...best, kernels: rest };
  const q = best.upload(rand(new Rng(1), [2, 3, 4]));
  assert.throws(() => run(partial, 'attention', [q, q, q], {}), /attention: the wasm backend has no kernel for this op/);
  assert.throws(() => vjp(partial, 'attention', [q, q, q], {}), /attention: the wasm backend has no kernel for this op/);
  q.dispose();
});

mine.forEach(({ k, i }) => {
  test(`parity ${k.op}: ${k.label}`, () => {
    const ins = k.inputs(new Rng(1000 + i));
    const want = run(referenceBackend, k.op, ins, k.attrs as never);
    for (const be of [best, scalar]) {
      const before = be.memoryStats().liveBytes;
      const wIns = ins.map((h) => be.upload(h));
      const got = run(be, k.op, wIns, k.attrs as never);
      const inferred = ops[k.op].infer(wIns.map((t) => be.meta(t)), k.attrs as never);
      assert.is(got.length, want.length, `${k.op}: number of outputs`);
      assert.is(got.length, inferred.length, `${k.op}: outputs as infer says`);
      got.forEach((t, j) => {
        assert.equal([...t.shape], [...inferred[j]!.shape], `${k.op} output ${j} shape`);
        assert.is(t.dtype, inferred[j]!.dtype, `${k.op} output ${j} dtype`);
        close(`${k.op} ${k.label} output ${j} (${be.cpu.variant})`, be.download(t), want[j]!, k.rtol ?? 2e-4, k.atol ?? 2e-5);
      });
      for (const t of [...wIns, ...got]) t.dispose();
      assert.is(be.memoryStats().liveBytes, before, `${k.op}: every buffer freed`);
    }
  });
});

/** Inputs that carry a cotangent: f32 values, except where's condition. */
const differentiable = (k: Case, t: HostTensor, j: number) => t.dtype === 'f32' && !(k.op === 'where' && j === 0);
function skip(k: Case, ins: HostTensor[]): boolean {
  if (!ops[k.op].pullback) return true;
  if (k.op === 'binary' && ['lt', 'le', 'gt', 'ge', 'eq', 'ne'].includes((k.attrs as { fn: string }).fn)) return true;
  if (k.op === 'cast') return true;
  return !ins.some((t, j) => differentiable(k, t, j));
}

let pulled = 0;
mine.forEach(({ k, i }) => {
  if (skip(k, k.inputs(new Rng(5000 + i)))) return;
  test(`pullback ${k.op}: ${k.label}`, () => {
    const ins = k.inputs(new Rng(5000 + i));
    const rng = new Rng(9000 + i);
    const outs = run(referenceBackend, k.op, ins, k.attrs as never);
    const cot = rand(rng, outs[0]!.shape as number[]);
    const needs = ins.map((t, j) => differentiable(k, t, j));
    const want = vjp(referenceBackend, k.op, ins, k.attrs as never).pullback([cot], needs);
    const before = best.memoryStats().liveBytes;
    const wIns = ins.map((h) => best.upload(h));
    const wCot = best.upload(cot);
    const got = best.tidy(() => vjp(best, k.op, wIns, k.attrs as never).pullback([wCot], needs));
    needs.forEach((n, j) => {
      if (!n) return;
      assert.ok(got[j], `${k.op}: a cotangent for input ${j}`);
      close(`${k.op} ${k.label}: cotangent of input ${j}`, best.download(got[j]!), want[j]!, k.rtol ?? 1e-3, k.atol ?? 1e-4);
    });
    for (const t of [...wIns, wCot, ...got]) t?.dispose();
    assert.is(best.memoryStats().liveBytes, before, `${k.op}: pullback frees its intermediates under tidy`);
    pulled++;
  });
});

test('pullbacks were checked for every differentiable implemented op', () => {
  const diff = [...implemented].filter((n) => ops[n].pullback && n !== 'cast');
  const checked = new Set(mine.filter(({ k, i }) => !skip(k, k.inputs(new Rng(5000 + i)))).map(({ k }) => k.op));
  assert.equal(diff.filter((n) => !checked.has(n)), []);
  assert.ok(pulled > 40, `only ${pulled} pullbacks ran`);
});

test('bad labels and indices fail like the reference, leaking nothing', () => {
  const before = best.memoryStats().liveBytes;
  const x = best.upload(rand(new Rng(4), [3, 5]));
  const labels = best.upload({ shape: [3], dtype: 'i32', data: Float64Array.from([0, 7, 1]) });
  assert.throws(() => run(best, 'softmaxCrossEntropy', [x, labels], {}), /softmaxCrossEntropy: label 7 at row 1 is outside \[0, 5\)/);
  assert.throws(() => run(best, 'gather', [x, labels], {}), /gather: index 7 at 1 is outside \[0, 3\)/);
  assert.throws(() => best.tidy(() => { run(best, 'unary', [x], { fn: 'exp' }); run(best, 'gather', [x, labels], {}); }), /gather/);
  x.dispose(); labels.dispose();
  assert.is(best.memoryStats().liveBytes, before);
});

test('binary with more than 8 broadcast axes falls back to the loop', () => {
  const a = rand(new Rng(6), [2, 1, 2, 1, 2, 1, 2, 1, 2, 1]), b = rand(new Rng(7), [1, 2, 1, 2, 1, 2, 1, 2, 1, 2]);
  const want = run(referenceBackend, 'binary', [a, b], { fn: 'add' })[0]!;
  const got = best.tidy(() => best.download(run(best, 'binary', [best.upload(a), best.upload(b)], { fn: 'add' })[0]!));
  assertClose('binary rank 10', got, want);
});

test('the multi-threaded build agrees on the GEMM ops', async () => {
  const mt = await wasmBackend({ threads: 2 });
  try {
    for (const { k, i } of mine.filter(({ k }) => ['matmul', 'conv2d', 'conv2dBackwardInput', 'conv2dBackwardFilter', 'attention'].includes(k.op))) {
      const ins = k.inputs(new Rng(1000 + i));
      const want = run(referenceBackend, k.op, ins, k.attrs as never);
      mt.tidy(() => {
        const got = run(mt, k.op, ins.map((h) => mt.upload(h)), k.attrs as never);
        got.forEach((t, j) => close(`${k.op} ${k.label} output ${j} (2 threads)`, mt.download(t), want[j]!, k.rtol ?? 2e-4, k.atol ?? 2e-5));
      });
    }
    assert.is(mt.memoryStats().liveBytes, 0);
  } finally {
    await mt.cpu.close();
  }
});

test('reshape shares the buffer; dispose, tidy and use after dispose', () => {
  const be = best;
  const before = be.memoryStats();
  const a = be.upload(rand(new Rng(3), [2, 6]));
  const v = be.reshape(a, [3, -1]);
  assert.equal([...v.shape], [3, 4]);
  assert.is(be.memoryStats().liveBuffers, before.liveBuffers + 1);
  a.dispose();
  assert.equal([...be.download(v).shape], [3, 4]); // the view keeps the storage alive
  v.dispose();
  assert.is(be.memoryStats().liveBytes, before.liveBytes);
  assert.throws(() => be.download(v), /used after dispose/);
  const five = be.full([5], 1, 'f32');
  assert.throws(() => be.reshape(five, [4]), /cannot reshape \[5\] to \[4\]/);
  five.dispose();
  const kept = be.tidy(() => {
    const x = be.full([4, 3], 2, 'f32');
    const y = run(be, 'unary', [x], { fn: 'exp' })[0]!;
    return { out: be.reshape(run(be, 'sum', [y], { axes: [1] })[0]!, [2, 2]) };
  });
  assert.equal(Array.from(be.download(kept.out).data, (d) => Math.round(d * 1e4) / 1e4), Array(4).fill(Math.round(3 * Math.fround(Math.exp(2)) * 1e4) / 1e4));
  kept.out.dispose();
  assert.is(be.memoryStats().liveBytes, before.liveBytes, 'tidy freed everything but its result');
});

function leaks(be: WasmBackend, f: () => unknown): void {
  const s = be.memoryStats();
  be.tidy(f);
  assert.is(be.memoryStats().liveBytes, s.liveBytes);
}

test('memory stays flat over 10,000 ops (training steps under tidy)', () => {
  const be = best;
  const rng = new Rng(77);
  const x = be.upload(rand(rng, [16, 20])), w1 = be.upload(rand(rng, [20, 24])), b1 = be.upload(rand(rng, [24]));
  const w2 = be.upload(rand(rng, [24, 10])), labels = be.upload(rand(rng, [16], 'int', 'i32', 10));
  let ops = 0;
  const counting: WasmBackend = { ...be, kernels: new Proxy(be.kernels, { get: (t, p) => { const f = (t as Record<string | symbol, unknown>)[p]; return typeof f === 'function' ? (...a: unknown[]) => { ops++; return (f as (...b: unknown[]) => unknown)(...a); } : f; } }) };
  const step = () => counting.tidy(() => {
    const l1 = vjp(counting, 'matmul', [x, w1, b1], { activation: 'relu' });
    const l2 = vjp(counting, 'matmul', [l1.outputs[0]!, w2], {});
    const ce = vjp(counting, 'softmaxCrossEntropy', [l2.outputs[0]!, labels], {});
    const mean = vjp(counting, 'sum', [ce.outputs[0]!], { scale: 1 / 16 });
    const [dloss] = mean.pullback([counting.full([], 1, 'f32')]);
    const [dlogits] = ce.pullback([dloss!, null]);
    const [dh, dw2] = l2.pullback([dlogits!]);
    const [, dw1, db1] = l1.pullback([dh!]);
    return [dw1, db1, dw2].map((t) => run(counting, 'binary', [t!, counting.full([], 0.01, 'f32')], { fn: 'mul' })[0]!);
  });
  for (let i = 0; i < 20; i++) for (const t of step()) t.dispose(); // warm the size classes
  const s0 = be.memoryStats();
  const ops0 = ops;
  while (ops - ops0 < 10_000) for (const t of step()) t.dispose();
  const s1 = be.memoryStats();
  assert.ok(ops - ops0 >= 10_000);
  assert.is(s1.liveBytes, s0.liveBytes, 'live bytes');
  assert.is(s1.liveBuffers, s0.liveBuffers, 'live buffers');
  assert.is(s1.heapBytes, s0.heapBytes, 'the heap did not grow');
  leaks(be, () => { run(be, 'softmax', [x], {}); });
  for (const t of [x, w1, b1, w2, labels]) t.dispose();
});

test.run();
