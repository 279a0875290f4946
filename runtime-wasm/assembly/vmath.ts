// SPDX-License-Identifier: MIT
// Vector (f32x4) math shared by the kernels. Every function here is only called from code
// guarded by `if (ASC_FEATURE_SIMD)`, so the scalar build never compiles it.
//
// exp and log follow Cephes' expf/logf (range reduction plus a degree-6/9 polynomial, about
// 1-2 ulp on normal inputs); tanh uses Cephes' small-|x| polynomial below 0.625 and the
// exp identity above; erf uses Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7).

/** c + a*b: a fused multiply-add where relaxed SIMD is compiled in, else mul then add. */
@inline export function fma4(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

@inline export function hsum4(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

@inline export function hmax4(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

@inline export function hmin4(v: v128): f32 {
  return min(min(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), min(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/** Loads n (0..4) floats into the low lanes, zeros elsewhere: for loop tails that must not read past an end. */
export function loadPartial(p: usize, n: i32): v128 {
  let v = f32x4.splat(0);
  if (n > 0) v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  if (n > 3) v = f32x4.replace_lane(v, 3, load<f32>(p, 12));
  return v;
}

/** Same as loadPartial but fills the unused lanes with `fill` (e.g. -inf for a max). */
export function loadPartialFill(p: usize, n: i32, fill: f32): v128 {
  let v = f32x4.splat(fill);
  if (n > 0) v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  if (n > 3) v = f32x4.replace_lane(v, 3, load<f32>(p, 12));
  return v;
}

export function storePartial(p: usize, v: v128, n: i32): void {
  if (n > 0) store<f32>(p, f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (n > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
  if (n > 3) store<f32>(p, f32x4.extract_lane(v, 3), 12);
}

@inline export function exp4(x: v128): v128 {
  // exp(x) = 2^n * e^r with n = round(x / ln 2), |r| <= ln(2) / 2. 2^n is applied as two
  // factors so that n = 128 (x up to ln(FLT_MAX)) does not overflow the exponent field.
  // Results below FLT_MIN (x < -87.34) flush to 0; x > ln(FLT_MAX) gives +inf; NaN stays NaN.
  const underflow = f32x4.lt(x, f32x4.splat(-87.3365447505531));
  const overflow = f32x4.gt(x, f32x4.splat(88.72283935546875));
  x = f32x4.min(x, f32x4.splat(88.72283935546875));
  x = f32x4.max(x, f32x4.splat(-87.3365447505531));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = fma4(p, r, f32x4.splat(1.3981999507e-3));
  p = fma4(p, r, f32x4.splat(8.3334519073e-3));
  p = fma4(p, r, f32x4.splat(4.1665795894e-2));
  p = fma4(p, r, f32x4.splat(1.6666665459e-1));
  p = fma4(p, r, f32x4.splat(5.0000001201e-1));
  const r2 = f32x4.mul(r, r);
  const y = f32x4.add(fma4(p, r2, r), f32x4.splat(1));
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const half = i32x4.shr_s(ni, 1);
  const s1 = i32x4.shl(i32x4.add(half, i32x4.splat(127)), 23);
  const s2 = i32x4.shl(i32x4.add(i32x4.sub(ni, half), i32x4.splat(127)), 23);
  const e = f32x4.mul(f32x4.mul(y, s1), s2);
  return v128.bitselect(f32x4.splat(Infinity), v128.andnot(e, underflow), overflow);
}

@inline export function log4(x0: v128): v128 {
  const bits = x0;
  let e = f32x4.convert_i32x4_s(i32x4.sub(i32x4.shr_u(bits, 23), i32x4.splat(126)));
  // mantissa in [0.5, 1)
  let m = v128.or(v128.and(bits, i32x4.splat(0x807fffff)), i32x4.splat(0x3f000000));
  const small = f32x4.lt(m, f32x4.splat(0.707106781186547524));
  e = f32x4.sub(e, v128.and(small, f32x4.splat(1)));
  m = f32x4.sub(f32x4.add(m, v128.and(small, m)), f32x4.splat(1));
  const z = f32x4.mul(m, m);
  let p = f32x4.splat(7.0376836292e-2);
  p = fma4(p, m, f32x4.splat(-1.1514610310e-1));
  p = fma4(p, m, f32x4.splat(1.1676998740e-1));
  p = fma4(p, m, f32x4.splat(-1.2420140846e-1));
  p = fma4(p, m, f32x4.splat(1.4249322787e-1));
  p = fma4(p, m, f32x4.splat(-1.6668057665e-1));
  p = fma4(p, m, f32x4.splat(2.0000714765e-1));
  p = fma4(p, m, f32x4.splat(-2.4999993993e-1));
  p = fma4(p, m, f32x4.splat(3.3333331174e-1));
  let y = f32x4.mul(f32x4.mul(p, m), z);
  y = fma4(e, f32x4.splat(-2.12194440e-4), y);
  y = fma4(z, f32x4.splat(-0.5), y);
  let r = f32x4.add(m, y);
  r = fma4(e, f32x4.splat(0.693359375), r);
  // special values: log(0) = -inf, log(negative or NaN) = NaN, log(inf) = inf
  r = v128.bitselect(f32x4.splat(-Infinity), r, f32x4.eq(x0, f32x4.splat(0)));
  r = v128.bitselect(f32x4.splat(Infinity), r, f32x4.eq(x0, f32x4.splat(Infinity)));
  r = v128.bitselect(f32x4.splat(NaN), r, v128.not(f32x4.ge(x0, f32x4.splat(0))));
  return r;
}

@inline export function tanh4(x: v128): v128 {
  const ax = f32x4.abs(x);
  // large |x|: 1 - 2 / (exp(2|x|) + 1), sign restored
  const e = exp4(f32x4.add(ax, ax));
  let big = f32x4.sub(f32x4.splat(1), f32x4.div(f32x4.splat(2), f32x4.add(e, f32x4.splat(1))));
  big = v128.or(big, v128.and(x, i32x4.splat(0x80000000)));
  const z = f32x4.mul(x, x);
  let p = f32x4.splat(-5.70498872745e-3);
  p = fma4(p, z, f32x4.splat(2.06390887954e-2));
  p = fma4(p, z, f32x4.splat(-5.37397155531e-2));
  p = fma4(p, z, f32x4.splat(1.33314422036e-1));
  p = fma4(p, z, f32x4.splat(-3.33332819422e-1));
  const smallv = fma4(f32x4.mul(p, z), x, x);
  return v128.bitselect(smallv, big, f32x4.lt(ax, f32x4.splat(0.625)));
}

@inline export function sigmoid4(x: v128): v128 {
  return f32x4.div(f32x4.splat(1), f32x4.add(f32x4.splat(1), exp4(f32x4.neg(x))));
}

@inline export function erf4(x: v128): v128 {
  const ax = f32x4.abs(x);
  const t = f32x4.div(f32x4.splat(1), fma4(ax, f32x4.splat(0.3275911), f32x4.splat(1)));
  let p = f32x4.splat(1.061405429);
  p = fma4(p, t, f32x4.splat(-1.453152027));
  p = fma4(p, t, f32x4.splat(1.421413741));
  p = fma4(p, t, f32x4.splat(-0.284496736));
  p = fma4(p, t, f32x4.splat(0.254829592));
  p = f32x4.mul(p, t);
  const y = f32x4.sub(f32x4.splat(1), f32x4.mul(p, exp4(f32x4.neg(f32x4.mul(ax, ax)))));
  return v128.or(y, v128.and(x, i32x4.splat(0x80000000)));
}
