import { horner } from './lib/poly.js';
import { sumSquares } from './lib/vec.js';
import { Spring } from './types.js';

/** @differentiable */
export function energy(x: number, k: number): number {
  return horner(x, 1, -k, 0.5) + Math.sin(x) * k;
}

/** @differentiable */
export const rosenbrock = (v: Float64Array): number => {
  let s = 0;
  for (let i = 0; i + 1 < v.length; i++) {
    const a = v[i + 1] - v[i] * v[i];
    const b = 1 - v[i];
    s += 100 * a * a + b * b;
  }
  return s + 1e-3 * sumSquares(v);
};

export function springForce(spring: Spring, x: number): number {
  return -spring.k * (x - spring.rest);
}
