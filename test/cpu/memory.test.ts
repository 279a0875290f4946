// SPDX-License-Identifier: MIT
// The linear-memory allocator: size classes, reuse, accounting, and flat memory over many cycles.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCpuKernels, sizeClass } from '../../runtime-wasm/kernels.js';

const k = await loadCpuKernels();

test('size classes are 64-byte aligned and waste at most 25% above 1 KiB', () => {
  for (const bytes of [1, 4, 63, 64, 65, 1000, 1024, 1025, 4096, 5000, 123457, 1 << 24, (1 << 24) + 1]) {
    const c = sizeClass(bytes);
    assert.ok(c >= bytes && c % 64 === 0, `class ${c} for ${bytes}`);
    if (bytes > 1024) assert.ok(c <= bytes * 1.25 + 64, `class ${c} for ${bytes} wastes too much`);
  }
});

test('alloc / free accounting, reuse of freed blocks, and 64-byte alignment', () => {
  const before = k.memoryStats();
  const a = k.alloc(100), b = k.alloc(1000);
  assert.is(a.ptr % 64, 0);
  assert.is(b.ptr % 64, 0);
  const mid = k.memoryStats();
  assert.is(mid.liveBuffers, before.liveBuffers + 2);
  assert.is(mid.liveBytes, before.liveBytes + sizeClass(400) + sizeClass(4000));
  assert.ok(mid.peakBytes >= mid.liveBytes);
  k.free(a);
  const c = k.alloc(97); // same class as a: must reuse its block
  assert.is(c.ptr, a.ptr);
  k.free(b); k.free(c);
  assert.is(k.memoryStats().liveBytes, before.liveBytes);
  assert.throws(() => k.free(c), /free: no live buffer at address \d+ \(double free, or not from alloc\)/);
  assert.throws(() => k.free(k.sub(b, 4, 4)), /free: no live buffer/);
  assert.throws(() => k.alloc(-1), /alloc: length must be a non-negative integer, got -1/);
});

test('memory stays flat over 10,000 alloc / op / free cycles', () => {
  const w = k.upload(Float32Array.from({ length: 64 * 48 }, (_, i) => Math.sin(i)));
  const x = k.upload(Float32Array.from({ length: 16 * 64 }, (_, i) => Math.cos(i)));
  const labels = k.uploadI32(Array.from({ length: 16 }, (_, i) => i % 48));
  const run = (iters: number) => {
    for (let i = 0; i < iters; i++) {
      const h = k.alloc(16 * 48), loss = k.alloc(16), grad = k.alloc(16 * 48), dx = k.alloc(16 * 64);
      k.matmul(16, 48, 64, x, w, h, { activation: 'relu' });
      k.softmaxCrossEntropy(h, labels, 16, 48, { loss, grad });
      k.matmul(16, 64, 48, grad, w, dx, { transB: true });
      const s = k.alloc(1 + (i % 300)); // varying sizes within a few classes
      k.free(s); k.free(h); k.free(loss); k.free(grad); k.free(dx);
    }
  };
  run(300); // every size class the loop uses has been created once
  const warm = k.memoryStats();
  run(10_000);
  const after = k.memoryStats();
  assert.is(after.liveBytes, warm.liveBytes, 'live bytes');
  assert.is(after.liveBuffers, warm.liveBuffers, 'live buffers');
  assert.is(after.heapBytes, warm.heapBytes, 'heap did not grow');
  assert.is(after.memoryBytes, warm.memoryBytes, 'Wasm memory did not grow');
  k.free(w); k.free(x); k.free(labels);
});

test('growing memory keeps earlier buffers intact and conv temporaries are returned', () => {
  const a = k.upload([1, 2, 3]);
  const big = k.alloc(20_000_000); // 80 MB: forces memory.grow
  assert.equal(Array.from(k.read(a)), [1, 2, 3]);
  k.free(big);
  const live = k.memoryStats().liveBytes;
  const x = k.alloc(2 * 3 * 8 * 8), w = k.alloc(4 * 3 * 9), y = k.alloc(2 * 4 * 8 * 8);
  k.fill(x, 1); k.fill(w, 1);
  k.conv2d(x, [2, 3, 8, 8], w, [4, 3, 3, 3], y, { padding: 1 });
  assert.is(k.read(y)[9], 27);
  k.free(x); k.free(w); k.free(y);
  assert.is(k.memoryStats().liveBytes, live);
  k.free(a);
});

test('loading an unknown build fails with a clear message; forcing a build is honoured', async () => {
  const s = await loadCpuKernels({ variant: 'scalar' });
  assert.is(s.variant, 'scalar');
  let msg = '';
  try { await loadCpuKernels({ variant: 'simd', wasmDir: '/nonexistent/dir' }); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /loadCpuKernels: no usable kernel build; tried simd \(not found\)/);
});

test.run();
