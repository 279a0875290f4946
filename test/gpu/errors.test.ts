// SPDX-License-Identifier: MIT
// Bad shapes, dtypes and attributes: an Error that names the op and the shapes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '../../runtime-gpu/index.js';
import { registerFamilies } from '../../runtime-gpu/ops/index.js';
import { elementwiseOps } from '../../runtime-gpu/ops/elementwise.js';
import { host, hostZeros } from '../../runtime-gpu/host.js';
import { run, referenceBackend } from '../../runtime-gpu/backend.js';
import type { Backend } from '../../runtime-gpu/ops/types.js';
import { rejects, runtime } from '../support/gpu.js';

const z = (...s: number[]) => hostZeros(s);
const zi = (...s: number[]) => hostZeros(s, 'i32');
const expectError = (fn: () => unknown, re: RegExp) => {
  try { fn(); } catch (e) {
    assert.instance(e, T.OpError);
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected an error matching ${re}`);
};

test('matmul inner dimensions', () => expectError(() => run(referenceBackend, 'matmul', [z(2, 3), z(4, 5)], {}), /^matmul: inner dimensions differ: f32\[2, 3\] x f32\[4, 5\] \(3 vs 4\)/));
test('matmul with transB names the flag', () => expectError(() => run(referenceBackend, 'matmul', [z(2, 3), z(3, 5)], { transB: true }), /f32\[2, 3\] x f32\[3, 5\] transB/));
test('matmul batch shapes', () => expectError(() => run(referenceBackend, 'matmul', [z(2, 2, 3), z(3, 3, 5)], {}), /matmul: batch shapes \[2\] and \[3\] differ/));
test('matmul bias', () => expectError(() => run(referenceBackend, 'matmul', [z(2, 3), z(3, 5), z(4)], {}), /matmul: bias must have shape \[5\], got f32\[4\]/));
test('maxPool2d without { kernel } (e.g. a bare number) says what it wants instead of pooling 1x1', () =>
  expectError(() => run(referenceBackend, 'maxPool2d', [z(1, 1, 4, 4)], 2 as never), /^maxPool2d: options must be \{ kernel, stride\?, padding\? \} \(e\.g\. \{ kernel: 2 \}\), got 2/));
test('broadcasting', () => expectError(() => run(referenceBackend, 'binary', [z(2, 3), z(4)], { fn: 'add' }), /^binary add: shapes \[2, 3\] and \[4\] do not broadcast/));
test('mixed dtypes', () => expectError(() => run(referenceBackend, 'binary', [z(2), zi(2)], { fn: 'mul' }), /binary mul: dtypes differ: f32\[2\] and i32\[2\]/));
test('unary on integers', () => expectError(() => run(referenceBackend, 'unary', [zi(3)], { fn: 'exp' }), /unary exp: input must be f32, got i32\[3\]/));
test('reduction axis', () => expectError(() => run(referenceBackend, 'sum', [z(2, 3)], { axes: [2] }), /sum: axis 2 is out of range for rank 2/));
test('conv2d channels', () => expectError(() => run(referenceBackend, 'conv2d', [z(1, 3, 5, 5), z(4, 2, 3, 3)], {}), /conv2d: input channels differ: x \[1, 3, 5, 5\] has 3, filter \[4, 2, 3, 3\] has 2/));
test('conv2d filter larger than input', () => expectError(() => run(referenceBackend, 'conv2d', [z(1, 1, 2, 2), z(1, 1, 3, 3)], {}), /conv2d: filter \[1, 1, 3, 3\] does not fit input \[1, 1, 2, 2\]/));
test('conv2d rank', () => expectError(() => run(referenceBackend, 'conv2d', [z(3, 5, 5), z(1, 3, 3, 3)], {}), /conv2d: x must have rank 4, got f32\[3, 5, 5\]/));
test('cross-entropy labels dtype', () => expectError(() => run(referenceBackend, 'softmaxCrossEntropy', [z(2, 3), z(2)], {}), /softmaxCrossEntropy: labels must be i32, got f32\[2\]/));
test('cross-entropy label count', () => expectError(() => run(referenceBackend, 'softmaxCrossEntropy', [z(2, 3), zi(3)], {}), /labels i32\[3\] do not match logits f32\[2, 3\]/));
test('cross-entropy label range (reference)', () => expectError(() => run(referenceBackend, 'softmaxCrossEntropy', [z(1, 3), host([3], [1], 'i32')], {}), /label 3 at row 0 is outside \[0, 3\)/));
test('layerNorm gamma', () => expectError(() => run(referenceBackend, 'layerNorm', [z(2, 4), z(3), z(4)], {}), /layerNorm: gamma and beta must have shape \[4\] for x f32\[2, 4\], got f32\[3\]/));
test('attention head dims', () => expectError(() => run(referenceBackend, 'attention', [z(2, 5, 8), z(2, 7, 4), z(2, 7, 4)], {}), /attention: q f32\[2, 5, 8\] and k f32\[2, 7, 4\] must have the same head dimension/));
test('maxPool2d padding', () => expectError(() => run(referenceBackend, 'maxPool2d', [z(1, 1, 4, 4)], { kernel: 2, padding: 2 }), /maxPool2d: kernel 2x2, stride 2x2, padding 2x2 invalid/));
test('gather table rank', () => expectError(() => run(referenceBackend, 'gather', [z(4), zi(2)], {}), /gather: table must be \[rows, dim\], got f32\[4\]/));
test('permute', () => expectError(() => run(referenceBackend, 'permute', [z(2, 3)], { perm: [0, 0] }), /permute: \[0, 0\] is not a permutation of the axes of f32\[2, 3\]/));
test('slice bounds', () => expectError(() => run(referenceBackend, 'slice', [z(5, 7)], { begin: [1, 5], size: [2, 3] }), /slice: axis 1: \[5, 8\) is outside 0..7 of f32\[5, 7\]/));
test('concat', () => expectError(() => run(referenceBackend, 'concat', [z(2, 3), z(3, 3)], { axis: 1 }), /concat: inputs f32\[2, 3\], f32\[3, 3\] differ outside axis 1/));
test('broadcastTo', () => expectError(() => run(referenceBackend, 'broadcastTo', [z(3)], { shape: [3, 2] }), /broadcastTo: shapes \[3\] and \[3, 2\] do not broadcast/));

test('the same checks guard the GPU backend', async () => {
  const rt = await runtime();
  T.useRuntime(rt);
  expectError(() => T.matmul(T.zeros([2, 3]), T.zeros([4, 5])), /^matmul: inner dimensions differ: f32\[2, 3\] x f32\[4, 5\]/);
  expectError(() => T.tensor([1, 2, 3], [2, 2]), /tensor: 3 values do not fill shape \[2, 2\] \(4 elements\)/);
  expectError(() => T.tensor([1.5], [1], 'i32'), /tensor: i32 tensor \[1\] given non-integer value 1.5/);
});

test('a partial backend names the missing kernel', () => {
  const partial: Backend<T.HostTensor> = { ...referenceBackend, name: 'partial', kernels: { unary: referenceBackend.kernels.unary } };
  assert.is(run(partial, 'unary', [z(2)], { fn: 'exp' })[0]!.data[0], 1);
  expectError(() => run(partial, 'matmul', [z(2, 3), z(3, 2)], {}), /matmul: the partial backend has no kernel for this op/);
});

test('registering an op twice throws', () => {
  assert.throws(() => registerFamilies([elementwiseOps, elementwiseOps]), /op 'unary' is registered twice/);
});

test('backward kernels are not differentiated', () => {
  const { pullback } = T.vjpOn(referenceBackend, 'unaryBackward', [z(2), z(2), z(2)], { fn: 'exp' });
  expectError(() => pullback([z(2)]), /unaryBackward: is not differentiable/);
});

test('asking for an unknown adapter kind', async () => {
  await rejects(() => T.requestGpuDevice({ adapter: 'fast' as never }), /unknown adapter choice 'fast'/);
});

test.run();
