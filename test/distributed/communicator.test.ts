// SPDX-License-Identifier: MIT
// The shared-memory Communicator and launch(): worlds of 2 and 3 ranks (rank 0 is this test, the others
// are worker threads running fixtures/comm-worker.ts) run scripts of collectives; results are checked
// against an f64 reference and for bit-identity across ranks. Then the faults: a rank that throws, exits,
// stalls, aborts, or makes a different call ends the call on every rank with a CommError that names it,
// and nothing hangs; a commit resolves on every surviving rank or rejects on every one, whenever a rank dies.
// Last, the same in headless Chromium, with module Web Workers as the ranks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { CommError, type Communicator } from '../../sdk/distributed/communicator.js';
import { launch, launchData, isLaunchedWorker } from '../../sdk/distributed/launch.js';
import { CommMemory, Kind, Ring, RingAborted } from '../../sdk/distributed/ring.js';
import { input, runScript, type Call, type Outcome, type Script } from './fixtures/comm-script.js';
import type { PlainOutcome } from './fixtures/comm-browser.js';

const entry = new URL('./fixtures/comm-worker.js', import.meta.url);

/** What `p` rejects with (fails if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(() => null, (e: unknown) => e);
  if (!(e instanceof Error)) assert.unreachable(`expected a rejection with an Error, got ${e === null ? 'a resolution' : String(e)}`);
  return e as Error;
}

/** Runs `script` on every rank; resolves to each rank's outcome (index = rank). */
async function world(script: Script, options: { timeoutMs?: number; slotBytes?: number } = {}): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const comm = await launch({ workers: script.workers, entry, workerData: script, onMessage: (rank, m) => { outcomes[rank] = m as Outcome; }, ...options });
  assert.is(comm.rank, 0);
  assert.is(comm.worldSize, script.workers);
  outcomes[0] = await runScript(comm, script);
  await comm.close();
  return outcomes;
}

/** Every rank's result of call i is bit-identical to rank 0's and within f32 rounding of the f64 reference. */
function checkResults(script: Script, outcomes: Outcome[]): void {
  const n = script.workers;
  assert.is(outcomes.length, n, 'an outcome from every rank');
  script.calls.forEach((call, i) => {
    if (call.call === 'barrier' || call.call === 'commit') return;
    const what = `call ${i + 1} (${call.call} of ${call.length}${call.call === 'allReduce' ? `, ${call.op}` : `, root ${call.root}`}) with ${n} ranks`;
    const got = outcomes.map((o) => o.results[i]!);
    for (let r = 1; r < n; r++) {
      assert.equal(new Uint8Array(got[r]!.buffer, got[r]!.byteOffset, got[r]!.byteLength), new Uint8Array(got[0]!.buffer, got[0]!.byteOffset, got[0]!.byteLength), `${what}: rank ${r} differs from rank 0`);
    }
    if (call.call === 'broadcast') {
      assert.equal(Array.from(got[0]!), Array.from(input(call, call.root)), what);
      return;
    }
    const inputs = Array.from({ length: n }, (_, r) => input(call, r));
    for (let j = 0; j < call.length; j++) {
      let sum = 0, abs = 0;
      for (const x of inputs) { sum += x[j]!; abs += Math.abs(x[j]!); }
      const want = call.op === 'mean' ? sum / n : sum;
      // Any order of n - 1 f32 additions errs by at most (n - 1) u Σ|x| (u = 2^-24), the mean's division by u |mean| more.
      const tol = call.integers ? 0 : ((n - 1) * 2 ** -24 * abs) / (call.op === 'mean' ? n : 1) + 2 ** -24 * Math.abs(want);
      const v = got[0]![j]!;
      if (!(Math.abs(v - want) <= tol)) assert.unreachable(`${what}: element ${j} is ${v}, want ${want} (tolerance ${tol})`);
    }
  });
}

const sizes = (n: number, seed: number): Call[] => [0, 1, n - 1, 7, 33, 1000, 4099].map((length, i) => ({ call: 'allReduce', length, op: i % 2 ? 'mean' : 'sum', seed: seed + i }));

for (const workers of [2, 3]) {
  test(`allReduce sum and mean with ${workers} ranks: odd lengths, fewer elements than ranks, many slots long`, async () => {
    // 16-float slots: 1000 and 4099 elements go round in many pieces of workers × 16
    const script: Script = { workers, calls: sizes(workers, 10 * workers) };
    checkResults(script, await world(script, { slotBytes: 64 }));
  });
}

test('allReduce of a buffer several default slots long: integer sums are exact on every rank', async () => {
  const script: Script = { workers: 2, calls: [{ call: 'allReduce', length: 300_001, op: 'sum', seed: 5, integers: true }, { call: 'allReduce', length: 300_001, op: 'mean', seed: 6 }] };
  checkResults(script, await world(script));
});

test('several outstanding calls of every kind complete in order, with shared-memory buffers reduced in place', async () => {
  const calls: Call[] = [
    { call: 'allReduce', length: 500, op: 'sum', seed: 1 }, { call: 'broadcast', length: 77, root: 2, seed: 2 },
    { call: 'allReduce', length: 3, op: 'mean', seed: 3 }, { call: 'barrier' }, { call: 'allReduce', length: 2000, op: 'mean', seed: 4 },
    { call: 'commit' }, { call: 'broadcast', length: 300, root: 1, seed: 5 }, { call: 'allReduce', length: 1, op: 'sum', seed: 6 }, { call: 'commit' },
  ];
  for (const shared of [false, true]) {
    const script: Script = { workers: 3, calls, together: true, shared };
    const outcomes = await world(script, { slotBytes: 128 });
    checkResults(script, outcomes);
    for (const o of outcomes) {
      const order = calls.map((_, i) => i).filter((i) => calls[i]!.call !== 'barrier');
      order.slice(1).forEach((i, k) => assert.ok(o.doneAt[i]! >= o.doneAt[order[k]!]!, `rank ${o.rank}: call ${i + 1} resolved before call ${order[k]! + 1}`));
    }
  }
});

test('broadcast from root 0 and from non-zero roots, shorter and longer than a slot', async () => {
  const calls: Call[] = [0, 1, 2].flatMap((root) => [5, 1000].map((length) => ({ call: 'broadcast' as const, length, root, seed: root * 10 + length })));
  const script: Script = { workers: 3, calls };
  checkResults(script, await world(script, { slotBytes: 256 }));
});

test('barrier returns on no rank before every rank has reached it', async () => {
  const script: Script = { workers: 3, calls: [{ call: 'barrier' }, { call: 'barrier' }], staggerMs: 80 };
  const outcomes = await world(script);
  for (let b = 0; b < 2; b++) {
    const lastIn = Math.max(...outcomes.map((o) => o.barriers[b]!.before));
    const firstOut = Math.min(...outcomes.map((o) => o.barriers[b]!.after));
    assert.ok(firstOut >= lastIn, `barrier ${b + 1}: a rank left at ${firstOut}, before the last arrived at ${lastIn}`);
  }
});

test('collectives progress while the calling thread is busy: rank 1 is done before rank 0 looks up', async () => {
  const script: Script = { workers: 2, calls: [{ call: 'allReduce', length: 100_000, op: 'mean', seed: 1 }, { call: 'broadcast', length: 100_000, root: 0, seed: 2 }], busy: { rank: 0, ms: 400 } };
  const outcomes = await world(script);
  checkResults(script, outcomes);
  for (const i of [0, 1]) assert.ok(outcomes[1]!.doneAt[i]! < outcomes[0]!.busyUntil[i]!, `call ${i + 1}: rank 1 finished at ${outcomes[1]!.doneAt[i]}, rank 0 was busy until ${outcomes[0]!.busyUntil[i]}`);
});

test('a world of one rank: no threads, sum and mean are the identity, stats count the calls', async () => {
  const comm = await launch({ workers: 1, workerData: { x: 1 } });
  assert.is(comm.rank, 0);
  assert.is(comm.worldSize, 1);
  assert.equal(launchData(), { x: 1 });
  assert.is(isLaunchedWorker(), false);
  const a = Float32Array.from([1.5, -2, 3]);
  await comm.allReduce(a, 'mean');
  await comm.allReduce(a, 'sum');
  await comm.broadcast(a, 0);
  await comm.barrier();
  await comm.commit();
  assert.equal(Array.from(a), [1.5, -2, 3]);
  const s = comm.stats();
  assert.equal([s.allReduces, s.broadcasts, s.barriers, s.commits, s.bytes], [2, 1, 1, 1, 36]);
  await comm.close();
  assert.match((await rejection(comm.barrier())).message, /closed/);
});

test('stats count calls, bytes and progress-thread time', async () => {
  const comm = await launch({ workers: 2, entry, workerData: { workers: 2, calls: [{ call: 'allReduce', length: 1000, op: 'sum', seed: 1 }, { call: 'barrier' }] } satisfies Script });
  await comm.allReduce(input({ call: 'allReduce', length: 1000, op: 'sum', seed: 1 }, 0));
  await comm.barrier();
  const s = comm.stats();
  assert.equal([s.allReduces, s.broadcasts, s.barriers, s.bytes], [1, 0, 1, 4000]);
  assert.ok(s.busyMs > 0 && s.copyMs >= 0);
  await comm.close();
});

test('recentCalls: when each call ran, in order, on the clock every thread shares; a busy caller does not hold its calls up', async () => {
  const calls: Call[] = [{ call: 'allReduce', length: 100_000, op: 'mean', seed: 1 }, { call: 'barrier' }, { call: 'broadcast', length: 10, root: 1, seed: 2 }, { call: 'commit' }];
  const script: Script = { workers: 2, calls, busy: { rank: 0, ms: 300 } };
  const comm = await launch({ workers: 2, entry, workerData: script });
  const outcome = await runScript(comm, script);
  const times = comm.recentCalls!();
  assert.equal(Object.keys(outcome.busyUntil), ['0', '2'], 'busy after the all-reduce and the broadcast');
  assert.equal(times.map((c) => [c.seq, c.kind, c.length]), [[1, 'allReduce', 100_000], [2, 'barrier', 0], [3, 'broadcast', 10], [4, 'commit', 0]]);
  times.forEach((c, i) => {
    // calledAt is this thread's clock, startedAt and endedAt the progress thread's: allow a little for them to differ.
    assert.ok(c.calledAt <= c.startedAt + 0.5 && c.startedAt <= c.endedAt, `call ${i + 1}: ${JSON.stringify(c)}`);
    if (i > 0) assert.ok(c.startedAt >= times[i - 1]!.endedAt, `call ${i + 1} started before call ${i} was done`);
    // runScript keeps this thread busy for 300 ms after each all-reduce and broadcast; the progress thread is done long before.
    if (outcome.busyUntil[i] !== undefined) assert.ok(c.endedAt < outcome.busyUntil[i]! - 100, `call ${i + 1} was done only ${(outcome.busyUntil[i]! - c.endedAt).toFixed(1)} ms before the busy spell ended (Date.now())`);
  });
  await comm.close();
  const one = await launch({ workers: 1 });
  await one.allReduce(new Float32Array(3));
  assert.equal(one.recentCalls!(), [], 'a world of one rank records nothing');
  await one.close();
});

test('bad arguments are refused on the calling rank, before anything is sent', async () => {
  assert.match((await rejection(launch({ workers: 0 }))).message, /workers must be an integer >= 1, got 0/);
  const comm = await launch({ workers: 1 });
  assert.match((await rejection(comm.allReduce(new Float32Array(2), 'max' as 'sum'))).message, /op must be 'sum' or 'mean', got max/);
  assert.match((await rejection(comm.broadcast(new Float32Array(2), 1))).message, /root must be a rank in 0..0, got 1/);
  assert.match((await rejection(comm.allReduce(new Float64Array(2) as unknown as Float32Array))).message, /expected a Float32Array/);
  await comm.close();
});

// ---- faults ----

/** Rank 0's CommError and every other live rank's: the same failure everywhere. */
async function failing(script: Script, timeoutMs: number): Promise<{ error: CommError; ms: number; outcomes: Outcome[] }> {
  const outcomes: Outcome[] = [];
  const started = performance.now();
  const comm = await launch({ workers: script.workers, entry, workerData: script, timeoutMs, onMessage: (rank, m) => { outcomes[rank] = m as Outcome; } });
  const mine = await runScript(comm, script);
  const ms = performance.now() - started;
  outcomes[0] = mine;
  assert.ok(mine.error, `rank 0 finished its calls without an error: ${JSON.stringify(mine.results.map((r) => r.length))}`);
  assert.instance(await rejection(comm.allReduce(new Float32Array(4))), CommError, 'a later call fails too');
  await comm.close(); // ends the workers still running; resolves, since a call has reported the failure
  return { error: new CommError(mine.error!.rank, mine.error!.message), ms, outcomes };
}

const five: Call[] = Array.from({ length: 5 }, (_, i) => ({ call: 'allReduce', length: 100, op: 'sum', seed: i }));

test('a rank that throws at its 3rd call ends that call on every rank, naming the rank and the error', async () => {
  const { error, ms, outcomes } = await failing({ workers: 3, calls: five, fault: { rank: 2, at: 3, kind: 'throw' } }, 20_000);
  assert.is(error.message, 'rank 2 failed: Error: boom');
  assert.is(error.rank, 2);
  assert.ok(ms < 5000, `took ${ms} ms; the timeout is 20 s`);
  assert.is(outcomes[1]!.error?.name, 'CommError');
  assert.is(outcomes[1]!.error?.message, 'rank 2 failed: Error: boom');
  assert.is(outcomes[1]!.error?.rank, 2);
  // Rank 2 throws once its call 2 is done; the abort is immediate, so a rank still finishing call 2 (descheduled on
  // a loaded machine) may see it there. Call 1 is done everywhere: rank 2 could not finish call 2 before every
  // rank had started it.
  const done = outcomes[0]!.results.length;
  assert.ok(done === 1 || done === 2, `rank 0 completed ${done} calls`);
});

test('a rank that calls process.exit(3) ends the others\' calls with its exit code', async () => {
  const { error, ms, outcomes } = await failing({ workers: 3, calls: five, fault: { rank: 1, at: 2, kind: 'exit' } }, 20_000);
  assert.is(error.message, 'rank 1 exited with code 3');
  assert.is(error.rank, 1);
  assert.ok(ms < 5000, `took ${ms} ms; the timeout is 20 s`);
  assert.is(outcomes[2]!.error?.message, 'rank 1 exited with code 3');
});

test('a rank whose program ends early (exit code 0) fails the call the others wait for it in', async () => {
  const { error, ms } = await failing({ workers: 3, calls: five, fault: { rank: 2, at: 2, kind: 'return' } }, 20_000);
  assert.match(error.message, /^rank 2 exited with code 0 while rank [01] waited for it in allReduce #2$/);
  assert.is(error.rank, 2);
  assert.ok(ms < 5000, `took ${ms} ms; the timeout is 20 s`);
});

test('a rank that never makes its call: the others time out, naming it, and close() ends it', async () => {
  const started = performance.now();
  const { error, ms, outcomes } = await failing({ workers: 3, calls: five, fault: { rank: 2, at: 1, kind: 'stall' } }, 500);
  assert.match(error.message, /^rank [01] timed out after 500 ms waiting for rank 2 in allReduce #1$/);
  assert.is(error.rank, 2);
  assert.ok(ms >= 450 && ms < 4000, `failed after ${ms} ms with a 500 ms timeout`);
  assert.is(outcomes[1]!.error?.message, error.message, 'rank 1 reports the same failure');
  assert.ok(performance.now() - started < 6000, 'close() ended the stalled rank');
});

test('abort(cause) on rank 0 ends the calls the others are waiting in', async () => {
  const { error, outcomes } = await failing({ workers: 3, calls: five, fault: { rank: 0, at: 2, kind: 'abort' } }, 20_000);
  assert.is(error.message, 'rank 0 failed: Error: stop');
  assert.is(error.rank, 0);
  for (const r of [1, 2]) assert.is(outcomes[r]!.error?.message, 'rank 0 failed: Error: stop');
});

test('ranks that make different calls fail with a message that says how they differ', async () => {
  const { error } = await failing({ workers: 2, calls: five, fault: { rank: 1, at: 2, kind: 'mismatch' } }, 20_000);
  assert.match(error.message, /^call #2 differs between ranks: rank [01] called allReduce\(10[01] floats, sum\) where rank [01] called allReduce\(10[01] floats, sum\)/);
});

// ---- commit: every surviving rank resolves, or every rank rejects ----

test('commit votes: a timed-out commit names the rank that did not vote, seals the count, and a later vote is refused', () => {
  const mem = CommMemory.create(2, 16), ring = new Ring(mem, 0, 50);
  const commit = (seq: number) => ({ seq, kind: Kind.commit, data: new Float32Array(0), extra: 0 });
  assert.ok(mem.vote(), "rank 1's first vote");
  ring.run(commit(1)); // rank 0's vote completes the count: it returns at once
  assert.is(mem.votes(), 2);
  mem.setIssued(1, 1);
  const started = performance.now();
  assert.throws(() => ring.run(commit(2)), (e: unknown) => e instanceof RingAborted);
  assert.ok(performance.now() - started >= 45, 'waited out the timeout');
  assert.equal(mem.abortInfo(), { rank: 1, message: 'rank 0 timed out after 50 ms waiting for rank 1 in commit #2' });
  assert.not.ok(mem.vote(), "rank 1's late vote is refused");
  assert.is(mem.votes(), 3, 'the count is frozen at the seal');
  const other = CommMemory.create(3, 16);
  other.fail(2, 'x');
  assert.not.ok(other.vote(), 'an aborted world takes no vote');
});

/**
 * Runs `script` with a fault (then `after`, on rank 0); every rank's outcome, a rank that exited having none. A rank
 * that reports late is waited for up to 3 s. close() may reject here with a failure that no call saw (a rank exited
 * after its last call): the outcomes say what each call did.
 */
async function faulty(script: Script, timeoutMs: number, after?: (comm: Communicator) => Promise<void>): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const comm = await launch({ workers: script.workers, entry, workerData: script, timeoutMs, onMessage: (rank, m) => { outcomes[rank] = m as Outcome; } });
  outcomes[0] = await runScript(comm, script);
  await after?.(comm);
  const until = performance.now() + 3000, reporting = script.fault!.kind === 'late' ? script.workers : 1;
  while (outcomes.filter(Boolean).length < reporting && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
  await comm.close().catch(() => {});
  return outcomes;
}

const commitLast: Call[] = [{ call: 'allReduce', length: 100, op: 'sum', seed: 1 }, { call: 'commit' }];

test('commit, 3 ranks: a rank that exits before calling it makes the others reject, naming it', async () => {
  for (const [kind, message] of [['exit', /^rank 2 exited with code 3$/], ['return', /^rank 2 exited with code 0 while rank [01] waited for it in commit #2$/]] as const) {
    const outcomes = await faulty({ workers: 3, calls: commitLast, fault: { rank: 2, at: 2, kind } }, 20_000);
    for (const r of [0, 1]) {
      const e = outcomes[r]!.error;
      assert.ok(e, `${kind}: rank ${r}'s commit resolved`);
      assert.is(e!.rank, 2);
      assert.match(e!.message, message);
      // A rank that returns (code 0) fails the others only when they wait for it, in the commit. One that exits
      // with an error code aborts the world at once: a rank still finishing the all-reduce (slow to be scheduled
      // on a loaded machine) may see the abort there, with the same message.
      if (kind === 'return') assert.is(outcomes[r]!.results.length, 1, `${kind}: rank ${r} completed the all-reduce`);
      else assert.ok(outcomes[r]!.results.length <= 1, `${kind}: rank ${r}`);
      assert.ok(e!.afterMs < 5000, `${kind}: rank ${r} failed after ${e!.afterMs} ms; the timeout is 20 s`);
    }
  }
});

test('commit, 3 ranks: a rank that exits once its commit has resolved leaves the others resolved too', async () => {
  const outcomes = await faulty({ workers: 3, calls: commitLast, fault: { rank: 2, at: 2, kind: 'exitAfter' } }, 20_000, async (comm) => {
    const e = await rejection(comm.barrier());
    assert.instance(e, CommError, 'the next call fails: rank 2 is gone');
    assert.match(e.message, /^rank 2 exited with code 3/);
  });
  for (const r of [0, 1]) {
    assert.is(outcomes[r]!.error, undefined, `rank ${r}: ${outcomes[r]!.error?.message}`);
    assert.is(outcomes[r]!.results.length, 2);
  }
});

test('commit, 3 ranks: a commit later than the timeout fails on every rank, the late one included', async () => {
  const outcomes = await faulty({ workers: 3, calls: commitLast, fault: { rank: 2, at: 2, kind: 'late', ms: 600 } }, 300);
  const message = outcomes[0]!.error?.message;
  assert.match(message ?? 'resolved', /^rank [01] timed out after 300 ms waiting for rank 2 in commit #2$/);
  for (const r of [0, 1, 2]) {
    assert.ok(outcomes[r], `rank ${r} reported`);
    assert.is(outcomes[r]!.error?.message, message, `rank ${r}`);
    assert.is(outcomes[r]!.error?.rank, 2);
    assert.is(outcomes[r]!.results.length, 1);
  }
});

test('commit, 3 ranks: a rank that exits right after making its commit: the two others agree, each time', async () => {
  for (const ms of [0, 0, 1, 3]) {
    const outcomes = await faulty({ workers: 3, calls: commitLast, fault: { rank: 2, at: 2, kind: 'exitRacing', ms } }, 20_000);
    const [a, b] = [outcomes[0]!.error, outcomes[1]!.error];
    assert.is(!!a, !!b, `exit ${ms} ms after the call: rank 0 ${a ? `rejected (${a.message})` : 'resolved'}, rank 1 ${b ? `rejected (${b.message})` : 'resolved'}`);
    if (a) for (const e of [a, b!]) { assert.is(e.rank, 2); assert.match(e.message, /^rank 2 exited with code 3/); }
  }
});

test('a commit where another rank makes another call fails with a message that says so', async () => {
  const { error } = await failing({ workers: 2, calls: five, fault: { rank: 1, at: 2, kind: 'commit' } }, 20_000);
  assert.match(error.message, /^call #2 differs between ranks: rank 0 called allReduce\(100 floats, sum\) where rank 1 called commit\(\)/);
  assert.is(error.rank, 0);
});

test('a worker that cannot start, asks for another world size, or never calls launch() fails launch() naming it', async () => {
  const missing = new URL('./fixtures/comm-no-such-file.js', import.meta.url);
  const e1 = await rejection(launch({ workers: 2, entry: missing, timeoutMs: 20_000 }));
  assert.instance(e1, CommError);
  assert.match(e1.message, /^rank 1 failed: Error.*ERR_MODULE_NOT_FOUND|^rank 1 failed: Error: Cannot find module/);
  const e2 = await rejection(launch({ workers: 2, entry, timeoutMs: 20_000, workerData: { workers: 2, askWorkers: 3, calls: [] } satisfies Script }));
  assert.instance(e2, CommError);
  assert.is(e2.message, 'rank 1 failed: Error: launch: rank 1 asks for 3 workers but was started in a world of 2; every rank must pass the same options');
  // a module that never calls launch(): the thread ends at once, and launch() need not wait out the timeout
  const started = performance.now();
  const e3 = await rejection(launch({ workers: 2, entry: new URL('./fixtures/comm-script.js', import.meta.url), timeoutMs: 20_000 }));
  assert.is(e3.message, 'rank 1 exited with code 0 before it joined (does the entry module call launch()?)');
  assert.ok(performance.now() - started < 5000);
});

test('a program whose worker fails, with another worker lingering and no close(), still exits', async () => {
  const main = fileURLToPath(new URL('./fixtures/comm-main.js', import.meta.url));
  const child = spawn(process.execPath, [main], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await new Promise((resolve) => child.on('close', (c, signal) => resolve(signal ?? c)));
  clearTimeout(timer);
  assert.is(code, 0, out);
  assert.match(out, /caught CommError: rank 2 failed: Error: boom/);
});

// ---- module Web Workers in headless Chromium ----

const CHROMIUM = '/usr/bin/chromium';
const dist = resolvePath(fileURLToPath(new URL('../..', import.meta.url)));

/** Serves dist/ with the headers that make a page cross-origin isolated (SharedArrayBuffer), and a page that loads comm-browser.js. */
async function serveDist(): Promise<{ server: Server; url: string }> {
  const page = '<!doctype html><script type="module" src="/test/distributed/fixtures/comm-browser.js"></script>';
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    if (path === '/') { res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end(page); return; }
    const file = normalize(join(dist, path));
    if (!file.startsWith(dist + sep) || extname(file) !== '.js' || !existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

if (!existsSync(CHROMIUM)) {
  console.log(`test/distributed/communicator: browser tests skipped, ${CHROMIUM} missing (Debian: apt-get install -y chromium)`);
  test.skip('launch() with module Web Workers in headless Chromium (chromium is missing: see the message above)', () => {});
} else {
  let browser: Browser | undefined, served: { server: Server; url: string } | undefined;
  /** Runs `script` in a fresh page; rank 0 is the page, ranks 1.. are Web Workers. */
  const inBrowser = async (script: Script): Promise<{ outcomes?: PlainOutcome[]; error?: string }> => {
    if (!browser) {
      served = await serveDist();
      const { chromium } = await import('playwright-core');
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--no-first-run', '--disable-background-networking'] });
    }
    const page = await browser.newPage();
    try {
      await page.goto(`${served!.url}#${encodeURIComponent(JSON.stringify(script))}`);
      await page.waitForFunction(() => (globalThis as { commResult?: unknown }).commResult !== undefined, undefined, { timeout: 20_000 });
      return await page.evaluate(() => (globalThis as { commResult?: unknown }).commResult) as { outcomes?: PlainOutcome[]; error?: string };
    } finally {
      await page.close();
    }
  };
  const typed = (outcomes: PlainOutcome[]): Outcome[] => outcomes.map((o) => ({ ...o, results: o.results.map((r) => Float32Array.from(r)) }));

  test('in a browser: module Web Workers all-reduce and broadcast over shared memory, bit-identical across ranks', async () => {
    const script: Script = { workers: 3, calls: [...sizes(3, 70), { call: 'broadcast', length: 300, root: 2, seed: 80 }, { call: 'barrier' }], together: true };
    const got = await inBrowser(script);
    assert.is(got.error, undefined);
    checkResults(script, typed(got.outcomes!));
  });

  test('in a browser: a rank that throws ends the call on the others, naming it', async () => {
    const got = await inBrowser({ workers: 3, calls: five, fault: { rank: 2, at: 3, kind: 'throw' } });
    assert.is(got.error, undefined);
    for (const r of [0, 1]) {
      assert.is(got.outcomes![r]!.error?.message, 'rank 2 failed: Error: boom', `rank ${r}`);
      const done = got.outcomes![r]!.results.length; // 2, or 1 when the abort reached it inside call 2 (see above)
      assert.ok(done === 1 || done === 2, `rank ${r} completed ${done} calls`);
    }
  });

  test.after(async () => {
    await browser?.close();
    served?.server.close();
  });
}

test.run();
