// SPDX-License-Identifier: MIT
// Dynamic loss scaling on the CPU backend: a network whose activations are stored in f16 (through casts) and whose
// loss is tiny has gradients that flush to exactly zero without scaling and trains with it; an injected overflow
// skips exactly one step, leaving the parameters bit-identical, and training goes on at half the scale; the scale
// grows after N clean steps; unscaling inside the fused update is exact for power-of-two scales.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Tensor, init, memoryStats, randn, tensor, valueAndGrad } from '../../sdk/index.js';
import { LossScaler, adam, globalNormSq, sgd } from '../../sdk/optim/index.js';
import { load } from '../support/compile.js';
import { rejects } from '../support/gpu.js';

const m = await load('test/programs/train/models.ts');
await init({ backend: 'cpu' });

// 64 samples of 4 features; the target is a smooth function of them.
const x = randn([64, 4], 1);
const xs = await x.data();
const y = tensor(Array.from({ length: 64 }, (_, i) => Math.sin(xs[4 * i]!) + 0.5 * xs[4 * i + 1]! * xs[4 * i + 2]!), [64, 1]);
interface Net { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor }
const net = (): Net => ({ w1: randn([4, 16], 2).mul(0.5), b1: tensor(new Float32Array(16)), w2: randn([16, 1], 3).mul(0.25), b2: tensor([0]) });
interface Mlp { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor; w3: Tensor; b3: Tensor }
const mlp = (): Mlp => ({
  w1: randn([4, 8], 4).mul(0.5), b1: tensor(new Float32Array(8)), w2: randn([8, 8], 5).mul(0.35),
  b2: tensor(new Float32Array(8)), w3: randn([8, 1], 6).mul(0.35), b3: tensor([0]),
});
const leaves = (p: object) => Object.values(p) as Tensor[];
/** Every parameter's values, as f32 bits. */
const snapshot = async (p: object) => Promise.all(leaves(p).map(async (t) => Array.from(new Uint32Array(Float32Array.from(await t.data()).buffer))));
const TINY = 1e-8;

test('f16 storage: with a tiny loss every unscaled gradient flushes to exactly 0 and Adam cannot move; with a loss scale it trains', async () => {
  // Unscaled: the cotangent of the f16-stored output is about 2·|err|/64 · 1e-8 ≈ 3e-10, below f16's smallest subnormal (6e-8).
  const p = net();
  const [l0, g0] = valueAndGrad(m.halfLoss)(p, x, y, TINY) as [Tensor, Net];
  const mse0 = (await l0.item()) / TINY;
  l0.dispose();
  assert.is(await globalNormSq(leaves(g0)), 0, 'every gradient is exactly zero');
  leaves(g0).forEach((g) => g.dispose());
  const before = await snapshot(p);
  const opt = adam({ lr: 1e-2 });
  for (let k = 0; k < 50; k++) {
    const [l, g] = valueAndGrad(m.halfLoss)(p, x, y, TINY) as [Tensor, Net];
    l.dispose();
    await opt.step(p, g);
  }
  assert.equal(await snapshot(p), before, 'without scaling the parameters never change');

  // Scaled by 2^15 (growing ×2 every 50 clean steps) the cotangents land in f16's range.
  const q = net(), opt2 = adam({ lr: 1e-2 });
  const scaler = new LossScaler({ initScale: 2 ** 15, growthInterval: 50 });
  for (let k = 0; k < 200; k++) {
    const r = await scaler.valueAndGrad(m.halfLoss)(q, x, y, TINY);
    assert.ok(r.ok, `step ${k} overflowed at scale ${r.scale}`);
    await scaler.step(opt2, q, r);
    r.loss.dispose();
  }
  const l1 = m.netLoss(q, x, y) as Tensor;
  const mse1 = await l1.item();
  l1.dispose();
  assert.ok(mse0 > 0.7 && mse1 < 0.25, `MSE ${mse0} → ${mse1} (expected below 0.25)`);
  assert.is(scaler.scale, 2 ** 19, 'grew 4 times in 200 clean steps');
});

test('the scaled gradients, unscaled, match the f32 gradients to f16 precision', async () => {
  const p = net();
  const scaler = new LossScaler({ initScale: 2 ** 30 });
  const r = await scaler.valueAndGrad(m.halfLoss as (p: Net, x: Tensor, y: Tensor, tiny: number) => Tensor)(p, x, y, TINY);
  assert.ok(r.ok);
  const [l, want] = valueAndGrad(m.netLoss)(p, x, y) as [Tensor, Net];
  l.dispose();
  for (const k of ['w1', 'b1', 'w2', 'b2'] as const) {
    const got = await r.grads![k].data(), w = await want[k].data();
    let err = 0, norm = 0;
    got.forEach((g, i) => { err += (g * r.gradScale - TINY * w[i]!) ** 2; norm += (TINY * w[i]!) ** 2; });
    assert.ok(Math.sqrt(err / norm) < 5e-3, `${k}: relative error ${Math.sqrt(err / norm)}`);
    r.grads![k].dispose(); want[k].dispose();
  }
  r.loss.dispose();
});

test('an injected overflow skips exactly that step (parameters unchanged, gradients freed), halves the scale, and training goes on', async () => {
  const p = mlp(), opt = sgd({ lr: 0.05, momentum: 0.9 });
  const scaler = new LossScaler({ initScale: 2 ** 15, growthInterval: 100 });
  const one = tensor(1), spike = tensor(1e38); // 1e38 · 2^15 overflows f32 in the backward pass
  const oks: boolean[] = [];
  let live = 0;
  for (let k = 0; k < 6; k++) {
    const before = await snapshot(p);
    if (k === 1) live = memoryStats().liveTensors;
    const r = await scaler.valueAndGrad(m.spikedLoss)(p, x, y, k === 2 ? spike : one);
    oks.push(r.ok);
    const info = await scaler.step(opt, p, r);
    r.loss.dispose();
    const after = await snapshot(p);
    if (k === 2) {
      assert.is(r.grads, null);
      assert.is(info, null);
      assert.equal(after, before, 'the skipped step changed nothing');
      assert.is(r.scale, 2 ** 15);
      assert.is(scaler.scale, 2 ** 14, 'halved');
      assert.is(memoryStats().liveTensors, live, 'the overflowing gradients were freed');
    } else {
      assert.not.equal(after, before, `step ${k} moved the parameters`);
    }
  }
  assert.equal(oks, [true, true, false, true, true, true]);
  assert.is(scaler.skippedSteps, 1);
  assert.is(opt.steps, 5);
  assert.is(await opt.state!.step.item(), 5);
});

test('the scale grows ×factor after growthInterval clean steps; an overflow restarts the count', async () => {
  const p = mlp(), opt = sgd({ lr: 0.01 });
  const scaler = new LossScaler({ initScale: 8, growthInterval: 3, factor: 4 });
  const one = tensor(1), spike = tensor(Infinity);
  const scales: number[] = [];
  for (let k = 0; k < 9; k++) {
    const r = await scaler.valueAndGrad(m.spikedLoss)(p, x, y, k === 4 ? spike : one);
    await scaler.step(opt, p, r);
    r.loss.dispose();
    scales.push(scaler.scale);
  }
  // Clean steps 0, 1, 2 → ×4; step 3 clean; step 4 overflows → ÷4 and the count restarts; 5, 6, 7 clean → ×4.
  assert.equal(scales, [8, 8, 32, 32, 8, 8, 8, 32, 32]);
  assert.is(scaler.cleanSteps, 1);
});

test('unscaling in the fused update is exact: training with a power-of-two scale is bit-identical to training without', async () => {
  const a = mlp(), b = mlp();
  const optA = adam({ lr: 1e-2 }), optB = adam({ lr: 1e-2 });
  const scaler = new LossScaler({ initScale: 2 ** 10, growthInterval: 4 });
  for (let k = 0; k < 12; k++) {
    const [l, g] = valueAndGrad(m.mlpLoss)(a, x, y) as [Tensor, Mlp];
    l.dispose();
    await optA.step(a, g);
    const r = await scaler.valueAndGrad(m.mlpLoss)(b, x, y);
    await scaler.step(optB, b, r);
    r.loss.dispose();
  }
  assert.is(scaler.scale, 2 ** 13);
  assert.equal(await snapshot(b), await snapshot(a));
});

test('gradients that are not finite at any scale end in an Error, not an endless run of skipped steps', async () => {
  const p = mlp(), opt = sgd({ lr: 0.01 });
  const scaler = new LossScaler({ initScale: 2 ** 15, minScale: 2 ** 13 });
  const nan = tensor(NaN);
  const live = memoryStats().liveTensors;
  for (let k = 0; k < 2; k++) {
    const r = await scaler.valueAndGrad(m.spikedLoss)(p, x, y, nan);
    assert.not.ok(r.ok);
    await scaler.step(opt, p, r);
    r.loss.dispose();
  }
  try {
    await scaler.valueAndGrad(m.spikedLoss)(p, x, y, nan);
    assert.unreachable('expected an Error');
  } catch (e) {
    assert.match((e as Error).message, /LossScaler: the gradients are inf or NaN even at loss scale 8192 \(minScale 8192\); the loss or the model itself is not finite/);
  }
  assert.is(memoryStats().liveTensors, live, 'nothing leaked');
  assert.throws(() => new LossScaler({ initScale: 0 }), /LossScaler: initScale must be a finite number > 0, got 0/);
  assert.throws(() => new LossScaler({ growthInterval: 1.5 }), /LossScaler: growthInterval must be an integer ≥ 1, got 1.5/);
  assert.throws(() => new LossScaler({ factor: 1 }), /LossScaler: factor must be a finite number > 1, got 1/);
  assert.throws(() => scaler.valueAndGrad(42 as never), /LossScaler\.valueAndGrad: f must be a function, got number/);
  // A forgotten await would otherwise skip every step in silence.
  const pending = scaler.valueAndGrad(m.spikedLoss)(p, x, y, tensor(1));
  await rejects(() => scaler.step(opt, p, pending as never), /LossScaler\.step: result must be what `await scaler\.valueAndGrad\(f\)\(\.\.\.\)` returns, got a Promise \(add `await`/);
  const r = await pending;
  r.loss.dispose();
  for (const t of leaves(r.grads as object)) t.dispose();
});

test.run();
