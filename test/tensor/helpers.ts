// SPDX-License-Identifier: MIT
// Shared by the tensor API tests: the backend a test file runs on (reference, cpu or webgpu), comparisons that name
// the worst element, reverse mode through the engine's session (the same path grad() takes for an untransformed
// function), and gradient checks: central finite differences in f64 on the reference backend, and on the f32
// backends the same gradients against the reference's.
import { existsSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SWIFTSHADER_ICD } from '../../runtime-gpu/device.js';
import { Session, type Tensor, type TensorBackend, currentBackend, within, type RecordedOp, tensorMemoryStats } from '../../sdk/tensor/engine.js';
import { referenceTensorBackend, setBackend, toBackend, withBackend } from '../../sdk/tensor/backends.js';
import { onesLike, tensor } from '../../sdk/tensor/ops.js';

/** PULLBACK_GPU_ADAPTER, when set: the WebGPU adapter the tests run on instead of SwiftShader. */
export const envAdapter = process.env.PULLBACK_GPU_ADAPTER as 'hardware' | 'swiftshader' | undefined;
/** Why WebGPU tests cannot run here, or null when they can (on SwiftShader, or the adapter PULLBACK_GPU_ADAPTER names). */
export const noGpuReason: string | null = envAdapter !== undefined || existsSync(SWIFTSHADER_ICD)
  ? null : `SwiftShader is not installed (${SWIFTSHADER_ICD}; apt-get install -y chromium, as .ci/run does)`;

export type BackendUnderTest = 'reference' | 'cpu' | 'webgpu';

/**
 * Makes `name` the current backend (through setBackend; WebGPU on SwiftShader unless PULLBACK_GPU_ADAPTER says
 * otherwise) and returns it, or returns null and prints why when WebGPU cannot run here.
 */
export async function backendUnderTest(name: BackendUnderTest, file: string): Promise<TensorBackend | null> {
  if (name === 'webgpu' && noGpuReason) {
    console.log(`${file}: the webgpu run is skipped: ${noGpuReason}`);
    return null;
  }
  await setBackend(name, name === 'webgpu' ? { adapter: envAdapter ?? 'swiftshader' } : {});
  return currentBackend();
}

/** A uvu suite, as the shared suites take it. */
export type Suite = ReturnType<typeof suite>;

/**
 * Runs a suite of tensor tests on the backend `name` (made current, see backendUnderTest) from the test file
 * `file`: `body` adds its tests to the suite `<title> on <name>`, which then runs. Where WebGPU cannot run here,
 * the suite holds one skipped test that says why.
 */
export async function runSuiteOn(name: BackendUnderTest, file: string, title: string, body: (be: TensorBackend, test: Suite) => void): Promise<void> {
  const be = await backendUnderTest(name, file);
  const test = suite(`${title} on ${name}`);
  if (be) body(be, test);
  else test.skip(`${title} on ${name} (skipped: see the message above)`, () => {});
  test.run();
}

/** rtol and atol of an f32 backend against values computed in f64 (by hand, or by the reference backend). */
export const F32_TOL: readonly [number, number] = [1e-5, 1e-6];
/** The same for gradients, which sum over more terms (matmul, conv2d, attention, layerNorm). */
export const F32_GRAD_TOL: readonly [number, number] = [1e-4, 1e-5];

/** |got - want| <= atol + rtol |want| elementwise (NaN matches NaN), naming the worst element. */
export function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol = 1e-6, atol = 1e-6): void {
  assert.is(got.length, want.length, `${what}: length`);
  let worst = -1, excess = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (g === w || (Number.isNaN(g) && Number.isNaN(w))) continue;
    const e = Math.abs(g - w) - (atol + rtol * Math.abs(w));
    if (!(e <= 0) && (worst < 0 || !(e <= excess))) { worst = i; excess = e; }
  }
  if (worst >= 0) assert.unreachable(`${what}: element ${worst} is ${got[worst]}, expected ${want[worst]} (rtol ${rtol}, atol ${atol})`);
}

/** Values and shape of t. */
export async function read(t: Tensor): Promise<{ shape: number[]; values: number[] }> {
  return { shape: [...t.shape], values: Array.from(await t.data()) };
}

/** Asserts t's shape and values (close to `want`). */
export async function expectTensor(what: string, t: Tensor, shape: readonly number[], want: readonly number[], rtol = 1e-6, atol = 1e-6): Promise<void> {
  assert.equal([...t.shape], [...shape], `${what}: shape`);
  close(what, await t.data(), want, rtol, atol);
}

/**
 * Runs f on xs in a session that differentiates xs, then the backward pass from `seed` (ones by default).
 * Returns f's value and one gradient per input (undefined where none reached it).
 */
export function vjpOf(f: (...xs: Tensor[]) => Tensor, xs: readonly Tensor[], seed?: Tensor): { y: Tensor; grads: (Tensor | undefined)[] } {
  const s = new Session();
  const nodes: RecordedOp[] = [];
  for (const x of xs) s.watch(x);
  const y = within(s, nodes, () => f(...xs));
  s.accumulate(y, seed ?? onesLike(y));
  s.backward(nodes);
  const grads = xs.map((x) => s.take(x));
  s.end();
  return { y, grads };
}

/**
 * Checks the gradient of sum(f(xs) * seed) against central differences, on the reference backend (f64).
 * `h` is the step; the inputs must keep f smooth within it.
 */
export async function gradcheck(what: string, f: (...xs: Tensor[]) => Tensor, xs: readonly Tensor[], h = 1e-6, tol = 1e-6): Promise<void> {
  const { y, grads } = vjpOf(f, xs);
  const base = await Promise.all(xs.map((x) => x.data()));
  for (let k = 0; k < xs.length; k++) {
    const x = xs[k]!;
    if (x.dtype === 'i32') continue;
    const g = grads[k] ? Array.from(await grads[k]!.data()) : new Array<number>(x.size).fill(0);
    const fd: number[] = [];
    for (let i = 0; i < x.size; i++) {
      const at = (d: number): Promise<number> => {
        const v = Float64Array.from(base[k]!);
        v[i]! += d;
        const args = xs.map((t, j) => (j === k ? tensor(v, t.shape, t.dtype) : t));
        return f(...args).data().then((a) => Array.from(a).reduce((s, e) => s + e, 0));
      };
      fd.push(((await at(h)) - (await at(-h))) / (2 * h));
    }
    close(`${what}: d/d input ${k}`, g, fd, tol, tol);
    grads[k]?.dispose();
  }
  y.dispose();
}

/**
 * The gradient check for the backend xs live on. On the reference backend: `gradcheck` (central differences in f64).
 * On an f32 backend, where differences of f32 values are too coarse: f's value and gradients against the reference
 * backend's for the same inputs (whose own run is the finite-difference check), within F32_GRAD_TOL.
 */
export async function gradcheckOn(what: string, f: (...xs: Tensor[]) => Tensor, xs: readonly Tensor[], h = 1e-6, tol = 1e-6): Promise<void> {
  const be = xs[0]!.backend;
  if (be === referenceTensorBackend) return gradcheck(what, f, xs, h, tol);
  const refXs = await Promise.all(xs.map((x) => toBackend(x, referenceTensorBackend)));
  const want = withBackend(referenceTensorBackend, () => vjpOf(f, refXs));
  const got = withBackend(be, () => vjpOf(f, xs));
  const [rtol, atol] = F32_GRAD_TOL;
  close(`${what} on ${be.name}: value`, await got.y.data(), await want.y.data(), rtol, atol);
  for (let k = 0; k < xs.length; k++) {
    if (xs[k]!.dtype === 'i32') continue;
    const g = got.grads[k], w = want.grads[k];
    assert.is(g === undefined, w === undefined, `${what} on ${be.name}: a gradient reaches input ${k} on one backend only`);
    if (g && w) close(`${what} on ${be.name}: d/d input ${k}`, await g.data(), await w.data(), rtol, atol);
    g?.dispose(); w?.dispose();
  }
  got.y.dispose(); want.y.dispose();
  for (const x of refXs) x.dispose();
}

/** Live tensors now; compare before and after a block to find leaks. */
export const liveTensors = (): number => tensorMemoryStats().liveTensors;

/** Asserts that fn throws an Error whose message matches re. */
export function throwsMatching(fn: () => unknown, re: RegExp, what = String(re)): void {
  try { fn(); } catch (e) {
    assert.match((e as Error).message, re, `${what}: message was '${(e as Error).message}'`);
    return;
  }
  assert.unreachable(`${what}: expected an error matching ${re}`);
}
