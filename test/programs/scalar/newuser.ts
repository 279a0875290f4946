// Programs a new user wrote, which found bugs: each is kept as a regression test.
/** @differentiable */
export function decLoop(x: Float64Array): number {
  let s = 0;
  for (let i = x.length - 1; i >= 0; i--) s = s * 0.9 + x[i] * x[i];
  return s;
}

/** @differentiable */
export function whileTrue(x: number): number {
  let v = x;
  let k = 0;
  while (true) {
    v = Math.sqrt(v + 2);
    k += 1;
    if (k >= 5) break;
  }
  return v;
}

/** @differentiable */
export function nestedBreak(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    for (let j = 0; j < x.length; j++) {
      if (j > i) break;
      s += x[i] * x[j] / (1 + j);
    }
  }
  return s;
}

/** @differentiable */
export function misc(x: number, y: number): number {
  let t;
  if (x > 0) t = x ** 0.5; else t = -x;
  const m = Math.max(x, y, 0.1) + Math.min(x, y);
  const e = Number.EPSILON + +y;
  return t * m + e * y + Math.hypot(x, y);
}

/** @differentiable */
export function stride(x: number[]): number {
  let s = 0;
  for (let i = 0; i < x.length; i += 2) s += Math.exp(x[i]) * (i + 1);
  for (const v of x) s -= Math.log1p(v * v);
  return s;
}

/** @differentiable */
export function matVec(A: Float64Array, v: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let acc = 0;
    for (let j = 0; j < n; j++) acc += A[i * n + j] * v[j];
    out[i] = Math.tanh(acc);
  }
  return out;
}

/** @differentiable */
export function useMatVec(A: Float64Array, v: Float64Array): number {
  const n = v.length;
  let w = matVec(A, v, n);
  for (let k = 0; k < 3; k++) w = matVec(A, w, n);
  let s = 0;
  for (let i = 0; i < n; i++) s += w[i];
  return s;
}
