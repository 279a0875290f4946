// A third batch of programs written as a new user would; pickArray found two bugs (an array-valued ?: typed
// as a number, and vjp handing the reverse sweep other parameter shadows than the forward sweep aliased).
/** @differentiable */
function scale(x: number, k: number): number {
  x = x * k;
  if (x > 1) x = Math.sqrt(x);
  return x + k;
}
/** @differentiable */
export function paramReassign(a: number, b: number): number {
  let s = 0;
  for (let i = 0; i < 4; i++) s += scale(a + s * 0.1, b);
  return s;
}

/** @differentiable */
export function triangular(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    for (let j = 0; j <= i; j++) s += x[j] * Math.cos(x[i] * (j + 1));
  }
  return s;
}

/** @differentiable */
export function pickArray(x: Float64Array, y: Float64Array, t: number): number {
  const a = t > 0 ? x : y;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * t;
  return s;
}

/** @differentiable */
export function dynamicScratch(x: Float64Array, t: number): number {
  const n = Math.floor(x.length / 2) + 1;
  const buf = new Float64Array(n);
  for (let i = 0; i < n; i++) buf[i] = x[i] * t;
  let s = 0;
  for (let i = 0; i < n; i++) {
    let v;
    if (buf[i] > 0) v = buf[i] * buf[i]; else v = -buf[i];
    s += v;
  }
  return s;
}

/** @differentiable */
function step(v: number, c: number): number {
  return v * 0.7 + Math.sin(c * v);
}
/** @differentiable */
export function loopCallBreak(x: number, c: number): number {
  let v = x;
  for (let i = 0; i < 20; i++) {
    v = step(v, c);
    if (v > 2) break;
  }
  return v;
}

/** @differentiable */
export function lenInCallee(x: Float64Array): number {
  return meanSq(x) + meanSq(x.subarray(1));
}
/** @differentiable */
function meanSq(x: Float64Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return s / x.length;
}
