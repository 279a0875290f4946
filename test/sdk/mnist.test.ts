// SPDX-License-Identifier: MIT
// samples/common/mnist.ts: a fixed, stratified, non-overlapping split of the mnist package's digits.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { loadMnist, MNIST_PIXELS } from '../../samples/common/mnist.js';

const mnist = createRequire(import.meta.url)('mnist') as { length: number; get(i: number): number[] }[];
const perDigit = Array.from({ length: 10 }, (_, d) => mnist[d]!.length);
const countLabels = (l: Int32Array) => { const c = new Array<number>(10).fill(0); for (const x of l) c[x]!++; return c; };

test('two calls give the identical split; the defaults are 8000 / 2000 with seed 0', () => {
  const a = loadMnist({ train: 8000, test: 2000, seed: 0 });
  const b = loadMnist({ train: 8000, test: 2000, seed: 0 });
  const c = loadMnist();
  for (const s of [b, c]) {
    assert.equal(s.train.ids, a.train.ids);
    assert.equal(s.test.ids, a.test.ids);
    assert.equal(s.train.labels, a.train.labels);
    assert.ok(Buffer.from(s.train.images.buffer).equals(Buffer.from(a.train.images.buffer)), 'same train images');
    assert.ok(Buffer.from(s.test.images.buffer).equals(Buffer.from(a.test.images.buffer)), 'same test images');
  }
  const other = loadMnist({ train: 8000, test: 2000, seed: 1 });
  assert.not.equal(other.test.ids, a.test.ids, 'another seed, another split');
});

test('sizes, stratified label counts, no overlap, values and labels from the package', () => {
  const { train, test: tst } = loadMnist({ train: 8000, test: 2000, seed: 0 });
  assert.equal([train.length, train.images.length, train.labels.length], [8000, 8000 * MNIST_PIXELS, 8000]);
  assert.equal([tst.length, tst.images.length, tst.labels.length], [2000, 2000 * MNIST_PIXELS, 2000]);
  const tr = countLabels(train.labels), te = countLabels(tst.labels);
  for (let d = 0; d < 10; d++) {
    assert.ok(Math.abs(tr[d]! - 0.8 * perDigit[d]!) <= 1, `digit ${d}: ${tr[d]} of ${perDigit[d]} in train`);
    assert.is(tr[d]! + te[d]!, perDigit[d]!, `digit ${d}: all samples used`);
  }
  const seen = new Set(train.ids);
  assert.is(seen.size, 8000, 'no repeats in train');
  for (const id of tst.ids) assert.not.ok(seen.has(id), `sample ${id} in both train and test`);
  assert.is(new Set(tst.ids).size, 2000);
  let lo = Infinity, hi = -Infinity;
  for (const v of train.images) { if (v < lo) lo = v; if (v > hi) hi = v; }
  assert.ok(lo === 0 && hi === 1, `values in [${lo}, ${hi}]`);
  // Each sample is the package's sample with that id, under its digit's label; shuffled, not sorted.
  const starts = perDigit.map((_, d) => perDigit.slice(0, d).reduce((a, b) => a + b, 0));
  for (const k of [0, 1, 777, 7999]) {
    const id = train.ids[k]!, d = train.labels[k]!;
    assert.ok(id >= starts[d]! && id < starts[d]! + perDigit[d]!, `id ${id} is a ${d}`);
    assert.equal([...train.images.subarray(k * 784, (k + 1) * 784)], mnist[d]!.get(id - starts[d]!).map(Math.fround));
  }
  let runs = 0;
  for (let k = 1; k < 2000; k++) if (tst.labels[k] !== tst.labels[k - 1]) runs++;
  assert.ok(runs > 1500, `test labels look shuffled (${runs} changes)`);
});

test('small splits stay stratified; bad sizes are refused', () => {
  const { train, test: tst } = loadMnist({ train: 100, test: 50, seed: 3 });
  assert.equal([train.length, tst.length], [100, 50]);
  for (const c of countLabels(train.labels)) assert.ok(c >= 8 && c <= 12, String(countLabels(train.labels)));
  for (const c of countLabels(tst.labels)) assert.ok(c >= 4 && c <= 6, String(countLabels(tst.labels)));
  assert.throws(() => loadMnist({ train: 9000, test: 2000 }), /train \+ test = 11000 but the mnist package has 10000 digits/);
  assert.throws(() => loadMnist({ train: -1 }), /train must be a non-negative integer, got -1/);
  assert.throws(() => loadMnist({ seed: 0.5 }), /seed must be a safe integer, got 0.5/);
});

test.run();
