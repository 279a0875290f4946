// SPDX-License-Identifier: MIT
// nn initialisers and layer inits: statistics of large draws against the formulas, fans, reproducibility with a
// seed, the shapes each layer init makes, and the same values on the CPU backend.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as nn from '../../sdk/nn/index.js';
import { useBackend, withBackend, referenceTensorBackend, cpuTensorBackend, tensorsIn, type Tensor } from '../../sdk/index.js';
import { values, close } from './support.js';

useBackend(referenceTensorBackend);

async function stats(t: Tensor): Promise<{ mean: number; std: number; min: number; max: number }> {
  const v = await values(t);
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
  return { mean, std, min: Math.min(...v), max: Math.max(...v) };
}

test('fans: linear [in, out], convolution [out, in, kh, kw], vectors', () => {
  assert.equal(nn.init.fans([784, 128]), { fanIn: 784, fanOut: 128 });
  assert.equal(nn.init.fans([16, 3, 5, 5]), { fanIn: 75, fanOut: 400 });
  assert.equal(nn.init.fans([10]), { fanIn: 10, fanOut: 10 });
});

// [in, out] = [400, 300]: 120,000 draws. The sample mean's standard error is std/√n ≈ 0.003·std; the sample
// standard deviation's is about std/√(2n) ≈ 0.002·std. The tolerances are 5 standard errors.
const [fanIn, fanOut] = [400, 300];
const n = fanIn * fanOut;
const expected: [string, (s: number[], seed: number) => Tensor, number, number | null][] = [
  ['kaimingNormal', nn.init.kaimingNormal, Math.sqrt(2 / fanIn), null],
  ['kaimingUniform', nn.init.kaimingUniform, Math.sqrt(2 / fanIn), Math.sqrt(6 / fanIn)],
  ['xavierNormal', nn.init.xavierNormal, Math.sqrt(2 / (fanIn + fanOut)), null],
  ['xavierUniform', nn.init.xavierUniform, Math.sqrt(2 / (fanIn + fanOut)), Math.sqrt(6 / (fanIn + fanOut))],
  ['normal (std 1)', nn.init.normal, 1, null],
];
for (const [name, init, std, bound] of expected) {
  test(`${name}: mean 0 and std ${std.toPrecision(3)} over ${n} draws${bound ? `, within ±${bound.toPrecision(3)}` : ''}`, async () => {
    const s = await stats(init([fanIn, fanOut], 1));
    assert.ok(Math.abs(s.mean) < 5 * std / Math.sqrt(n), `mean ${s.mean}`);
    assert.ok(Math.abs(s.std / std - 1) < 5 / Math.sqrt(2 * n), `std ${s.std}, expected ${std}`);
    if (bound) assert.ok(s.min >= -bound && s.max < bound && s.max > 0.99 * bound, `range [${s.min}, ${s.max}], bound ${bound}`);
  });
}

test('options: gain, explicit fans, normal std and mean, uniform range', async () => {
  const a = await stats(nn.init.kaimingNormal([200, 500], 2, { gain: 1, fanIn: 50 }));
  assert.ok(Math.abs(a.std / Math.sqrt(1 / 50) - 1) < 0.02, `kaimingNormal gain 1, fanIn 50: std ${a.std}`);
  const b = await stats(nn.init.xavierUniform([200, 500], 3, { gain: 5 / 3 }));
  assert.ok(Math.abs(b.std / ((5 / 3) * Math.sqrt(2 / 700)) - 1) < 0.02, `xavierUniform gain 5/3: std ${b.std}`);
  const c = await stats(nn.init.normal([100000], 4, { std: 0.02, mean: 3 }));
  assert.ok(Math.abs(c.mean - 3) < 0.001 && Math.abs(c.std / 0.02 - 1) < 0.02, `normal(3, 0.02²): ${c.mean}, ${c.std}`);
  const d = await stats(nn.init.uniform([100000], 5, { lo: -1, hi: 3 }));
  assert.ok(d.min >= -1 && d.max < 3 && Math.abs(d.mean - 1) < 0.02 && Math.abs(d.std / (4 / Math.sqrt(12)) - 1) < 0.02, JSON.stringify(d));
  assert.equal(await values(nn.init.zeros([2, 2])), [0, 0, 0, 0]);
  assert.equal(await values(nn.init.ones([3], 9)), [1, 1, 1]);
});

test('a seed gives the same values every time; another seed other values', async () => {
  for (const init of [nn.init.kaimingNormal, nn.init.kaimingUniform, nn.init.xavierNormal, nn.init.xavierUniform, nn.init.normal, nn.init.uniform]) {
    const a = await values(init([8, 8], 42)), b = await values(init([8, 8], 42)), c = await values(init([8, 8], 43));
    assert.equal(a, b, init.name);
    assert.ok(a.some((v, i) => v !== c[i]), init.name);
  }
});

test('split: derived seeds differ from each other and from nearby seeds', () => {
  const seen = new Set<number>();
  for (let s = 0; s < 50; s++) for (let k = 0; k < 50; k++) seen.add(nn.init.split(s, k));
  assert.is(seen.size, 2500);
  assert.is(nn.init.split(7, 3), nn.init.split(7, 3));
});

test('layer inits: shapes, zero biases, no bias on request, weights and biases from different streams', async () => {
  const fc = nn.initLinear(6, 4, { seed: 1 });
  assert.equal([[...fc.w.shape], [...fc.b!.shape]], [[6, 4], [4]]);
  assert.equal(await values(fc.b!), [0, 0, 0, 0]);
  assert.is(nn.initLinear(6, 4, { bias: false }).b, undefined);
  const uni = nn.initLinear(6, 4, { seed: 1, biasInit: nn.init.normal, weightInit: nn.init.normal });
  assert.ok((await values(uni.b!))[0] !== (await values(uni.w))[0], 'bias and weight differ');
  assert.equal(await values(nn.initLinear(6, 4, { seed: 1 }).w), await values(fc.w), 'reproducible');
  const conv = nn.initConv2d(3, 8, [3, 5], { seed: 2 });
  assert.equal([[...conv.w.shape], [...conv.b!.shape]], [[8, 3, 3, 5], [8]]);
  // kaimingUniform with fanIn = 3·3·5 = 45: |w| < √(6/45).
  assert.ok((await values(conv.w)).every((v) => Math.abs(v) < Math.sqrt(6 / 45)));
  const emb = nn.initEmbedding(10, 4, { seed: 3 });
  assert.equal([...emb.table.shape], [10, 4]);
  const att = nn.initMultiHeadAttention(8, { seed: 4 });
  assert.equal(tensorsIn(att).map((t) => t.shape.join('x')), ['8x8', '8', '8x8', '8', '8x8', '8', '8x8', '8']);
  assert.ok((await values(att.q.w))[0] !== (await values(att.k.w))[0], 'the projections differ');
  assert.throws(() => nn.initLinear(0, 3), /initLinear.*inFeatures must be a positive integer, got 0/);
});

test('the same seed gives the same values on the CPU backend (to f32 rounding)', async () => {
  const cpu = await cpuTensorBackend();
  const ref = await values(nn.init.kaimingNormal([16, 16], 5));
  const onCpu = withBackend(cpu, () => nn.init.kaimingNormal([16, 16], 5));
  assert.is(onCpu.backend.name, 'cpu');
  close('cpu', await values(onCpu), ref, 1e-7, 0);
  assert.ok(withBackend(referenceTensorBackend, () => nn.init.zeros([1])).backend === referenceTensorBackend);
});

test.run();
