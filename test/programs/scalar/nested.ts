// grad used inside marked functions, differentiated by an outer grad.
import { grad, valueAndGrad, vjp } from 'pullback';

/** Potential energy of a particle in a 2-D field with stiffness k. @differentiable */
export function potential(q: Float64Array, k: number): number {
  return 0.5 * k * (q[0] * q[0] + 2 * q[1] * q[1]) + 0.1 * Math.cos(3 * q[0]) * q[1];
}

/**
 * Semi-implicit Euler for a particle in the field: the force is -∇potential, computed by grad inside the
 * loop. Returns the squared distance from a target at the end; differentiated with respect to k and the
 * initial position.
 * @differentiable
 */
export function trajectoryLoss(q0: Float64Array, k: number, steps: number): number {
  const q = Float64Array.from(q0);
  const v = new Float64Array(2);
  for (let s = 0; s < steps; s++) {
    const f = grad(potential)(q, k);
    for (let i = 0; i < 2; i++) {
      v[i] = v[i] - 0.05 * f[i];
      q[i] = q[i] + 0.05 * v[i];
    }
  }
  return (q[0] - 0.3) * (q[0] - 0.3) + (q[1] + 0.2) * (q[1] + 0.2);
}

/** @differentiable */
export function inner(w: number, lambda: number): number {
  return (w - 2) * (w - 2) + lambda * w * w * w * w;
}

/**
 * Bilevel: 30 steps of gradient descent on inner(w, lambda) from w = 0, then the outer loss of the result,
 * differentiated with respect to the hyper-parameters lambda and the step size.
 * @differentiable
 */
export function bilevel(lambda: number, lr: number): number {
  let w = 0;
  for (let t = 0; t < 30; t++) {
    w = w - lr * grad(inner)(w, lambda);
  }
  return (w - 1.5) * (w - 1.5);
}

/** @differentiable */
export function times(x: number, y: number): number {
  return x * y;
}

/** The classic perturbation-confusion check: d/dx [x · d/dy (x·y)] = d/dx [x²] = 2x. @differentiable */
export function confusion(x: number, c: number): number {
  return x * grad(times, 1)(x, c);
}

/** valueAndGrad inside a marked function, destructured. @differentiable */
export function useValueAndGrad(w: number, lambda: number): number {
  const [value, slope] = valueAndGrad(inner)(w, lambda);
  return value * slope + slope * slope;
}

/** The same for an array parameter: value and gradient of the potential. @differentiable */
export function energyAndForce(q: Float64Array, k: number): number {
  const [e, g] = valueAndGrad(potential)(q, k);
  return e + 0.5 * (g[0] * g[0] + g[1] * g[1]);
}

/** Bilevel again, with the inner step's gradient from vjp's pullback. @differentiable */
export function bilevelVjp(lambda: number, lr: number): number {
  let w = 0;
  for (let t = 0; t < 30; t++) {
    const [, pb] = vjp(inner, w, lambda);
    const [dw] = pb(1);
    w = w - lr * dw;
  }
  return (w - 1.5) * (w - 1.5);
}

/** A vector-valued function of an array and a number. @differentiable */
export function field(x: Float64Array, s: number): Float64Array {
  const y = new Float64Array(3);
  y[0] = s * x[0] * x[1];
  y[1] = Math.sin(x[1]) + s * s;
  y[2] = Math.exp(0.3 * x[0]) * x[2];
  return y;
}

/**
 * vjp of a vector-valued function inside a marked function, with a cotangent that depends on the inputs,
 * and both gradients (array and number) used: d/d(x, s) of |y|² + |Jᵀc|².
 * @differentiable
 */
export function pullbackNorm(x: Float64Array, s: number): number {
  const [y, pb] = vjp(field, x, s);
  const c = new Float64Array(3);
  for (let i = 0; i < 3; i++) c[i] = y[i] + x[i];
  const [gx, gs] = pb(c);
  let r = gs * gs;
  for (let i = 0; i < 3; i++) r += y[i] * y[i] + gx[i] * gx[i];
  return r;
}

/** The arguments are kept as they were at the vjp call, though the scratch array changes after. @differentiable */
export function keptArguments(x: Float64Array, s: number): number {
  const z = Float64Array.from(x);
  const [, pb] = vjp(field, z, s);
  z[0] = 100;
  return pb(z)[1] + z[0] * s;
}

/** Perturbation confusion through vjp: d/dx [x · ∂/∂y (x·y)] = 2x. @differentiable */
export function confusionVjp(x: number, c: number): number {
  const [, pb] = vjp(times, x, c);
  return x * pb(1)[1];
}

/** Both gradients of one pullback, destructured where nothing else asks for them (the second pass must have both). @differentiable */
export function bothEntries(x: number[], s: number): number {
  const [y, pb] = vjp(literalField, x, s);
  const [gx, gs] = pb(y);
  return gx[0] * gx[1] + gs;
}

/** A vector function whose output is an array literal written element by element. @differentiable */
export function literalField(x: number[], s: number): number[] {
  const y = [0, 0];
  y[0] = x[0] * s;
  y[1] = Math.sin(x[1]) * x[0];
  return y;
}
