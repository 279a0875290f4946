// SPDX-License-Identifier: MIT
// The multi-threaded mode (worker_threads over a shared memory) agrees with the single-threaded one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCpuKernels, type CpuKernels } from '../../runtime-wasm/kernels.js';
import { close, randn, rng } from './helpers.js';

const single = await loadCpuKernels({ variant: 'simd' });
const multi = [await loadCpuKernels({ threads: 2 }), await loadCpuKernels({ threads: 3 })];

function run(k: CpuKernels, f: (k: CpuKernels) => Float32Array[]): Float32Array[] { return f(k); }

test('threaded instances report their thread count and use shared memory', () => {
  assert.is(multi[0]!.threads, 2);
  assert.is(multi[1]!.threads, 3);
  assert.ok(multi[0]!.memory.buffer instanceof SharedArrayBuffer);
  assert.is(single.threads, 1);
});

// Split over N (N >= M) and over M (M > N), with bias, activation, transposes and accumulate.
for (const [M, N, K, transA, transB] of [[67, 301, 129, false, true], [523, 41, 97, true, false], [129, 130, 255, true, true]] as const) {
  test(`matmul ${M}x${N}x${K} (tA=${transA}, tB=${transB}) is identical with 1, 2 and 3 threads`, () => {
    const r = rng(M + N + K);
    const A = randn(r, M * K), B = randn(r, K * N), bias = randn(r, N), C0 = randn(r, M * N);
    const f = (k: CpuKernels) => {
      const a = k.upload(A), b = k.upload(B), bb = k.upload(bias), c = k.upload(C0);
      k.matmul(M, N, K, a, b, c, { transA, transB, bias: bb, activation: 'gelu', accumulate: true });
      const out = [k.read(c)];
      for (const x of [a, b, bb, c]) k.free(x);
      return out;
    };
    const want = run(single, f)[0]!;
    for (const k of multi) assert.equal(Array.from(run(k, f)[0]!), Array.from(want), `${k.threads} threads`);
  });
}

test('conv2d forward and both backwards agree with 1, 2 and 3 threads (odd batch)', () => {
  const [N, C, H, W, CO] = [5, 3, 9, 7, 4];
  const r = rng(77);
  const X = randn(r, N * C * H * W), Wt = randn(r, CO * C * 9), DY = randn(r, N * CO * H * W), B = randn(r, CO);
  const xs = [N, C, H, W], ws = [CO, C, 3, 3];
  const f = (k: CpuKernels) => {
    const x = k.upload(X), w = k.upload(Wt), dy = k.upload(DY), bias = k.upload(B);
    const y = k.alloc(DY.length), dx = k.alloc(X.length), dw = k.upload(Wt);
    k.conv2d(x, xs, w, ws, y, { padding: 1, bias });
    k.conv2dBackwardInput(dy, w, dx, xs, ws, { padding: 1 });
    k.conv2dBackwardFilter(x, dy, dw, xs, ws, { padding: 1, accumulate: true });
    const out = [k.read(y), k.read(dx), k.read(dw)];
    for (const b of [x, w, dy, bias, y, dx, dw]) k.free(b);
    return out;
  };
  const want = run(single, f);
  for (const k of multi) {
    const got = run(k, f);
    assert.equal(Array.from(got[0]!), Array.from(want[0]!), `forward, ${k.threads} threads`);
    assert.equal(Array.from(got[1]!), Array.from(want[1]!), `backward-input, ${k.threads} threads`);
    // per-thread partial sums over images change the f32 summation order
    close(`backward-filter, ${k.threads} threads`, got[2]!, want[2]!, 1e-5, 1e-5);
  }
});

test('a threaded instance keeps its memory flat and can be closed', async () => {
  const k = multi[0]!;
  const a = k.upload(randn(rng(1), 64 * 64)), c = k.alloc(64 * 64);
  const cycle = () => {
    const x = k.alloc(2 * 3 * 8 * 8), w = k.alloc(4 * 3 * 9), y = k.alloc(2 * 4 * 8 * 8);
    k.fill(x, 1); k.fill(w, 1);
    k.conv2dBackwardFilter(x, y, w, [2, 3, 8, 8], [4, 3, 3, 3], { padding: 1 });
    k.matmul(64, 64, 64, a, a, c);
    k.free(x); k.free(w); k.free(y);
  };
  cycle(); // creates the size classes this cycle uses
  const before = k.memoryStats();
  for (let i = 0; i < 200; i++) cycle();
  const after = k.memoryStats();
  assert.is(after.liveBytes, before.liveBytes);
  assert.is(after.heapBytes, before.heapBytes);
  await k.close();
  k.matmul(64, 64, 64, a, a, c); // still usable, single-threaded
  await multi[1]!.close();
});

test('bad thread counts are rejected', async () => {
  let msg = '';
  try { await loadCpuKernels({ threads: 0 }); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /loadCpuKernels: threads must be an integer from 1 to 65, got 0/);
  msg = '';
  try { await loadCpuKernels({ threads: 2, variant: 'scalar' }); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /the multi-threaded mode runs the simd build only, not 'scalar'/);
});

test.run();
