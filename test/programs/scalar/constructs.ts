// The control flow and data constructs of the scalar subset.
import { stopGradient } from 'pullback';
import { sqr, dot } from './helpers.js';

/** @differentiable */
export function branches(x: number, y: number): number {
  let r = 0;
  if (x > y) r = x * y; else if (x > 0 && y > 0) r = x / y; else r = x - y;
  const s = x > 1 || y < -1 ? Math.exp(x) : Math.sin(y);
  return r + s;
}

/** @differentiable */
export function whileData(x: number): number {
  let v = x;
  let steps = 0;
  while (v < 10) { v = v * 1.5 + 0.1; steps++; }
  return v * steps;
}

/** @differentiable */
export function doWhile(x: number): number {
  let v = x;
  do { v = Math.sqrt(v + 1); } while (v > 1.7);
  return v;
}

/** @differentiable */
export function continueAndBreak(x: Float64Array, t: number): number {
  let acc = 0;
  for (let i = 0; i < x.length; i++) {
    if (x[i] < 0) continue;
    acc += x[i] * t;
    if (acc > 2) break;
  }
  return acc * acc;
}

/** @differentiable */
export function nestedReturn(x: Float64Array): number {
  for (let i = 0; i < x.length; i++) {
    for (let j = 0; j < x.length; j++) {
      if (x[i] * x[j] > 0.5) return x[i] * x[j] + i;
    }
  }
  return x[0];
}

/** @differentiable */
export function compound(x: number, y: number): number {
  let a = x;
  a += y; a -= 0.5 * x; a *= y; a /= x + 2; a **= 2;
  let b = a;
  b++; b--; ++b;
  return a + b;
}

/** @differentiable */
export function arrays(x: number[], y: Float64Array): number {
  const n = y.length;
  const tmp = new Array(n).fill(0);
  let s = 0;
  for (let i = 0; i < n; i++) tmp[i] = x[i] * y[i];
  for (let i = 0; i < n; i++) tmp[i] = tmp[i] * tmp[i] + tmp[(i + 1) % n];
  for (const v of tmp) s += v;
  return s + dot(x.length, y.subarray(1, 3), y.subarray(0, 2)) + y.length;
}

/** @differentiable */
export function callsImported(x: number, y: number): number {
  return sqr(x) * sqr(x + y) + sqr(sqr(y));
}

/** @differentiable */
export function stop(x: number, y: number): number {
  const c = stopGradient(x * y);
  return c * x + y;
}

/** @differentiable */
export function integers(x: Float64Array): number {
  let s = 0;
  let j = 0;
  for (let i = 0; i < x.length; i++) {
    if (i % 2 === 0) { s += x[j] * x[i]; j = j + 2; }
    const flag = !(i > 2);
    if (flag) s += x[i];
  }
  return s;
}

/** @differentiable */
export function residuals(p: Float64Array, t: Float64Array, y: Float64Array): Float64Array {
  const r = new Float64Array(t.length);
  for (let i = 0; i < t.length; i++) r[i] = p[0] * Math.exp(-p[1] * t[i]) - y[i];
  return r;
}

/** @differentiable */
export function pairs(x: number, y: number): number[] {
  return [x * y, x + y, Math.sin(x)];
}

/** @differentiable */
export function scratchInLoop(x: Float64Array): number {
  let s = 0;
  for (let k = 0; k < 3; k++) {
    const buf = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) buf[i] = x[i] * (k + 1) + s;
    s = dot(x.length, buf, x) * 0.1;
  }
  return s;
}

/** @differentiable */
export function pingPong(x: Float64Array): number {
  let u = Float64Array.from(x);
  let v = new Float64Array(x.length);
  for (let step = 0; step < 4; step++) {
    for (let i = 0; i < x.length; i++) v[i] = 0.5 * u[i] + 0.25 * u[(i + 1) % x.length] * u[i];
    const t = u; u = v; v = t;
  }
  let s = 0;
  for (let i = 0; i < x.length; i++) s += u[i];
  return s;
}

export class Model {
  /** @differentiable */
  static energy(x: number, k: number): number {
    return 0.5 * k * x * x + Model.tail(x);
  }

  /** @differentiable */
  static tail(x: number): number {
    return Math.exp(-x);
  }
}

/** @differentiable */
export function longLoop(x: number, n: number): number {
  let v = x;
  for (let i = 0; i < n; i++) v = Math.sin(v) * 0.5 + x * 1e-3;
  return v;
}

export class Pendulum {
  constructor(readonly length: number, readonly g: number) {}

  /** Energy of the pendulum at angle theta and angular velocity omega. @differentiable */
  energy(theta: number, omega: number): number {
    return 0.5 * this.length * this.length * omega * omega + this.g * this.length * (1 - Math.cos(theta)) + this.drag(omega);
  }

  /** @differentiable */
  drag(omega: number): number {
    return 0.01 * omega * omega * this.length;
  }
}

/** @differentiable */
function scaled(x: Float64Array, c: number): Float64Array {
  const r = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) r[i] = c * x[i] * x[i];
  return r;
}

/** An array-valued callee with a number argument: its number adjoint must reach the caller. @differentiable */
export function usesArrayCallee(x: Float64Array, c: number): number {
  const r = scaled(x, c);
  let s = 0;
  for (const v of r) s += v * c;
  return s;
}

/**
 * An explicit step on an n×n grid whose size is a number parameter read in indices, neighbours clamped at
 * the edges with `?:`; nonlinear, so the reverse sweep reads the field inside the time loop. @differentiable
 */
export function stencil(u0: Float64Array, n: number, steps: number, k: number): number {
  let u = Float64Array.from(u0);
  let v = new Float64Array(u0.length);
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < n; i++) {
      const up = i > 0 ? i - 1 : i;
      for (let j = 0; j < n; j++) {
        const left = j > 0 ? j - 1 : j, right = j < n - 1 ? j + 1 : j;
        const c = u[i * n + j];
        v[i * n + j] = c + k * (u[up * n + j] + u[i * n + left] + u[i * n + right] - 3 * c) + 0.05 * c * c;
      }
    }
    const t = u;
    u = v;
    v = t;
  }
  let e = 0;
  for (let p = 0; p < u.length; p++) e += u[p] * Math.sin(u[p]);
  return e;
}

/**
 * The same grid step, linear: the reverse sweep of the time loop reads no field value, so grad's forward
 * sweep records none of the elements it overwrites (the field is read only by the final sum). @differentiable
 */
export function diffuse(u0: Float64Array, n: number, steps: number, k: number): number {
  let u = Float64Array.from(u0);
  let v = new Float64Array(u0.length);
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const left = j > 0 ? j - 1 : j, right = j < n - 1 ? j + 1 : j;
        v[i * n + j] = u[i * n + j] + k * (u[i * n + left] + u[i * n + right] - 2 * u[i * n + j]);
      }
    }
    const t = u;
    u = v;
    v = t;
  }
  let e = 0;
  for (let p = 0; p < u.length; p++) e += u[p] * u[p];
  return e;
}

/**
 * A scratch grid allocated from a product of two number parameters (rows · cols), read through a clamped
 * index: the Wasm integer version allocates with an i64 product. @differentiable
 */
export function gridAlloc(u: Float64Array, rows: number, cols: number): number {
  const v = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const up = i > 0 ? (i - 1) * cols + j : i * cols + j;
      v[i * cols + j] = u[i * cols + j] * (1 + u[up]);
    }
  }
  let s = 0;
  for (let p = 0; p < v.length; p++) s += v[p] * v[p];
  return s;
}
