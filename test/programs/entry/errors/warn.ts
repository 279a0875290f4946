// Differentiable as it stands; the fake compiler of the tests warns at the call of the logarithm.

/** @differentiable */
export function logSquare(x: number): number {
  return Math.log(x * x);
}
