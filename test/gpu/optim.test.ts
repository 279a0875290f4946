// SPDX-License-Identifier: MIT
// Fused optimizer steps and gradient statistics on WebGPU against float64 implementations of PyTorch's formulas:
// three steps with a changing learning rate, sizes that cover one element, a partial workgroup and many
// workgroups, several tensors packed into each dispatch, and the dispatch and pipeline counts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { GpuRuntime, Tensor } from '../../runtime-gpu/runtime.js';
import { adamStep, nonFinite, sgdStep, sumSquares } from '../../runtime-gpu/optim.js';
import { Rng, runtime } from '../support/gpu.js';
import { type AdamCase, LRS, SIZES, type SgdCase, TorchAdam, TorchSgd, assertNear, randf } from '../support/optim.js';

let rt: GpuRuntime | null = null;
let why = '';
try { rt = await runtime(); } catch (e) { why = (e as Error).message; }

const up = (r: GpuRuntime, a: ArrayLike<number>): Tensor => r.fromArray(a, [a.length]);
const zeros = (r: GpuRuntime, n: number): Tensor => r.fill([n], 0);
/** Tensors per dispatch for b storage buffers per tensor plus one more (as runtime-gpu/optim.ts packs them). */
const packOf = (r: GpuRuntime, b: number) => Math.max(1, Math.min(16, Math.floor((r.limits.maxStorageBuffersPerShaderStage - 1) / b)));

if (!rt) {
  console.log(`SKIPPED test/gpu/optim: no WebGPU adapter (${why})`);
  test.skip('fused optimizer kernels on WebGPU (no adapter: see the message above)', () => {});
} else {
  const R = rt;
  /**
   * The update kernels run one element per invocation (real GPUs) or 16 (SwiftShader: rowPerInvocation): each
   * update test runs under both.
   */
  const styles = (name: string, fn: () => Promise<void>) => {
    for (const rowPerInvocation of [true, false]) {
      test(`${name} (rowPerInvocation = ${rowPerInvocation})`, async () => {
        const saved = R.rowPerInvocation;
        R.rowPerInvocation = rowPerInvocation;
        try { await fn(); } finally { R.rowPerInvocation = saved; }
      });
    }
  };

  styles('sgdStep: momentum, nesterov, weight decay and gradScale over 3 steps, packed dispatches', async () => {
    const cases: SgdCase[] = [
      { momentum: 0, nesterov: false, weightDecay: 0, gradScale: 1 },
      { momentum: 0.9, nesterov: false, weightDecay: 0, gradScale: 1 },
      { momentum: 0.9, nesterov: true, weightDecay: 0.01, gradScale: 1 },
      { momentum: 0, nesterov: false, weightDecay: 0.1, gradScale: 0.5 },
      { momentum: 0.8, nesterov: true, weightDecay: 0, gradScale: 1 / 1024 },
    ];
    const rng = new Rng(21);
    for (const h of cases) {
      const what = `sgd ${JSON.stringify(h)}`;
      const P = SIZES.map((n) => randf(rng, n));
      const oracle = new TorchSgd(P.map((p) => Float64Array.from(p)), h);
      const params = P.map((p) => up(R, p));
      const vel = h.momentum ? SIZES.map((n) => zeros(R, n)) : null;
      const compiled: number[] = [];
      for (const lr of LRS) {
        const G = SIZES.map((n) => randf(rng, n, 1 / h.gradScale));
        const grads = G.map((g) => up(R, g));
        const before = R.counters.dispatches;
        sgdStep(R, params, grads, vel, { lr, ...h });
        assert.is(R.counters.dispatches - before, Math.ceil(SIZES.length / packOf(R, vel ? 3 : 2)), `${what}: dispatches per step`);
        compiled.push(R.counters.pipelinesCompiled);
        oracle.step(lr, G);
        grads.forEach((g) => g.dispose());
      }
      assert.is(compiled[2], compiled[0], `${what}: a new learning rate reuses the pipelines`);
      for (let j = 0; j < SIZES.length; j++) {
        assertNear(`${what} n=${SIZES[j]} param`, await params[j]!.data(), oracle.params[j]!, 1e-5, 1e-6);
        if (vel) assertNear(`${what} n=${SIZES[j]} velocity`, await vel[j]!.data(), oracle.velocity(j), 1e-5, 1e-6);
      }
      [...params, ...(vel ?? [])].forEach((t) => t.dispose());
    }
  });

  styles('adamStep: Adam (L2) and AdamW (decoupled), bias correction over 3 steps, gradScale', async () => {
    const base = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    const cases: AdamCase[] = [
      { ...base, weightDecay: 0, decoupled: false, gradScale: 1 },
      { ...base, weightDecay: 0.02, decoupled: false, gradScale: 1 },
      { ...base, weightDecay: 0.05, decoupled: true, gradScale: 1 },
      { beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.01, decoupled: true, gradScale: 1 / 256 },
    ];
    const rng = new Rng(22);
    for (const h of cases) {
      const what = `${h.decoupled ? 'adamw' : 'adam'} ${JSON.stringify(h)}`;
      const P = SIZES.map((n) => randf(rng, n));
      const oracle = new TorchAdam(P.map((p) => Float64Array.from(p)), h);
      const params = P.map((p) => up(R, p));
      const m = SIZES.map((n) => zeros(R, n)), v = SIZES.map((n) => zeros(R, n));
      for (const lr of LRS) {
        const G = SIZES.map((n) => randf(rng, n, 1 / h.gradScale));
        const grads = G.map((g) => up(R, g));
        const before = R.counters.dispatches;
        const step = oracle.step(lr, G);
        adamStep(R, params, grads, m, v, { lr, step, ...h });
        assert.is(R.counters.dispatches - before, Math.ceil(SIZES.length / packOf(R, 4)), `${what}: dispatches per step`);
        grads.forEach((g) => g.dispose());
      }
      for (let j = 0; j < SIZES.length; j++) {
        assertNear(`${what} n=${SIZES[j]} param`, await params[j]!.data(), oracle.params[j]!, 1e-5, 2e-6);
        assertNear(`${what} n=${SIZES[j]} m`, await m[j]!.data(), oracle.m[j]!, 1e-5, 1e-6);
        assertNear(`${what} n=${SIZES[j]} v`, await v[j]!.data(), oracle.v[j]!, 1e-5, 1e-8);
      }
      [...params, ...m, ...v].forEach((t) => t.dispose());
    }
  });

  styles('many small tensors: every one is updated once, whatever dispatch packs it', async () => {
    const rng = new Rng(23);
    const sizes = Array.from({ length: 23 }, (_, i) => 1 + ((i * 37) % 300));
    const P = sizes.map((n) => randf(rng, n)), G = sizes.map((n) => randf(rng, n));
    const h: AdamCase = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, decoupled: true, gradScale: 1 };
    const oracle = new TorchAdam(P.map((p) => Float64Array.from(p)), h);
    const params = P.map((p) => up(R, p)), grads = G.map((g) => up(R, g));
    const m = sizes.map((n) => zeros(R, n)), v = sizes.map((n) => zeros(R, n));
    const before = R.counters.dispatches;
    adamStep(R, params, grads, m, v, { lr: 0.01, step: oracle.step(0.01, G), ...h });
    assert.is(R.counters.dispatches - before, Math.ceil(sizes.length / packOf(R, 4)));
    for (let j = 0; j < sizes.length; j++) assertNear(`tensor ${j} (n=${sizes[j]})`, await params[j]!.data(), oracle.params[j]!, 1e-5, 2e-6);
    [...params, ...grads, ...m, ...v].forEach((t) => t.dispose());
  });

  test('sumSquares: one scalar from workgroup trees over many tensors', async () => {
    const rng = new Rng(24);
    const check = async (what: string, arrays: Float64Array[]) => {
      const ts = arrays.map((a) => up(R, a));
      const s = sumSquares(R, ts);
      assert.equal(s.shape, [], `${what}: a scalar`);
      const want = arrays.reduce((acc, a) => acc + a.reduce((x, y) => x + y * y, 0), 0);
      assertNear(what, [await s.item()], [want], 2e-6, 0);
      [s, ...ts].forEach((t) => t.dispose());
    };
    await check('sizes 1, 5, 67, 70000', SIZES.map((n) => randf(rng, n)));
    await check('one element (one partial: no second dispatch)', [Float64Array.of(-3)]);
    await check('30 tensors (several packed dispatches, partials at offsets)', Array.from({ length: 30 }, (_, i) => randf(rng, 3 + i * 101)));
    await check('1.2M elements (more than 512 workgroups of 8 per thread)', [randf(rng, 1_200_000, 0.01)]);
    await check('with an empty tensor', [new Float64Array(0), Float64Array.of(1, 2)]);
    const none = sumSquares(R, []);
    assert.is(await none.item(), 0, 'no tensors: 0');
    none.dispose();
    const before = R.counters.dispatches;
    const ts = Array.from({ length: 30 }, () => up(R, [1]));
    sumSquares(R, ts).dispose();
    assert.is(R.counters.dispatches - before, Math.ceil(30 / packOf(R, 1)) + 1, 'dispatches: the packed ones and one fold');
    ts.forEach((t) => t.dispose());
  });

  test('nonFinite: 1 for inf, -inf or NaN anywhere, 0 otherwise (huge and subnormal values included)', async () => {
    const rng = new Rng(25);
    const flag = async (arrays: Float64Array[]) => {
      const ts = arrays.map((a) => up(R, a));
      const f = nonFinite(R, ts);
      const v = await f.item();
      [f, ...ts].forEach((t) => t.dispose());
      return v;
    };
    const clean = () => SIZES.map((n) => randf(rng, n));
    assert.is(await flag(clean()), 0, 'finite values');
    assert.is(await flag([Float64Array.of(3.4e38, -3.4e38, 1e-45, -0, 0)]), 0, 'largest finite, subnormal and signed zeros');
    for (const [bad, j, i] of [[Infinity, 3, 69999], [-Infinity, 2, 0], [NaN, 1, 4], [NaN, 0, 0]] as const) {
      const a = clean();
      a[j]![i] = bad;
      assert.is(await flag(a), 1, `${bad} in tensor ${j} at ${i}`);
    }
    const many = Array.from({ length: 25 }, (_, i) => randf(rng, 10 + i));
    many[24]![33] = Infinity;
    assert.is(await flag(many), 1, 'inf in the last of 25 tensors (last packed dispatch)');
    const f = nonFinite(R, []);
    assert.is(await f.item(), 0);
    f.dispose();
  });

  test('bad arguments: the message names the op and the tensors', () => {
    const p = up(R, [1, 2, 3]), g = up(R, [1, 2, 3]), g2 = up(R, [1, 2]), h = R.fill([3], 0, 'f16');
    assert.throws(() => sgdStep(R, [p], [g2], null, { lr: 0.1 }), /sgdStep: grads\[0\] is f32\[2\] but params\[0\] is f32\[3\]/);
    assert.throws(() => sgdStep(R, [p], [g, g], null, { lr: 0.1 }), /sgdStep: 1 params but 2 grads/);
    assert.throws(() => sgdStep(R, [p], [g], null, { lr: 0.1, momentum: 0.9 }), /sgdStep: momentum 0.9 needs velocities/);
    assert.throws(() => sgdStep(R, [p], [g], null, { lr: 0.1, nesterov: true }), /sgdStep: nesterov needs a momentum > 0/);
    assert.throws(() => sgdStep(R, [p], [g], null, { lr: -1 }), /sgdStep: lr must be a finite number ≥ 0, got -1/);
    assert.throws(() => sgdStep(R, [p, p], [g, g], null, { lr: 0.1 }), /sgdStep: params\[0\] and params\[1\] share one buffer/);
    assert.throws(() => sgdStep(R, [p], [p.reshape([3, 1]).reshape([3])], null, { lr: 0.1 }), /sgdStep: grads\[0\] shares its buffer with params\[0\]/);
    assert.throws(() => sgdStep(R, [h], [g], null, { lr: 0.1 }), /sgdStep: params\[0\] is f16\[3\]; optimizer steps update f32 tensors/);
    assert.throws(() => adamStep(R, [p], [g], [g], [g], { lr: 0.1, step: 0 }), /adamStep: step must be an integer ≥ 1/);
    assert.throws(() => adamStep(R, [p], [g], [g], [g], { lr: 0.1, step: 1, beta2: 1 }), /adamStep: beta2 must be in \[0, 1\), got 1/);
    assert.throws(() => adamStep(R, [p], [g], [g], [up(R, [0, 0, 0])], { lr: 0.1, step: 1 }), /adamStep: grads\[0\] shares its buffer with m\[0\]/);
    assert.throws(() => nonFinite(R, [h]), /nonFinite: tensors\[0\] is f16\[3\]; only f32 tensors are supported/);
    g.dispose();
    assert.throws(() => sgdStep(R, [p], [g], null, { lr: 0.1 }), /sgdStep: tensor f32\[3\] was used after dispose\(\)/);
    [p, g2, h].forEach((t) => t.dispose());
  });
}

test.run();
