/** @differentiable */
export function sqr(v: number): number {
  return v * v;
}

/** @differentiable */
export function dot(n: number, a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** A function with a custom reverse rule: softplus, whose rule uses the stable sigmoid. */
export function softplus(x: number): number {
  return x > 30 ? x : Math.log1p(Math.exp(x));
}

/** @derivative softplus */
export function softplusRule(x: number, g: number): number {
  return g / (1 + Math.exp(-x));
}

/** @differentiable */
export function usesRule(x: number, y: number): number {
  return softplus(x * y) + softplus(y);
}

/** log(1 + e^x) again, with both a reverse and a forward rule. */
export function softplus2(x: number): number {
  return x > 30 ? x : Math.log1p(Math.exp(x));
}

/** @derivative softplus2 */
export function softplus2Grad(x: number, g: number): number {
  return g / (1 + Math.exp(-x));
}

/** @tangent softplus2 */
export function softplus2Tangent(x: number, t: number): number {
  return t / (1 + Math.exp(-x));
}

/** @differentiable */
export function usesBothRules(x: number, y: number): number {
  return softplus2(x * y) * y;
}
