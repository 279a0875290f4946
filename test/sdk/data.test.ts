// SPDX-License-Identifier: MIT
// The data pipeline: the seeded generator and shuffle are pinned to their documented algorithm,
// batches cover every sample once with the right shapes, prefetch overlaps and cleans up.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { batchCount, batches, Dataset, permutation, prefetch, sampleOrder, SeededRandom, shuffle } from '../../sdk/data/index.js';

test('SeededRandom and permutation give the documented algorithm\'s output (pinned)', () => {
  // These values come from an independent Python transcription of the algorithm in random.ts's header
  // (SplitMix32 seeding, xoshiro128**, rejection sampling, Durstenfeld's Fisher–Yates).
  const r = new SeededRandom(42);
  assert.equal([r.u32(), r.u32(), r.u32(), r.u32()], [2837322924, 544945897, 479756282, 3500138142]);
  assert.equal([...permutation(10, 42)], [3, 6, 8, 7, 5, 0, 9, 2, 1, 4]);
  assert.equal([...permutation(10, 0)], [3, 6, 1, 5, 0, 4, 2, 9, 7, 8]);
  assert.equal([...permutation(12, 2 ** 40 + 5)], [10, 2, 8, 0, 7, 1, 3, 11, 5, 4, 9, 6], 'the high bits of the seed count');
});

test('shuffle: same seed same order, other seed other order, any array, a permutation', () => {
  const a = shuffle(Array.from({ length: 50 }, (_, i) => `s${i}`), 7);
  const b = shuffle(Array.from({ length: 50 }, (_, i) => `s${i}`), 7);
  const c = shuffle(Array.from({ length: 50 }, (_, i) => `s${i}`), 8);
  assert.equal(a, b);
  assert.not.equal(a, c);
  assert.equal([...a].sort(), Array.from({ length: 50 }, (_, i) => `s${i}`).sort());
  const t = shuffle(new Float32Array([1, 2, 3, 4, 5]), 7);
  assert.instance(t, Float32Array);
  assert.equal([...t].sort(), [1, 2, 3, 4, 5]);
  assert.equal(shuffle([], 1), []);
  assert.throws(() => new SeededRandom(1.5), /the seed must be a safe integer, got 1.5/);
  assert.throws(() => new SeededRandom(1).int(0), /n must be an integer in \[1, 2\^32\], got 0/);
});

test('shuffle is uniform: each of the 6 orders of 3 items within 4.5 sigma of 1/6 over 60000 draws', () => {
  const r = new SeededRandom(3);
  const counts = new Map<string, number>();
  for (let i = 0; i < 60000; i++) {
    const k = shuffle([0, 1, 2], r).join('');
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  assert.is(counts.size, 6);
  const sigma = Math.sqrt(60000 * (1 / 6) * (5 / 6));
  for (const [k, c] of counts) assert.ok(Math.abs(c - 10000) < 4.5 * sigma, `order ${k}: ${c}`);
  // Rejection sampling: with n = 3·2^30, a plain u32 mod n would put half the draws below 2^30, not a third.
  let below = 0;
  for (let i = 0; i < 20000; i++) if (r.int(3 * 2 ** 30) < 2 ** 30) below++;
  assert.ok(Math.abs(below / 20000 - 1 / 3) < 4.5 * Math.sqrt((1 / 3) * (2 / 3) / 20000), `P(int(3·2^30) < 2^30) = ${below / 20000}`);
  // And floats: the mean of 10^5 uniforms is 1/2 within 4.5 sigma.
  let s = 0;
  for (let i = 0; i < 100000; i++) { const u = r.float(); assert.ok(u >= 0 && u < 1); s += u; }
  assert.ok(Math.abs(s / 100000 - 0.5) < 4.5 * Math.sqrt(1 / 12 / 100000), `mean ${s / 100000}`);
});

/** n samples of shape [2, 3]: sample i holds 6i, 6i+1, ...; label i is i (or 0.5i, two per sample). */
function toy(n: number): Dataset<Int32Array> {
  return new Dataset({ inputs: Float32Array.from({ length: n * 6 }, (_, k) => k), sampleShape: [2, 3], labels: Int32Array.from({ length: n }, (_, i) => i) });
}

test('Dataset checks its arrays and shapes', () => {
  assert.throws(() => new Dataset({ inputs: new Float32Array(7), sampleShape: [2, 3], labels: new Int32Array(1) }), /inputs has 7 values, not a multiple of the sample shape \[2, 3\] \(6 values\)/);
  assert.throws(() => new Dataset({ inputs: new Float32Array(12), sampleShape: [6], labels: new Int32Array(3) }), /2 samples of shape \[6\] need 2 label values of shape \[\], got 3/);
  assert.throws(() => new Dataset({ inputs: new Float32Array(12), sampleShape: [0, 6], labels: new Int32Array(2) }), /sampleShape must be an array of positive integers, got \[0,6\]/);
  assert.throws(() => new Dataset({ inputs: new Float64Array(12) as unknown as Float32Array, sampleShape: [6], labels: new Int32Array(2) }), /inputs must be a Float32Array, got Float64Array/);
  assert.throws(() => new Dataset({ inputs: new Float32Array(12), sampleShape: [6], labels: [1, 2] as unknown as Int32Array }), /labels must be an Int32Array or a Float32Array, got Array/);
  const ds = new Dataset({ inputs: new Float32Array(12), sampleShape: [6], labels: new Float32Array(4), labelShape: [2] });
  assert.is(ds.length, 2);
  assert.throws(() => toy(3).gather([0, 3]), /index 3 is outside the dataset's 3 samples/);
});

test('gather and subset copy the right rows, labels keep their type', () => {
  const ds = toy(5);
  const b = ds.gather([4, 0, 2], 9);
  assert.equal(b.inputs.shape, [3, 2, 3]);
  assert.is(b.inputs.dtype, 'f32');
  assert.equal([...b.inputs.data.subarray(0, 6)], [24, 25, 26, 27, 28, 29]);
  assert.equal([...b.inputs.data.subarray(6, 12)], [0, 1, 2, 3, 4, 5]);
  assert.equal([b.labels.dtype, b.labels.shape, [...b.labels.data]], ['i32', [3], [4, 0, 2]]);
  assert.instance(b.labels.data, Int32Array);
  assert.equal([...b.indices], [4, 0, 2]);
  assert.is(b.index, 9);
  b.inputs.data[0] = -1;
  assert.is(ds.inputs[24], 24, 'a batch is a copy');
  const reg = new Dataset({ inputs: new Float32Array(6), sampleShape: [2], labels: new Float32Array([0.5, 1, 1.5, 2, 2.5, 3]), labelShape: [2] });
  const rb = reg.gather([2, 1]);
  assert.equal([rb.labels.dtype, rb.labels.shape, [...rb.labels.data]], ['f32', [2, 2], [2.5, 3, 1.5, 2]]);
  assert.instance(rb.labels.data, Float32Array);
  const sub = ds.subset([3, 1]);
  assert.equal([sub.length, [...sub.labels], sub.inputs[0]], [2, [3, 1], 18]);
});

test('batches: every sample once, the last partial batch unless dropLast, shapes per batch', () => {
  const ds = toy(10);
  const all = [...batches(ds, { batchSize: 4 })];
  assert.equal(all.map((b) => b.inputs.shape), [[4, 2, 3], [4, 2, 3], [2, 2, 3]]);
  assert.equal(all.map((b) => b.index), [0, 1, 2]);
  assert.equal(all.flatMap((b) => [...b.labels.data]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'dataset order without shuffle');
  const dropped = [...batches(ds, { batchSize: 4, dropLast: true })];
  assert.equal(dropped.map((b) => b.labels.shape), [[4], [4]]);
  assert.equal([batchCount(ds, { batchSize: 4 }), batchCount(ds, { batchSize: 4, dropLast: true }), batchCount(ds, { batchSize: 5, dropLast: true })], [3, 2, 2]);
  assert.equal([...batches(ds, { batchSize: 100, dropLast: true })], []);
  assert.is([...batches(ds, { batchSize: 100 })][0]!.labels.shape[0], 10);
  assert.throws(() => [...batches(ds, { batchSize: 0 })], /batchSize must be a positive integer, got 0/);
  assert.throws(() => [...batches(ds, { batchSize: 2, shuffle: true, seed: 0.5 })], /seed must be a safe integer, got 0.5/);
  assert.throws(() => [...batches(ds, { batchSize: 2, epoch: -1 })], /epoch must be a non-negative integer, got -1/);
});

test('batches with shuffle: seeded, each epoch its own order, rows and labels stay paired', () => {
  const ds = toy(37);
  const order = (seed: number, epoch: number) => [...batches(ds, { batchSize: 8, shuffle: true, seed, epoch })].flatMap((b) => [...b.labels.data]);
  assert.equal(order(5, 0), order(5, 0));
  assert.equal(order(5, 0), [...permutation(37, 5)], 'epoch 0 is permutation(n, seed)');
  assert.not.equal(order(5, 0), order(5, 1));
  assert.not.equal(order(5, 0), order(6, 0));
  assert.equal([...order(5, 1)].sort((a, b) => a - b), Array.from({ length: 37 }, (_, i) => i));
  // Epoch e continues the same generator: its order is the (e+1)-th permutation drawn from SeededRandom(seed).
  const r = new SeededRandom(5); permutation(37, r); permutation(37, r);
  assert.equal([...sampleOrder(37, { shuffle: true, seed: 5, epoch: 2 })], [...permutation(37, r)]);
  for (const b of batches(ds, { batchSize: 8, shuffle: true, seed: 1 })) {
    for (let k = 0; k < b.indices.length; k++) {
      assert.is(b.inputs.data[k * 6], b.labels.data[k]! * 6);
      assert.is(b.indices[k], b.labels.data[k]);
    }
  }
});

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 2));

test('prefetch: the upload of item k+1 starts before item k is handed out, order is kept', async () => {
  const log: string[] = [];
  const source = function* () { for (let i = 0; i < 4; i++) { log.push(`pull ${i}`); yield i; } };
  const got: number[] = [];
  for await (const u of prefetch(source(), { upload: async (x: number, i: number) => { log.push(`up ${x}`); await tick(); assert.is(i, x); return x * 10; } })) {
    log.push(`use ${u / 10}`);
    got.push(u);
    await tick();
  }
  assert.equal(got, [0, 10, 20, 30]);
  // Before `use k`, `up k+1` has started: double buffering.
  for (let k = 0; k < 3; k++) assert.ok(log.indexOf(`up ${k + 1}`) < log.indexOf(`use ${k}`), log.join(', '));
  // And no deeper than one ahead: item k+2 is not pulled before item k is handed out.
  for (let k = 0; k < 2; k++) assert.ok(log.indexOf(`pull ${k + 2}`) > log.indexOf(`use ${k}`), log.join(', '));
});

test('prefetch: depth 2, sync uploads, async sources, empty sources', async () => {
  const log: string[] = [];
  const src = function* () { for (let i = 0; i < 5; i++) { log.push(`pull ${i}`); yield i; } };
  for await (const u of prefetch(src(), { upload: (x: number) => x, depth: 2 })) log.push(`use ${u}`);
  assert.ok(log.indexOf('pull 2') < log.indexOf('use 0') && log.indexOf('pull 3') > log.indexOf('use 0'), log.join(', '));
  const asyncSrc = async function* () { for (let i = 0; i < 3; i++) { await tick(); yield i; } };
  const out: number[] = [];
  for await (const u of prefetch(asyncSrc(), { upload: async (x: number) => x + 1 })) out.push(u);
  assert.equal(out, [1, 2, 3]);
  const none: number[] = [];
  for await (const u of prefetch([], { upload: (x: never) => x })) none.push(u);
  assert.equal(none, []);
  let err: unknown;
  try { for await (const _ of prefetch([1], { upload: (x) => x, depth: 0 })) { /* */ } } catch (e) { err = e; }
  assert.match(String(err), /depth must be a positive integer, got 0/);
});

test('prefetch: stopping early discards the prepared items and closes the source', async () => {
  const discarded: number[] = [];
  let closed = false;
  const src = function* () { try { for (let i = 0; ; i++) yield i; } finally { closed = true; } };
  for await (const u of prefetch(src(), { upload: async (x: number) => x, discard: (u) => { discarded.push(u); }, depth: 2 })) {
    if (u === 3) break;
  }
  assert.equal(discarded, [4, 5]);
  assert.ok(closed, 'source closed');
});

test('prefetch: an upload error surfaces at its item, after the items before it', async () => {
  const got: number[] = [];
  const discarded: number[] = [];
  let unhandled = 0;
  const onUnhandled = () => { unhandled++; };
  process.on('unhandledRejection', onUnhandled);
  let err: unknown;
  try {
    for await (const u of prefetch([0, 1, 2, 3, 4], {
      upload: async (x: number) => { await tick(); if (x === 2) throw new Error('upload 2 failed'); return x; },
      discard: (u) => { discarded.push(u); },
    })) { got.push(u); await tick(); await tick(); }
  } catch (e) { err = e; }
  await tick();
  process.off('unhandledRejection', onUnhandled);
  assert.equal(got, [0, 1]);
  assert.match(String(err), /upload 2 failed/);
  assert.equal(discarded, [3], 'the item uploaded behind the failing one is discarded');
  assert.is(unhandled, 0);
});

test.run();
