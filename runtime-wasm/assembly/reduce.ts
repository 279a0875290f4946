// SPDX-License-Identifier: MIT
// Reductions, softmax / log-softmax (forward and backward) and fused softmax cross-entropy.
// A reduction over one axis of a contiguous tensor is described by (outer, size, inner):
// x is viewed as [outer, size, inner] and reduced over the middle axis into out [outer, inner].
import { exp4, log4, hsum4, hmax4, hmin4, loadPartialFill } from './vmath';

export const R_SUM = 0;
export const R_MAX = 1;
export const R_MIN = 2;
export const R_MEAN = 3;

/** Sum of n contiguous floats; four independent accumulators. */
function rowSum(p: usize, n: i32): f32 {
  let i = 0;
  let s: f32 = 0;
  if (ASC_FEATURE_SIMD) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (; i + 16 <= n; i += 16) {
      const q = p + (<usize>i << 2);
      a0 = f32x4.add(a0, v128.load(q));
      a1 = f32x4.add(a1, v128.load(q, 16));
      a2 = f32x4.add(a2, v128.load(q, 32));
      a3 = f32x4.add(a3, v128.load(q, 48));
    }
    for (; i + 4 <= n; i += 4) a0 = f32x4.add(a0, v128.load(p + (<usize>i << 2)));
    s = hsum4(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  }
  for (; i < n; i++) s += load<f32>(p + (<usize>i << 2));
  return s;
}

function rowMax(p: usize, n: i32): f32 {
  let i = 0;
  let m: f32 = -Infinity;
  if (ASC_FEATURE_SIMD) {
    let a0 = f32x4.splat(-Infinity), a1 = a0;
    for (; i + 8 <= n; i += 8) {
      const q = p + (<usize>i << 2);
      a0 = f32x4.max(a0, v128.load(q));
      a1 = f32x4.max(a1, v128.load(q, 16));
    }
    if (i < n) a0 = f32x4.max(a0, loadPartialFill(p + (<usize>i << 2), min(4, n - i), -Infinity));
    i += 4;
    if (i < n) a1 = f32x4.max(a1, loadPartialFill(p + (<usize>i << 2), min(4, n - i), -Infinity));
    return hmax4(f32x4.max(a0, a1));
  }
  for (; i < n; i++) {
    const v = load<f32>(p + (<usize>i << 2));
    m = v != v || m != m ? NaN : max(m, v);
  }
  return m;
}

function rowMin(p: usize, n: i32): f32 {
  let i = 0;
  let m: f32 = Infinity;
  if (ASC_FEATURE_SIMD) {
    let a0 = f32x4.splat(Infinity), a1 = a0;
    for (; i + 8 <= n; i += 8) {
      const q = p + (<usize>i << 2);
      a0 = f32x4.min(a0, v128.load(q));
      a1 = f32x4.min(a1, v128.load(q, 16));
    }
    if (i < n) a0 = f32x4.min(a0, loadPartialFill(p + (<usize>i << 2), min(4, n - i), Infinity));
    i += 4;
    if (i < n) a1 = f32x4.min(a1, loadPartialFill(p + (<usize>i << 2), min(4, n - i), Infinity));
    return hmin4(f32x4.min(a0, a1));
  }
  for (; i < n; i++) {
    const v = load<f32>(p + (<usize>i << 2));
    m = v != v || m != m ? NaN : min(m, v);
  }
  return m;
}

/** out[o, j] = reduce_s x[o, s, j]. size must be >= 1 for max/min. */
export function reduce(op: i32, x: usize, out: usize, outer: i32, size: i32, inner: i32): void {
  const scale: f32 = op == R_MEAN ? <f32>(1.0 / <f64>size) : 1;
  if (inner == 1) {
    for (let o = 0; o < outer; o++) {
      const p = x + ((<usize>o * <usize>size) << 2);
      let r: f32;
      if (op == R_MAX) r = rowMax(p, size);
      else if (op == R_MIN) r = rowMin(p, size);
      else r = rowSum(p, size) * scale;
      store<f32>(out + (<usize>o << 2), r);
    }
    return;
  }
  const rowBytes = <usize>inner << 2;
  for (let o = 0; o < outer; o++) {
    const base = x + <usize>o * <usize>size * rowBytes;
    const dst = out + <usize>o * rowBytes;
    if (size == 0) { for (let j = 0; j < inner; j++) store<f32>(dst + (<usize>j << 2), 0); continue; }
    memory.copy(dst, base, rowBytes);
    for (let s = 1; s < size; s++) {
      const src = base + <usize>s * rowBytes;
      let j = 0;
      if (ASC_FEATURE_SIMD) {
        for (; j + 4 <= inner; j += 4) {
          const q = <usize>j << 2;
          const a = v128.load(dst + q), b = v128.load(src + q);
          v128.store(dst + q, op == R_MAX ? f32x4.max(a, b) : op == R_MIN ? f32x4.min(a, b) : f32x4.add(a, b));
        }
      }
      for (; j < inner; j++) {
        const q = <usize>j << 2;
        const a = load<f32>(dst + q), b = load<f32>(src + q);
        store<f32>(dst + q, op == R_MAX ? (a != a || b != b ? NaN : max(a, b)) : op == R_MIN ? (a != a || b != b ? NaN : min(a, b)) : a + b);
      }
    }
    if (op == R_MEAN) {
      for (let j = 0; j < inner; j++) store<f32>(dst + (<usize>j << 2), load<f32>(dst + (<usize>j << 2)) * scale);
    }
  }
}

/** sum_i exp(p[i] - m), and (when dst != 0) dst[i] = exp(p[i] - m). */
function expShiftSum(p: usize, dst: usize, n: i32, m: f32): f32 {
  let i = 0;
  let s: f32 = 0;
  if (ASC_FEATURE_SIMD) {
    const vm = f32x4.splat(m);
    let acc = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const q = <usize>i << 2;
      const e = exp4(f32x4.sub(v128.load(p + q), vm));
      if (dst) v128.store(dst + q, e);
      acc = f32x4.add(acc, e);
    }
    s = hsum4(acc);
  }
  for (; i < n; i++) {
    const q = <usize>i << 2;
    const e = Mathf.exp(load<f32>(p + q) - m);
    if (dst) store<f32>(dst + q, e);
    s += e;
  }
  return s;
}

@inline function logf(x: f32): f32 {
  if (ASC_FEATURE_SIMD) return f32x4.extract_lane(log4(f32x4.splat(x)), 0);
  return Mathf.log(x);
}

/** out[r] = log sum_j exp(x[r, j]); a row of -inf gives -inf. */
export function logsumexpRows(x: usize, out: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const p = x + ((<usize>r * <usize>cols) << 2);
    const m = rowMax(p, cols);
    const v = m == -Infinity || m == Infinity || m != m ? m : m + logf(expShiftSum(p, 0, cols, m));
    store<f32>(out + (<usize>r << 2), v);
  }
}

/** y = softmax(x) (or log-softmax when log != 0) over each row of cols values. y may alias x. */
export function softmaxRows(x: usize, y: usize, rows: i32, cols: i32, log: i32): void {
  for (let r = 0; r < rows; r++) {
    const off = (<usize>r * <usize>cols) << 2;
    const p = x + off, q = y + off;
    const m = rowMax(p, cols);
    if (log) {
      const shift = m + logf(expShiftSum(p, 0, cols, m));
      let i = 0;
      if (ASC_FEATURE_SIMD) {
        const vs = f32x4.splat(shift);
        for (; i + 4 <= cols; i += 4) v128.store(q + (<usize>i << 2), f32x4.sub(v128.load(p + (<usize>i << 2)), vs));
      }
      for (; i < cols; i++) store<f32>(q + (<usize>i << 2), load<f32>(p + (<usize>i << 2)) - shift);
    } else {
      const inv: f32 = 1 / expShiftSum(p, q, cols, m);
      let i = 0;
      if (ASC_FEATURE_SIMD) {
        const vi = f32x4.splat(inv);
        for (; i + 4 <= cols; i += 4) v128.store(q + (<usize>i << 2), f32x4.mul(v128.load(q + (<usize>i << 2)), vi));
      }
      for (; i < cols; i++) store<f32>(q + (<usize>i << 2), load<f32>(q + (<usize>i << 2)) * inv);
    }
  }
}

/**
 * Backward of softmaxRows from its output y:
 *   softmax:     dx = y * (dy - sum_j dy_j y_j)
 *   log-softmax: dx = dy - exp(y) * sum_j dy_j
 */
export function softmaxBackwardRows(y: usize, dy: usize, dx: usize, rows: i32, cols: i32, log: i32): void {
  for (let r = 0; r < rows; r++) {
    const off = (<usize>r * <usize>cols) << 2;
    const py = y + off, pg = dy + off, pd = dx + off;
    let i = 0;
    if (log) {
      const s = rowSum(pg, cols);
      if (ASC_FEATURE_SIMD) {
        const vs = f32x4.splat(s);
        for (; i + 4 <= cols; i += 4) {
          const q = <usize>i << 2;
          v128.store(pd + q, f32x4.sub(v128.load(pg + q), f32x4.mul(exp4(v128.load(py + q)), vs)));
        }
      }
      for (; i < cols; i++) {
        const q = <usize>i << 2;
        store<f32>(pd + q, load<f32>(pg + q) - Mathf.exp(load<f32>(py + q)) * s);
      }
    } else {
      let dot: f32 = 0;
      if (ASC_FEATURE_SIMD) {
        let acc = f32x4.splat(0);
        for (; i + 4 <= cols; i += 4) {
          const q = <usize>i << 2;
          acc = f32x4.add(acc, f32x4.mul(v128.load(py + q), v128.load(pg + q)));
        }
        dot = hsum4(acc);
      }
      for (; i < cols; i++) dot += load<f32>(py + (<usize>i << 2)) * load<f32>(pg + (<usize>i << 2));
      i = 0;
      if (ASC_FEATURE_SIMD) {
        const vd = f32x4.splat(dot);
        for (; i + 4 <= cols; i += 4) {
          const q = <usize>i << 2;
          v128.store(pd + q, f32x4.mul(v128.load(py + q), f32x4.sub(v128.load(pg + q), vd)));
        }
      }
      for (; i < cols; i++) {
        const q = <usize>i << 2;
        store<f32>(pd + q, load<f32>(py + q) * (load<f32>(pg + q) - dot));
      }
    }
  }
}

/**
 * Fused softmax cross-entropy with integer labels, one pass per row:
 *   loss[r] = logsumexp(x[r]) - x[r, label[r]]
 *   grad[r] = (softmax(x[r]) - onehot(label[r])) * scale   (skipped when grad == 0)
 * grad may alias x (in place). Returns -1, or the first row whose label is outside [0, cols)
 * (nothing is written for it or after).
 */
export function softmaxCrossEntropy(x: usize, labels: usize, loss: usize, grad: usize, rows: i32, cols: i32, scale: f32): i32 {
  for (let r = 0; r < rows; r++) {
    const label = load<i32>(labels + (<usize>r << 2));
    if (label < 0 || label >= cols) return r;
    const off = (<usize>r * <usize>cols) << 2;
    const p = x + off;
    const m = rowMax(p, cols);
    const g = grad ? grad + off : 0;
    const xl = load<f32>(p + (<usize>label << 2)); // read before grad (which may alias x) is written
    const s = expShiftSum(p, g, cols, m);
    store<f32>(loss + (<usize>r << 2), m + logf(s) - xl);
    if (g) {
      const k: f32 = scale / s;
      let i = 0;
      if (ASC_FEATURE_SIMD) {
        const vk = f32x4.splat(k);
        for (; i + 4 <= cols; i += 4) v128.store(g + (<usize>i << 2), f32x4.mul(v128.load(g + (<usize>i << 2)), vk));
      }
      for (; i < cols; i++) store<f32>(g + (<usize>i << 2), load<f32>(g + (<usize>i << 2)) * k);
      const gl = g + (<usize>label << 2);
      store<f32>(gl, load<f32>(gl) - scale);
    }
  }
  return -1;
}
