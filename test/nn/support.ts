// SPDX-License-Identifier: MIT
// Shared by the nn tests: seeded tensors, gradient checks in f64 through the compiled test programs, and
// comparisons. On the reference backend values are stored f32-rounded (numbers lifted into ops too, such as
// 0.7 in mul(x, 0.7)) and computed in f64: a formula written out in f64 agrees to about 1e-7 relative.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuTensorBackend, grad, gradcheck, randn, tensor, tensorsIn, withBackend, type Tensor } from '../../sdk/index.js';

/** Standard normal values times `scale` on the current backend (the tests make it the reference: f64 arithmetic). */
export const R = (shape: number[], seed: number, scale = 0.5): Tensor => randn(shape, seed).mul(scale);
/** i32 labels or token ids. */
export const ints = (vals: number[], shape: number[] = [vals.length]): Tensor => tensor(vals, shape, 'i32');
/** The values of a tensor as a plain array. */
export const values = async (t: Tensor): Promise<number[]> => Array.from(await t.data());

/**
 * A test that f's generated gradient in argnums matches central differences in f64, and that the CPU backend
 * (the Wasm SIMD kernels in f32, which users get without a GPU) gives the reference backend's gradient on the
 * same inputs (the seeded generators draw on the host, so `args` makes the same tensors on either).
 */
export function checkGrad(name: string, f: any, args: () => unknown[], argnums: number | number[] = 0, tolerance = 1e-6): void {
  test(`${name}: gradient matches finite differences (f64), and the CPU backend's`, async () => {
    const r = gradcheck(f, args() as never, { argnums, tolerance, eps: 1e-5 });
    assert.ok(r.ok, `${name}: max error ${r.maxError} at ${JSON.stringify(r.where)} (analytic ${r.analytic}, numeric ${r.numeric})`);
    const an = typeof argnums === 'number' ? [argnums] : argnums;
    const want = tensorsIn(grad(f, an)(...args()));
    const cpu = await cpuTensorBackend();
    const got = withBackend(cpu, () => tensorsIn(grad(f, an)(...args())));
    assert.is(got.length, want.length, `${name}: gradient leaves`);
    const [g, w] = [await Promise.all(got.map(values)), await Promise.all(want.map(values))];
    // f32 against f64, relative to the gradient's largest magnitude: a leaf whose gradient is zero in exact
    // arithmetic (a key bias under softmax) gets the rounding of the terms that cancel in it.
    const scale = Math.max(1e-3, ...w.flat().map(Math.abs));
    for (let i = 0; i < want.length; i++) {
      assert.is(got[i]!.backend.name, 'cpu');
      assert.is(g[i]!.length, w[i]!.length);
      w[i]!.forEach((x, j) => assert.ok(Math.abs(g[i]![j]! - x) <= 1e-4 * scale,
        `${name}: gradient leaf ${i} on the CPU backend: element ${j} is ${g[i]![j]}, the reference ${x} (scale ${scale})`));
    }
  });
}

/** |got - want| <= atol + rtol·|want| elementwise, naming the worst element. */
export function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-9, atol = 1e-9): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    assert.ok(Math.abs(g - w) <= atol + rtol * Math.abs(w), `${what}: element ${i} is ${g}, expected ${w}`);
  }
}
