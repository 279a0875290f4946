// Functions whose Hessians are known in closed form, for the second-order tests.
import { grad, hvp } from 'pullback';

/** @differentiable */
export function rosenbrock(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length - 1; i++) {
    const a = x[i + 1] - x[i] * x[i];
    const b = 1 - x[i];
    s += 100 * a * a + b * b;
  }
  return s;
}

/** softplus(xᵀAx/2 + bᵀx) for a fixed symmetric A (row-major n×n). @differentiable */
export function softplusQuadratic(x: Float64Array, A: Float64Array, b: Float64Array): number {
  const n = x.length;
  let q = 0;
  for (let i = 0; i < n; i++) {
    let row = 0;
    for (let j = 0; j < n; j++) row += A[i * n + j] * x[j];
    q += 0.5 * x[i] * row + b[i] * x[i];
  }
  return Math.log1p(Math.exp(q));
}

/** A loop with a branch: sum of x_i^3 for positive x_i, of sin(x_i)·x_{i+1} otherwise. @differentiable */
export function branchy(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    if (x[i] > 0) {
      s += x[i] * x[i] * x[i];
    } else {
      s += Math.sin(x[i]) * x[(i + 1) % x.length];
    }
  }
  return s;
}

/** @differentiable */
export function cube(x: number): number {
  return x * x * x + Math.exp(2 * x);
}

/** @differentiable */
export function twoVars(x: number, y: number): number {
  return x * x * y + Math.sin(x * y);
}

/** Second derivatives taken by the module's own top-level code, while it loads (the registrations must come first). */
export const atLoad = {
  hvp: hvp(rosenbrock)(Float64Array.from([0.3, -0.7]), Float64Array.from([1, 0])) as Float64Array,
  cubeSecond: grad(grad(cube))(0.4),
};
