// SPDX-License-Identifier: MIT
// Elementwise kernels: unary ops and their backward helpers, binary ops with broadcasting.
// Op codes are mirrored in runtime-wasm/kernels.ts (UNARY_OPS, BINARY_OPS); keep them in sync.
import { fma4, exp4, log4, tanh4, sigmoid4, erf4, loadPartial, storePartial } from './vmath';
import { erf1 } from './smath';

export const U_COPY = 0;
export const U_NEG = 1;
export const U_ABS = 2;
export const U_SQRT = 3;
export const U_SQUARE = 4;
export const U_RELU = 5;
export const U_EXP = 6;
export const U_LOG = 7;
export const U_TANH = 8;
export const U_SIGMOID = 9;
export const U_GELU = 10; // exact: 0.5 x (1 + erf(x / sqrt 2))
export const U_GELU_TANH = 11; // tanh approximation (GPT-2, jax.nn.gelu default)

const SQRT1_2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_C: f32 = 0.044715;

// ---- unary forward ----------------------------------------------------------------------

@inline function unaryV(op: i32, x: v128): v128 {
  switch (op) {
    case U_NEG: return f32x4.neg(x);
    case U_ABS: return f32x4.abs(x);
    case U_SQRT: return f32x4.sqrt(x);
    case U_SQUARE: return f32x4.mul(x, x);
    case U_RELU: return f32x4.max(x, f32x4.splat(0));
    case U_EXP: return exp4(x);
    case U_LOG: return log4(x);
    case U_TANH: return tanh4(x);
    case U_SIGMOID: return sigmoid4(x);
    case U_GELU: {
      const h = f32x4.mul(x, f32x4.splat(0.5));
      return fma4(h, erf4(f32x4.mul(x, f32x4.splat(SQRT1_2))), h);
    }
    case U_GELU_TANH: {
      const h = f32x4.mul(x, f32x4.splat(0.5));
      const x3 = f32x4.mul(f32x4.mul(x, x), x);
      const u = f32x4.mul(fma4(x3, f32x4.splat(GELU_C), x), f32x4.splat(SQRT_2_OVER_PI));
      return fma4(h, tanh4(u), h);
    }
    default: return x;
  }
}

@inline function unaryS(op: i32, x: f32): f32 {
  switch (op) {
    case U_NEG: return -x;
    case U_ABS: return Mathf.abs(x);
    case U_SQRT: return Mathf.sqrt(x);
    case U_SQUARE: return x * x;
    case U_RELU: return x > 0 ? x : 0;
    case U_EXP: return Mathf.exp(x);
    case U_LOG: return Mathf.log(x);
    case U_TANH: return Mathf.tanh(x);
    case U_SIGMOID: return 1 / (1 + Mathf.exp(-x));
    case U_GELU: return 0.5 * x * (1 + erf1(x * SQRT1_2));
    case U_GELU_TANH: return 0.5 * x * (1 + Mathf.tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)));
    default: return x;
  }
}

@inline function unaryLoop(op: i32, x: usize, y: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 8 <= n; i += 8) {
      const p = <usize>i << 2;
      const a = v128.load(x + p);
      const b = v128.load(x + p, 16);
      v128.store(y + p, unaryV(op, a));
      v128.store(y + p, unaryV(op, b), 16);
    }
    for (; i + 4 <= n; i += 4) {
      const p = <usize>i << 2;
      v128.store(y + p, unaryV(op, v128.load(x + p)));
    }
    if (i < n) {
      const p = <usize>i << 2;
      storePartial(y + p, unaryV(op, loadPartial(x + p, n - i)), n - i);
      return;
    }
  }
  for (; i < n; i++) {
    const p = <usize>i << 2;
    store<f32>(y + p, unaryS(op, load<f32>(x + p)));
  }
}

/** y[i] = op(x[i]) for i < n. x and y may alias. */
export function unary(op: i32, x: usize, y: usize, n: i32): void {
  switch (op) {
    case U_NEG: unaryLoop(U_NEG, x, y, n); break;
    case U_ABS: unaryLoop(U_ABS, x, y, n); break;
    case U_SQRT: unaryLoop(U_SQRT, x, y, n); break;
    case U_SQUARE: unaryLoop(U_SQUARE, x, y, n); break;
    case U_RELU: unaryLoop(U_RELU, x, y, n); break;
    case U_EXP: unaryLoop(U_EXP, x, y, n); break;
    case U_LOG: unaryLoop(U_LOG, x, y, n); break;
    case U_TANH: unaryLoop(U_TANH, x, y, n); break;
    case U_SIGMOID: unaryLoop(U_SIGMOID, x, y, n); break;
    case U_GELU: unaryLoop(U_GELU, x, y, n); break;
    case U_GELU_TANH: unaryLoop(U_GELU_TANH, x, y, n); break;
    default: if (x != y) memory.copy(y, x, <usize>n << 2);
  }
}

/** Applies `op` to a strided block of rows (used by gemm's epilogue). */
export function unaryRows(op: i32, c: usize, ldc: i32, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const p = c + ((<usize>r * <usize>ldc) << 2);
    unary(op, p, p, cols);
  }
}

// ---- unary backward ---------------------------------------------------------------------
// dx = dy * op'(.) where `s` is the saved forward value that the rule needs:
//   input x for abs, square, relu, log, gelu, gelu_tanh; output y for sqrt, exp, tanh, sigmoid;
//   unused for neg.

@inline function unaryGradV(op: i32, s: v128, g: v128): v128 {
  const one = f32x4.splat(1);
  switch (op) {
    case U_NEG: return f32x4.neg(g);
    case U_ABS: {
      const pos = v128.and(f32x4.gt(s, f32x4.splat(0)), g);
      const neg = v128.and(f32x4.lt(s, f32x4.splat(0)), f32x4.neg(g));
      return v128.or(pos, neg);
    }
    case U_SQRT: return f32x4.div(f32x4.mul(g, f32x4.splat(0.5)), s);
    case U_SQUARE: return f32x4.mul(g, f32x4.add(s, s));
    case U_RELU: return v128.and(g, f32x4.gt(s, f32x4.splat(0)));
    case U_EXP: return f32x4.mul(g, s);
    case U_LOG: return f32x4.div(g, s);
    case U_TANH: return f32x4.mul(g, f32x4.sub(one, f32x4.mul(s, s)));
    case U_SIGMOID: return f32x4.mul(g, f32x4.mul(s, f32x4.sub(one, s)));
    case U_GELU: {
      const cdf = f32x4.mul(f32x4.add(one, erf4(f32x4.mul(s, f32x4.splat(SQRT1_2)))), f32x4.splat(0.5));
      const pdf = f32x4.mul(exp4(f32x4.mul(f32x4.mul(s, s), f32x4.splat(-0.5))), f32x4.splat(INV_SQRT_2PI));
      return f32x4.mul(g, fma4(s, pdf, cdf));
    }
    case U_GELU_TANH: {
      const s2 = f32x4.mul(s, s);
      const u = f32x4.mul(f32x4.mul(s, fma4(s2, f32x4.splat(GELU_C), one)), f32x4.splat(SQRT_2_OVER_PI));
      const t = tanh4(u);
      const du = f32x4.mul(fma4(s2, f32x4.splat(3 * GELU_C), one), f32x4.splat(SQRT_2_OVER_PI));
      const half = f32x4.splat(0.5);
      const d = fma4(f32x4.mul(f32x4.mul(half, s), f32x4.sub(one, f32x4.mul(t, t))), du, f32x4.mul(half, f32x4.add(one, t)));
      return f32x4.mul(g, d);
    }
    default: return g;
  }
}

@inline function unaryGradS(op: i32, s: f32, g: f32): f32 {
  switch (op) {
    case U_NEG: return -g;
    case U_ABS: return s > 0 ? g : s < 0 ? -g : 0;
    case U_SQRT: return g * 0.5 / s;
    case U_SQUARE: return g * (s + s);
    case U_RELU: return s > 0 ? g : 0;
    case U_EXP: return g * s;
    case U_LOG: return g / s;
    case U_TANH: return g * (1 - s * s);
    case U_SIGMOID: return g * s * (1 - s);
    case U_GELU: return g * (0.5 * (1 + erf1(s * SQRT1_2)) + s * INV_SQRT_2PI * Mathf.exp(-0.5 * s * s));
    case U_GELU_TANH: {
      const t = Mathf.tanh(SQRT_2_OVER_PI * (s + GELU_C * s * s * s));
      return g * (0.5 * (1 + t) + 0.5 * s * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * s * s));
    }
    default: return g;
  }
}

@inline function unaryGradLoop(op: i32, s: usize, g: usize, dx: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) {
      const p = <usize>i << 2;
      v128.store(dx + p, unaryGradV(op, v128.load(s + p), v128.load(g + p)));
    }
    if (i < n) {
      const p = <usize>i << 2;
      storePartial(dx + p, unaryGradV(op, loadPartial(s + p, n - i), loadPartial(g + p, n - i)), n - i);
      return;
    }
  }
  for (; i < n; i++) {
    const p = <usize>i << 2;
    store<f32>(dx + p, unaryGradS(op, load<f32>(s + p), load<f32>(g + p)));
  }
}

/** dx[i] = dy[i] * op'(saved[i]); see the table above for which value is saved. */
export function unaryBackward(op: i32, saved: usize, dy: usize, dx: usize, n: i32): void {
  switch (op) {
    case U_NEG: unaryGradLoop(U_NEG, saved, dy, dx, n); break;
    case U_ABS: unaryGradLoop(U_ABS, saved, dy, dx, n); break;
    case U_SQRT: unaryGradLoop(U_SQRT, saved, dy, dx, n); break;
    case U_SQUARE: unaryGradLoop(U_SQUARE, saved, dy, dx, n); break;
    case U_RELU: unaryGradLoop(U_RELU, saved, dy, dx, n); break;
    case U_EXP: unaryGradLoop(U_EXP, saved, dy, dx, n); break;
    case U_LOG: unaryGradLoop(U_LOG, saved, dy, dx, n); break;
    case U_TANH: unaryGradLoop(U_TANH, saved, dy, dx, n); break;
    case U_SIGMOID: unaryGradLoop(U_SIGMOID, saved, dy, dx, n); break;
    case U_GELU: unaryGradLoop(U_GELU, saved, dy, dx, n); break;
    case U_GELU_TANH: unaryGradLoop(U_GELU_TANH, saved, dy, dx, n); break;
    default: if (dy != dx) memory.copy(dx, dy, <usize>n << 2);
  }
}

// ---- binary with broadcasting ------------------------------------------------------------

export const B_ADD = 0;
export const B_SUB = 1;
export const B_MUL = 2;
export const B_DIV = 3;
export const B_MAX = 4;
export const B_MIN = 5;

@inline function binaryV(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case B_ADD: return f32x4.add(a, b);
    case B_SUB: return f32x4.sub(a, b);
    case B_MUL: return f32x4.mul(a, b);
    case B_DIV: return f32x4.div(a, b);
    case B_MAX: return f32x4.max(a, b);
    default: return f32x4.min(a, b);
  }
}

@inline function binaryS(op: i32, a: f32, b: f32): f32 {
  switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    case B_MAX: return a != a || b != b ? NaN : max(a, b);
    default: return a != a || b != b ? NaN : min(a, b);
  }
}

/** One contiguous output row of n elements; a and b advance by sa, sb (each 0 or 1) per element. */
@inline function binaryRow(op: i32, a: usize, sa: i32, b: usize, sb: i32, o: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    if (sa == 1 && sb == 1) {
      for (; i + 4 <= n; i += 4) {
        const p = <usize>i << 2;
        v128.store(o + p, binaryV(op, v128.load(a + p), v128.load(b + p)));
      }
    } else if (sa == 1 && sb == 0) {
      const vb = v128.load32_splat(b);
      for (; i + 4 <= n; i += 4) {
        const p = <usize>i << 2;
        v128.store(o + p, binaryV(op, v128.load(a + p), vb));
      }
    } else if (sa == 0 && sb == 1) {
      const va = v128.load32_splat(a);
      for (; i + 4 <= n; i += 4) {
        const p = <usize>i << 2;
        v128.store(o + p, binaryV(op, va, v128.load(b + p)));
      }
    }
  }
  for (; i < n; i++) {
    store<f32>(o + (<usize>i << 2), binaryS(op, load<f32>(a + (<usize>(i * sa) << 2)), load<f32>(b + (<usize>(i * sb) << 2))));
  }
}

@inline function binaryLoop(op: i32, a: usize, b: usize, out: usize, meta: usize): void {
  // meta (i32): rank, shape[rank], aStrides[rank], bStrides[rank], then rank counters (scratch)
  const rank = load<i32>(meta);
  const shape = meta + 4;
  const sta = shape + (<usize>rank << 2);
  const stb = sta + (<usize>rank << 2);
  const cnt = stb + (<usize>rank << 2);
  const last = <usize>(rank - 1) << 2;
  const n = load<i32>(shape + last);
  const ia = load<i32>(sta + last);
  const ib = load<i32>(stb + last);
  let outer = 1;
  for (let d = 0; d < rank - 1; d++) {
    outer *= load<i32>(shape + (<usize>d << 2));
    store<i32>(cnt + (<usize>d << 2), 0);
  }
  let offA = 0, offB = 0, offO = 0;
  for (let o = 0; o < outer; o++) {
    binaryRow(op, a + (<usize>offA << 2), ia, b + (<usize>offB << 2), ib, out + (<usize>offO << 2), n);
    offO += n;
    for (let d = rank - 2; d >= 0; d--) {
      const q = <usize>d << 2;
      const c = load<i32>(cnt + q) + 1;
      offA += load<i32>(sta + q);
      offB += load<i32>(stb + q);
      if (c < load<i32>(shape + q)) { store<i32>(cnt + q, c); break; }
      store<i32>(cnt + q, 0);
      offA -= load<i32>(sta + q) * c;
      offB -= load<i32>(stb + q) * c;
    }
  }
}

/** out = a (op) b with broadcasting described by `meta` (written by the TS glue). */
export function binary(op: i32, a: usize, b: usize, out: usize, meta: usize): void {
  switch (op) {
    case B_ADD: binaryLoop(B_ADD, a, b, out, meta); break;
    case B_SUB: binaryLoop(B_SUB, a, b, out, meta); break;
    case B_MUL: binaryLoop(B_MUL, a, b, out, meta); break;
    case B_DIV: binaryLoop(B_DIV, a, b, out, meta); break;
    case B_MAX: binaryLoop(B_MAX, a, b, out, meta); break;
    default: binaryLoop(B_MIN, a, b, out, meta); break;
  }
}

/** y = alpha * x + y (axpy), used for gradient accumulation. */
export function axpy(n: i32, alpha: f32, x: usize, y: usize): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const va = f32x4.splat(alpha);
    for (; i + 4 <= n; i += 4) {
      const p = <usize>i << 2;
      v128.store(y + p, fma4(va, v128.load(x + p), v128.load(y + p)));
    }
  }
  for (; i < n; i++) {
    const p = <usize>i << 2;
    store<f32>(y + p, alpha * load<f32>(x + p) + load<f32>(y + p));
  }
}

/** x[i] = value for i < n. */
export function fill(x: usize, n: i32, value: f32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const v = f32x4.splat(value);
    for (; i + 4 <= n; i += 4) v128.store(x + (<usize>i << 2), v);
  }
  for (; i < n; i++) store<f32>(x + (<usize>i << 2), value);
}

/**
 * y[i] = x[i] rounded to the nearest f16 value (ties to even), kept as f32: how f16 tensors are stored on this
 * backend. Past the largest f16 (65504, with 65520 the halfway point) values become ±Infinity; NaN stays NaN;
 * below 2^-14 (the f16 subnormals) the result is a multiple of 2^-24. x and y may be the same buffer.
 */
export function roundF16(x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = <usize>i << 2;
    const u = load<u32>(x + p), sign = u & 0x80000000, a = u & 0x7fffffff;
    let r: u32;
    if (a >= 0x7f800000) r = u; // ±Infinity, NaN
    else if (a >= 0x477ff000) r = sign | 0x7f800000; // ≥ 65520 rounds past 65504
    else if (a < 0x38800000) {
      // f16 subnormals: a multiple of 2^-24, scaled exactly, rounded half to even by f32.nearest.
      r = sign | reinterpret<u32>(nearest(reinterpret<f32>(a) * 16777216.0) * (1.0 / 16777216.0));
    } else r = sign | ((a + 0xfff + ((a >> 13) & 1)) & 0xffffe000); // drop 13 mantissa bits, ties to even
    store<u32>(y + p, r);
  }
}
