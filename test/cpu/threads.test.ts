// SPDX-License-Identifier: MIT
// The multi-threaded mode (worker_threads over a shared memory) agrees with the single-threaded one; the same cases
// run in headless Chromium on Web Workers in browser-threads.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCpuKernels } from '../../runtime-wasm/kernels.js';
import { close, randn, rng } from './helpers.js';
import { threadCases } from './thread-cases.js';

const single = await loadCpuKernels({ variant: 'simd' });
const multi = [await loadCpuKernels({ threads: 2 }), await loadCpuKernels({ threads: 3 })];

for (const c of threadCases) {
  test(`${c.name} agrees with 1, 2 and 3 threads`, () => {
    const want = c.run(single);
    for (const k of multi) {
      const got = c.run(k);
      got.forEach((out, i) => {
        const what = `${c.name}, output ${i}, ${k.threads} threads`;
        if (c.exact[i]) close(`${what}: bit-identical`, out, want[i]!, 0, 0);
        else close(what, out, want[i]!, 1e-5, 1e-5);
      });
    }
  });
}

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
