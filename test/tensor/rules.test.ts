// Custom derivatives of tensor functions (/** @derivative f */), checkpoints nested and in loops, and the
// documented conventions at non-smooth points: relu'(0) = 0, max-pool ties to the first index, clip passes
// gradient only strictly inside its range, masked positions get zero.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { grad, gradcheck, explain, tensor, randn, useBackend, referenceTensorBackend, maxPool2d, sum, clip, where, gt, mul, cast, memoryStats, type Tensor } from '../../sdk/index.js';
import { load } from '../support/compile.js';

const m = await load('test/programs/tensor/rules.ts');
useBackend(referenceTensorBackend);
const R = (shape: number[], seed: number, s = 0.5) => randn(shape, seed).mul(s);
const values = async (t: unknown) => Array.from(await (t as Tensor).data());

test('a custom derivative of a tensor function is used, and is correct for softplus', async () => {
  assert.match(String(explain(m.softplus)), /custom \/\*\* @derivative \*\/ rule/);
  const r = gradcheck(m.useRules, [R([3, 2], 1), R([4, 3], 2)] as never, { tolerance: 1e-6, eps: 1e-5 });
  assert.ok(r.ok, `max error ${r.maxError} at ${JSON.stringify(r.where)}`);
  // The straight-through rule says 3 where the ops would say 1.
  assert.equal(await values(grad(m.useStraight)(tensor([1, -2, 0.5], [3]))), [3, 3, 3]);
});

test('a rule may return the cotangent itself, and what a rule makes is freed', async () => {
  const x = tensor([1, -2, 0.5], [3]);
  // d/dx sum(passThrough(x) * x) with passThrough' := 1: x (through the rule) + x.
  assert.equal(await values(grad(m.usePassThrough)(x)), [2, -4, 1]);
  const w = R([3, 2], 1), xs = R([4, 3], 2);
  for (const t of [grad(m.useRules)(w, xs)] as Tensor[]) t.dispose();
  const before = memoryStats().liveTensors;
  for (let i = 0; i < 5; i++) (grad(m.useRules)(w, xs) as Tensor).dispose();
  assert.is(memoryStats().liveTensors, before);
});

test('checkpoints nested inside checkpointed functions and inside loops give the same gradients', async () => {
  const w = R([4, 4], 3), x = R([2, 4], 4);
  const plain = await values(grad(m.nested)(w, x, false));
  const ck = await values(grad(m.nested)(w, x, true));
  plain.forEach((v, i) => assert.ok(Math.abs(v - ck[i]!) < 1e-12, `dw[${i}]: ${v} vs ${ck[i]}`));
  const r = gradcheck(m.nested, [w, x, true] as never, { argnums: [0, 1], tolerance: 1e-6, eps: 1e-5 });
  assert.ok(r.ok, `max error ${r.maxError}`);
});

test("relu'(0) = 0", async () => {
  assert.equal(await values(grad(m.sumRelu)(tensor([0, 1, -1, 0], [4]))), [0, 1, 0, 0]);
});

test('max-pool ties send the gradient to the first index of the window', async () => {
  const x = tensor([1, 1, 2, 2, 1, 1, 2, 2, 0, 5, 5, 5, 0, 5, 5, 5], [1, 1, 4, 4]);
  const g = grad((t: Tensor) => sum(maxPool2d(t, { kernel: 2 })))(x);
  assert.equal(await values(g), [1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
});

test('clip passes gradient only strictly inside its range; masked positions get zero', async () => {
  const x = tensor([-2, -1, 0, 1, 2], [5]);
  assert.equal(await values(grad((t: Tensor) => sum(clip(t, -1, 1)))(x)), [0, 0, 1, 0, 0]);
  assert.equal(await values(grad((t: Tensor) => sum(where(gt(t, 0), mul(t, 2), 0)))(x)), [0, 0, 0, 2, 2]);
});

test('an f16 value read twice: its cotangents are summed in f32 and stored as f16', async () => {
  const x = tensor([0.5, -1.25, 3], [3]);
  const g = grad((t: Tensor) => { const h = cast(t, 'f16'); return sum(mul(cast(h, 'f32'), cast(h, 'f32'))); })(x);
  assert.equal(await values(g), [1, -2.5, 6]);
});

test.run();
