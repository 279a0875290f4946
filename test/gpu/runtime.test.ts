// SPDX-License-Identifier: MIT
// Device, tensors, memory and batching of the WebGPU runtime.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '../../runtime-gpu/index.js';
import { rejects, runtime } from '../support/gpu.js';

const setup = async () => { const rt = await runtime(); T.useRuntime(rt); return rt; };

test('backend() names the SwiftShader adapter', async () => {
  await setup();
  const b = T.backend();
  assert.is(b.name, 'webgpu');
  assert.ok(b.adapter && b.adapter.length > 0, 'an adapter description');
  if (!process.env.PULLBACK_GPU_ADAPTER) assert.is(b.software, true);
});

test('tensor, zeros, ones, full, data and item', async () => {
  await setup();
  assert.equal(Array.from(await T.tensor([1, 2.5, -3], [3]).data()), [1, 2.5, -3]);
  assert.equal(Array.from(await T.zeros([2, 2]).data()), [0, 0, 0, 0]);
  assert.equal(Array.from(await T.ones([3], 'i32').data()), [1, 1, 1]);
  assert.is(await T.full([], 7).item(), 7);
  const i = T.tensor([5, -6, 2147483647], [3], 'i32');
  const d = await i.data();
  assert.ok(d instanceof Int32Array);
  assert.equal(Array.from(d), [5, -6, 2147483647]);
  await rejects(() => T.tensor([1, 2], [2]).item(), /item: tensor \[2\] has 2 elements/);
});

test('f16 storage rounds to half precision and round-trips through cast', async () => {
  await setup();
  const h = T.tensor([1 / 3, 65504, -2.5], [3], 'f16');
  assert.equal(Array.from(await h.data()), [0.333251953125, 65504, -2.5]);
  const f = T.cast(h, 'f32');
  assert.is(f.dtype, 'f32');
  assert.equal(Array.from(await f.data()), [0.333251953125, 65504, -2.5]);
  const back = T.cast(T.tensor([0.1, 0.2, 0.3, 1e-8, 70000], [5]), 'f16');
  assert.equal(Array.from(await back.data()), [0.0999755859375, 0.199951171875, 0.300048828125, 0, Infinity]);
  assert.throws(() => T.exp(h), /unary exp: input must be f32, got f16\[3\] \(f16 is a storage format: cast to f32 first\)/);
});

test('rand and randn are reproducible from the seed', async () => {
  await setup();
  const a = await T.randn([1000], 42).data(), b = await T.randn([1000], 42).data(), c = await T.randn([1000], 43).data();
  assert.equal(Array.from(a), Array.from(b));
  assert.not.equal(Array.from(a), Array.from(c));
  const n = Array.from(await T.randn([20000], 1).data());
  const mean = n.reduce((s, v) => s + v, 0) / n.length;
  const sd = Math.sqrt(n.reduce((s, v) => s + (v - mean) ** 2, 0) / n.length);
  assert.ok(Math.abs(mean) < 0.03 && Math.abs(sd - 1) < 0.03, `mean ${mean}, sd ${sd}`);
  const u = await T.rand([5000], 3).data();
  assert.ok(u.every((v) => v >= 0 && v < 1));
});

test('reshape is free: same buffer, no copy, no allocation', async () => {
  const rt = await setup();
  const x = T.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const before = { ...rt.memoryStats(), created: rt.counters.buffersCreated, dispatches: rt.counters.dispatches };
  const y = x.reshape([3, -1]);
  assert.equal(y.shape, [3, 2]);
  assert.is(rt.memoryStats().liveBytes, before.liveBytes);
  assert.is(rt.counters.buffersCreated, before.created);
  assert.is(rt.counters.dispatches, before.dispatches);
  x.dispose();
  assert.equal(Array.from(await y.data()), [1, 2, 3, 4, 5, 6], 'the reshape outlives the original');
  assert.throws(() => y.reshape([4]), /reshape: cannot reshape f32\[3, 2\] to \[4\]/);
  y.dispose();
  assert.throws(() => T.exp(y), /unary: tensor f32\[3, 2\] was used after dispose\(\)/);
});

test('10,000 ops in a loop leave memoryStats flat once released', async () => {
  const rt = await setup();
  const x = T.randn([64, 33], 1);
  const w = T.randn([33, 17], 2);
  const step = () => {
    const y = T.matmul(x, w);
    const z = T.relu(y);
    const s = T.sum(z, 1);
    y.dispose(); z.dispose(); s.dispose();
  };
  for (let i = 0; i < 100; i++) step();
  await rt.sync();
  const warm = rt.memoryStats();
  for (let i = 0; i < 3334; i++) step(); // 10,002 ops
  await rt.sync();
  const after = rt.memoryStats();
  assert.is(after.liveBytes, warm.liveBytes);
  assert.is(after.liveTensors, warm.liveTensors);
  assert.is(after.pooledBytes, warm.pooledBytes, 'the pool reuses buffers instead of growing');
  x.dispose(); w.dispose();
  const end = rt.memoryStats();
  assert.ok(end.liveTensors === warm.liveTensors - 2 && end.liveBytes < warm.liveBytes);
  assert.ok(end.peakBytes >= warm.liveBytes);
});

test('tidy disposes what it does not return', async () => {
  const rt = await setup();
  const before = rt.memoryStats().liveTensors;
  const out = T.tidy(() => {
    const a = T.randn([10], 1);
    const b = T.exp(a);
    return T.mul(b, a);
  });
  assert.is(rt.memoryStats().liveTensors, before + 1);
  assert.is(out.shape.join(), '10');
  out.dispose();
});

test('batching does not change results, and a training step is one submit', async () => {
  const rt = await setup();
  const x = T.randn([37, 20], 3), w1 = T.randn([20, 30], 4), w2 = T.randn([30, 11], 5);
  const labels = T.tensor(Array.from({ length: 37 }, (_, i) => (i * 7) % 11), [37], 'i32');
  const stepOnce = async () => {
    const out = T.tidy(() => {
      const h = T.vjp('matmul', [x, w1], { activation: 'relu' });
      const o = T.vjp('matmul', [h.outputs[0]!, w2], {});
      const l = T.vjp('softmaxCrossEntropy', [o.outputs[0]!, labels], {});
      const [dlogits] = l.pullback([T.ones([37])]);
      const [dh, dw2] = o.pullback([dlogits!]);
      const [, dw1] = h.pullback([dh!]);
      return [l.outputs[0]!, dw1!, dw2!];
    });
    const vals = await Promise.all(out.map((t) => t.data()));
    out.forEach((t) => t.dispose());
    return vals.map((v) => Array.from(v));
  };
  const saved = rt.batchSize;
  try {
    rt.batchSize = 1;
    await rt.sync();
    const s0 = rt.counters.submits;
    const one = await stepOnce();
    assert.ok(rt.counters.submits - s0 > 10, 'batch size 1 submits every dispatch');
    rt.batchSize = 10_000;
    await rt.sync();
    const s1 = rt.counters.submits;
    const many = await stepOnce();
    // The first read submits everything; the other two reads find nothing new but their copies.
    assert.ok(rt.counters.submits - s1 <= 3, `${rt.counters.submits - s1} submits for one step`);
    assert.equal(many, one, 'bitwise the same results');
  } finally {
    rt.batchSize = saved;
  }
});

test('pipelines are compiled once per shader', async () => {
  const rt = await setup();
  const a = T.randn([5, 7], 1);
  T.exp(a).dispose();
  const n = rt.counters.pipelinesCompiled;
  for (let i = 0; i < 5; i++) T.exp(a).dispose();
  assert.is(rt.counters.pipelinesCompiled, n);
  T.exp(T.randn([6, 7], 1)).dispose();
  assert.is(rt.counters.pipelinesCompiled, n + 1, 'a new shape is a new specialisation');
});

test('ops do not block: nothing is submitted until a read or a full batch', async () => {
  const rt = await setup();
  await rt.sync();
  const s = rt.counters.submits;
  const a = T.randn([100], 1);
  let b = a;
  for (let i = 0; i < 20; i++) b = T.mul(b, 1.01);
  assert.is(rt.counters.submits, s);
  const v = await T.sum(b).item();
  const expected = (await T.sum(a).item()) * 1.01 ** 20;
  assert.ok(Math.abs(v - expected) < 1e-4 * (Math.abs(expected) + 1), `${v} vs ${expected}`);
  assert.ok(rt.counters.submits > s);
});

test.run();
