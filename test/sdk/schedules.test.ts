// SPDX-License-Identifier: MIT
// Learning-rate schedules against their closed forms, at the boundaries where they change regime.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { constantLr, cosineWithWarmup, exponentialDecay, stepDecay } from '../../sdk/optim/schedules.js';

const near = (got: number, want: number, what: string) => assert.ok(Math.abs(got - want) <= 1e-15 + 1e-12 * Math.abs(want), `${what}: got ${got}, want ${want}`);

test('constantLr', () => {
  const lr = constantLr(0.01);
  for (const s of [0, 1, 17, 1e6]) assert.is(lr(s), 0.01);
  assert.throws(() => constantLr(-1), /constantLr: lr must be a finite number ≥ 0, got -1/);
  assert.throws(() => constantLr(NaN), /lr must be a finite number ≥ 0, got NaN/);
  assert.throws(() => lr(-1), /constantLr: the step must be an integer ≥ 0, got -1/);
  assert.throws(() => lr(1.5), /the step must be an integer ≥ 0, got 1.5/);
});

test('stepDecay: lr · gamma^floor(step / stepSize)', () => {
  const lr = stepDecay({ lr: 0.1, stepSize: 30, gamma: 0.5 });
  for (let s = 0; s < 200; s++) near(lr(s), 0.1 * 0.5 ** Math.floor(s / 30), `step ${s}`);
  assert.equal([lr(29), lr(30), lr(59), lr(60)], [0.1, 0.05, 0.05, 0.025]);
  near(stepDecay({ lr: 1, stepSize: 2 })(4), 0.01, 'gamma defaults to 0.1');
  assert.throws(() => stepDecay({ lr: 0.1, stepSize: 0 }), /stepDecay: stepSize must be an integer ≥ 1, got 0/);
  assert.throws(() => stepDecay({ lr: 0.1, stepSize: 10, gamma: 1.5 }), /stepDecay: gamma must be in \(0, 1\] .* got 1.5/);
  assert.throws(() => stepDecay({ lr: 0.1, stepSize: 10, gamma: 0 }), /gamma must be in \(0, 1\]/);
});

test('exponentialDecay: max(min, lr · gamma^step)', () => {
  const lr = exponentialDecay({ lr: 0.2, gamma: 0.99 });
  for (const s of [0, 1, 2, 10, 100, 1000]) near(lr(s), 0.2 * 0.99 ** s, `step ${s}`);
  const floored = exponentialDecay({ lr: 0.2, gamma: 0.9, min: 0.01 });
  // 0.2 · 0.9^s reaches 0.01 between s = 28 (0.0105) and s = 29 (0.0094).
  near(floored(28), 0.2 * 0.9 ** 28, 'above the floor');
  assert.is(floored(29), 0.01);
  assert.is(floored(10_000), 0.01);
  assert.throws(() => exponentialDecay({ lr: 0.1, gamma: 0.9, min: 0.2 }), /exponentialDecay: min \(0.2\) must not exceed lr \(0.1\)/);
  assert.throws(() => exponentialDecay({ lr: 0.1, gamma: -0.5 }), /exponentialDecay: gamma must be in \(0, 1\]/);
});

test('cosineWithWarmup: linear from 0 to lr, cosine down to min, then min', () => {
  const peak = 3e-4, min = 3e-5, W = 100, T = 1100;
  const lr = cosineWithWarmup({ lr: peak, warmupSteps: W, totalSteps: T, min });
  for (let s = 0; s < W; s++) near(lr(s), (peak * s) / W, `warmup step ${s}`);
  assert.is(lr(0), 0);
  near(lr(50), peak / 2, 'half way up');
  assert.is(lr(W), peak, 'the peak at the end of warmup');
  for (let s = W; s < T; s += 7) near(lr(s), min + 0.5 * (peak - min) * (1 + Math.cos((Math.PI * (s - W)) / (T - W))), `decay step ${s}`);
  near(lr(W + 500), (peak + min) / 2, 'half way down is the mean of peak and floor');
  assert.ok(lr(T - 1) > min && lr(T - 1) - min < 1e-9);
  assert.equal([lr(T), lr(T + 1), lr(10 ** 9)], [min, min, min]);
  for (let s = W + 1; s < T; s++) assert.ok(lr(s) < lr(s - 1), `decreasing at ${s}`);
  // No warmup, default floor 0.
  const plain = cosineWithWarmup({ lr: 1, totalSteps: 4 });
  assert.equal([plain(0), plain(2), plain(4)].map((x) => Math.round(x * 1e12) / 1e12), [1, 0.5, 0]);
  near(plain(1), (1 + Math.SQRT1_2) / 2, 'cos(π/4)');
});

test('cosineWithWarmup: invalid arguments are named', () => {
  assert.throws(() => cosineWithWarmup({ lr: 1, warmupSteps: 10, totalSteps: 10 }), /cosineWithWarmup: totalSteps \(10\) must be greater than warmupSteps \(10\)/);
  assert.throws(() => cosineWithWarmup({ lr: 1, warmupSteps: -1, totalSteps: 10 }), /cosineWithWarmup: warmupSteps must be an integer ≥ 0, got -1/);
  assert.throws(() => cosineWithWarmup({ lr: 1, totalSteps: 2.5 }), /totalSteps must be an integer ≥ 1, got 2.5/);
  assert.throws(() => cosineWithWarmup({ lr: 1, totalSteps: 10, min: 2 }), /min \(2\) must not exceed lr \(1\)/);
  assert.throws(() => cosineWithWarmup({ lr: Infinity, totalSteps: 10 }), /lr must be a finite number ≥ 0, got Infinity/);
  assert.throws(() => cosineWithWarmup({ lr: 1, totalSteps: 10 })(-3), /cosineWithWarmup: the step must be an integer ≥ 0, got -3/);
});

test.run();
