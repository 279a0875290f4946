// SPDX-License-Identifier: MIT
// Optimizer updates, one pass over the parameter and its state; and the two gradient statistics a
// training step reads back (the sum of squares for clipping by global norm, and whether any element is inf
// or NaN, for dynamic loss scaling).
import { fma4 } from './vmath';

/**
 * SGD with optional momentum and L2 weight decay (PyTorch convention):
 *   g' = g + wd * p;  v = momentum * v + g' (when momentum != 0);  p -= lr * (momentum ? v : g')
 */
export function sgd(p: usize, g: usize, v: usize, n: i32, lr: f32, momentum: f32, wd: f32): void {
  sgdScaled(p, g, v, n, lr, momentum, wd, 0, 1);
}

/**
 * sgd() with the gradient scaled first (gradScale = 1 / lossScale unscales a mixed-precision gradient) and
 * optional Nesterov momentum (PyTorch, dampening 0):
 *   g' = gradScale * g + wd * p;  v = momentum * v + g';  d = nesterov ? g' + momentum * v : v;  p -= lr * d
 * With gradScale 1 and nesterov 0 the results are bit for bit those of sgd().
 */
export function sgdScaled(p: usize, g: usize, v: usize, n: i32, lr: f32, momentum: f32, wd: f32, nesterov: i32, gradScale: f32): void {
  let i = 0;
  const useV = momentum != 0 && v != 0;
  const nest = useV && nesterov != 0;
  if (ASC_FEATURE_SIMD) {
    const vlr = f32x4.splat(-lr), vmo = f32x4.splat(momentum), vwd = f32x4.splat(wd), vsc = f32x4.splat(gradScale);
    for (; i + 4 <= n; i += 4) {
      const q = <usize>i << 2;
      const pp = v128.load(p + q);
      let gg = fma4(vwd, pp, f32x4.mul(vsc, v128.load(g + q)));
      if (useV) {
        const b = fma4(vmo, v128.load(v + q), gg);
        v128.store(v + q, b);
        gg = nest ? fma4(vmo, b, gg) : b;
      }
      v128.store(p + q, fma4(vlr, gg, pp));
    }
  }
  for (; i < n; i++) {
    const q = <usize>i << 2;
    const pp = load<f32>(p + q);
    let gg = gradScale * load<f32>(g + q) + wd * pp;
    if (useV) {
      const b = momentum * load<f32>(v + q) + gg;
      store<f32>(v + q, b);
      gg = nest ? gg + momentum * b : b;
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
  adamScaled(p, g, m, v, n, b1, 1 - b1, b2, 1 - b2, eps, decoupled ? 0 : wd, decoupled ? 1 - lr * wd : 1, lr / bc1, 1 / Mathf.sqrt(bc2), 1);
}

/**
 * One Adam / AdamW step from the step's coefficients, which the caller computes in f64 (1 - b2 in f32 from an
 * f32 b2 = 0.999 is off by 1.3e-5 relative):
 *   g' = gradScale * g + l2 * p;  m = b1 m + c1 g';  v = b2 v + c2 g'^2;
 *   p = shrink * p - stepSize * m / (sqrt(v) * invSqrtBc2 + eps)
 * with c1 = 1 - b1, c2 = 1 - b2, stepSize = lr / (1 - b1^t), invSqrtBc2 = 1 / sqrt(1 - b2^t); Adam: l2 = wd,
 * shrink = 1; AdamW: l2 = 0, shrink = 1 - lr * wd.
 */
export function adamScaled(p: usize, g: usize, m: usize, v: usize, n: i32, b1: f32, c1: f32, b2: f32, c2: f32, eps: f32,
  l2: f32, shrink: f32, stepSize: f32, invSqrtBc2: f32, gradScale: f32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const vb1 = f32x4.splat(b1), vc1 = f32x4.splat(c1), vb2 = f32x4.splat(b2), vc2 = f32x4.splat(c2);
    const vl2 = f32x4.splat(l2), vsh = f32x4.splat(shrink), vst = f32x4.splat(stepSize), vib = f32x4.splat(invSqrtBc2), veps = f32x4.splat(eps);
    const vsc = f32x4.splat(gradScale);
    for (; i + 4 <= n; i += 4) {
      const q = <usize>i << 2;
      const pp = v128.load(p + q);
      const gg = fma4(vl2, pp, f32x4.mul(vsc, v128.load(g + q)));
      const mm = fma4(vc1, gg, f32x4.mul(vb1, v128.load(m + q)));
      const vv = fma4(vc2, f32x4.mul(gg, gg), f32x4.mul(vb2, v128.load(v + q)));
      v128.store(m + q, mm);
      v128.store(v + q, vv);
      const den = fma4(f32x4.sqrt(vv), vib, veps);
      v128.store(p + q, f32x4.sub(f32x4.mul(pp, vsh), f32x4.div(f32x4.mul(vst, mm), den)));
    }
  }
  for (; i < n; i++) {
    const q = <usize>i << 2;
    const pp = load<f32>(p + q);
    const gg = gradScale * load<f32>(g + q) + l2 * pp;
    const mm = b1 * load<f32>(m + q) + c1 * gg;
    const vv = b2 * load<f32>(v + q) + c2 * gg * gg;
    store<f32>(m + q, mm);
    store<f32>(v + q, vv);
    store<f32>(p + q, pp * shrink - stepSize * mm / (Mathf.sqrt(vv) * invSqrtBc2 + eps));
  }
}

/** Σ x[i]², accumulated in f64 (each square is exact in f64, so only the additions round). */
export function sumSquares(x: usize, n: i32): f64 {
  let i = 0;
  let s: f64 = 0;
  if (ASC_FEATURE_SIMD) {
    let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(x + (<usize>i << 2));
      const lo = f64x2.promote_low_f32x4(v);
      const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
      a0 = f64x2.add(a0, f64x2.mul(lo, lo));
      a1 = f64x2.add(a1, f64x2.mul(hi, hi));
    }
    const a = f64x2.add(a0, a1);
    s = f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1);
  }
  for (; i < n; i++) {
    const v = <f64>load<f32>(x + (<usize>i << 2));
    s += v * v;
  }
  return s;
}

/**
 * 1 when some x[i] is inf or NaN, else 0. Decided on the bits (exponent all ones), so that no floating-point
 * comparison is involved.
 */
export function nonFinite(x: usize, n: i32): i32 {
  let i = 0;
  let bad = 0;
  if (ASC_FEATURE_SIMD) {
    const mask = i32x4.splat(0x7f800000);
    let acc = i32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      acc = v128.or(acc, i32x4.eq(v128.and(v128.load(x + (<usize>i << 2)), mask), mask));
    }
    bad = v128.any_true(acc) ? 1 : 0;
  }
  for (; i < n; i++) {
    if ((load<u32>(x + (<usize>i << 2)) & 0x7f800000) == 0x7f800000) bad = 1;
  }
  return bad;
}
