// SPDX-License-Identifier: MIT
// Training with the nn layers and losses and a hand-written SGD step (p ← p - lr·g, no optimizer library):
// an MLP classifier on XOR-like data and a Sequential regression of sin, each to a stated loss.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as nn from '../../sdk/nn/index.js';
import { grad, tensor, useBackend, referenceTensorBackend, SeededRandom, Tensor, argmax } from '../../sdk/index.js';
import { load } from '../support/compile.js';
import { values } from './support.js';

const m = await load('test/programs/nn/models.ts');
useBackend(referenceTensorBackend);

/** p - lr·g over a parameter tree and its gradient tree (other leaves, such as a layer's kind, kept). */
function sgd<T>(p: T, g: unknown, lr: number): T {
  if (p instanceof Tensor) return p.sub((g as Tensor).mul(lr)) as T;
  if (Array.isArray(p)) return p.map((v, i) => sgd(v, (g as unknown[])[i], lr)) as T;
  if (p !== null && typeof p === 'object') return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, sgd(v, (g as Record<string, unknown>)[k], lr)])) as T;
  return p;
}

test('an MLP (2-16-16-2, ReLU) learns XOR-like quadrants with SGD: cross-entropy below 0.05, every point right', async () => {
  // 128 points in [-1, 1]², away from the axes; the class is whether x·y > 0 (not linearly separable).
  const r = new SeededRandom(1);
  const pts: number[] = [], cls: number[] = [];
  while (cls.length < 128) {
    const [a, b] = [r.range(-1, 1), r.range(-1, 1)];
    if (Math.abs(a) < 0.1 || Math.abs(b) < 0.1) continue;
    pts.push(a, b); cls.push(a * b > 0 ? 1 : 0);
  }
  const x = tensor(pts, [128, 2]), y = tensor(cls, [128], 'i32');
  let p = { fc1: nn.initLinear(2, 16, { seed: 1 }), fc2: nn.initLinear(16, 16, { seed: 2 }), out: nn.initLinear(16, 2, { seed: 3 }) };
  const first = await (m.mlpLoss(p, x, y) as Tensor).item();
  for (let step = 0; step < 400; step++) p = sgd(p, grad(m.mlpLoss)(p, x, y), 0.5);
  const loss = await (m.mlpLoss(p, x, y) as Tensor).item();
  assert.ok(first > 0.6, `initial loss ${first}`);
  assert.ok(loss < 0.05, `loss after 400 steps ${loss} (from ${first})`);
  const h = nn.linear(p.out, nn.linear(p.fc2, nn.linear(p.fc1, x, { activation: 'relu' }), { activation: 'relu' }));
  const pred = await values(argmax(h, 1));
  assert.equal(pred, cls);
});

test('a Sequential (linear-tanh-linear-tanh-linear, with dropout in training) fits sin on [-3, 3]: mse from 0.15 to below 0.025 in 300 steps', async () => {
  const xs = Array.from({ length: 64 }, (_, i) => -3 + (6 * i) / 63);
  const x = tensor(xs, [64, 1]), y = tensor(xs.map(Math.sin), [64, 1]);
  let model: nn.Layer[] = [
    { kind: 'linear', params: nn.initLinear(1, 32, { seed: 4, weightInit: nn.init.xavierNormal }) }, { kind: 'tanh' },
    { kind: 'dropout', p: 0.05 },
    { kind: 'linear', params: nn.initLinear(32, 32, { seed: 5, weightInit: nn.init.xavierNormal }) }, { kind: 'tanh' },
    { kind: 'linear', params: nn.initLinear(32, 1, { seed: 6, weightInit: nn.init.xavierNormal }) },
  ];
  const loss = (layers: nn.Layer[], training: boolean, seed: number) => nn.losses.mse(nn.sequential(layers, x, { training, seed }), y);
  const first = await loss(model, false, 0).item();
  for (let step = 0; step < 300; step++) {
    const g = grad((layers: nn.Layer[]) => loss(layers, true, nn.init.split(99, step)))(model);
    model = sgd(model, g, 0.1);
  }
  const last = await loss(model, false, 0).item();
  assert.ok(first > 0.1, `initial mse ${first}`);
  assert.ok(last < 0.025, `mse after 300 steps ${last} (from ${first})`);
});

test.run();
