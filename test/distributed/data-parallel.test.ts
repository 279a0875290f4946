// SPDX-License-Identifier: MIT
// dataParallel on the CPU backend, with real worker threads (this thread is rank 0; the others run
// fixtures/dp-worker.ts): one step on 2 and 3 workers equals one step of one worker on the whole batch (mean and
// sum losses, equal and unequal slices, with and without overlap), the parameters stay bitwise identical on every
// rank over 50 Adam steps with memory flat, and a rank that exits or throws in the middle of a run ends that step
// on every other rank with an Error naming it and the cause, within the timeout, with no parameter updated; a rank
// that dies at a step's commit leaves the others with the same parameters, the step applied on all or on none. And
// the MNIST sample's --workers 2 trains to the accuracy of one worker.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, dataParallel } from '../../sdk/index.js';
import { load, root } from '../support/compile.js';
import { rng } from '../support/rng.js';
import { tailStart } from '../../sdk/distributed/data-parallel.js';

const w = await load('test/distributed/fixtures/dp-worker.ts');
const m = await import('../../../.cache/test/distributed/fixtures/dp-models.js' as string);
type Config = import('./fixtures/dp-worker.js').Config;
type Report = import('./fixtures/dp-worker.js').Report;
await init({ backend: 'cpu' });

const SIZES = [12, 16, 16, 5];
const base: Omit<Config, 'workers' | 'batch'> = { sizes: SIZES, reduction: 'mean', steps: 1, optimizer: 'sgd', timeoutMs: 10_000 };

/** |a - b| <= atol + rtol |b| elementwise, naming the worst element. */
function close(what: string, got: readonly number[], want: readonly number[], rtol = 1e-5, atol = 1e-6): void {
  assert.is(got.length, want.length, `${what}: length`);
  let worst = -1, excess = 0;
  got.forEach((g, i) => {
    const e = Math.abs(g - want[i]!) - (atol + rtol * Math.abs(want[i]!));
    if (e > excess) { worst = i; excess = e; }
  });
  if (worst >= 0) assert.unreachable(`${what}: element ${worst} is ${got[worst]}, expected ${want[worst]}`);
}

async function oneStepMatches(workers: number, batch: number, extra: Partial<Config> = {}): Promise<void> {
  const cfg: Config = { ...base, workers, batch, ...extra };
  const reports: Report[] = await w.run(cfg);
  assert.equal(reports.map((r) => r.rank), Array.from({ length: workers }, (_, i) => i));
  for (const r of reports) {
    assert.equal(r.initial, reports[0]!.initial, `rank ${r.rank} did not start from rank 0's parameters`);
    assert.equal(r.final, reports[0]!.final, `rank ${r.rank}'s parameters differ from rank 0's after the step`);
    assert.is(r.losses[0], reports[0]!.losses[0]);
  }
  const want = await w.oneWorker(cfg, reports[0]!.initial);
  assert.ok(reports[0]!.final.some((v, i) => v !== reports[0]!.initial[i]), 'the step changed nothing');
  close(`parameters after ${cfg.steps} step(s)`, reports[0]!.final, want.params);
  close('losses', reports[0]!.losses, want.losses);
}

test('2 workers, mean loss, equal slices: one step = one worker on the whole batch', () => oneStepMatches(2, 12));
test('3 workers, mean loss, unequal slices (3, 2, 2 rows), reduced after backward: one step = one worker', () => oneStepMatches(3, 7, { overlap: false }));
test('2 workers, a Tensor argument every rank needs whole (batchArgs): one step = one worker', () => oneStepMatches(2, 10, { scaled: true }));
test('3 workers, summed loss (gradReduce sum), slices of 3, 3 and 4 rows, 16-float buckets: one step = one worker', () => oneStepMatches(3, 10, { reduction: 'sum', bucketBytes: 64 }));

test('4 steps on 2 and 3 workers, buckets rebuilt from rank 0\'s order and times of finality after the first: = one worker on the whole batches', async () => {
  await oneStepMatches(2, 12, { steps: 4 });
  await oneStepMatches(3, 10, { steps: 4, bucketBytes: 256 });
});

test('StepTiming.bucketTimes: each bucket\'s all-reduce asked for, started and done in that order, relative to the end of backward; the last weight in blocks', async () => {
  for (const overlap of [true, false]) {
    const reports: Report[] = await w.run({ ...base, workers: 2, batch: 12, steps: 3, bucketBytes: 256, overlap });
    for (const r of reports) {
      const what = `rank ${r.rank}, ${overlap ? 'overlapped' : 'after backward'}`;
      assert.is(r.bucketTimes.length, r.buckets, `${what}: a time for every bucket`);
      assert.is(r.bucketTimes.reduce((n, b) => n + b.length, 0), SIZES.slice(1).reduce((n, k, i) => n + (SIZES[i]! + 1) * k, 0), `${what}: the buckets hold every gradient`);
      // Started and done come from the progress thread's clock: allow a little for the threads' clocks to differ.
      for (const b of r.bucketTimes) assert.ok(b.calledMs <= b.startedMs + 0.5 && b.startedMs <= b.endedMs, `${what}: ${JSON.stringify(b)}`);
      for (let k = 1; k < r.bucketTimes.length; k++) assert.ok(r.bucketTimes[k]!.startedMs >= r.bucketTimes[k - 1]!.endedMs, `${what}: bucket ${k} started before bucket ${k - 1} was done`);
      // The first layer's weight [12, 16] is the gradient final last (with its bias): with overlap it is reduced in
      // blocks of one row (a quarter of a 64-float bucket), each as soon as the backward pass has computed it.
      const lengths = r.bucketTimes.map((b) => b.length);
      if (overlap) assert.equal(lengths.slice(-12), [...Array<number>(11).fill(16), 16 + 16], `${what}: ${lengths}`);
      else assert.ok(lengths.includes(12 * 16), `${what}: ${lengths}`);
      const before = r.bucketTimes.filter((b) => b.calledMs < 0).length;
      if (overlap) assert.ok(before >= r.buckets - 1, `${what}: ${before} of ${r.buckets} buckets asked for during backward`);
      else assert.is(before, 0, `${what}: a bucket asked for during backward`);
    }
  }
});

test('blockGradients: false keeps the first weight whole in the overlapped mode (still during backward where it can be)', async () => {
  const reports: Report[] = await w.run({ ...base, workers: 2, batch: 12, steps: 3, bucketBytes: 256, overlap: true, blockGradients: false });
  for (const r of reports) {
    const lengths = r.bucketTimes.map((b) => b.length);
    assert.ok(lengths.includes(12 * 16), `rank ${r.rank}: ${lengths}`);
    assert.not.ok(lengths.slice(-12).every((n) => n <= 32), `rank ${r.rank}: blocks despite blockGradients false: ${lengths}`);
  }
});

test('tailStart: the gradients final at the very end get a last bucket of their own, at most a quarter of a bucket', () => {
  // The first block of the 4-block transformer of bench/dp.ts (d 128), in the order and at the times (ms before the end
  // of backward) its gradients became final: only the attention projections and the first layer norm are final at the end.
  const block = [65536, 128, 65536, 512, 128, 128, 16384, 16384, 16384, 16384, 128, 128];
  const blockMs = [-24, -24, -19.7, -19.6, -19.1, -19.1, -18.5, -5.6, -2.6, -1.6, -1.2, -1.2];
  assert.is(tailStart(block, blockMs, 1 << 18), 7, 'cut before wv, at the widest gap (12.9 ms)');
  assert.is(tailStart(block, blockMs, 140_000), 8, 'a quarter of a 140,000-float bucket holds wk, wq and the layer norm (33,024 floats)');
  assert.is(tailStart(block, blockMs, 1 << 16), -1, 'a quarter of a 64 Ki-float bucket holds only the layer norm, final 0.4 ms after wq: no bucket of its own');
  assert.is(tailStart(block, blockMs, 4), -1, 'not even the last gradient fits a quarter of the bucket');
  // The MLP 784-256-256-10: the first layer's weight and bias are final together at the end; splitting them gains nothing.
  assert.is(tailStart([2560, 10, 65536, 256, 200704, 256], [-2.6, -2.6, -1.6, -1.6, -0.07, -0.06], 1 << 18), -1);
  assert.is(tailStart([5, 5, 5], [-3, -3, -3], 100), -1, 'all final at once');
  assert.is(tailStart([5], [0], 100), -1, 'one parameter');
  // Any cut holds at most a quarter of a bucket and sits at a gap of at least a twentieth of the backward pass, the widest of those possible.
  const r = rng(7);
  let cuts = 0;
  for (let trial = 0; trial < 500; trial++) {
    const m = 1 + Math.floor(r() * 12), sizes = Array.from({ length: m }, () => 1 + Math.floor(r() ** 3 * 5000));
    let t = -100 * r();
    const times = sizes.map(() => (t += r() < 0.3 ? 0 : r() ** 2 * 20));
    const capacity = 1 + Math.floor(r() * 20000), k = tailStart(sizes, times, capacity);
    const what = `sizes ${sizes}, times ${times.map((x) => x.toFixed(2))}, capacity ${capacity}: cut at ${k}`;
    const gap = (j: number) => times[j]! - times[j - 1]!, enough = (times[m - 1]! - times[0]!) / 20;
    const possible = Array.from({ length: m }, (_, j) => j).filter((j) => j > 0 && sizes.slice(j).reduce((a, b) => a + b) <= capacity / 4);
    if (k < 0) {
      for (const j of possible) assert.ok(gap(j) === 0 || gap(j) < enough, `${what}: a cut at ${j} spans a gap of ${gap(j)}`);
      continue;
    }
    cuts++;
    assert.ok(possible.includes(k), what);
    assert.ok(gap(k) >= enough, what);
    for (const j of possible) assert.ok(gap(j) <= gap(k), `${what}: a wider gap at ${j}`);
  }
  assert.ok(cuts > 100, `only ${cuts} of 500 random cases were cut`);
});

test('50 Adam steps on 3 workers: parameters bitwise identical on every rank, buckets started during backward, memory flat', async () => {
  const reports: Report[] = await w.run({ ...base, workers: 3, batch: 12, steps: 50, optimizer: 'adam', bucketBytes: 512 });
  for (const r of reports) {
    assert.is(r.losses.length, 50);
    assert.equal(r.final, reports[0]!.final, `rank ${r.rank}'s parameters differ from rank 0's after 50 steps`);
    assert.equal(r.losses, reports[0]!.losses);
  }
  const [r0] = reports;
  assert.ok(r0!.losses[49]! < 0.6 * r0!.losses[0]!, `loss ${r0!.losses[0]} -> ${r0!.losses[49]}`);
  assert.ok(r0!.buckets > 2 && r0!.startedDuringBackward >= r0!.buckets - 1, `${r0!.startedDuringBackward} of ${r0!.buckets} buckets started during the backward pass`);
  assert.is(r0!.live[1], r0!.live[0], `rank 0's live tensors after steps 2 and 50: ${r0!.live}`);
});

/** Every surviving rank: a step error naming `rank` and the cause, within the timeout, parameters untouched. */
function faultReported(reports: Report[], rank: number, cause: RegExp, timeoutMs: number): void {
  for (const r of reports.filter((x) => x.rank !== rank)) {
    const e = r.error;
    assert.ok(e, `rank ${r.rank} finished without an error`);
    assert.is(e!.rank, rank, `rank ${r.rank}: ${e!.name}: ${e!.message}`);
    assert.match(e!.message, new RegExp(`rank ${rank}`));
    assert.match(e!.message, cause);
    assert.ok(e!.ms < timeoutMs, `rank ${r.rank} learnt of the failure after ${e!.ms.toFixed(0)} ms (timeout ${timeoutMs})`);
    assert.not.ok(e!.changed, `rank ${r.rank} changed its parameters in the failed step`);
    assert.is(r.losses.length, 3, `rank ${r.rank} trained ${r.losses.length} steps before the failure`);
  }
}

test('a worker that exits at step 3 of 3 ranks: the others fail that step naming it and the exit, parameters unchanged', async () => {
  const timeoutMs = 8000;
  const t0 = performance.now();
  const reports: Report[] = await w.run({ ...base, workers: 3, batch: 12, steps: 6, timeoutMs, fault: { rank: 2, step: 3, how: 'exit' } });
  assert.equal(reports.map((r) => r.rank), [0, 1]); // rank 2 is gone
  faultReported(reports, 2, /exited with code 3/, timeoutMs);
  assert.ok(performance.now() - t0 < 2 * timeoutMs);
});

test('a worker whose loss throws at step 3: every rank fails that step naming it and the error, parameters unchanged', async () => {
  const timeoutMs = 8000;
  const reports: Report[] = await w.run({ ...base, workers: 2, batch: 12, steps: 6, timeoutMs, fault: { rank: 1, step: 3, how: 'throw' } });
  assert.equal(reports.map((r) => r.rank), [0, 1]);
  faultReported(reports, 1, /label 95/, timeoutMs);
  // The rank that threw reports its own error, and does not update either.
  const own = reports[1]!.error!;
  assert.match(own.message, /step 4 failed on rank 1: .*label 95/);
  assert.not.ok(own.changed);
  assert.equal(reports[1]!.final, reports[0]!.final);
});

/** Ranks 0 and 1, after rank 2 died at the commit of step 3: the same steps applied, the same parameters, the failure reported. */
function survivorsAgree(reports: Report[], what: string): number {
  assert.equal(reports.map((r) => r.rank), [0, 1], what);
  const [a, b] = reports as [Report, Report];
  assert.equal(b.losses, a.losses, `${what}: ranks 0 and 1 completed different steps`);
  assert.equal(b.final, a.final, `${what}: ranks 0 and 1 ended with different parameters`);
  for (const r of reports) {
    assert.is(r.error?.rank, 2, `${what}: rank ${r.rank}: ${r.error?.message ?? 'no error'}`);
    assert.match(r.error!.message, /rank 2 exited with code 3/);
    assert.not.ok(r.error!.changed, `${what}: rank ${r.rank} changed its parameters in the step that failed`);
  }
  return a.losses.length;
}

test('a worker that exits once its commit of step 3 has resolved: the others apply step 3 as well, and fail the next', async () => {
  const reports: Report[] = await w.run({ ...base, workers: 3, batch: 12, steps: 6, fault: { rank: 2, step: 3, how: 'afterCommit' } });
  assert.is(survivorsAgree(reports, 'exit after the commit'), 4, 'steps 0 to 3 applied');
});

test('a worker that exits 0, 1 and 2 ms after making its commit of step 3: the others apply that step both or neither', async () => {
  // At 0 ms its vote is usually lost, at 1 ms usually cast; by 2 ms it may have gone on to later steps.
  for (const ms of [0, 1, 2]) {
    const reports: Report[] = await w.run({ ...base, workers: 3, batch: 12, steps: 6, fault: { rank: 2, step: 3, how: 'commit', ms } });
    const applied = survivorsAgree(reports, `exit ${ms} ms after the commit`);
    assert.ok(applied >= 3, `exit ${ms} ms after the commit: ${applied} steps applied`);
  }
});

test('samples/mnist --quick --workers 2 reaches the accuracy of one worker, printing from rank 0 only', () => {
  const run = (...extra: string[]) => {
    const out = mkdtempSync(join(tmpdir(), 'pullback-mnist-dp-'));
    try {
      const r = spawnSync(process.execPath, ['--import', 'pullback/register', 'samples/mnist/train.ts', '--quick', '--backend', 'cpu', '--out', out, ...extra], {
        cwd: root, encoding: 'utf8', timeout: 60_000,
      });
      assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr}\n${r.stdout}`);
      return { stdout: r.stdout, history: JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as { testAccuracy: number; loss: { values: number[] } } };
    } finally { rmSync(out, { recursive: true, force: true }); }
  };
  const one = run(), two = run('--workers', '2');
  assert.match(two.stdout, /2 data-parallel workers/);
  assert.is(two.stdout.match(/^test accuracy:/gm)?.length, 1, 'only rank 0 prints');
  assert.ok(Math.abs(two.history.testAccuracy - one.history.testAccuracy) <= 1.5, `accuracy ${two.history.testAccuracy}% with 2 workers, ${one.history.testAccuracy}% with one`);
  const [a, b] = [one.history.loss.values.at(-1)!, two.history.loss.values.at(-1)!];
  assert.ok(Math.abs(a - b) <= 0.05 * a, `last loss ${b} with 2 workers, ${a} with one`);
});

test('options are checked', async () => {
  const rejects = async (p: Promise<unknown>, re: RegExp) => {
    const e = await p.then(() => null, (err: Error) => err);
    assert.ok(e, `expected a rejection matching ${re}`);
    assert.match(e!.message, re);
  };
  await rejects(dataParallel(m.mlpLoss, { workers: 0 }), /workers must be an integer ≥ 1, got 0/);
  await rejects(dataParallel(m.mlpLoss, { workers: 1, gradReduce: 'max' as never }), /gradReduce must be 'mean' or 'sum'/);
  await rejects(dataParallel(m.mlpLoss, { workers: 1, batchArgs: [0, -1] }), /batchArgs must list the indices/);
  await rejects(dataParallel(m.mlpLoss, { workers: 1, blockGradients: 'no' as never }), /blockGradients must be true or false, got no/);
});

test.run();
