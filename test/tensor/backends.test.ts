// SPDX-License-Identifier: MIT
// Choosing a backend (init, backend(), withBackend, toBackend, memoryStats, sync) and parity: the same programs of
// the public API on the reference backend (f64), the CPU backend and WebGPU on SwiftShader agree to f32 tolerance.
// The WebGPU part runs before init('auto'), which loads Dawn without SwiftShader (Dawn is started once per process).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Tensor } from '../../sdk/tensor/engine.js';
import {
  type TensorBackend, backend, init, memoryStats, referenceTensorBackend, setBackend, sync, toBackend, useBackend, withBackend,
} from '../../sdk/tensor/backends.js';
import * as O from '../../sdk/tensor/ops.js';
import { close, envAdapter, liveTensors, noGpuReason, throwsMatching } from './helpers.js';

const gpuAvailable = noGpuReason === null;
if (!gpuAvailable) console.log(`tensor/backends: WebGPU parity skipped: ${noGpuReason}`);

/**
 * Programs over the public API, each returning one tensor. Inputs come from the seeded rand/randn (the same values
 * on every backend) and are moved into each op's domain by the program itself. `tol` is [rtol, atol] against f64.
 */
const programs: { name: string; run: () => Tensor; tol?: [number, number] }[] = [
  { name: 'creation', run: () => O.concat([O.zeros([2]), O.ones([2]), O.full([1], 3), O.arange(0.5, 2), O.rand([3], 1), O.tensor([[7, 8]]).flatten()]) },
  { name: 'unary', run: () => {
    const x = O.randn([5, 7], 2), p = O.add(O.abs(x), 0.25);
    return O.concat([O.neg(x), O.exp(x), O.log(p), O.sqrt(p), O.rsqrt(p), O.tanh(x), O.sigmoid(x), O.relu(x), O.gelu(x), O.abs(x), O.square(x)]);
  } },
  { name: 'binary with broadcasting and numbers', run: () => {
    const a = O.randn([4, 6], 3), b = O.randn([6], 4), p = O.add(O.abs(a), 0.5);
    return O.concat([O.add(a, b), O.sub(2, a), O.mul(a, b), O.div(a, O.add(O.abs(b), 1)), O.pow(p, 1.5), O.pow(2, a), O.maximum(a, b), O.minimum(a, 0.1)]);
  } },
  { name: 'comparisons, where, clip', run: () => {
    const a = O.randn([3, 5], 5), b = O.randn([5], 6);
    return O.concat([O.lt(a, b), O.le(a, 0), O.gt(a, b), O.ge(0, a), O.eq(a, a), O.ne(a, b), O.where(O.gt(a, 0), a, O.mul(b, 2)), O.clip(a, -0.5, 0.5)]);
  } },
  { name: 'reductions', run: () => {
    const x = O.randn([3, 4, 5], 7);
    return O.concat([O.sum(x, 1).flatten(), O.mean(x, [0, 2]), O.max(x, -1).flatten(), O.logsumexp(x, [1, 2]), O.mean(x).reshape([1]), O.sum(x, 0, true).flatten()]);
  } },
  { name: 'argmax', run: () => O.concat([O.argmax(O.randn([6, 9], 8), 1), O.argmax(O.randn([4, 3], 9), 0), O.argmax(O.randn([10], 10)).reshape([1])]) },
  { name: 'matmul', run: () => {
    const x = O.randn([5, 8], 11), w = O.randn([6, 8], 12), b = O.randn([6], 13), xb = O.randn([3, 5, 8], 14);
    return O.concat([O.matmul(x, w, { transB: true, bias: b, activation: 'relu' }).flatten(), O.matmul(x, w, { transB: true, activation: 'gelu' }).flatten(),
      O.matmul(xb, O.transpose(w)).flatten(), O.matmul(O.transpose(x), O.randn([8, 3], 15), { transA: true }).flatten()]);
  } },
  { name: 'softmax, logSoftmax, softmaxCrossEntropy', run: () => {
    const x = O.mul(O.randn([4, 10], 16), 3);
    return O.concat([O.softmax(x).flatten(), O.logSoftmax(x).flatten(), O.softmaxCrossEntropy(x, O.tensor([0, 9, 3, 3], [4], 'i32'))]);
  } },
  { name: 'layerNorm', run: () => O.layerNorm(O.randn([3, 16], 17), O.randn([16], 18), O.randn([16], 19), 1e-3), tol: [1e-3, 1e-4] },
  { name: 'conv2d, maxPool2d', run: () => {
    const img = O.randn([2, 3, 7, 7], 20), w = O.randn([4, 3, 3, 3], 21);
    const y = O.conv2d(img, w, { padding: 1, stride: [1, 2], bias: O.randn([4], 22) });
    return O.concat([y.flatten(), O.maxPool2d(y, { kernel: 2, stride: 1 }).flatten(), O.maxPool2d(img, { kernel: 3, stride: 2, padding: 1 }).flatten()]);
  }, tol: [1e-3, 1e-4] },
  { name: 'attention', run: () => {
    const q = O.randn([2, 5, 8], 23), k = O.randn([2, 6, 8], 24), v = O.randn([2, 6, 4], 25);
    return O.concat([O.attention(q, k, v).flatten(), O.attention(q, O.slice(k, [0, 0, 0], [-1, 5, -1]), O.slice(v, [0, 0, 0], [-1, 5, -1]), { causal: true, scale: 0.3 }).flatten()]);
  }, tol: [1e-3, 1e-4] },
  { name: 'embedding and layout', run: () => {
    const x = O.randn([2, 3, 4], 26);
    return O.concat([O.embedding(O.randn([5, 3], 27), O.tensor([4, 0, 4, 2], [4], 'i32')).flatten(), O.permute(x, [2, 0, 1]).flatten(),
      O.transpose(x).flatten(), O.slice(x, [1, 0, 2], [1, -1, 2]).flatten(), O.pad(x, [[0, 1], [1, 0], [0, 0]]).flatten(),
      O.concat([x, O.neg(x)], 1).flatten(), O.broadcastTo(O.reshape(x, [2, 1, 12]), [2, 2, 12]).flatten(), O.cast(O.cast(O.mul(x, 3), 'i32'), 'f32').flatten()]);
  } },
  { name: 'i32 arithmetic', run: () => O.add(O.mul(O.arange(6, undefined, 1, 'i32'), 3), O.tensor([1, -2, 3, -4, 5, -6], [6], 'i32')) },
];

const expected = new Map<string, { shape: number[]; dtype: string; values: number[] }>();

async function runAll(be: TensorBackend, label: string): Promise<void> {
  for (const p of programs) {
    const y = withBackend(be, p.run);
    assert.is(y.backend, be, `${label} ${p.name}: made on ${label}`);
    const want = expected.get(p.name)!;
    assert.equal([...y.shape], want.shape, `${label} ${p.name}: shape`);
    assert.is(y.dtype, want.dtype, `${label} ${p.name}: dtype`);
    const [rtol, atol] = p.tol ?? [2e-4, 2e-5];
    close(`${label} ${p.name}`, await y.data(), want.values, rtol, atol);
  }
}

/** Only the results are alive after calls with auxiliary outputs; nothing after disposing them. */
function checkNoLeaks(be: TensorBackend, label: string): void {
  withBackend(be, () => {
    const x = O.randn([4, 6], 30), w = O.randn([6, 5], 31), g = O.randn([6], 32), img = O.randn([1, 2, 4, 4], 33);
    const labels = O.tensor([0, 1, 2, 3], [4], 'i32');
    const before = liveTensors();
    const ys = [O.matmul(x, w, { bias: O.ones([5]), activation: 'relu' }), O.layerNorm(x, g, g), O.softmaxCrossEntropy(x, labels),
      O.maxPool2d(img, { kernel: 2 }), O.attention(x, x, x), O.max(x, 1), O.argmax(x, 0), O.clip(x, -1, 1), O.add(x, 1)];
    // matmul's bias (O.ones) is the caller's argument: one more alive.
    assert.is(liveTensors(), before + ys.length + 1, `${label}: only the results (and the bias argument) are alive`);
    for (const y of ys) y.dispose();
    assert.is(liveTensors(), before + 1, `${label}: nothing left after disposing the results`);
  });
}

test('before init(): backend() is none and making a tensor says to call init()', () => {
  assert.equal(backend(), { name: 'none', description: 'none: call `await init()` first', adapter: null });
  throwsMatching(() => O.tensor([1, 2]), /no tensor backend; call `await init\(\)` first/);
  assert.is(memoryStats().backend, 'none');
});

test('reference: init, withBackend restores, and the expected values of every program', async () => {
  const info = await init({ backend: 'reference' });
  assert.is(info.name, 'reference');
  assert.is(backend().name, 'reference');
  for (const p of programs) {
    const y = withBackend(referenceTensorBackend, p.run);
    expected.set(p.name, { shape: [...y.shape], dtype: y.dtype, values: Array.from(await y.data()) });
  }
  assert.ok(expected.get('argmax')!.dtype === 'i32' && expected.get('i32 arithmetic')!.dtype === 'i32');
  assert.ok((await O.tensor([1]).data()) instanceof Float64Array, 'the reference backend reads back f64');
  checkNoLeaks(referenceTensorBackend, 'reference');
  throwsMatching(() => withBackend(referenceTensorBackend, async () => 1), /withBackend: fn must be synchronous/);
});

test('cpu: init, info, memoryStats, parity with the reference, no leaks', async () => {
  const info = await init({ backend: 'cpu' });
  assert.is(info.name, 'cpu');
  assert.is(info.threads, 1);
  assert.match(info.description, /^cpu \(Wasm \w+, 1 thread\)$/);
  assert.equal(backend(), info);
  const x = O.tensor([1.5, 2], [2]);
  assert.is(x.backend.name, 'cpu');
  assert.ok((await x.data()) instanceof Float32Array);
  assert.ok((await O.tensor([1], [1], 'i32').data()) instanceof Int32Array);
  const m = memoryStats();
  assert.is(m.backend, 'cpu');
  assert.ok(m.liveBytes >= 8 && m.heapBytes! >= m.liveBytes && m.memoryBytes! > 0);
  await sync();
  await runAll(x.backend, 'cpu');
  checkNoLeaks(x.backend, 'cpu');
  const again = await init({ backend: 'cpu' });
  assert.is(again.description, info.description);
  assert.is(O.tensor([1]).backend, x.backend, 'init() again reuses the loaded CPU backend');
});

test('cpu with threads', async () => {
  const info = await init({ backend: 'cpu', threads: 2 });
  assert.is(info.threads, 2);
  assert.match(info.description, /2 threads/);
  const y = O.matmul(O.randn([64, 32], 1), O.randn([32, 48], 2));
  const want = withBackend(referenceTensorBackend, () => O.matmul(O.randn([64, 32], 1), O.randn([32, 48], 2)));
  close('threaded matmul', await y.data(), await want.data(), 2e-4, 2e-5);
  await init({ backend: 'cpu' });
});

test('mixing backends is an error naming both; toBackend copies', async () => {
  await init({ backend: 'cpu' });
  const c = O.tensor([1, 2, 3]);
  const r = withBackend(referenceTensorBackend, () => O.tensor([1, 1, 1]));
  throwsMatching(() => O.add(c, r), /binary: inputs live on different backends \(cpu and reference\); move one with toBackend\(\)/);
  const moved = await toBackend(r, 'cpu');
  assert.is(moved.backend, c.backend);
  assert.equal(await O.add(c, moved).array(), [2, 3, 4]);
  const back = await toBackend(c, 'reference');
  assert.is(back.backend, referenceTensorBackend);
  assert.equal(await back.array(), [1, 2, 3]);
  const i = await toBackend(O.tensor([5, -6], [2], 'i32'), referenceTensorBackend);
  assert.is(i.dtype, 'i32');
});

(gpuAvailable ? test : test.skip)(`webgpu (SwiftShader, or the adapter PULLBACK_GPU_ADAPTER names): init, info, parity with the reference, no leaks${gpuAvailable ? '' : ` (skipped: ${noGpuReason})`}`, async () => {
  const info = await init({ backend: 'webgpu', adapter: envAdapter ?? 'swiftshader' });
  assert.is(info.name, 'webgpu');
  assert.ok(info.adapter && info.adapter.length > 0);
  if (!envAdapter) assert.is(info.software, true);
  const be = O.tensor([1]).backend;
  assert.is(be.name, 'webgpu');
  await runAll(be, 'webgpu');
  checkNoLeaks(be, 'webgpu');
  await sync();
  const m = memoryStats();
  assert.is(m.backend, 'webgpu');
  assert.ok(typeof m.pooledBytes === 'number' && m.pooledBytes > 0, 'the WebGPU pool keeps freed buffers');
  const moved = await toBackend(O.tensor([1, 2]), 'cpu');
  assert.is(moved.backend.name, 'cpu');
});

test('webgpu with no hardware adapter: an Error that says what to install', async () => {
  let message = '', info;
  try { info = await init({ backend: 'webgpu', adapter: 'hardware' }); } catch (e) { message = (e as Error).message; }
  if (info) {
    assert.is(info.software, false);
    console.log('tensor/backends: a hardware adapter is present, so the no-adapter error could not be checked:', info.description);
    return;
  }
  assert.match(message, /^pullback init\(\{ backend: 'webgpu' \}\): No WebGPU adapter is available\. Install a GPU driver with Vulkan support/);
  assert.match(message, /apt-get install -y chromium/);
  assert.is(backend().name !== 'none', true, 'the previous backend stays current');
});

test('auto: a hardware adapter, else the CPU backend with exactly one warning per process', async () => {
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...a: unknown[]) => { warnings.push(a.join(' ')); };
  let first, second;
  try {
    first = await init();
    second = await init({ backend: 'auto' });
  } finally { console.warn = warn; }
  if (envAdapter) {
    assert.is(first.name, 'webgpu', `PULLBACK_GPU_ADAPTER=${envAdapter} asks for WebGPU`);
    assert.is(warnings.length, 0);
  } else if (first.name === 'webgpu') {
    assert.is(first.software, false, 'auto never picks SwiftShader by itself');
    assert.is(warnings.length, 0);
    console.log('tensor/backends: auto picked a hardware adapter:', first.description);
  } else {
    assert.is(first.name, 'cpu');
    assert.is(second.name, 'cpu');
    assert.is(warnings.length, 1, `warnings: ${JSON.stringify(warnings)}`);
    assert.match(warnings[0]!, /no hardware WebGPU adapter was found, so tensors run on the CPU backend/);
    assert.match(warnings[0]!, /setBackend\('webgpu', \{ adapter: 'swiftshader' \}\)/);
  }
  assert.is(O.tensor([1]).backend.name, first.name);
});

test("setBackend: 'wasm' and 'cpu' name the CPU backend, 'reference' the f64 one; unknown names and missing adapters are Errors that say what to do", async () => {
  const wasm = await setBackend('wasm');
  assert.is(wasm.name, 'cpu');
  assert.is(O.tensor([1]).backend.name, 'cpu');
  const cpu = await setBackend('cpu');
  assert.equal(cpu, wasm, 'one CPU backend under both names');
  assert.is((await toBackend(withBackend(referenceTensorBackend, () => O.tensor([2])), 'wasm')).backend.name, 'cpu');
  assert.is((await setBackend('reference')).name, 'reference');
  assert.is(O.tensor([1]).backend, referenceTensorBackend);
  let message = '';
  try { await setBackend('gpu' as never); } catch (e) { message = (e as Error).message; }
  assert.is(message, "pullback setBackend: unknown backend 'gpu'; use one of 'webgpu', 'wasm', 'cpu', 'reference' ('wasm' and 'cpu' are the same CPU backend)");
  message = '';
  try { await init({ backend: 'tpu' as never }); } catch (e) { message = (e as Error).message; }
  assert.match(message, /^pullback init: unknown backend 'tpu'; use one of 'auto', 'webgpu', 'wasm', 'cpu', 'reference'/);
  message = '';
  let info;
  try { info = await setBackend('webgpu', { adapter: 'hardware' }); } catch (e) { message = (e as Error).message; }
  if (info) console.log('tensor/backends: a hardware adapter is present, so setBackend\'s no-adapter error could not be checked:', info.description);
  else {
    assert.match(message, /^pullback setBackend\('webgpu'\): No WebGPU adapter is available\. Install a GPU driver with Vulkan support/);
    assert.match(message, /apt-get install -y chromium/);
    assert.is(backend().name, 'reference', 'a failed setBackend leaves the current backend');
  }
});

test('useBackend switches synchronously', () => {
  useBackend(referenceTensorBackend);
  assert.is(backend().name, 'reference');
  assert.is(O.zeros([1]).backend, referenceTensorBackend);
});

test.run();
