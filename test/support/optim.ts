// SPDX-License-Identifier: MIT
// Shared by the optimizer tests: float64 oracles written the way PyTorch's single-tensor SGD and Adam are (a
// momentum buffer that starts as a clone of the first gradient, exp_avg.lerp_, addcdiv with the bias corrections),
// seeded inputs rounded to f32, and an element-wise closeness check that names the worst element.
import * as assert from 'uvu/assert';
import { Rng } from '../../runtime-gpu/rng.js';

export const SIZES = [1, 5, 67, 70000] as const;

/** n normal values rounded to f32 (what an f32 tensor holds). */
export function randf(rng: Rng, n: number, scale = 1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.fround(scale * rng.normal());
  return a;
}

export interface SgdCase { momentum: number; nesterov: boolean; weightDecay: number; gradScale: number }
export interface AdamCase { beta1: number; beta2: number; eps: number; weightDecay: number; decoupled: boolean; gradScale: number }

/** torch.optim.SGD (dampening 0), with the gradient unscaled first as torch.amp's GradScaler.unscale_ does. */
export class TorchSgd {
  private bufs: (Float64Array | null)[];
  constructor(readonly params: Float64Array[], readonly h: SgdCase) { this.bufs = params.map(() => null); }
  step(lr: number, grads: readonly Float64Array[]): void {
    const { momentum, nesterov, weightDecay, gradScale } = this.h;
    this.params.forEach((p, j) => {
      const dp: Float64Array = grads[j]!.map((g) => g * gradScale);
      if (weightDecay !== 0) for (let i = 0; i < p.length; i++) dp[i] += weightDecay * p[i]!;
      let d: Float64Array = dp;
      if (momentum !== 0) {
        let buf = this.bufs[j]!;
        if (!buf) buf = this.bufs[j] = Float64Array.from(dp);
        else for (let i = 0; i < p.length; i++) buf[i] = buf[i]! * momentum + dp[i]!;
        d = nesterov ? dp.map((x, i) => x + momentum * buf[i]!) : buf;
      }
      for (let i = 0; i < p.length; i++) p[i] -= lr * d[i]!;
    });
  }
  /** The momentum buffers (zeros before the first step, as the kernels' zero-filled velocities). */
  velocity(j: number): Float64Array { return this.bufs[j] ?? new Float64Array(this.params[j]!.length); }
}

/** torch.optim.Adam / AdamW (_single_tensor_adam), gradient unscaled first. */
export class TorchAdam {
  readonly m: Float64Array[];
  readonly v: Float64Array[];
  private t = 0;
  constructor(readonly params: Float64Array[], readonly h: AdamCase) {
    this.m = params.map((p) => new Float64Array(p.length));
    this.v = params.map((p) => new Float64Array(p.length));
  }
  step(lr: number, grads: readonly Float64Array[]): number {
    const { beta1, beta2, eps, weightDecay, decoupled, gradScale } = this.h;
    const t = ++this.t;
    this.params.forEach((p, j) => {
      const m = this.m[j]!, v = this.v[j]!;
      const g = grads[j]!.map((x) => x * gradScale);
      if (weightDecay !== 0) {
        if (decoupled) for (let i = 0; i < p.length; i++) p[i] *= 1 - lr * weightDecay;
        else for (let i = 0; i < p.length; i++) g[i] += weightDecay * p[i]!;
      }
      const stepSize = lr / (1 - beta1 ** t), bc2Sqrt = Math.sqrt(1 - beta2 ** t);
      for (let i = 0; i < p.length; i++) {
        m[i] += (1 - beta1) * (g[i]! - m[i]!); // lerp_
        v[i] = v[i]! * beta2 + (1 - beta2) * g[i]! * g[i]!;
        p[i] -= stepSize * m[i]! / (Math.sqrt(v[i]!) / bc2Sqrt + eps);
      }
    });
    return t;
  }
}

/** Asserts |got - want| <= atol + rtol |want| element-wise, naming the worst element. */
export function assertNear(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number): void {
  assert.is(got.length, want.length, `${what}: length`);
  let worst = 0, at = -1;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    const e = Math.abs(g - w) / (atol + rtol * Math.abs(w));
    if (!(e <= worst)) { worst = Number.isNaN(e) ? Infinity : e; at = i; }
  }
  if (worst > 1) assert.unreachable(`${what}: element ${at} of ${want.length} is ${got[at]}, expected ${want[at]} (${worst.toFixed(1)}x the tolerance rtol ${rtol}, atol ${atol})`);
}

/** Learning rates that change every step: a new rate must not need a new pipeline or give stale results. */
export const LRS = [0.1, 0.05, 0.02] as const;
