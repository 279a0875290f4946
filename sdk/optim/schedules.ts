// SPDX-License-Identifier: MIT
// Learning-rate schedules: plain functions from the step number (0 for the first update) to the
// learning rate for that update. An optimizer takes either a number or one of these.

/** A learning rate as a function of the step (0, 1, 2, ...). */
export type Schedule = (step: number) => number;

function checkRate(fn: string, name: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`${fn}: ${name} must be a finite number ≥ 0, got ${v}`);
}
function checkGamma(fn: string, gamma: number): void {
  if (typeof gamma !== 'number' || !(gamma > 0 && gamma <= 1)) throw new RangeError(`${fn}: gamma must be in (0, 1] (the factor the rate is multiplied by), got ${gamma}`);
}
function checkCount(fn: string, name: string, v: number, least: number): void {
  if (!Number.isSafeInteger(v) || v < least) throw new RangeError(`${fn}: ${name} must be an integer ≥ ${least}, got ${v}`);
}
function checkStep(fn: string, step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`${fn}: the step must be an integer ≥ 0, got ${step}`);
}

/**
 * The same rate at every step.
 * @example
 * const lr = constantLr(1e-3); lr(0) === lr(10_000); // 1e-3
 */
export function constantLr(lr: number): Schedule {
  checkRate('constantLr', 'lr', lr);
  return (step) => { checkStep('constantLr', step); return lr; };
}

/**
 * Step decay (PyTorch's StepLR): `lr · gamma^⌊step / stepSize⌋`, the rate multiplied by gamma every
 * stepSize steps.
 * @example
 * const lr = stepDecay({ lr: 0.1, stepSize: 1000, gamma: 0.5 });
 * lr(999); // 0.1
 * lr(1000); // 0.05
 */
export function stepDecay(options: { lr: number; stepSize: number; gamma?: number }): Schedule {
  const { lr, stepSize, gamma = 0.1 } = options;
  checkRate('stepDecay', 'lr', lr);
  checkCount('stepDecay', 'stepSize', stepSize, 1);
  checkGamma('stepDecay', gamma);
  return (step) => { checkStep('stepDecay', step); return lr * gamma ** Math.floor(step / stepSize); };
}

/**
 * Exponential decay (PyTorch's ExponentialLR, applied per step): `lr · gamma^step`, never below `min`
 * (default 0).
 * @example
 * const lr = exponentialDecay({ lr: 0.1, gamma: 0.999, min: 1e-4 });
 * lr(1000); // 0.1 · 0.999^1000 ≈ 0.0368
 */
export function exponentialDecay(options: { lr: number; gamma: number; min?: number }): Schedule {
  const { lr, gamma, min = 0 } = options;
  checkRate('exponentialDecay', 'lr', lr);
  checkGamma('exponentialDecay', gamma);
  checkRate('exponentialDecay', 'min', min);
  if (min > lr) throw new RangeError(`exponentialDecay: min (${min}) must not exceed lr (${lr})`);
  return (step) => { checkStep('exponentialDecay', step); return Math.max(min, lr * gamma ** step); };
}

/**
 * Linear warmup then cosine decay (as Hugging Face's get_cosine_schedule_with_warmup and optax's
 * warmup_cosine_decay_schedule): for step < warmupSteps the rate is `lr · step / warmupSteps`,
 * rising from 0; then with t = (step − warmupSteps) / (totalSteps − warmupSteps) it is
 * `min + (lr − min) · (1 + cos(π t)) / 2`, falling from lr to `min` (default 0) at totalSteps, and
 * `min` after that.
 * @example
 * const lr = cosineWithWarmup({ lr: 3e-4, warmupSteps: 100, totalSteps: 10_000, min: 3e-5 });
 * lr(50);    // 1.5e-4 (half way up)
 * lr(100);   // 3e-4   (the peak)
 * lr(10_000); // 3e-5  (the floor)
 */
export function cosineWithWarmup(options: { lr: number; warmupSteps?: number; totalSteps: number; min?: number }): Schedule {
  const { lr, warmupSteps = 0, totalSteps, min = 0 } = options;
  const fn = 'cosineWithWarmup';
  checkRate(fn, 'lr', lr);
  checkRate(fn, 'min', min);
  if (min > lr) throw new RangeError(`${fn}: min (${min}) must not exceed lr (${lr})`);
  checkCount(fn, 'warmupSteps', warmupSteps, 0);
  checkCount(fn, 'totalSteps', totalSteps, 1);
  if (totalSteps <= warmupSteps) throw new RangeError(`${fn}: totalSteps (${totalSteps}) must be greater than warmupSteps (${warmupSteps}), leaving steps to decay over`);
  const decaySteps = totalSteps - warmupSteps;
  return (step) => {
    checkStep(fn, step);
    if (step < warmupSteps) return (lr * step) / warmupSteps;
    if (step >= totalSteps) return min;
    const t = (step - warmupSteps) / decaySteps;
    return min + ((lr - min) * (1 + Math.cos(Math.PI * t))) / 2;
  };
}
