// SPDX-License-Identifier: MIT
// Dynamic loss scaling (as torch.amp.GradScaler): the backward pass starts from the loss scale s instead of 1, so
// every cotangent is s times larger and small ones survive a trip through f16 storage instead of flushing to zero.
// The gradients come back still multiplied by s; the fused optimizer update divides them by s on the fly
// (gradScale = 1 / s), so there is no separate unscaling pass. When a scaled gradient overflowed (inf or NaN,
// found in ONE pass over every gradient), the step is skipped and s is divided by `factor`; after `growthInterval`
// clean steps in a row s is multiplied by `factor`.
//
// What is in f16, honestly. The op table holds f16 only as a storage format: cast(x, 'f16') rounds to f16 and
// cast(h, 'f32') reads it back; reshape and detach pass f16 through; every other op computes in f32 and rejects f16
// inputs. So mixed precision here means: f32 master weights and f32 optimizer state (the fused updates require
// f32), f32 arithmetic in every op, and values the model chooses to store in f16 with `cast(cast(h, 'f16'), 'f32')`.
// The cast's pullback casts the cotangent to f16 as well, so the backward pass through that point is rounded to
// f16 and underflows below 2^-24 as real f16 storage would: that is what loss scaling is for. Two limits: it does
// not save memory today (the op that reads the value back keeps its f32 copy for its own pullback), and an f16
// tensor must be cast back once and the f32 copy reused, because the engine sums the cotangents of a tensor read
// twice with an f32 add, which refuses f16.
import type { Tensor } from '../tensor/engine.js';
import { containsTensor, lookupTensor, tensorValueAndGrad, tensorsIn } from '../tensor/ad.js';
import { notTransformed } from '../ad/registry.js';
import { hasNonFinite } from './fused.js';
import type { Optimizer, StepInfo } from './optimizers.js';

/** The settings of a {@link LossScaler}. */
export interface LossScalerOptions {
  /** The first loss scale. Default 2^15. */
  initScale?: number;
  /** Clean (finite) steps in a row after which the scale is multiplied by `factor`. Default 2000. */
  growthInterval?: number;
  /** Growth factor; the scale is divided by it on overflow. Default 2. */
  factor?: number;
  /**
   * Below this the scale is not lowered further: an Error says that the gradients are not finite at any scale
   * (the loss itself is inf or NaN). Default 2^-24.
   */
  minScale?: number;
}

/** The outcome of a scaled backward pass: the loss (not scaled) and, when every gradient was finite, the gradients. */
export type ScaledGradients<G> = {
  /** The loss as f computed it (the scale applies to the backward pass only). The caller owns it. */
  loss: Tensor;
  /** The scale the backward pass started from. */
  scale: number;
  /** 1 / scale: pass it as the step's gradScale (scaler.step does). */
  gradScale: number;
} & ({ ok: true; grads: G } | { ok: false; grads: null });

/**
 * Dynamic loss scaling for gradients that would underflow in f16 storage.
 * @example
 * const scaler = new LossScaler({ initScale: 2 ** 15, growthInterval: 2000, factor: 2 });
 * const opt = adam({ lr: 1e-3 });
 * for (const [x, y] of data) {
 *   const r = await scaler.valueAndGrad(lossFn)(params, x, y); // grads still multiplied by r.scale
 *   await scaler.step(opt, params, r);                         // opt.step(params, r.grads, { gradScale: 1 / r.scale }) when r.ok
 *   r.loss.dispose();
 * }
 */
export class LossScaler {
  private s: number;
  private clean = 0;
  private skips = 0;
  readonly growthInterval: number;
  readonly factor: number;
  readonly minScale: number;

  constructor(options: LossScalerOptions = {}) {
    const { initScale = 2 ** 15, growthInterval = 2000, factor = 2, minScale = 2 ** -24 } = options;
    for (const [name, v] of [['initScale', initScale], ['minScale', minScale]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new RangeError(`LossScaler: ${name} must be a finite number > 0, got ${v}`);
    }
    if (!Number.isSafeInteger(growthInterval) || growthInterval < 1) throw new RangeError(`LossScaler: growthInterval must be an integer ≥ 1, got ${growthInterval}`);
    if (typeof factor !== 'number' || !Number.isFinite(factor) || factor <= 1) throw new RangeError(`LossScaler: factor must be a finite number > 1, got ${factor}`);
    if (initScale < minScale) throw new RangeError(`LossScaler: initScale ${initScale} is below minScale ${minScale}`);
    this.s = initScale;
    this.growthInterval = growthInterval;
    this.factor = factor;
    this.minScale = minScale;
  }

  /** The scale the next backward pass starts from. */
  get scale(): number { return this.s; }
  /** Clean steps in a row since the scale last changed. */
  get cleanSteps(): number { return this.clean; }
  /** Steps skipped so far because a gradient overflowed. */
  get skippedSteps(): number { return this.skips; }

  /**
   * Like valueAndGrad(f, argnums): runs f and its backward pass seeded with the current scale, then checks every
   * gradient for inf / NaN in one pass (one read-back on WebGPU). On overflow the gradients are disposed, `ok` is
   * false (skip the step) and the scale is divided by `factor`; otherwise the gradients come back still multiplied
   * by `scale`, and after growthInterval clean steps the scale grows.
   */
  valueAndGrad<F extends (...args: any[]) => Tensor, A extends number = 0>(f: F, argnums?: A): (...args: Parameters<F>) => Promise<ScaledGradients<Parameters<F>[A]>> {
    type G = Parameters<F>[A];
    if (typeof f !== 'function') throw new TypeError(`LossScaler.valueAndGrad: f must be a function, got ${typeof f}`);
    const an = argnums ?? 0;
    return async (...args: Parameters<F>) => {
      if (!lookupTensor(f) && !args.some(containsTensor)) throw notTransformed(f);
      const scale = this.s;
      const { value, grads } = tensorValueAndGrad(f, undefined, args, [an], { seed: scale });
      const g = grads[0] as G;
      const leaves = [...new Set(tensorsIn(g))];
      let bad: boolean;
      try { bad = await hasNonFinite(leaves); } catch (e) { for (const t of leaves) t.dispose(); value.dispose(); throw e; }
      if (bad) {
        for (const t of leaves) t.dispose();
        this.overflowed(value, scale);
        return { loss: value, scale, gradScale: 1 / scale, ok: false, grads: null };
      }
      if (++this.clean >= this.growthInterval) { this.s = scale * this.factor; this.clean = 0; }
      return { loss: value, scale, gradScale: 1 / scale, ok: true, grads: g };
    };
  }

  /** Steps the optimizer with the scaled gradients (unscaled inside the fused update) when they were finite; null when the step was skipped. */
  async step(opt: Optimizer, params: unknown, result: ScaledGradients<unknown>): Promise<StepInfo | null> {
    if (typeof result !== 'object' || result === null || typeof (result as { then?: unknown }).then === 'function' || typeof result.ok !== 'boolean') {
      const what = typeof (result as { then?: unknown } | null)?.then === 'function' ? 'a Promise (add `await` before scaler.valueAndGrad(f)(...))' : String(result);
      throw new TypeError(`LossScaler.step: result must be what \`await scaler.valueAndGrad(f)(...)\` returns, got ${what}`);
    }
    if (!result.ok) return null;
    return opt.step(params, result.grads, { gradScale: result.gradScale });
  }

  private overflowed(loss: Tensor, scale: number): void {
    this.skips++;
    this.clean = 0;
    const next = scale / this.factor;
    if (next < this.minScale) {
      loss.dispose();
      throw new Error(`LossScaler: the gradients are inf or NaN even at loss scale ${scale} (minScale ${this.minScale}); ` +
        'the loss or the model itself is not finite (check the inputs, lower the learning rate), loss scaling cannot help');
    }
    this.s = next;
  }
}
