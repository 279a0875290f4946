// SPDX-License-Identifier: MIT
// The programs the multi-threaded mode must agree on with the single-threaded one, shared by the Node test
// (threads.test.ts) and the browser page (fixtures/threads-browser.ts): no test framework here, so that a page can
// load it. Each returns its outputs as plain arrays; `exact` says which must be bit-identical across thread counts.
import type { CpuKernels } from '../../runtime-wasm/kernels.js';
import { rng } from '../support/rng.js';

export interface ThreadCase {
  name: string;
  /** Per output: bit-identical across thread counts (false: f32 summation order may differ). */
  exact: boolean[];
  run(k: CpuKernels): number[][];
}

function uniform(r: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * r() - 1);
}

/** Split over N (N >= M) and over M (M > N), with bias, activation, transposes and accumulate. */
const matmuls: ThreadCase[] = ([[67, 301, 129, false, true], [523, 41, 97, true, false], [129, 130, 255, true, true]] as const)
  .map(([M, N, K, transA, transB]) => ({
    name: `matmul ${M}x${N}x${K} (tA=${transA}, tB=${transB})`,
    exact: [true],
    run: (k: CpuKernels) => {
      const r = rng(M + N + K);
      const a = k.upload(uniform(r, M * K)), b = k.upload(uniform(r, K * N)), bias = k.upload(uniform(r, N)), c = k.upload(uniform(r, M * N));
      k.matmul(M, N, K, a, b, c, { transA, transB, bias, activation: 'gelu', accumulate: true });
      const out = [Array.from(k.read(c))];
      for (const x of [a, b, bias, c]) k.free(x);
      return out;
    },
  }));

/** conv2d forward and both backwards over an odd batch (the threads split the images). */
const conv: ThreadCase = {
  name: 'conv2d forward, backward-input, backward-filter (odd batch)',
  // per-thread partial sums over images change the f32 summation order of backward-filter
  exact: [true, true, false],
  run: (k: CpuKernels) => {
    const [N, C, H, W, CO] = [5, 3, 9, 7, 4];
    const r = rng(77);
    const X = uniform(r, N * C * H * W), Wt = uniform(r, CO * C * 9), DY = uniform(r, N * CO * H * W), B = uniform(r, CO);
    const xs = [N, C, H, W], ws = [CO, C, 3, 3];
    const x = k.upload(X), w = k.upload(Wt), dy = k.upload(DY), bias = k.upload(B);
    const y = k.alloc(DY.length), dx = k.alloc(X.length), dw = k.upload(Wt);
    k.conv2d(x, xs, w, ws, y, { padding: 1, bias });
    k.conv2dBackwardInput(dy, w, dx, xs, ws, { padding: 1 });
    k.conv2dBackwardFilter(x, dy, dw, xs, ws, { padding: 1, accumulate: true });
    const out = [k.read(y), k.read(dx), k.read(dw)].map((a) => Array.from(a));
    for (const b of [x, w, dy, bias, y, dx, dw]) k.free(b);
    return out;
  },
};

export const threadCases: ThreadCase[] = [...matmuls, conv];
