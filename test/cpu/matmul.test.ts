// SPDX-License-Identifier: MIT
// matmul / batchedMatmul against a float64 reference on awkward sizes, in every build.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, loadBuilds, randn, refMatmul, rng } from './helpers.js';

const builds = await loadBuilds();
// 1, primes, and sizes just around the blocking (MR 5, NR 8, MC 120, KC 256)
const SIZES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 3], [5, 8, 1], [7, 13, 5], [6, 9, 17], [31, 37, 41], [121, 9, 257], [4, 130, 513], [11, 263, 29],
];

for (const k of builds) {
  test(`${k.variant}: matmul matches f64 on awkward sizes, all transpose flags`, () => {
    const r = rng(1);
    for (const [M, N, K] of SIZES) {
      for (const transA of [false, true]) for (const transB of [false, true]) {
        const A = randn(r, M * K), B = randn(r, K * N);
        const a = k.upload(A), b = k.upload(B), c = k.alloc(M * N);
        k.f32(c).fill(NaN); // the result must not depend on C's old contents
        k.matmul(M, N, K, a, b, c, { transA, transB });
        const { C, S } = refMatmul(M, N, K, A, B, transA, transB);
        close(`matmul ${M}x${N}x${K} tA=${transA} tB=${transB}`, k.read(c), C, 1e-6, 0, S.map((s) => 4e-7 * s));
        k.free(a); k.free(b); k.free(c);
      }
    }
  });

  test(`${k.variant}: matmul bias, fused activations and accumulate`, () => {
    const r = rng(2);
    const [M, N, K] = [13, 19, 300];
    const A = randn(r, M * K), B = randn(r, K * N), bias = randn(r, N), C0 = randn(r, M * N);
    const { C, S } = refMatmul(M, N, K, A, B, false, true);
    const a = k.upload(A), b = k.upload(B), bb = k.upload(bias), c = k.alloc(M * N);
    const tol = S.map((s) => 4e-7 * s);
    const pre = C.map((v, i) => v + bias[i % N]!);
    k.matmul(M, N, K, a, b, c, { transB: true, bias: bb });
    close('bias', k.read(c), pre, 1e-6, 0, tol);
    k.matmul(M, N, K, a, b, c, { transB: true, bias: bb, activation: 'relu' });
    close('bias+relu', k.read(c), pre.map((v) => Math.max(v, 0)), 1e-6, 0, tol);
    k.matmul(M, N, K, a, b, c, { transB: true, bias: bb, activation: 'tanh' });
    close('bias+tanh', k.read(c), pre.map(Math.tanh), 2e-6, 0, tol);
    k.matmul(M, N, K, a, b, c, { transB: true, bias: bb, activation: 'sigmoid' });
    close('bias+sigmoid', k.read(c), pre.map((v) => 1 / (1 + Math.exp(-v))), 2e-6, 0, tol);
    k.f32(c).set(C0);
    k.matmul(M, N, K, a, b, c, { transB: true, accumulate: true });
    close('accumulate', k.read(c), C.map((v, i) => v + C0[i]!), 1e-6, 0, tol);
    k.free(a); k.free(b); k.free(bb); k.free(c);
  });

  test(`${k.variant}: K = 0 gives bias (or keeps C when accumulating)`, () => {
    const a = k.alloc(0), b = k.alloc(0), c = k.upload([1, 2, 3, 4, 5, 6]), bias = k.upload([10, -20, 30]);
    k.matmul(2, 3, 0, a, b, c, { bias, activation: 'relu' });
    assert.equal(Array.from(k.read(c)), [10, 0, 30, 10, 0, 30]);
    k.f32(c).set([1, 2, 3, 4, 5, 6]);
    k.matmul(2, 3, 0, a, b, c, { accumulate: true });
    assert.equal(Array.from(k.read(c)), [1, 2, 3, 4, 5, 6]);
    for (const buf of [a, b, c, bias]) k.free(buf);
  });

  test(`${k.variant}: batchedMatmul, with and without a broadcast operand`, () => {
    const r = rng(3);
    const [batch, M, N, K] = [3, 7, 11, 23];
    const A = randn(r, batch * M * K), B = randn(r, batch * K * N);
    const a = k.upload(A), b = k.upload(B), c = k.alloc(batch * M * N);
    k.batchedMatmul(batch, M, N, K, a, b, c, { transA: true });
    for (let i = 0; i < batch; i++) {
      const { C, S } = refMatmul(M, N, K, A.subarray(i * M * K, (i + 1) * M * K), B.subarray(i * K * N, (i + 1) * K * N), true, false);
      close(`batch ${i}`, k.read(c).subarray(i * M * N, (i + 1) * M * N), C, 1e-6, 0, S.map((s) => 4e-7 * s));
    }
    k.batchedMatmul(batch, M, N, K, a, b, c, { broadcastB: true });
    for (let i = 0; i < batch; i++) {
      const { C, S } = refMatmul(M, N, K, A.subarray(i * M * K, (i + 1) * M * K), B.subarray(0, K * N), false, false);
      close(`broadcastB batch ${i}`, k.read(c).subarray(i * M * N, (i + 1) * M * N), C, 1e-6, 0, S.map((s) => 4e-7 * s));
    }
    k.free(a); k.free(b); k.free(c);
  });
}

test('SIMD and scalar builds agree on a large matmul', () => {
  const r = rng(4);
  const [M, N, K] = [67, 129, 301];
  const A = randn(r, M * K), B = randn(r, K * N);
  const outs = builds.map((k) => {
    const a = k.upload(A), b = k.upload(B), c = k.alloc(M * N);
    k.matmul(M, N, K, a, b, c, { transA: true, transB: true, activation: 'gelu' });
    const out = k.read(c);
    k.free(a); k.free(b); k.free(c);
    return out;
  });
  for (let i = 1; i < outs.length; i++) close(`${builds[i]!.variant} vs ${builds[0]!.variant}`, outs[i]!, outs[0]!, 2e-5, 1e-5);
});

test('matmul rejects bad arguments with the kernel name and sizes', () => {
  const k = builds[0]!;
  const a = k.alloc(6), b = k.alloc(9), c = k.alloc(4);
  assert.throws(() => k.matmul(2, 2, 4, a, b, c), /matmul: A has 6 elements but needs 8 \(batch=1, M=2, N=2, K=4/);
  assert.throws(() => k.matmul(2, 2, 5, k.alloc(10), b, c), /matmul: B has 9 elements but needs 10/);
  assert.throws(() => k.matmul(2, 3, 3, a, b, c), /matmul: C has 4 elements but needs 6/);
  assert.throws(() => k.matmul(2.5, 2, 3, a, b, c), /matmul: M must be a non-negative integer, got 2.5/);
  assert.throws(() => k.matmul(2, 2, 3, a, b, a), /matmul: C overlaps A/);
  assert.throws(() => k.matmul(2, 2, 3, a, b, c, { activation: 'softplus' as never }), /matmul: unknown activation 'softplus'/);
  assert.throws(() => k.matmul(2, 2, 3, a, b, c, { bias: k.sub(a, 0, 1) }), /matmul: bias has 1 elements but needs 2/);
  k.free(a); k.free(b); k.free(c);
});

test.run();
