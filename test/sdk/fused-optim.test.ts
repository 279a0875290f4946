// SPDX-License-Identifier: MIT
// sdk/optim/fused.ts over engine Tensors on every backend: the reference (f64), the CPU backend's Wasm kernels
// (the SIMD and the scalar build) and WebGPU (SwiftShader; skipped with a message when there is no adapter),
// each against float64 implementations of PyTorch's SGD and Adam over 3 steps. Parameters keep their identity.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { referenceBackend, webgpuBackend } from '../../runtime-gpu/backend.js';
import { host } from '../../runtime-gpu/host.js';
import { Rng } from '../../runtime-gpu/rng.js';
import { GpuRuntime } from '../../runtime-gpu/runtime.js';
import { type CpuTensor, wasmBackend } from '../../runtime-wasm/backend.js';
import { loadCpuKernels } from '../../runtime-wasm/kernels.js';
import { adamUpdate, globalNormSq, hasNonFinite, sgdUpdate } from '../../sdk/optim/fused.js';
import { type Tensor, type TensorBackend, upload } from '../../sdk/tensor/engine.js';
import { type AdamCase, LRS, SIZES, type SgdCase, TorchAdam, TorchSgd, assertNear, randf } from '../support/optim.js';

// ---- tiny local adapters (the SDK's own live in sdk/tensor/backends.ts) ----
const reference: TensorBackend = {
  name: 'reference', kernels: referenceBackend, description: 'reference',
  upload: (data, shape, dtype) => host(data, shape, dtype),
  download: async (v) => Float64Array.from(v.data),
  free: () => {},
};
async function cpu(variant: 'simd' | 'scalar'): Promise<TensorBackend<CpuTensor>> {
  const wb = await wasmBackend({ kernels: await loadCpuKernels({ variant }) });
  return {
    name: 'cpu', kernels: wb, description: `cpu (${variant})`,
    upload: (data, shape, dtype) => wb.upload(host(data, shape, dtype)),
    download: async (v) => wb.cpu.f32(v.buf).slice(),
    free: (v) => v.dispose(),
  };
}
let gpu: TensorBackend | null = null;
let why = '';
try {
  const rt = await GpuRuntime.create({ adapter: (process.env.PULLBACK_GPU_ADAPTER as 'hardware' | undefined) ?? 'swiftshader' });
  gpu = {
    name: 'webgpu', kernels: webgpuBackend(rt), description: rt.adapter.description,
    upload: (data, shape, dtype) => rt.fromArray(data, shape, dtype),
    download: (v) => rt.read(v),
    free: (v) => v.dispose(),
  };
} catch (e) { why = (e as Error).message; }

const backends: TensorBackend[] = [reference, await cpu('simd'), await cpu('scalar'), ...(gpu ? [gpu] : [])];
if (!gpu) {
  console.log(`SKIPPED the webgpu backend in test/sdk/fused-optim: no WebGPU adapter (${why})`);
  test.skip('fused optimizer steps on the webgpu backend (no adapter: see the message above)', () => {});
}

const t = (be: TensorBackend, a: ArrayLike<number>): Tensor => upload(a, [a.length], 'f32', be);
const zeros = (be: TensorBackend, n: number): Tensor => upload(new Float64Array(n), [n], 'f32', be);
/** f64 on the reference backend, f32 elsewhere. */
const tol = (be: TensorBackend) => (be.name === 'reference' ? { rtol: 1e-12, atol: 1e-14 } : { rtol: 1e-5, atol: 2e-6 });

for (const be of backends) {
  const name = be.description;

  test(`${name}: sgdUpdate (momentum, nesterov, weight decay, gradScale), 3 steps, in place`, async () => {
    const cases: SgdCase[] = [
      { momentum: 0, nesterov: false, weightDecay: 0.1, gradScale: 1 },
      { momentum: 0.9, nesterov: false, weightDecay: 0, gradScale: 1 },
      { momentum: 0.9, nesterov: true, weightDecay: 0.01, gradScale: 1 / 512 },
    ];
    const rng = new Rng(31);
    const { rtol, atol } = tol(be);
    for (const h of cases) {
      const what = `sgd ${JSON.stringify(h)}`;
      const P = SIZES.map((n) => randf(rng, n));
      const oracle = new TorchSgd(P.map((p) => Float64Array.from(p)), h);
      const params = P.map((p) => t(be, p));
      const values = params.map((p) => p.value());
      const vel = h.momentum ? SIZES.map((n) => zeros(be, n)) : null;
      for (const lr of LRS) {
        const G = SIZES.map((n) => randf(rng, n, 1 / h.gradScale));
        const grads = G.map((g) => t(be, g));
        sgdUpdate(params, grads, vel, { lr, ...h });
        oracle.step(lr, G);
        grads.forEach((g) => g.dispose());
      }
      for (let j = 0; j < SIZES.length; j++) {
        assert.ok(params[j]!.value() === values[j], `${what}: params[${j}] keeps its storage`);
        assertNear(`${what} n=${SIZES[j]} param`, await params[j]!.data(), oracle.params[j]!, rtol, atol);
        if (vel) assertNear(`${what} n=${SIZES[j]} velocity`, await vel[j]!.data(), oracle.velocity(j), rtol, atol);
      }
      [...params, ...(vel ?? [])].forEach((x) => x.dispose());
    }
  });

  test(`${name}: adamUpdate, Adam (L2) and AdamW (decoupled) with gradScale, 3 steps`, async () => {
    const cases: AdamCase[] = [
      { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.02, decoupled: false, gradScale: 1 },
      { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, decoupled: true, gradScale: 1 / 128 },
    ];
    const rng = new Rng(32);
    const { rtol, atol } = tol(be);
    for (const h of cases) {
      const what = `${h.decoupled ? 'adamw' : 'adam'} ${JSON.stringify(h)}`;
      const P = SIZES.map((n) => randf(rng, n));
      const oracle = new TorchAdam(P.map((p) => Float64Array.from(p)), h);
      const params = P.map((p) => t(be, p));
      const m = SIZES.map((n) => zeros(be, n)), v = SIZES.map((n) => zeros(be, n));
      for (const lr of LRS) {
        const G = SIZES.map((n) => randf(rng, n, 1 / h.gradScale));
        const grads = G.map((g) => t(be, g));
        adamUpdate(params, grads, m, v, { lr, step: oracle.step(lr, G), ...h });
        grads.forEach((g) => g.dispose());
      }
      for (let j = 0; j < SIZES.length; j++) {
        assertNear(`${what} n=${SIZES[j]} param`, await params[j]!.data(), oracle.params[j]!, rtol, atol);
        assertNear(`${what} n=${SIZES[j]} m`, await m[j]!.data(), oracle.m[j]!, rtol, atol);
        assertNear(`${what} n=${SIZES[j]} v`, await v[j]!.data(), oracle.v[j]!, rtol, be.name === 'reference' ? atol : 1e-8);
      }
      [...params, ...m, ...v].forEach((x) => x.dispose());
    }
  });

  test(`${name}: globalNormSq and hasNonFinite (inf, -inf, NaN, none)`, async () => {
    const rng = new Rng(33);
    const arrays = SIZES.map((n) => randf(rng, n));
    const ts = arrays.map((a) => t(be, a));
    const want = arrays.reduce((s, a) => s + a.reduce((x, y) => x + y * y, 0), 0);
    assertNear('globalNormSq', [await globalNormSq(ts)], [want], be.name === 'webgpu' ? 2e-6 : 1e-12, 0);
    assert.is(await globalNormSq([]), 0);
    assert.is(await hasNonFinite(ts), false, 'finite values');
    assert.is(await hasNonFinite([t(be, [3.4e38, -3.4e38, 1e-45, -0])]), false, 'huge, subnormal, -0');
    assert.is(await hasNonFinite([]), false);
    for (const [bad, j, i] of [[Infinity, 3, 69999], [-Infinity, 2, 66], [NaN, 1, 0]] as const) {
      const a = arrays.map((x) => Float64Array.from(x));
      a[j]![i] = bad;
      const us = a.map((x) => t(be, x));
      assert.is(await hasNonFinite(us), true, `${bad} in tensor ${j} at ${i}`);
      us.forEach((x) => x.dispose());
    }
    ts.forEach((x) => x.dispose());
  });

  test(`${name}: bad arguments name the op and the tensors`, () => {
    const p = t(be, [1, 2, 3]), g = t(be, [1, 2, 3]), g2 = t(be, [1, 2]);
    assert.throws(() => sgdUpdate([p], [g2], null, { lr: 0.1 }), /sgdUpdate: grads\[0\] is f32\[2\] but params\[0\] is f32\[3\]/);
    assert.throws(() => sgdUpdate([p], [g], null, { lr: 0.1, momentum: 0.5 }), /sgdUpdate: momentum 0.5 needs velocities/);
    assert.throws(() => sgdUpdate([p], [g], null, { lr: 0.1, nesterov: true }), /sgdUpdate: nesterov needs a momentum > 0/);
    assert.throws(() => sgdUpdate([p, p], [g, g], null, { lr: 0.1 }), /params\[0\] and params\[1\] share one buffer/);
    assert.throws(() => adamUpdate([p], [g], [g2], [g2], { lr: 0.1, step: 1 }), /adamUpdate: m\[0\] is f32\[2\] but params\[0\] is f32\[3\]/);
    assert.throws(() => adamUpdate([p], [g], [p], [g2], { lr: 0.1, step: 1.5 }), /adamUpdate: step must be an integer ≥ 1/);
    if (be !== reference) {
      assert.throws(() => sgdUpdate([p], [t(reference, [1, 2, 3])], null, { lr: 0.1 }),
        /sgdUpdate: tensors live on different backends \((cpu|webgpu) and reference\)/);
    }
    [p, g, g2].forEach((x) => x.dispose());
  });
}

test.run();
