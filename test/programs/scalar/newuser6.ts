// A sixth batch, aimed at what the reverse sweep does not record: clamped indices recomputed, overwritten elements
// stored only when a later part of the reverse sweep reads them, adjoint elements carried between iterations, and
// the Wasm integer version of grid code (sizes as number parameters).

/** Wave equation on a 1-D string, leapfrog; loss = energy-ish at the end. @differentiable */
export function wave(u0: Float64Array, v0: Float64Array, n: number, steps: number, c: number): number {
  let prev = new Float64Array(n);
  let cur = Float64Array.from(u0);
  for (let i = 0; i < n; i++) prev[i] = u0[i] - 0.1 * v0[i];
  let next = new Float64Array(n);
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < n; i++) {
      const l = i > 0 ? cur[i - 1] : 0;
      const r = i < n - 1 ? cur[i + 1] : 0;
      next[i] = 2 * cur[i] - prev[i] + c * (l - 2 * cur[i] + r);
    }
    const t = prev; prev = cur; cur = next; next = t;
  }
  let e = 0;
  for (let i = 0; i < n; i++) e += cur[i] * cur[i] + Math.tanh(prev[i]);
  return e;
}

/** In-place prefix sums then a nonlinear readout (stores read later). @differentiable */
export function prefix(x: Float64Array): number {
  const a = Float64Array.from(x);
  for (let i = 1; i < a.length; i++) a[i] = a[i - 1] + a[i] * a[i];
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.sin(a[i]);
  return s;
}

/** Overwrites a scratch array twice per step; the second pass reads the first's results. @differentiable */
export function twoPass(x: Float64Array, steps: number): number {
  const w = Float64Array.from(x);
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < w.length; i++) w[i] = Math.exp(-w[i] * w[i]);
    for (let i = w.length - 1; i > 0; i--) w[i] = w[i] - 0.5 * w[i - 1];
  }
  let t = 0;
  for (let i = 0; i < w.length; i++) t += w[i] * (i + 1);
  return t;
}

/** Leaky activation with an active ?: and a clamped index. @differentiable */
export function leaky(x: Float64Array, alpha: number): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const j = i + 1 < x.length ? i + 1 : i;
    const y = x[i] > 0 ? x[i] * x[j] : alpha * x[i];
    s += y * y;
  }
  return s;
}

/** 2-D grid with a product index and a per-row coefficient. @differentiable */
export function grid(u: Float64Array, rows: number, cols: number, k: Float64Array): number {
  const v = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const up = i > 0 ? (i - 1) * cols + j : i * cols + j;
      v[i * cols + j] = k[i] * u[i * cols + j] + u[up] * u[i * cols + j];
    }
  }
  let s = 0;
  for (let p = 0; p < v.length; p++) s += v[p] * v[p];
  return s;
}

/** A helper returning a new smoothed array. @differentiable */
function smooth(a: Float64Array, w: number): Float64Array {
  const b = Float64Array.from(a);
  for (let i = 1; i < b.length; i++) b[i] = (1 - w) * b[i] + w * b[i - 1];
  return b;
}

/** @differentiable */
export function callsSmooth(x: Float64Array, w: number): number {
  let a: Float64Array = Float64Array.from(x);
  let s = 0;
  for (let k = 0; k < 3; k++) { a = smooth(a, w); s += a[a.length - 1] * a[0]; }
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return s;
}

/** Views into one buffer, written through one and read through another. @differentiable */
export function views(x: Float64Array): number {
  const buf = Float64Array.from(x);
  const lo = buf.subarray(0, 3), hi = buf.subarray(3);
  for (let i = 0; i < lo.length; i++) lo[i] = lo[i] * hi[i % hi.length];
  for (let i = 0; i < hi.length; i++) hi[i] = Math.sin(buf[i]);
  let s = 0;
  for (let i = 0; i < buf.length; i++) s += buf[i] * buf[i];
  return s;
}

/** A loop that breaks early, with an adjacent-element update. @differentiable */
export function breaks(x: Float64Array, limit: number): number {
  let s = 0;
  for (let i = 0; i < x.length - 1; i++) {
    s += x[i] * x[i + 1];
    if (s > limit) break;
  }
  return s;
}

/** Adjacent update where the reverse also reads x_bar-free but x in a later loop. @differentiable */
export function chain(x: Float64Array): number {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length - 1; i++) y[i] = x[i + 1] - x[i] * x[i];
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * y[i] * x[i];
  return s;
}

/** Overwrite in place where the later statement reads old values (must record). @differentiable */
export function inPlace(x: Float64Array): number {
  const a = Float64Array.from(x);
  for (let i = 0; i < a.length; i++) a[i] = a[i] * a[i];
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.exp(a[i]);
  for (let i = 0; i < a.length; i++) a[i] = Math.cos(a[i]);
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}
