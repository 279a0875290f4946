// SPDX-License-Identifier: MIT
// Optimizer updates, one pass over the parameter and its state.
import { fma4 } from './vmath';

/**
 * SGD with optional momentum and L2 weight decay (PyTorch convention):
 *   g' = g + wd * p;  v = momentum * v + g' (when momentum != 0);  p -= lr * (momentum ? v : g')
 */
export function sgd(p: usize, g: usize, v: usize, n: i32, lr: f32, momentum: f32, wd: f32): void {
  let i = 0;
  const useV = momentum != 0 && v != 0;
  if (ASC_FEATURE_SIMD) {
    const vlr = f32x4.splat(-lr), vmo = f32x4.splat(momentum), vwd = f32x4.splat(wd);
    for (; i + 4 <= n; i += 4) {
      const q = <usize>i << 2;
      const pp = v128.load(p + q);
      let gg = fma4(vwd, pp, v128.load(g + q));
      if (useV) {
        gg = fma4(vmo, v128.load(v + q), gg);
        v128.store(v + q, gg);
      }
      v128.store(p + q, fma4(vlr, gg, pp));
    }
  }
  for (; i < n; i++) {
    const q = <usize>i << 2;
    const pp = load<f32>(p + q);
    let gg = load<f32>(g + q) + wd * pp;
    if (useV) {
      gg = momentum * load<f32>(v + q) + gg;
      store<f32>(v + q, gg);
    }
    store<f32>(p + q, pp - lr * gg);
  }
}

/**
 * Adam / AdamW. bc1 = 1 - beta1^t and bc2 = 1 - beta2^t (t counts from 1).
 *   decoupled = 0 (Adam, L2):   g' = g + wd * p
 *   decoupled = 1 (AdamW):      p  = p * (1 - lr * wd) before the step
 *   m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2;  p -= lr * (m / bc1) / (sqrt(v / bc2) + eps)
 */
export function adam(p: usize, g: usize, m: usize, v: usize, n: i32, lr: f32, b1: f32, b2: f32, eps: f32, wd: f32, decoupled: i32, bc1: f32, bc2: f32): void {
  const l2: f32 = decoupled ? 0 : wd;
  const shrink: f32 = decoupled ? 1 - lr * wd : 1;
  const stepSize: f32 = lr / bc1;
  const invBc2: f32 = 1 / bc2;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const vb1 = f32x4.splat(b1), vc1 = f32x4.splat(1 - b1), vb2 = f32x4.splat(b2), vc2 = f32x4.splat(1 - b2);
    const vl2 = f32x4.splat(l2), vsh = f32x4.splat(shrink), vst = f32x4.splat(stepSize), vib = f32x4.splat(invBc2), veps = f32x4.splat(eps);
    for (; i + 4 <= n; i += 4) {
      const q = <usize>i << 2;
      let pp = v128.load(p + q);
      const gg = fma4(vl2, pp, v128.load(g + q));
      const mm = fma4(vc1, gg, f32x4.mul(vb1, v128.load(m + q)));
      const vv = fma4(vc2, f32x4.mul(gg, gg), f32x4.mul(vb2, v128.load(v + q)));
      v128.store(m + q, mm);
      v128.store(v + q, vv);
      pp = f32x4.mul(pp, vsh);
      const den = f32x4.add(f32x4.sqrt(f32x4.mul(vv, vib)), veps);
      v128.store(p + q, f32x4.sub(pp, f32x4.div(f32x4.mul(vst, mm), den)));
    }
  }
  for (; i < n; i++) {
    const q = <usize>i << 2;
    let pp = load<f32>(p + q);
    const gg = load<f32>(g + q) + l2 * pp;
    const mm = b1 * load<f32>(m + q) + (1 - b1) * gg;
    const vv = b2 * load<f32>(v + q) + (1 - b2) * gg * gg;
    store<f32>(m + q, mm);
    store<f32>(v + q, vv);
    pp *= shrink;
    store<f32>(p + q, pp - stepSize * mm / (Mathf.sqrt(vv * invBc2) + eps));
  }
}
