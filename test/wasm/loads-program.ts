// SPDX-License-Identifier: MIT
// Element reads that the Wasm printer may share and those it must not (test/wasm/loads.test.ts): a read after a
// store to the same element, through an alias, after its index changed, and in branches. Only + - * and
// comparisons, so that the Wasm sweeps and the JS sweeps agree bit for bit.

/** Reads y[i], writes it, reads it again. @differentiable */
export function readWriteRead(x: Float64Array): number {
  const y = Float64Array.from(x);
  let s = 0;
  for (let i = 0; i < y.length; i++) {
    const a = y[i] * y[i];
    y[i] = a + 1;
    s += y[i] * x[i];
  }
  return s;
}

/** A store through y changes what z, the same array, reads. @differentiable */
export function throughAlias(x: Float64Array): number {
  const y = new Float64Array(x.length);
  const z = y;
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const a = z[i] + x[i];
    y[i] = a * 2;
    s += z[i] * a;
  }
  return s;
}

/** x[i] before and after i moves. @differentiable */
export function shifting(x: Float64Array): number {
  let s = 0;
  let i = 0;
  while (i < x.length - 1) {
    const a = x[i] * x[i + 1];
    i = i + 1;
    s += a * x[i];
  }
  return s;
}

/** Reads in one branch of a ?: and of an if, then after them. @differentiable */
export function branches(x: Float64Array, c: number): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const a = c > 0.5 ? x[i] * 2 : c;
    if (x[i] > 0) s += x[i] * c;
    else s -= x[i] * x[i];
    s += a * x[i];
  }
  return s;
}
