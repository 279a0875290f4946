// A fifth batch, aimed at the gradient sweeps grad runs (f$gfwd/f$grev): loops whose trip count the forward
// sweep computes instead of running them, tape room reserved before a loop, values only the result needs.

/** @differentiable */
export function descending(x: Float64Array, k: number): number {
  let s = 0;
  for (let i = x.length - 1; i >= 0; i--) s += Math.sin(x[i] * k) * (i + 1);
  return s;
}

/** @differentiable */
export function stepTwo(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i <= x.length - 2; i += 2) s += x[i] * x[i + 1];
  return s;
}

/** The counter's final value is used after the loop; the bound is not an integer. */
/** @differentiable */
export function counterAfter(x: Float64Array): number {
  let i = 0, s = 0;
  for (i = 0; i < x.length / 2; i++) s += x[i] * x[i];
  return s * i;
}

/** A bound read from an array the loop writes: its trip count cannot be computed before it runs. */
/** @differentiable */
export function boundInArray(x: Float64Array): number {
  const a = new Float64Array(2);
  a[0] = 3;
  let s = 0;
  for (let i = 0; i < a[0] && i < x.length; i++) { s += x[i] * x[i]; a[0] = 2; }
  return s;
}

/** A value that only steers a branch, and one that only the result reads. */
/** @differentiable */
export function steering(x: Float64Array, w: number): number {
  let acc = 0;
  for (let i = 0; i < x.length; i++) {
    const t = x[i] * w;
    const u = x[i] * x[i];
    if (t > 0.1) acc += Math.exp(x[i]); else acc -= x[i] * u;
  }
  return acc;
}

/** Records in every iteration of a loop with a number-parameter bound (room reserved before it runs). */
/** @differentiable */
export function recordsPerStep(x: Float64Array, n: number, h: number): number {
  let y = x[0], v = x[1];
  for (let i = 0; i < n; i++) {
    const a = -Math.sin(y);
    v = v + h * a;
    y = y + h * v;
  }
  return y * y + v;
}

/** A scratch array made by an array literal, then written element by element (its temporary aliases it). */
/** @differentiable */
export function literalScratch(x: number[]): number {
  const y = [0, 0];
  y[0] = x[0] * x[1];
  y[1] = Math.sin(x[1]) * x[0];
  return y[0] * y[1];
}

/** Constants written with negative exponents, in an expression and in a branch condition. */
/** @differentiable */
export function smallConstants(x: number): number {
  const y = x > 1e-9 ? x * x : 0;
  return 2.5e-3 * x + y;
}
