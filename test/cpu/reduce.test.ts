// SPDX-License-Identifier: MIT
// Reductions, logsumexp, softmax / log-softmax forward and backward, fused softmax cross-entropy.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, loadBuilds, randn, rng } from './helpers.js';

const builds = await loadBuilds();

function refReduce(op: string, X: ArrayLike<number>, outer: number, size: number, inner: number): Float64Array {
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) for (let j = 0; j < inner; j++) {
    let acc = op === 'max' ? -Infinity : op === 'min' ? Infinity : 0;
    for (let s = 0; s < size; s++) {
      const v = X[(o * size + s) * inner + j]!;
      acc = op === 'max' ? Math.max(acc, v) : op === 'min' ? Math.min(acc, v) : acc + v;
    }
    out[o * inner + j] = op === 'mean' ? acc / size : acc;
  }
  return out;
}

function refSoftmax(X: ArrayLike<number>, rows: number, cols: number) {
  const y = new Float64Array(rows * cols), ly = new Float64Array(rows * cols), lse = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < cols; j++) m = Math.max(m, X[r * cols + j]!);
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(X[r * cols + j]! - m);
    lse[r] = m + Math.log(s);
    for (let j = 0; j < cols; j++) {
      y[r * cols + j] = Math.exp(X[r * cols + j]! - m) / s;
      ly[r * cols + j] = X[r * cols + j]! - lse[r]!;
    }
  }
  return { y, ly, lse };
}

const SHAPES: [number, number][] = [[1, 1], [1, 7], [3, 4], [5, 13], [2, 37], [7, 100], [1, 1031]];

for (const k of builds) {
  test(`${k.variant}: reduce sum / mean / max / min over any axis`, () => {
    const r = rng(9);
    for (const [outer, size, inner] of [[1, 1, 1], [3, 7, 1], [2, 33, 1], [1, 5, 9], [4, 3, 13], [5, 1, 6], [2, 1000, 3], [1, 17, 1]]) {
      const X = randn(r, outer * size * inner, -3, 3);
      const x = k.upload(X), out = k.alloc(outer * inner);
      for (const op of ['sum', 'mean', 'max', 'min'] as const) {
        k.reduce(op, x, out, outer, size, inner);
        close(`${op} [${outer}, ${size}, ${inner}]`, k.read(out), refReduce(op, X, outer, size, inner), 2e-6 * size, 1e-6);
      }
      k.free(x); k.free(out);
    }
    const x = k.upload([1, 2, 3, 4, 5, 6]), out = k.alloc(3);
    k.reduceAxis('sum', x, [2, 3], -2, out);
    assert.equal(Array.from(k.read(out)), [5, 7, 9]);
    k.free(x); k.free(out);
  });

  test(`${k.variant}: max propagates NaN and handles -inf rows`, () => {
    const x = k.upload([1, NaN, 3, -Infinity, -Infinity, -Infinity, 2, 9, -1]), out = k.alloc(3);
    k.reduce('max', x, out, 3, 3, 1);
    const m = k.read(out);
    assert.ok(Number.isNaN(m[0]!));
    assert.equal([m[1], m[2]], [-Infinity, 9]);
    k.logsumexp(x, out, 3, 3);
    assert.is(k.read(out)[1], -Infinity);
    k.free(x); k.free(out);
  });

  test(`${k.variant}: logsumexp, softmax and log-softmax forward and backward`, () => {
    const r = rng(10);
    for (const [rows, cols] of SHAPES) {
      const X = randn(r, rows * cols, -20, 20), DY = randn(r, rows * cols);
      const ref = refSoftmax(X, rows, cols);
      const x = k.upload(X), y = k.alloc(rows * cols), dy = k.upload(DY), dx = k.alloc(rows * cols), lse = k.alloc(rows);
      k.logsumexp(x, lse, rows, cols);
      close(`logsumexp ${rows}x${cols}`, k.read(lse), ref.lse, 1e-5, 1e-6);
      k.softmax(x, y, rows, cols);
      close(`softmax ${rows}x${cols}`, k.read(y), ref.y, 1e-7, 2e-6);
      k.softmaxBackward(y, dy, dx, rows, cols);
      const want = new Float64Array(rows * cols);
      for (let i = 0; i < rows; i++) {
        let dot = 0;
        for (let j = 0; j < cols; j++) dot += DY[i * cols + j]! * ref.y[i * cols + j]!;
        for (let j = 0; j < cols; j++) want[i * cols + j] = ref.y[i * cols + j]! * (DY[i * cols + j]! - dot);
      }
      close(`softmaxBackward ${rows}x${cols}`, k.read(dx), want, 1e-6, 1e-5);
      k.logSoftmax(x, y, rows, cols);
      close(`logSoftmax ${rows}x${cols}`, k.read(y), ref.ly, 1e-5, 1e-6);
      k.logSoftmaxBackward(y, dy, dx, rows, cols);
      for (let i = 0; i < rows; i++) {
        let s = 0;
        for (let j = 0; j < cols; j++) s += DY[i * cols + j]!;
        for (let j = 0; j < cols; j++) want[i * cols + j] = DY[i * cols + j]! - ref.y[i * cols + j]! * s;
      }
      close(`logSoftmaxBackward ${rows}x${cols}`, k.read(dx), want, 1e-5, 1e-5);
      k.softmax(x, x, rows, cols);
      close(`softmax in place ${rows}x${cols}`, k.read(x), ref.y, 1e-7, 2e-6);
      for (const b of [x, y, dy, dx, lse]) k.free(b);
    }
  });

  test(`${k.variant}: fused softmax cross-entropy loss and gradient`, () => {
    const r = rng(12);
    for (const [rows, cols] of SHAPES) {
      const X = randn(r, rows * cols, -10, 10);
      const L = Int32Array.from({ length: rows }, () => Math.floor(r() * cols));
      const ref = refSoftmax(X, rows, cols);
      const x = k.upload(X), labels = k.uploadI32(L), loss = k.alloc(rows), grad = k.alloc(rows * cols);
      const mean = k.softmaxCrossEntropy(x, labels, rows, cols, { loss, grad });
      const perRow = Array.from(L, (l, i) => ref.lse[i]! - X[i * cols + l]!);
      close(`loss ${rows}x${cols}`, k.read(loss), perRow, 1e-5, 1e-6);
      assert.ok(Math.abs(mean - perRow.reduce((a, b) => a + b, 0) / rows) < 1e-5, 'mean loss');
      const want = Array.from(ref.y, (p, i) => (p - (L[Math.floor(i / cols)] === i % cols ? 1 : 0)) / rows);
      close(`grad ${rows}x${cols}`, k.read(grad), want, 1e-7, 2e-6);
      k.softmaxCrossEntropy(x, labels, rows, cols, { loss, grad, gradScale: 3 });
      close(`grad scaled ${rows}x${cols}`, k.read(grad), want.map((v) => v * rows * 3), 3e-7, 2e-6);
      k.softmaxCrossEntropy(x, labels, rows, cols, { loss, grad: x }); // in place over the logits
      close(`loss in place ${rows}x${cols}`, k.read(loss), perRow, 1e-5, 1e-6);
      close(`grad in place ${rows}x${cols}`, k.read(x), want, 1e-7, 2e-6);
      for (const b of [x, labels, loss, grad]) k.free(b);
    }
  });
}

test('SIMD and scalar builds agree on softmax and cross-entropy', () => {
  const r = rng(13);
  const [rows, cols] = [33, 257];
  const X = randn(r, rows * cols, -30, 30), L = Int32Array.from({ length: rows }, () => Math.floor(r() * cols));
  const outs = builds.map((k) => {
    const x = k.upload(X), y = k.alloc(rows * cols), labels = k.uploadI32(L), loss = k.alloc(rows), grad = k.alloc(rows * cols);
    k.softmax(x, y, rows, cols);
    k.softmaxCrossEntropy(x, labels, rows, cols, { loss, grad });
    const out = [k.read(y), k.read(loss), k.read(grad)];
    for (const b of [x, y, labels, loss, grad]) k.free(b);
    return out;
  });
  for (let i = 1; i < outs.length; i++) for (let j = 0; j < 3; j++) close(`${builds[i]!.variant} vs ${builds[0]!.variant} ${j}`, outs[i]![j]!, outs[0]![j]!, 1e-6, 1e-5);
});

test('reductions and cross-entropy reject bad arguments', () => {
  const k = builds[0]!;
  const x = k.alloc(12), out = k.alloc(4), labels = k.uploadI32([0, 1, 5]), loss = k.alloc(3);
  assert.throws(() => k.reduce('sum', x, out, 3, 5, 1), /reduce\(sum\): x has 12 elements but needs 15 \(outer=3, size=5, inner=1\)/);
  assert.throws(() => k.reduce('max', x, out, 4, 0, 1), /reduce\(max\): cannot reduce an empty axis/);
  assert.throws(() => k.reduceAxis('sum', x, [3, 4], 2, out), /reduce\(sum\): axis 2 is out of range for shape \[3,4\]/);
  assert.throws(() => k.softmax(x, out, 3, 4), /softmax: y has 4 elements but needs 12 \(rows=3, cols=4\)/);
  assert.throws(() => k.softmaxCrossEntropy(x, labels, 3, 4, { loss }), /softmaxCrossEntropy: label 5 at row 2 is outside \[0, 4\) \(rows=3, cols=4\)/);
  assert.throws(() => k.softmaxCrossEntropy(x, labels, 3, 4, { loss: out, grad: k.sub(x, 0, 11) }), /softmaxCrossEntropy: grad has 11 elements but needs 12/);
  for (const b of [x, out, labels, loss]) k.free(b);
});

test.run();
