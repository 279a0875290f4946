// SPDX-License-Identifier: MIT
// Shared by the CPU kernel tests: a seeded generator, f64 reference implementations (the spec
// the kernels are checked against) and a tolerance check that names the worst element.
import * as assert from 'uvu/assert';
import { loadCpuKernels, type CpuKernels, type Variant } from '../../runtime-wasm/kernels.js';
export { rng } from '../support/rng.js';

/** Builds whose results must match the reference: the scalar build and the best SIMD build. */
export async function loadBuilds(): Promise<CpuKernels[]> {
  const best = await loadCpuKernels();
  const scalar = await loadCpuKernels({ variant: 'scalar' });
  const out = [best, scalar];
  if (best.variant !== 'simd') out.push(await loadCpuKernels({ variant: 'simd' }));
  return out;
}

/** n f32 values uniform in [lo, hi). */
export function randn(r: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

/**
 * Asserts |got - want| <= atol + rtol * |want| (+ extra[i] when given) for every element, and
 * reports the worst offender with its index.
 */
export function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol = 0, extra?: ArrayLike<number>): void {
  assert.is(got.length, want.length, `${what}: length`);
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    const tol = atol + rtol * Math.abs(w) + (extra ? extra[i]! : 0);
    const err = Math.abs(g - w);
    if (!(err <= tol) && !(Number.isNaN(g) && Number.isNaN(w)) && !(g === w)) {
      const excess = Number.isNaN(err) ? Infinity : err - tol;
      if (worst < 0 || excess > worstExcess) { worst = i; worstExcess = excess; }
    }
  }
  if (worst >= 0) assert.unreachable(`${what}: element ${worst} is ${got[worst]}, expected ${want[worst]} (atol ${atol}, rtol ${rtol})`);
}

/** Float64 matmul reference; also returns sum |a||b| per element for f32 error bounds. */
export function refMatmul(M: number, N: number, K: number, A: ArrayLike<number>, B: ArrayLike<number>, transA: boolean, transB: boolean) {
  const C = new Float64Array(M * N), S = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let k = 0; k < K; k++) {
      const a = transA ? A[k * M + i]! : A[i * K + k]!;
      for (let j = 0; j < N; j++) {
        const b = transB ? B[j * K + k]! : B[k * N + j]!;
        C[i * N + j] += a * b;
        S[i * N + j] += Math.abs(a * b);
      }
    }
  }
  return { C, S };
}

export interface ConvGeo { N: number; C: number; H: number; W: number; CO: number; KH: number; KW: number; sh: number; sw: number; ph: number; pw: number; dh: number; dw: number; Ho: number; Wo: number }

export function convGeo(N: number, C: number, H: number, W: number, CO: number, KH: number, KW: number, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1): ConvGeo {
  const Ho = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  return { N, C, H, W, CO, KH, KW, sh, sw, ph, pw, dh, dw, Ho, Wo };
}

/** Direct f64 convolution (cross-correlation) and its two gradients, by definition. */
export function refConv(g: ConvGeo, x: ArrayLike<number>, w: ArrayLike<number>, dy: ArrayLike<number>, bias?: ArrayLike<number>) {
  const { N, C, H, W, CO, KH, KW, sh, sw, ph, pw, dh, dw, Ho, Wo } = g;
  const y = new Float64Array(N * CO * Ho * Wo), dx = new Float64Array(N * C * H * W), dW = new Float64Array(CO * C * KH * KW);
  for (let n = 0; n < N; n++) for (let co = 0; co < CO; co++) for (let ho = 0; ho < Ho; ho++) for (let wo = 0; wo < Wo; wo++) {
    const yi = ((n * CO + co) * Ho + ho) * Wo + wo;
    let s = bias ? bias[co]! : 0;
    for (let c = 0; c < C; c++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
      const hi = ho * sh - ph + kh * dh, wi = wo * sw - pw + kw * dw;
      if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
      const xi = ((n * C + c) * H + hi) * W + wi, wIdx = ((co * C + c) * KH + kh) * KW + kw;
      s += x[xi]! * w[wIdx]!;
      dx[xi] += dy[yi]! * w[wIdx]!;
      dW[wIdx] += dy[yi]! * x[xi]!;
    }
    y[yi] = s;
  }
  return { y, dx, dW };
}
