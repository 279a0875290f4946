// More programs written as a new user would (recursion over views, three levels of recording callees, calls in
// loop conditions, conditional stores, early returns in callees, do/continue, rules in loops, vector early return).
/** @differentiable */
function sumRec(x: Float64Array): number {
  if (x.length === 1) return x[0] * x[0];
  const h = Math.floor(x.length / 2);
  return sumRec(x.subarray(0, h)) + Math.sin(sumRec(x.subarray(h)));
}
/** @differentiable */
export function recArr(x: Float64Array): number { return sumRec(x); }

/** @differentiable */
function leaf(a: number, n: number): number {
  let s = a;
  for (let i = 0; i < n; i++) s = Math.sin(s) + a * 0.5;
  return s;
}
/** @differentiable */
function mid(a: number, b: number): number {
  let t = 0;
  for (let k = 0; k < 3; k++) t = t + leaf(a * t + b, k + 1);
  return t;
}
/** @differentiable */
export function threeLevels(a: number, b: number): number {
  return mid(a, b) * leaf(b, 2) + mid(b, a);
}

/** @differentiable */
export function condCall(x: number): number {
  let v = x;
  let n = 0;
  while (leaf(v, 1) < 3 && n < 10) { v = v * 1.3 + 0.1; n++; }
  return v * v;
}

/** @differentiable */
export function condStore(x: Float64Array, t: number): number {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    if (x[i] * t > 0.1) y[i] = x[i] * t; else y[i] = -x[i] * x[i];
    if (i > 0 && y[i] < y[i - 1]) y[i] = y[i - 1] * 0.5 + y[i];
  }
  let s = 0;
  for (const v of y) s += v * v;
  return s;
}

/** @differentiable */
function firstAbove(x: Float64Array, lim: number): number {
  let i = 0;
  while (i < x.length) {
    if (x[i] > lim) return x[i] * lim;
    i++;
  }
  return lim;
}
/** @differentiable */
export function earlyCallee(x: Float64Array, lim: number): number {
  let s = 0;
  for (let k = 0; k < 3; k++) s += firstAbove(x, lim + 0.1 * k) * (k + 1);
  return s;
}

/** @differentiable */
export function doContinue(x: number): number {
  let v = x, k = 0, acc = 0;
  do {
    k++;
    v = v * 0.8 + 0.3;
    if (k % 2 === 0) continue;
    acc += v * v;
  } while (k < 7);
  return acc;
}

export function cube(x: number): number { return x * x * x; }
/** @derivative cube */
export function cubeGrad(x: number, g: number): number { return 3 * x * x * g; }
/** @differentiable */
export function ruleInLoop(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += cube(x[i] + s * 0.1);
  return s;
}

/** @differentiable */
export function vecEarly(x: Float64Array, a: number): number[] {
  if (a < 0) return [a, a];
  const out = new Array(2).fill(0);
  for (let i = 0; i < x.length; i++) { out[i % 2] += Math.atan2(x[i], a) * a; }
  return out;
}

/** @differentiable */
export function flags(x: Float64Array): number {
  let seenNeg = false;
  let s = 0;
  for (const v of x) {
    if (v < 0) seenNeg = true;
    s += seenNeg ? v * v : Math.exp(v);
  }
  return s + (-7.5 % 2) * x[0];
}
