import { stopGradient } from 'pullback';

/** @differentiable */
export function rosen(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length - 1; i++) {
    const a = x[i + 1] - x[i] * x[i];
    const b = 1 - x[i];
    s += 100 * a * a + b * b;
  }
  return s;
}

/** @differentiable */
export const loopBreak = (x: number, y: number): number => {
  let r = x;
  while (r < 100) {
    r = r * y + Math.sin(x);
    if (r > 50) break;
  }
  return r;
};

/** @differentiable */
export function newtonSqrt(a: number): number {
  let x = a;
  for (let i = 0; i < 50; i++) {
    x = 0.5 * (x + a / x);
  }
  return x;
}

/** @differentiable */
export function earlyReturn(x: Float64Array, t: number): number {
  let acc = 0;
  for (const v of x) {
    acc += v * t;
    if (acc > 3) return acc * acc;
  }
  return Math.exp(acc);
}

/** @differentiable */
export function scratch(x: Float64Array): number {
  const n = x.length;
  const w = new Float64Array(n);
  for (let k = 0; k < 3; k++) {
    for (let i = 0; i < n; i++) {
      w[i] = Math.tanh(w[i] + x[i] * (k + 1));
    }
  }
  let s = 0;
  for (let i = 0; i < n; i++) s += w[i] * w[i];
  return s;
}

/** @differentiable */
function sq(v: number): number {
  return v * v;
}

/** @differentiable */
export function callsAndRecursion(x: number, n: number): number {
  if (n <= 0) return sq(x);
  return Math.sin(callsAndRecursion(x * 1.1, n - 1)) + sq(x);
}

/** @differentiable */
export function withStop(x: number): number {
  return x * stopGradient(x);
}

/** @differentiable */
export function vec(x: Float64Array, p: number): Float64Array {
  const r = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) r[i] = Math.sin(p * x[i]) + x[0];
  return r;
}
