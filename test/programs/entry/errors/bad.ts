// try/catch around a differentiated value is outside the supported subset (issue 2, item 7).

/** @differentiable */
export function guarded(x: number): number {
  let y = x * x;
  try {
    y = Math.log(y);
  } catch {
    y = 0;
  }
  return y;
}
