// A fourth batch of programs written as a new user would; probs found that a second pullback of one vjp saw
// arrays already rewound by the first (in-place division of a scratch array).
/** @differentiable */
export function runningMax(x: Float64Array): number {
  let m = x[0];
  let s = 0;
  for (let i = 1; i < x.length; i++) {
    m = Math.max(m, x[i]);
    s += m * x[i];
  }
  return s;
}

/** @differentiable */
export function boundAndValue(x: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.sin(x * i) / n;
  return s * n;
}

/** @differentiable */
export function doReturn(x: number): number {
  let v = x;
  do {
    v = v * v - 0.5;
    if (v < 0) return v * 3;
  } while (v < 4);
  return v;
}

/** @differentiable */
function ping(x: number, n: number): number {
  if (n <= 0) return x;
  return pong(Math.sin(x), n - 1) * 1.1;
}
/** @differentiable */
function pong(x: number, n: number): number {
  if (n <= 0) return x * x;
  return ping(x + 0.3, n - 1);
}
/** @differentiable */
export function mutual(x: number): number {
  return ping(x, 5);
}

/** @differentiable */
function softmax3(z: Float64Array): Float64Array {
  let m = z[0];
  for (let i = 1; i < z.length; i++) m = Math.max(m, z[i]);
  const e = new Float64Array(z.length);
  let s = 0;
  for (let i = 0; i < z.length; i++) { e[i] = Math.exp(z[i] - m); s += e[i]; }
  for (let i = 0; i < z.length; i++) e[i] /= s;
  return e;
}
/** @differentiable */
export function crossEntropy(z: Float64Array, label: number): number {
  const p = softmax3(z);
  let loss = 0;
  for (let i = 0; i < p.length; i++) if (i === label) loss -= Math.log(p[i]);
  return loss;
}

/** @differentiable */
export function probs(z: Float64Array, temp: number): Float64Array {
  const zz = new Float64Array(z.length);
  for (let i = 0; i < z.length; i++) zz[i] = z[i] / temp;
  return softmax3(zz);
}
