// SPDX-License-Identifier: MIT
// Custom derivatives of tensor functions (/** @derivative f */), checkpoints nested and in loops, and the
// documented conventions at non-smooth points: relu'(0) = 0, max-pool ties to the first index, clip passes
// gradient only strictly inside its range, masked positions get zero. A suite that runs on any backend
// (rules.test.ts: reference, rules.cpu.test.ts, rules.webgpu.test.ts): the conventions are exact values on
// every backend; gradients are checked by finite differences in f64 on the reference and against the
// reference's gradients on the f32 backends.
import * as assert from 'uvu/assert';
import { grad, gradcheck, explain, tensor, randn, maxPool2d, sum, clip, where, gt, mul, cast, matmul, memoryStats, type Tensor } from '../../sdk/index.js';
import { referenceTensorBackend, toBackend, withBackend } from '../../sdk/tensor/backends.js';
import type { TensorBackend } from '../../sdk/tensor/engine.js';
import { load } from '../support/compile.js';
import { type BackendUnderTest, type Suite, F32_GRAD_TOL, close, runSuiteOn } from './helpers.js';

const m = await load('test/programs/tensor/rules.ts');

export function runRulesSuite(name: BackendUnderTest, file: string): Promise<void> {
  return runSuiteOn(name, file, 'tensor rules and conventions', rulesSuite);
}

function rulesSuite(be: TensorBackend, test: Suite): void {
  const R = (shape: number[], seed: number, s = 0.5) => randn(shape, seed).mul(s);
  const values = async (t: unknown) => Array.from(await (t as Tensor).data());
  /** The gradients of f with respect to argnums: finite differences in f64 on the reference, else the reference's. */
  const check = async (what: string, f: (...a: never[]) => Tensor, args: unknown[], argnums: number[]) => {
    if (be === referenceTensorBackend) {
      const r = gradcheck(f, args as never, { argnums, tolerance: 1e-6, eps: 1e-5 });
      assert.ok(r.ok, `${what}: max error ${r.maxError} at ${JSON.stringify(r.where)}`);
      return;
    }
    const refArgs = await Promise.all(args.map((a) => (a && typeof a === 'object' && 'backend' in a ? toBackend(a as Tensor, referenceTensorBackend) : a)));
    const want = withBackend(referenceTensorBackend, () => grad(f, argnums)(...(refArgs as never[]))) as unknown as Tensor[];
    const got = grad(f, argnums)(...(args as never[])) as unknown as Tensor[];
    for (let k = 0; k < argnums.length; k++) close(`${what} on ${be.name}: d/d argument ${argnums[k]}`, await got[k]!.data(), await want[k]!.data(), ...F32_GRAD_TOL);
  };

  test('a custom derivative of a tensor function is used, and is correct for softplus', async () => {
    assert.match(String(explain(m.softplus)), /custom \/\*\* @derivative \*\/ rule/);
    await check('useRules', m.useRules, [R([3, 2], 1), R([4, 3], 2)], [0, 1]);
    // The straight-through rule says 3 where the ops would say 1.
    assert.equal(await values(grad(m.useStraight)(tensor([1, -2, 0.5], [3]))), [3, 3, 3]);
  });

  test('a rule may return the cotangent itself, and what a rule makes is freed', async () => {
    const x = tensor([1, -2, 0.5], [3]);
    // d/dx sum(passThrough(x) * x) with passThrough' := 1: x (through the rule) + x.
    assert.equal(await values(grad(m.usePassThrough)(x)), [2, -4, 1]);
    const w = R([3, 2], 1), xs = R([4, 3], 2);
    for (const t of [grad(m.useRules)(w, xs)] as Tensor[]) t.dispose();
    const before = memoryStats().liveTensors;
    for (let i = 0; i < 5; i++) (grad(m.useRules)(w, xs) as Tensor).dispose();
    assert.is(memoryStats().liveTensors, before);
  });

  test('checkpoints nested inside checkpointed functions and inside loops give the same gradients', async () => {
    const w = R([4, 4], 3), x = R([2, 4], 4);
    const plain = await values(grad(m.nested)(w, x, false));
    const ck = await values(grad(m.nested)(w, x, true));
    // Recomputation runs the same kernels on the same values: equal on every backend.
    plain.forEach((v, i) => assert.ok(Math.abs(v - ck[i]!) <= 1e-12 * Math.max(1, Math.abs(v)), `dw[${i}]: ${v} vs ${ck[i]}`));
    await check('nested', m.nested, [w, x, true], [0, 1]);
  });

  test("relu'(0) = 0", async () => {
    assert.equal(await values(grad(m.sumRelu)(tensor([0, 1, -1, 0], [4]))), [0, 1, 0, 0]);
  });

  test('max-pool ties send the gradient to the first index of the window', async () => {
    const x = tensor([1, 1, 2, 2, 1, 1, 2, 2, 0, 5, 5, 5, 0, 5, 5, 5], [1, 1, 4, 4]);
    const g = grad((t: Tensor) => sum(maxPool2d(t, { kernel: 2 })))(x);
    assert.equal(await values(g), [1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
  });

  test('clip passes gradient only strictly inside its range; masked positions get zero', async () => {
    const x = tensor([-2, -1, 0, 1, 2], [5]);
    assert.equal(await values(grad((t: Tensor) => sum(clip(t, -1, 1)))(x)), [0, 0, 1, 0, 0]);
    assert.equal(await values(grad((t: Tensor) => sum(where(gt(t, 0), mul(t, 2), 0)))(x)), [0, 0, 0, 2, 2]);
  });

  test('an f16 value read twice: its cotangents are summed in f32 and stored as f16', async () => {
    const x = tensor([0.5, -1.25, 3], [3]);
    const g = grad((t: Tensor) => { const h = cast(t, 'f16'); return sum(mul(cast(h, 'f32'), cast(h, 'f32'))); })(x);
    assert.equal(await values(g), [1, -2.5, 6]);
  });

  test('matmul reads f16 operands: values and gradients as from the same values in f32; cotangents in f16', async () => {
    // Values exact in f16 (multiples of 1/8 under 4): the products and sums are exact in f32 too.
    const xs = Array.from({ length: 12 }, (_, i) => ((i * 5) % 13 - 6) / 8), ws = Array.from({ length: 20 }, (_, i) => ((i * 7) % 11 - 5) / 4);
    const x = tensor(xs, [3, 4]), w = tensor(ws, [4, 5]), w16 = cast(w, 'f16');
    const y16 = matmul(cast(x, 'f16'), w16, { activation: 'relu' });
    assert.is(y16.dtype, 'f32');
    assert.equal(await values(y16), await values(matmul(x, w, { activation: 'relu' })));
    const c = tensor(Array.from({ length: 15 }, (_, i) => (i % 7) / 8 - 0.3), [3, 5]);
    const f = (a: Tensor, b: Tensor) => sum(mul(matmul(cast(a, 'f16'), b, { activation: 'relu' }), c));
    const f32 = (a: Tensor, b: Tensor) => sum(mul(matmul(a, b, { activation: 'relu' }), c));
    const [gx, gw] = grad(f, [0, 1])(x, w16) as Tensor[];
    const [gx32, gw32] = grad(f32, [0, 1])(x, w) as Tensor[];
    assert.is(gw!.dtype, 'f16');
    close('the gradient of x through an f16 copy', await values(gx!), await values(gx32!), 2e-3, 1e-3);
    close('the gradient of an f16 weight, rounded to f16', await values(gw!), await values(gw32!), 2e-3, 1e-3);
  });
}
