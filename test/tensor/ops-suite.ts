// SPDX-License-Identifier: MIT
// The public tensor API, as a suite that runs on any backend (ops.test.ts: reference, ops.cpu.test.ts: the Wasm CPU
// backend, ops.webgpu.test.ts: WebGPU on SwiftShader): every function against values computed by hand, methods
// against functions, numbers as operands, argument and shape errors, gradients of the compositions (clip, mean,
// keepDims, numbers lifted to constants), and that no auxiliary output outlives its call. Values computed by hand are
// checked to 1e-6 (1e-12 for transcendental functions) on the f64 reference and to F32_TOL on the f32 backends;
// gradients by finite differences in f64 on the reference, and against the reference's on the others.
import * as assert from 'uvu/assert';
import { Rng } from '../../runtime-gpu/rng.js';
import { fromF16Bits, toF16Bits } from '../../runtime-gpu/float16.js';
import { Tensor, constant, type TensorBackend } from '../../sdk/tensor/engine.js';
import { referenceTensorBackend } from '../../sdk/tensor/backends.js';
import * as O from '../../sdk/tensor/ops.js';
import {
  type BackendUnderTest, type Suite, F32_TOL, runSuiteOn, expectTensor as expectWithin, gradcheckOn, liveTensors, throwsMatching, vjpOf,
} from './helpers.js';

const f32 = Math.fround;
const t = O.tensor;

/** Values (2k+1)/64 in (-2, 2): exact in f32, never 0 or ±1, so steps of 2^-10 stay exact and off every kink tested. */
function sample(shape: number[], seed: number): Tensor {
  const g = new Rng(seed);
  return t(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * (g.int(128) - 64) + 1) / 64), shape);
}
const H = 2 ** -10;

/** Runs the suite on the backend `name` from the test file `file` (see runSuiteOn). */
export function runOpsSuite(name: BackendUnderTest, file: string): Promise<void> {
  return runSuiteOn(name, file, 'tensor ops', opsSuite);
}

function opsSuite(be: TensorBackend, test: Suite): void {
  const f64 = be === referenceTensorBackend;
  /** expectTensor with the tolerance raised to F32_TOL on an f32 backend. */
  const expectTensor = (what: string, x: Tensor, shape: readonly number[], want: readonly number[], rtol = 1e-6, atol = 1e-6): Promise<void> =>
    expectWithin(what, x, shape, want, f64 ? rtol : Math.max(rtol, F32_TOL[0]), f64 ? atol : Math.max(atol, F32_TOL[1]));

  // ---- creation ----

  test('tensor: flat, shaped, nested, typed and scalar data; f32 rounding; i32 from Int32Array', async () => {
    await expectTensor('flat', t([1, 2, 3]), [3], [1, 2, 3]);
    await expectTensor('shaped', t([1, 2, 3, 4, 5, 6], [2, 3]), [2, 3], [1, 2, 3, 4, 5, 6]);
    await expectTensor('nested', t([[[1], [2]], [[3], [4]]]), [2, 2, 1], [1, 2, 3, 4]);
    await expectTensor('number', t(7), [], [7]);
    await expectTensor('empty', t([]), [0], []);
    const r = t([0.1, 1 / 3]);
    assert.equal(Array.from(await r.data()), [f32(0.1), f32(1 / 3)], 'stored as f32 holds them');
    const i = t(Int32Array.from([3, -4]));
    assert.is(i.dtype, 'i32');
    assert.ok((await i.data()) instanceof Int32Array, 'i32 values come back as an Int32Array on every backend');
    assert.equal(await i.array(), [3, -4]);
    assert.is(t(Float64Array.from([1.5]), [1]).dtype, 'f32');
    const h = t([1 / 3, 70000], [2], 'f16');
    assert.equal(await h.array(), [fromF16Bits(toF16Bits(1 / 3)), Infinity]);
  });

  test('tensor: bad data names the problem', () => {
    throwsMatching(() => t([[1, 2], [3]]), /tensor: nested arrays are not rectangular: \[1\] is an array of length 1, expected an array of length 2 \(shape \[2, 2\]\)/);
    throwsMatching(() => t([1, 'x' as unknown as number]), /tensor: element \[1\] is the string "x", not a number/);
    throwsMatching(() => t([[1, 2], [3, [4]]] as never), /tensor: element \[1\]\[1\] is an array of length 1, not a number/);
    throwsMatching(() => t([1, 2, 3], [2, 2]), /tensor: 3 values do not fill shape \[2, 2\]/);
    throwsMatching(() => t([1.5], [1], 'i32'), /tensor: i32 values must be 32-bit integers, got 1.5 at 0/);
    throwsMatching(() => t([1], [1], 'f64' as never), /tensor: unknown dtype "f64" \(f32, i32 or f16\)/);
    throwsMatching(() => t('abc' as never), /tensor: data must be an array, a typed array or a number, got the string "abc"/);
    throwsMatching(() => O.zeros([2, -1]), /zeros: invalid shape \[2, -1\]/);
    throwsMatching(() => O.full([2], 0.5, 'i32'), /full: i32 values must be 32-bit integers, got 0.5/);
  });

  test('scalar, zeros, ones, full and the *Like functions', async () => {
    const s = O.scalar(2.5);
    assert.equal([...s.shape], []);
    assert.is(await s.item(), 2.5);
    await expectTensor('zeros', O.zeros([2, 2]), [2, 2], [0, 0, 0, 0]);
    await expectTensor('ones', O.ones([3]), [3], [1, 1, 1]);
    await expectTensor('full', O.full([2], -3), [2], [-3, -3]);
    const i = O.ones([2], 'i32');
    assert.is(i.dtype, 'i32');
    assert.ok((await i.data()) instanceof Int32Array, 'i32 values come back as an Int32Array on every backend');
    assert.is(O.zerosLike(i).dtype, 'i32');
    await expectTensor('zerosLike', O.zerosLike(t([[1, 2]])), [1, 2], [0, 0]);
    await expectTensor('onesLike', O.onesLike(t([5, 6, 7])), [3], [1, 1, 1]);
    await expectTensor('fullLike', O.fullLike(t([5, 6]), 9), [2], [9, 9]);
    assert.is(O.onesLike(i, 'f32').dtype, 'f32');
  });

  test('rand and randn follow the seeded generator (the same values on every backend)', async () => {
    const g = new Rng(7), n = new Rng(7);
    assert.equal(await O.rand([5], 7).array(), Array.from({ length: 5 }, () => f32(g.uniform())));
    assert.equal(await O.randn([2, 3], 7).array(), Array.from({ length: 6 }, () => f32(n.normal())));
    assert.not.equal(await O.randn([4], 1).array(), await O.randn([4], 2).array());
    const u = await O.rand([1000], 3).array();
    assert.ok(u.every((v) => v >= 0 && v < 1));
  });

  test('arange', async () => {
    await expectTensor('n', O.arange(4), [4], [0, 1, 2, 3]);
    await expectTensor('start stop step', O.arange(1, 2, 0.25), [4], [1, 1.25, 1.5, 1.75]);
    await expectTensor('descending', O.arange(3, 0, -1), [3], [3, 2, 1]);
    await expectTensor('empty', O.arange(0), [0], []);
    assert.is(O.arange(3, undefined, 1, 'i32').dtype, 'i32');
    throwsMatching(() => O.arange(0, 1, 0), /arange: step must not be 0/);
    throwsMatching(() => O.arange(0, Infinity), /arange: stop must be a finite number, got the number Infinity/);
  });

  // ---- elementwise ----

  test('unary functions', async () => {
    const xs = [-1.5, -0.25, 0.5, 2];
    const x = t(xs);
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    await expectTensor('neg', O.neg(x), [4], xs.map((v) => -v));
    await expectTensor('abs', O.abs(x), [4], xs.map(Math.abs));
    await expectTensor('relu', O.relu(x), [4], xs.map((v) => Math.max(v, 0)));
    await expectTensor('square', O.square(x), [4], xs.map((v) => v * v));
    await expectTensor('exp', O.exp(x), [4], xs.map(Math.exp), 1e-12);
    await expectTensor('tanh', O.tanh(x), [4], xs.map(Math.tanh), 1e-12);
    await expectTensor('sigmoid', O.sigmoid(x), [4], xs.map(sig), 1e-12);
    await expectTensor('gelu', O.gelu(x), [4], xs.map(gelu), 1e-12);
    const p = t([0.25, 1, 4, 9]);
    await expectTensor('log', O.log(p), [4], [Math.log(0.25), 0, Math.log(4), Math.log(9)], 1e-12);
    await expectTensor('sqrt', O.sqrt(p), [4], [0.5, 1, 2, 3]);
    await expectTensor('rsqrt', O.rsqrt(p), [4], [2, 1, 0.5, 1 / 3], 1e-12);
    throwsMatching(() => O.exp(t([1], [1], 'i32')), /unary exp: input must be f32, got i32\[1\]/);
  });

  test('binary functions broadcast, and numbers are lifted on either side', async () => {
    const a = t([[1, 2, 3], [4, 5, 6]]), b = t([10, 20, 30]);
    await expectTensor('add', O.add(a, b), [2, 3], [11, 22, 33, 14, 25, 36]);
    await expectTensor('sub', O.sub(a, b), [2, 3], [-9, -18, -27, -6, -15, -24]);
    await expectTensor('mul', O.mul(a, b), [2, 3], [10, 40, 90, 40, 100, 180]);
    await expectTensor('div', O.div(b, a), [2, 3], [10, 10, 10, 2.5, 4, 5]);
    await expectTensor('pow', O.pow(a, t([[2], [0.5]])), [2, 3], [1, 4, 9, 2, Math.sqrt(5), Math.sqrt(6)], 1e-12);
    await expectTensor('maximum', O.maximum(a, t([2, 2, 7])), [2, 3], [2, 2, 7, 4, 5, 7]);
    await expectTensor('minimum', O.minimum(a, t([2, 2, 7])), [2, 3], [1, 2, 3, 2, 2, 6]);
    await expectTensor('x + 1', O.add(a, 1), [2, 3], [2, 3, 4, 5, 6, 7]);
    await expectTensor('1 - x', O.sub(1, a), [2, 3], [0, -1, -2, -3, -4, -5]);
    await expectTensor('2 * x', O.mul(2, a), [2, 3], [2, 4, 6, 8, 10, 12]);
    await expectTensor('x / 2', O.div(a, 2), [2, 3], [0.5, 1, 1.5, 2, 2.5, 3]);
    await expectTensor('2 ** x', O.pow(2, a), [2, 3], [2, 4, 8, 16, 32, 64]);
    await expectTensor('x ** 2', O.pow(a, 2), [2, 3], [1, 4, 9, 16, 25, 36]);
    await expectTensor('maximum(x, 3)', O.maximum(a, 3), [2, 3], [3, 3, 3, 4, 5, 6]);
    await expectTensor('minimum(3, x)', O.minimum(3, a), [2, 3], [1, 2, 3, 3, 3, 3]);
    const i = t([1, 2, 3], [3], 'i32');
    const j = O.add(i, 2);
    assert.is(j.dtype, 'i32', 'a number takes the dtype of the tensor');
    assert.equal(await j.array(), [3, 4, 5]);
    throwsMatching(() => O.add(i, 2.5), /add: cannot combine i32\[3\] with the non-integer 2.5; cast to f32 first/);
  });

  test('comparisons give f32 masks; where selects; numbers work there too', async () => {
    const x = t([1, 2, 3]);
    await expectTensor('lt', O.lt(x, 2), [3], [1, 0, 0]);
    await expectTensor('le', O.le(x, 2), [3], [1, 1, 0]);
    await expectTensor('gt', O.gt(x, 2), [3], [0, 0, 1]);
    await expectTensor('ge', O.ge(x, 2), [3], [0, 1, 1]);
    await expectTensor('eq', O.eq(x, 2), [3], [0, 1, 0]);
    await expectTensor('ne', O.ne(2, x), [3], [1, 0, 1]);
    const m = O.lt(t([1, 5], [2], 'i32'), t([3, 3], [2], 'i32'));
    assert.is(m.dtype, 'f32', 'comparing i32 gives an f32 mask');
    assert.equal(await m.array(), [1, 0]);
    const y = t([-1, 2, -3]);
    await expectTensor('where(x > 0, x, 0)', O.where(O.gt(y, 0), y, 0), [3], [0, 2, 0]);
    await expectTensor('where numbers', O.where(O.gt(y, 0), 1, -1), [3], [-1, 1, -1]);
    await expectTensor('where broadcast', O.where(t([[1], [0]]), t([1, 2]), t([7])), [2, 2], [1, 2, 7, 7]);
  });

  test('clip limits to [lo, hi]; NaN stays NaN', async () => {
    await expectTensor('numbers', O.clip(t([-2, -1, 0, 0.5, 1, 3]), -1, 1), [6], [-1, -1, 0, 0.5, 1, 1]);
    await expectTensor('tensor bounds', O.clip(t([-2, 0, 2]), t([-1, 1, -1]), t([1, 2, 1])), [3], [-1, 1, 1]);
    await expectTensor('NaN', O.clip(t([NaN, 5]), 0, 1), [2], [NaN, 1]);
    throwsMatching(() => O.clip(t([1]), 2, 1), /clip: lo 2 is above hi 1/);
  });

  test('clip: the gradient flows to x strictly inside (lo, hi), and to a tensor bound where x is at or past it', async () => {
    const x = t([-2, -1, 0, 0.5, 1, 3]);
    const { grads: [gx] } = vjpOf((v) => O.clip(v, -1, 1), [x]);
    assert.equal(await gx!.array(), [0, 0, 1, 1, 0, 0]);
    const lo = t([0, 0, 0]), hi = t([1, 1, 1]);
    const { grads: [g2, glo, ghi] } = vjpOf((v, l, h) => O.clip(v, l!, h!), [t([-1, 0.5, 2]), lo, hi]);
    assert.equal(await g2!.array(), [0, 1, 0]);
    assert.equal(await glo!.array(), [1, 0, 0]);
    assert.equal(await ghi!.array(), [0, 0, 1]);
  });

  test('broadcastTo and cast', async () => {
    await expectTensor('broadcastTo', O.broadcastTo(t([1, 2]), [3, 2]), [3, 2], [1, 2, 1, 2, 1, 2]);
    const c = O.cast(t([1.7, -1.7, 2]), 'i32');
    assert.is(c.dtype, 'i32');
    assert.equal(await c.array(), [1, -1, 2]);
    await expectTensor('to f16', O.cast(t([0.1]), 'f16'), [1], [fromF16Bits(toF16Bits(f32(0.1)))], 0, 0);
    throwsMatching(() => O.cast(t([1]), 'bool' as never), /cast: unknown dtype "bool"/);
    throwsMatching(() => O.broadcastTo(t([1, 2]), [3]), /broadcastTo: shapes \[2\] and \[3\] do not broadcast/);
  });

  // ---- shapes ----

  test('reshape, flatten, permute, transpose and T', async () => {
    const x = O.arange(6);
    await expectTensor('reshape -1', O.reshape(x, [2, -1]), [2, 3], [0, 1, 2, 3, 4, 5]);
    throwsMatching(() => O.reshape(x, [4, -1]), /reshape: cannot reshape \[6\] to \[4, -1\]/);
    const x4 = O.reshape(O.arange(24), [2, 3, 2, 2]);
    assert.equal([...O.flatten(x4).shape], [24]);
    assert.equal([...O.flatten(x4, 1).shape], [2, 12]);
    assert.equal([...O.flatten(x4, -2).shape], [2, 3, 4]);
    assert.equal([...O.flatten(O.scalar(3)).shape], [1]);
    const m = O.reshape(x, [2, 3]);
    await expectTensor('transpose', O.transpose(m), [3, 2], [0, 3, 1, 4, 2, 5]);
    await expectTensor('T', m.T, [3, 2], [0, 3, 1, 4, 2, 5]);
    await expectTensor('permute', O.permute(O.reshape(O.arange(6), [1, 2, 3]), [2, 0, 1]), [3, 1, 2], [0, 3, 1, 4, 2, 5]);
    throwsMatching(() => O.transpose(t([1, 2])), /transpose: needs rank 2 or more, got f32\[2\]/);
    throwsMatching(() => O.permute(m, [0, 0]), /permute: \[0, 0\] is not a permutation of the axes of f32\[2, 3\]/);
  });

  test('slice (with -1 sizes), pad and concat', async () => {
    const m = O.reshape(O.arange(12), [3, 4]);
    await expectTensor('slice', O.slice(m, [1, 1], [2, 2]), [2, 2], [5, 6, 9, 10]);
    await expectTensor('slice to the end', O.slice(m, [2, 1], [-1, -1]), [1, 3], [9, 10, 11]);
    throwsMatching(() => O.slice(m, [0, 3], [1, 2]), /slice: axis 1: \[3, 5\) is outside 0..4 of f32\[3, 4\]/);
    await expectTensor('pad', O.pad(t([[1, 2]]), [[1, 0], [0, 2]]), [2, 4], [0, 0, 0, 0, 1, 2, 0, 0]);
    throwsMatching(() => O.pad(t([1]), [[1, 1], [0, 0]]), /pad: widths must hold one \[before, after\] pair per axis of f32\[1\]/);
    throwsMatching(() => O.pad(t([1]), [[-1, 0]]), /pad: axis 0: widths must be non-negative integers, got \[-1, 0\]/);
    await expectTensor('concat 0', O.concat([t([[1, 2]]), t([[3, 4], [5, 6]])]), [3, 2], [1, 2, 3, 4, 5, 6]);
    await expectTensor('concat -1', O.concat([t([[1], [2]]), t([[3, 4], [5, 6]])], -1), [2, 3], [1, 3, 4, 2, 5, 6]);
    throwsMatching(() => O.concat([t([[1, 2]]), t([[1, 2, 3]])]), /concat: inputs f32\[1, 2\], f32\[1, 3\] differ outside axis 0/);
    throwsMatching(() => O.concat(t([1]) as never), /concat: xs must be an array of Tensors, got a Tensor f32\[1\]/);
  });

  // ---- reductions ----

  test('sum, mean, max (with keepDims), argmax and logsumexp', async () => {
    const x = t([[1, 5, 3], [4, 2, 6]]);
    await expectTensor('sum all', O.sum(x), [], [21]);
    await expectTensor('sum 0', O.sum(x, 0), [3], [5, 7, 9]);
    await expectTensor('sum -1 keep', O.sum(x, -1, true), [2, 1], [9, 12]);
    await expectTensor('mean all', O.mean(x), [], [3.5]);
    await expectTensor('mean 1', O.mean(x, 1), [2], [3, 4]);
    await expectTensor('mean [0, 1] keep', O.mean(x, [0, 1], true), [1, 1], [3.5]);
    await expectTensor('max all', O.max(x), [], [6]);
    await expectTensor('max 1', O.max(x, 1), [2], [5, 6]);
    await expectTensor('max 0 keep', O.max(x, 0, true), [1, 3], [4, 5, 6]);
    const am = O.argmax(x, 1);
    assert.is(am.dtype, 'i32');
    assert.equal(await am.array(), [1, 2]);
    assert.equal(await O.argmax(x, 0).array(), [1, 0, 1]);
    assert.equal(await O.argmax(x).array(), [5], 'flat index over all axes');
    assert.equal(await O.argmax(t([2, 7, 7])).array(), [1], 'ties: the first');
    const lse = (v: number[]) => Math.log(v.reduce((s, e) => s + Math.exp(e), 0));
    await expectTensor('logsumexp 1', O.logsumexp(x, 1), [2], [lse([1, 5, 3]), lse([4, 2, 6])], 1e-12);
    await expectTensor('logsumexp keep', O.logsumexp(x, 0, true), [1, 3], [lse([1, 4]), lse([5, 2]), lse([3, 6])], 1e-12);
    throwsMatching(() => O.sum(x, 2), /sum: axis 2 is out of range for rank 2/);
  });

  // ---- networks ----

  test('matmul: plain, transposed, with bias and activation, batched', async () => {
    const a = t([[1, 2, 3], [4, 5, 6]]), b = t([[1, 0], [0, 1], [1, -1]]);
    await expectTensor('a @ b', O.matmul(a, b), [2, 2], [4, -1, 10, -1]);
    await expectTensor('transB', O.matmul(a, O.transpose(b), { transB: true }), [2, 2], [4, -1, 10, -1]);
    await expectTensor('transA', O.matmul(O.transpose(a), b, { transA: true }), [2, 2], [4, -1, 10, -1]);
    await expectTensor('bias + relu', O.matmul(a, b, { bias: t([-5, 3]), activation: 'relu' }), [2, 2], [0, 2, 5, 2]);
    const batch = O.reshape(O.concat([a, O.mul(a, 2)]), [2, 2, 3]);
    await expectTensor('batched, b shared', O.matmul(batch, b), [2, 2, 2], [4, -1, 10, -1, 8, -2, 20, -2]);
    throwsMatching(() => O.matmul(a, a), /matmul: inner dimensions differ: f32\[2, 3\] x f32\[2, 3\] \(3 vs 2\)/);
    throwsMatching(() => O.matmul(a, b, { bias: t([1, 2, 3]) }), /matmul: bias must have shape \[2\], got f32\[3\]/);
  });

  test('softmax, logSoftmax and softmaxCrossEntropy', async () => {
    const x = t([[1, 2, 3], [1, 1, 1]]);
    const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
    const sm = [Math.exp(1) / z, Math.exp(2) / z, Math.exp(3) / z, 1 / 3, 1 / 3, 1 / 3];
    await expectTensor('softmax', O.softmax(x), [2, 3], sm, 1e-12);
    await expectTensor('logSoftmax', O.logSoftmax(x), [2, 3], sm.map(Math.log), 1e-12);
    const loss = O.softmaxCrossEntropy(x, t([2, 0], [2], 'i32'));
    await expectTensor('cross-entropy', loss, [2], [Math.log(z) - 3, Math.log(3)], 1e-12);
    throwsMatching(() => O.softmaxCrossEntropy(x, t([2, 0])), /softmaxCrossEntropy: labels must be i32, got f32\[2\]/);
  });

  test('layerNorm', async () => {
    const x = t([[1, 2, 3], [2, 2, 5]]);
    const norm = (r: number[], eps: number) => {
      const m = r.reduce((s, v) => s + v, 0) / r.length;
      const v = r.reduce((s, e) => s + (e - m) ** 2, 0) / r.length;
      return r.map((e) => (e - m) / Math.sqrt(v + eps));
    };
    const want = [...norm([1, 2, 3], 1e-5), ...norm([2, 2, 5], 1e-5)];
    await expectTensor('plain', O.layerNorm(x, O.ones([3]), O.zeros([3])), [2, 3], want, 1e-9);
    const gb = want.map((v, i) => v * [2, 1, 0.5][i % 3]! + [0, 1, -1][i % 3]!);
    await expectTensor('gamma, beta', O.layerNorm(x, t([2, 1, 0.5]), t([0, 1, -1])), [2, 3], gb, 1e-9);
    await expectTensor('eps', O.layerNorm(x, O.ones([3]), O.zeros([3]), 0.5), [2, 3], [...norm([1, 2, 3], 0.5), ...norm([2, 2, 5], 0.5)], 1e-9);
    throwsMatching(() => O.layerNorm(x, O.ones([2]), O.zeros([3])), /layerNorm: gamma and beta must have shape \[3\] for x f32\[2, 3\], got f32\[2\]/);
  });

  test('conv2d (stride, padding, bias) and maxPool2d', async () => {
    const x = O.reshape(O.arange(9), [1, 1, 3, 3]);
    const w = O.ones([1, 1, 2, 2]);
    await expectTensor('valid', O.conv2d(x, w), [1, 1, 2, 2], [8, 12, 20, 24]);
    await expectTensor('padding 1, stride 2', O.conv2d(x, w, { padding: 1, stride: 2 }), [1, 1, 2, 2], [0, 3, 9, 24]);
    const w2 = O.concat([w, O.mul(w, -1)]);
    await expectTensor('two channels + bias', O.conv2d(x, w2, { bias: t([1, 10]) }), [1, 2, 2, 2], [9, 13, 21, 25, 2, -2, -10, -14]);
    throwsMatching(() => O.conv2d(x, w, { bias: t([1, 2]) }), /conv2d: bias must be \[1\] \(one per output channel\), got f32\[2\]/);
    throwsMatching(() => O.conv2d(x, O.ones([1, 2, 2, 2])), /conv2d: input channels differ/);
    const p = O.reshape(t([1, 5, 2, 0, 3, 4, 8, 1, 0, 0, 1, 1, 9, 0, 2, 7]), [1, 1, 4, 4]);
    await expectTensor('maxPool2d', O.maxPool2d(p, { kernel: 2 }), [1, 1, 2, 2], [5, 8, 9, 7]);
    await expectTensor('maxPool2d stride 1', O.maxPool2d(O.reshape(O.arange(9), [1, 1, 3, 3]), { kernel: 2, stride: 1 }), [1, 1, 2, 2], [4, 5, 7, 8]);
  });

  test('attention (scaled, causal) against softmax(q kᵀ s) v computed here', async () => {
    const q = [[1, 0], [0, 1], [1, 1]], k = [[1, 0], [0, 2], [1, -1]], v = [[1, 2], [3, 4], [5, 6]];
    const ref = (causal: boolean, s: number) => q.flatMap((qi, i) => {
      const sc = k.map((kj, j) => (causal && j > i ? -Infinity : s * (qi[0]! * kj[0]! + qi[1]! * kj[1]!)));
      const m = Math.max(...sc), e = sc.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0);
      return [0, 1].map((d) => e.reduce((acc, p, j) => acc + (p / z) * v[j]![d]!, 0));
    });
    await expectTensor('default scale', O.attention(t(q), t(k), t(v)), [3, 2], ref(false, 1 / Math.SQRT2), 1e-9);
    await expectTensor('causal, scale 0.5', O.attention(t(q), t(k), t(v), { causal: true, scale: 0.5 }), [3, 2], ref(true, 0.5), 1e-9);
    const out = O.attention(O.reshape(t(q), [1, 1, 3, 2]), O.reshape(t(k), [1, 1, 3, 2]), O.reshape(t(v), [1, 1, 3, 2]));
    assert.equal([...out.shape], [1, 1, 3, 2], 'batch and head axes');
  });

  test('embedding', async () => {
    const table = t([[1, 2], [3, 4], [5, 6]]);
    await expectTensor('rows', O.embedding(table, t([2, 0, 2], [3], 'i32')), [3, 2], [5, 6, 1, 2, 5, 6]);
    await expectTensor('2-D indices', O.embedding(table, t([[1], [0]], [2, 1], 'i32')), [2, 1, 2], [3, 4, 1, 2]);
    throwsMatching(() => O.embedding(table, t([1])), /gather: indices must be i32, got f32\[1\]/);
  });

  // Label and index values are checked where they are on the host; on WebGPU that would cost a read-back per call.
  (be.name === 'webgpu' ? test.skip : test)(`labels and indices outside their range are named${be.name === 'webgpu' ? ' (skipped on WebGPU: not read back to check)' : ''}`, () => {
    const x = t([[1, 2, 3], [1, 1, 1]]), table = t([[1, 2], [3, 4], [5, 6]]);
    throwsMatching(() => O.softmaxCrossEntropy(x, t([3, 0], [2], 'i32')), /softmaxCrossEntropy: label 3 at row 0 is outside \[0, 3\)/);
    throwsMatching(() => O.embedding(table, t([3], [1], 'i32')), /gather: index 3 at 0 is outside \[0, 3\)/);
  });

  // ---- methods ----

  test('methods give what the functions give', async () => {
    const x = sample([2, 3], 1), y = sample([2, 3], 2), p = O.add(O.abs(x), 0.5);
    const pairs: [string, Tensor, Tensor][] = [
      ['add', x.add(y), O.add(x, y)], ['sub', x.sub(2), O.sub(x, 2)], ['mul', x.mul(y), O.mul(x, y)], ['div', x.div(p), O.div(x, p)],
      ['pow', p.pow(1.5), O.pow(p, 1.5)], ['maximum', x.maximum(y), O.maximum(x, y)], ['minimum', x.minimum(0), O.minimum(x, 0)],
      ['lt', x.lt(y), O.lt(x, y)], ['le', x.le(0), O.le(x, 0)], ['gt', x.gt(y), O.gt(x, y)], ['ge', x.ge(0), O.ge(x, 0)],
      ['eq', x.eq(x), O.eq(x, x)], ['ne', x.ne(y), O.ne(x, y)],
      ['neg', x.neg(), O.neg(x)], ['exp', x.exp(), O.exp(x)], ['log', p.log(), O.log(p)], ['sqrt', p.sqrt(), O.sqrt(p)],
      ['rsqrt', p.rsqrt(), O.rsqrt(p)], ['tanh', x.tanh(), O.tanh(x)], ['sigmoid', x.sigmoid(), O.sigmoid(x)], ['relu', x.relu(), O.relu(x)],
      ['gelu', x.gelu(), O.gelu(x)], ['abs', x.abs(), O.abs(x)], ['square', x.square(), O.square(x)], ['clip', x.clip(-0.5, 0.5), O.clip(x, -0.5, 0.5)],
      ['matmul', x.matmul(y, { transB: true }), O.matmul(x, y, { transB: true })], ['sum', x.sum(1, true), O.sum(x, 1, true)],
      ['mean', x.mean(), O.mean(x)], ['max', x.max(0), O.max(x, 0)], ['argmax', x.argmax(1), O.argmax(x, 1)],
      ['logsumexp', x.logsumexp(-1), O.logsumexp(x, -1)], ['softmax', x.softmax(), O.softmax(x)], ['logSoftmax', x.logSoftmax(), O.logSoftmax(x)],
      ['reshape', x.reshape([3, -1]), O.reshape(x, [3, -1])], ['flatten', x.flatten(), O.flatten(x)], ['transpose', x.transpose(), O.transpose(x)],
      ['T', x.T, O.transpose(x)], ['permute', x.permute([1, 0]), O.permute(x, [1, 0])], ['slice', x.slice([0, 1], [2, 2]), O.slice(x, [0, 1], [2, 2])],
      ['cast', x.cast('i32'), O.cast(x, 'i32')], ['broadcastTo', x.broadcastTo([2, 2, 3]), O.broadcastTo(x, [2, 2, 3])],
      ['maxPool2d', x.reshape([1, 1, 2, 3]).maxPool2d({ kernel: 2, stride: 1 }), O.maxPool2d(O.reshape(x, [1, 1, 2, 3]), { kernel: 2, stride: 1 })],
    ];
    for (const [name, m, f] of pairs) {
      assert.equal([...m.shape], [...f.shape], `${name}: shape`);
      assert.is(m.dtype, f.dtype, `${name}: dtype`);
      assert.equal(await m.array(), await f.array(), `${name}: values`);
    }
    const enumerable: string[] = [];
    for (const k in x) enumerable.push(k);
    assert.not.ok(enumerable.includes('add') || enumerable.includes('T'), 'methods are not enumerable');
    const chained = x.matmul(y.T).add(1).relu().sum();
    const nested = O.sum(O.relu(O.add(O.matmul(x, O.transpose(y)), 1)));
    assert.is(await chained.item(), await nested.item());
  });

  // ---- argument errors ----

  test('a number, an array or a foreign value where a Tensor is needed is named', () => {
    throwsMatching(() => O.exp(3 as never), /exp: x must be a Tensor, got the number 3 \(make one with scalar\(3\)\)/);
    throwsMatching(() => O.matmul(t([[1]]), [[1]] as never), /matmul: b must be a Tensor, got an array of length 1 \(make one with tensor\(\.\.\.\)\)/);
    throwsMatching(() => O.add('1' as never, t([1])), /add: a must be a Tensor or a number, got the string "1"/);
    throwsMatching(() => O.mul(t([1]), undefined as never), /mul: b must be a Tensor or a number, got undefined/);
    throwsMatching(() => O.add(1, 2), /add: needs a Tensor operand, got only numbers \(1, 2\); make one with scalar\(\)/);
    throwsMatching(() => O.sum({ shape: [1] } as never), /sum: x must be a Tensor, got a plain object/);
    throwsMatching(() => O.layerNorm(t([[1, 2]]), O.ones([2]), 0 as never), /layerNorm: beta must be a Tensor, got the number 0/);
    throwsMatching(() => O.where([1] as never, 1, 2), /where: cond must be a Tensor, got an array of length 1/);
    throwsMatching(() => O.concat([t([1]), 2 as never]), /concat: xs\[1\] must be a Tensor, got the number 2/);
    throwsMatching(() => O.reshape(t([1, 2]), 2 as never), /reshape: shape must be an array of dimensions, got the number 2/);
  });

  test('shape errors name the op and the shapes', () => {
    throwsMatching(() => O.add(t([[1, 2, 3]]), t([1, 2])), /binary add: shapes \[1, 3\] and \[2\] do not broadcast \(axis 1: 3 vs 2\)/);
    throwsMatching(() => O.mul(t([1, 2]), t([1, 2], [2], 'i32')), /binary mul: dtypes differ: f32\[2\] and i32\[2\]/);
    throwsMatching(() => O.where(t([1, 0]), t([1, 2, 3]), 0), /where: shapes \[2\] and \[3\] and \[\] do not broadcast/);
  });

  test('a disposed tensor is refused by name; dispose is idempotent', () => {
    const x = t([1, 2, 3]);
    x.dispose();
    x.dispose();
    assert.ok(x.disposed);
    throwsMatching(() => O.add(x, 1), /binary: a f32\[3\] tensor was used after it was disposed/);
    throwsMatching(() => O.reshape(x, [3, 1]), /reshape: a f32\[3\] tensor was used after it was disposed/);
  });

  test('mixing backends is refused by name', () => {
    const other = { ...referenceTensorBackend, description: 'a second reference backend' };
    const c = constant(other, [2], 1);
    throwsMatching(() => O.add(t([1, 2]), c), new RegExp(`binary: inputs live on different backends \\(${be.name} and reference\\); move one with toBackend\\(\\)`));
  });

  // ---- memory ----

  test('no auxiliary output, lifted number or mask outlives its call', () => {
    const x = sample([2, 3], 3), w = sample([3, 4], 4), b = sample([4], 5), g = sample([3], 6), b3 = sample([3], 7);
    const img = sample([1, 2, 4, 4], 7), k = sample([3, 2, 3, 3], 8), labels = t([1, 2], [2], 'i32'), mask = O.gt(x, 0);
    const calls: [string, () => Tensor][] = [
      ['matmul', () => O.matmul(x, w, { bias: b, activation: 'gelu' })], ['layerNorm', () => O.layerNorm(x, g, g)],
      ['softmaxCrossEntropy', () => O.softmaxCrossEntropy(x, labels)], ['maxPool2d', () => O.maxPool2d(img, { kernel: 2 })],
      ['attention', () => O.attention(x, x, x, { causal: true })], ['max', () => O.max(x, 1, true)], ['argmax', () => O.argmax(x, 0)],
      ['clip', () => O.clip(x, -0.5, 0.5)], ['mean', () => O.mean(x, 0, true)], ['add', () => O.add(x, 1)], ['pow', () => O.pow(2, x)],
      ['where', () => O.where(mask, 1, 0)], ['conv2d', () => O.conv2d(img, k, { padding: 1, bias: b3 })], ['lt', () => O.lt(x, 0)],
      ['logsumexp', () => O.logsumexp(x, 1, true)], ['flatten', () => O.flatten(x)], ['T', () => x.T],
    ];
    const before = liveTensors();
    for (const [name, f] of calls) {
      const y = f();
      assert.is(liveTensors(), before + 1, `${name}: only the result is alive`);
      y.dispose();
      assert.is(liveTensors(), before, `${name}: nothing left after disposing the result`);
    }
  });

  test('in a gradient session, what the pullbacks keep is freed once the backward pass has run', () => {
    const x = sample([2, 3], 9), w = sample([3, 3], 10), g = sample([3], 11), labels = t([0, 2], [2], 'i32');
    const before = liveTensors();
    let peak = 0;
    // Intermediates are disposed right after their last use, as the transformer's generated code does.
    const { y, grads } = vjpOf((a, b, c) => {
      const h0 = O.matmul(a!, b!, { activation: 'relu' });
      const h = O.layerNorm(h0, c!, c!); h0.dispose();
      const hc = O.clip(h, -1, 1); h.dispose();
      const l = O.softmaxCrossEntropy(hc, labels); hc.dispose();
      const m = O.mean(l); l.dispose();
      peak = liveTensors();
      return m;
    }, [x, w, g]);
    assert.ok(peak > before + 1, 'the pullbacks hold what they need while the session records');
    assert.is(liveTensors(), before + 1 + grads.length, 'after backward: the value and the gradients');
    y.dispose();
    for (const gr of grads) gr!.dispose();
    assert.is(liveTensors(), before);
  });

  // ---- gradients of the compositions (finite differences in f64) ----

  test('gradients: numbers lifted on either side, square, mean and keepDims', async () => {
    const x = sample([2, 3], 12), p = O.add(O.abs(sample([2, 3], 13)), 0.5);
    await gradcheckOn('x + 2', (a) => O.add(a!, 2), [x], H, 1e-5);
    await gradcheckOn('2 - x', (a) => O.sub(2, a!), [x], H, 1e-5);
    await gradcheckOn('3 * x', (a) => O.mul(3, a!), [x], H, 1e-5);
    await gradcheckOn('1 / x', (a) => O.div(1, a!), [p], H, 1e-5);
    await gradcheckOn('x ** 3', (a) => O.pow(a!, 3), [x], H, 1e-5);
    await gradcheckOn('2 ** x', (a) => O.pow(2, a!), [x], H, 1e-5);
    await gradcheckOn('square', (a) => O.square(a!), [x], H, 1e-5);
    await gradcheckOn('mean keep * x', (a) => O.mul(O.mean(a!, 1, true), a!), [x], H, 1e-5);
    await gradcheckOn('max keep', (a) => O.max(a!, 0, true), [x], H, 1e-5);
    await gradcheckOn('logsumexp keep - x', (a) => O.sub(a!, O.logsumexp(a!, -1, true)), [x], H, 1e-5);
    await gradcheckOn('flatten, reshape, transpose', (a) => O.mul(O.reshape(O.flatten(O.transpose(a!)), [2, 3]), a!), [x], H, 1e-5);
    await gradcheckOn('where with a number', (a) => O.where(O.gt(a!, 0), a!, 0.5), [x], H, 1e-5);
    await gradcheckOn('clip', (a) => O.mul(O.clip(a!, -0.5, 0.5), a!), [x], H, 1e-5);
  });

  test('gradients: the network functions survive the disposal of their auxiliary outputs', async () => {
    const x = sample([2, 3], 14), w = sample([3, 4], 15), b = sample([4], 16), g = sample([3], 17), beta = sample([3], 25);
    await gradcheckOn('matmul bias gelu', (a, c, d) => O.matmul(a!, c!, { bias: d!, activation: 'gelu' }), [x, w, b], H, 1e-5);
    await gradcheckOn('layerNorm', (a, c, d) => O.mul(O.layerNorm(a!, c!, d!), a!), [x, g, beta], H, 1e-4);
    await gradcheckOn('softmaxCrossEntropy', (a) => O.softmaxCrossEntropy(a!, t([2, 0], [2], 'i32')), [x], H, 1e-5);
    await gradcheckOn('attention', (q, k, v) => O.attention(q!, k!, v!, { causal: true }), [sample([3, 2], 18), sample([3, 2], 19), sample([3, 2], 20)], H, 1e-5);
    await gradcheckOn('conv2d bias', (a, c, d) => O.conv2d(a!, c!, { padding: 1, bias: d! }), [sample([1, 2, 3, 3], 21), sample([2, 2, 2, 2], 22), sample([2], 23)], H, 1e-5);
    await gradcheckOn('maxPool2d', (a) => O.maxPool2d(a!, { kernel: 2 }), [t([0.5, 1.5, -1, 0.25, 2, -0.5, 0.75, 1, 0.125, 0.375, 1.25, -2, 0.625, -1.5, 1.75, 0.875], [1, 1, 4, 4])], H, 1e-5);
    await gradcheckOn('embedding', (tab) => O.embedding(tab!, t([2, 0, 2], [3], 'i32')), [sample([3, 2], 24)], H, 1e-5);
    await gradcheckOn('slice, pad, concat', (a) => O.concat([O.pad(O.slice(a!, [0, 1], [2, -1]), [[0, 0], [1, 0]]), a!], 1), [x], H, 1e-5);
    await gradcheckOn('softmax, logSoftmax', (a) => O.mul(O.softmax(a!), O.logSoftmax(a!)), [x], H, 1e-5);
    await gradcheckOn('broadcastTo, sum', (a) => O.sum(O.broadcastTo(a!, [2, 2, 3]), [0, 2]), [x], H, 1e-5);
  });

}
