// SPDX-License-Identifier: MIT
// npm run bench:dp (node --import pullback/register bench/dp.ts [--quick]) — data-parallel training steps of the
// training benchmark's two models (bench/train.ts: the MLP 784→256→256→10 at batch 128, and the 4-block
// transformer d_model 128, seq 128 at batch 4; AdamW) on the CPU backend (or WebGPU, --backend=webgpu):
//  - 1 worker: valueAndGrad + AdamW on the whole batch, in this thread alone (the other rank waits, idle);
//  - 2 workers, without overlap: each rank takes half the batch, every gradient bucket is all-reduced after the
//    backward pass (reduce after backward);
//  - 2 workers, with overlap: each bucket's all-reduce starts during the backward pass, as soon as it is full;
// and the fraction of all-reduce time hidden behind the backward pass, 1 - (wait after the backward pass with
// overlap) / (wait after it without): the wait is the time from the end of the backward pass until every bucket is
// reduced, which without overlap is the whole all-reduce time. Steps of the three modes run interleaved, on one
// world of two ranks (this thread is rank 0; the worker runs this file again); the table reports medians on rank 0.
//
// The wait on one rank also holds the other rank's lateness: a rank that ends its backward pass first waits for the
// other's to end (load imbalance, not communication), and the rank that ends last finds the other's share of the
// all-reduce done. Which rank ends last varies from step to step, so rank 0's wait swings both ways. The figure
// "on the rank that ended backward last" takes, in each step, the wait of that rank (which holds no waiting for the
// other's backward pass): the communication left once both backward passes are over. Rank 1 sends its timings to rank 0.
//
// On a 2-core machine the two workers and their progress threads share two cores, so the step times show how
// data-parallel training competes for the CPU here rather than the speed-up of one core per worker; the fraction
// hidden is the figure this benchmark is about. Flags: --quick (fewer steps), --model=mlp,transformer, --backend=webgpu
// (each rank with a device of its own, on the adapter PULLBACK_GPU_ADAPTER names: swiftshader by default, hardware),
// --bucket-bytes=N (default 1 MiB), --no-blocks (the overlapped mode without gradient blocks: dataParallel's
// blockGradients false), --trace (each bucket's all-reduce on both ranks, relative to the end of the
// backward pass: when asked for, started and done on the progress thread; medians).
import { parentPort } from 'node:worker_threads';
import {
  type Optimizer, type StepTiming, type Tensor, adamw, dataParallel, init, isLaunchedWorker, launch, launchData, tensor, tensorsIn, valueAndGrad,
} from 'pullback';
import * as m from './programs/models.js';
import { ADAMW, type ModelCase, mlpCase, transformerCase } from './peers.js';
import { median, report, row, type BenchRow } from './report.js';
import { paramTree } from './params.js';

/** Warm-up and timed rounds per model: an MLP step takes milliseconds, so it needs many rounds to get past the noise. */
interface Plan {
  models: ModelCase['kind'][]; warmup: number; reps: Record<ModelCase['kind'], number>; bucketBytes: number;
  /** Every rank's backend; on WebGPU each rank opens its own device on the adapter PULLBACK_GPU_ADAPTER names (default SwiftShader). */
  backend: 'cpu' | 'webgpu'; adapter: 'swiftshader' | 'hardware' | 'auto';
  /** dataParallel's blockGradients (the overlapped mode's large final weight gradient in blocks); --no-blocks turns it off. */
  blocks: boolean;
}
const WORKERS = 2;


const describeCase = (c: ModelCase) => c.kind === 'mlp'
  ? `MLP ${c.sizes.join('-')} batch ${c.batch}`
  : `transformer ${c.blocks} blocks d${c.dModel} s${c.seq} h${c.heads} batch ${c.batch}`;

interface CaseResult {
  label: string;
  params: number;
  single: number[];
  /** Rank 0's steps, and (in rank 0, once runCase returns) rank 1's timings of the same steps. */
  modes: { overlap: boolean; total: number[]; timing: StepTiming[]; peer: StepTiming[] }[];
  losses: number[];
}

/** Rank 1's timings, posted to rank 0 at the end of each case. */
interface PeerTimings { peerTimings: StepTiming[][] }
const peerInbox: StepTiming[][][] = [];

/** One model on every rank: interleaved rounds of (1 worker on rank 0 | 2 workers reduce after backward | 2 workers with overlap). */
async function runCase(kind: ModelCase['kind'], plan: Plan, comm: Awaited<ReturnType<typeof launch>>): Promise<CaseResult> {
  const c = kind === 'mlp' ? mlpCase() : transformerCase();
  const params = paramTree(c);
  const data: unknown[] = c.kind === 'mlp'
    ? [tensor(c.x, [c.batch, c.sizes[0]!]), tensor(c.labels, [c.batch], 'i32')]
    : [tensor(c.x, [c.batch, c.seq, c.dModel]), c.heads, false];
  const lossFn = (c.kind === 'mlp' ? m.classifierLoss : m.transformerLoss) as (p: unknown, ...batch: any[]) => Tensor;
  const trainers = [false, true].map((overlap) => dataParallel(lossFn, { workers: WORKERS, comm, overlap, blockGradients: plan.blocks, bucketBytes: plan.bucketBytes }));
  const [plain, overlapped] = await Promise.all(trainers);
  await plain!.broadcast(params);
  const opt: Optimizer = adamw({ ...ADAMW });
  const result: CaseResult = {
    label: describeCase(c), params: tensorsIn(params).reduce((n, t) => n + t.size, 0), single: [],
    modes: [{ overlap: false, total: [], timing: [], peer: [] }, { overlap: true, total: [], timing: [], peer: [] }], losses: [],
  };
  // 1 worker: rank 0 trains a copy of its own on the whole batch while the other rank waits at the barrier.
  const lossAndGrad = valueAndGrad(lossFn);
  const own = comm.rank === 0 ? paramTree(c) : null, ownOpt = adamw({ ...ADAMW });
  for (let r = 0; r < plan.warmup + plan.reps[kind]; r++) {
    const timed = r >= plan.warmup;
    if (own) {
      const t0 = performance.now();
      const [loss, grads] = lossAndGrad(own, ...data) as unknown as [Tensor, unknown];
      await ownOpt.step(own, grads);
      result.losses.push(await loss.item());
      loss.dispose();
      if (timed) result.single.push(performance.now() - t0);
    }
    await comm.barrier();
    for (const [i, dp] of [plain!, overlapped!].entries()) {
      const t0 = performance.now();
      const s = await dp.step(params, opt, ...data);
      result.losses.push(s.loss);
      if (timed) { result.modes[i]!.total.push(performance.now() - t0); result.modes[i]!.timing.push(s.timing); }
    }
  }
  opt.dispose(); ownOpt.dispose();
  for (const t of [...tensorsIn(params), ...tensorsIn(own), ...tensorsIn(data)]) t.dispose();
  if (comm.rank !== 0) parentPort!.postMessage({ peerTimings: result.modes.map((md) => md.timing) } satisfies PeerTimings);
  else {
    while (!peerInbox.length) await new Promise((resolve) => setTimeout(resolve, 5));
    peerInbox.shift()!.forEach((timing, i) => { result.modes[i]!.peer = timing; });
  }
  return result;
}

/** What every rank runs: the cases in turn, on one world. */
async function ranks(plan: Plan): Promise<{ results: CaseResult[]; description: string }> {
  const { description } = plan.backend === 'cpu' ? await init({ backend: 'cpu' }) : await init({ backend: 'webgpu', adapter: plan.adapter });
  const comm = await launch({ workers: WORKERS, workerData: plan, onMessage: (_rank, m) => { peerInbox.push((m as PeerTimings).peerTimings); } });
  const out: CaseResult[] = [];
  for (const kind of plan.models) out.push(await runCase(kind, plan, comm));
  await comm.close();
  return { results: out, description };
}

/** Per bucket, medians over the steps (ms relative to the end of this rank's backward pass). */
function timeline(title: string, timing: StepTiming[]): string {
  const f = (xs: number[]) => median(xs).toFixed(2).padStart(8);
  const lines = [`  ${title}: bucket (floats): asked for, started, done on the progress thread; started - asked, done - started`];
  timing[0]!.bucketTimes.forEach((b, k) => {
    const col = (g: (x: StepTiming['bucketTimes'][number]) => number) => f(timing.map((t) => g(t.bucketTimes[k]!)));
    lines.push(`    ${k} (${b.length})`.padEnd(18) + col((x) => x.calledMs) + col((x) => x.startedMs) + col((x) => x.endedMs) +
      '  ' + col((x) => x.startedMs - x.calledMs) + col((x) => x.endedMs - x.startedMs));
  });
  return lines.join('\n');
}

if (isLaunchedWorker()) {
  await ranks(launchData() as Plan);
} else {
  const argv = process.argv.slice(2);
  const flag = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const quick = argv.includes('--quick'), trace = argv.includes('--trace');
  const plan: Plan = {
    models: (flag('model')?.split(',') ?? ['mlp', 'transformer']) as ModelCase['kind'][],
    warmup: quick ? 2 : 5, reps: quick ? { mlp: 20, transformer: 5 } : { mlp: 100, transformer: 30 }, bucketBytes: Number(flag('bucket-bytes') ?? 1 << 20),
    backend: (flag('backend') ?? 'cpu') as Plan['backend'], adapter: (process.env.PULLBACK_GPU_ADAPTER ?? 'swiftshader') as Plan['adapter'],
    blocks: !argv.includes('--no-blocks'),
  };
  if (plan.backend !== 'cpu' && plan.backend !== 'webgpu') throw new Error(`--backend must be cpu or webgpu, got ${plan.backend}`);
  const started = performance.now();
  const { results, description } = await ranks(plan);
  const cores = `${WORKERS} ranks on ${(await import('node:os')).availableParallelism()} cores${plan.blocks ? '' : ', no gradient blocks'}`;
  const adapter = plan.backend === 'cpu' ? `cpu (Wasm, 1 thread per rank), ${cores}` : `webgpu (${description}, a device per rank), ${cores}`;
  const rows: BenchRow[] = [];
  const fmt = (x: number) => x.toFixed(1).padStart(7);
  for (const r of results) {
    const one = median(r.single);
    const [plain, over] = r.modes.map((md) => ({
      total: median(md.total), compute: median(md.timing.map((t) => t.computeMs)), wait: median(md.timing.map((t) => t.waitMs)),
      apply: median(md.timing.map((t) => t.applyMs)), buckets: md.timing[0]!.buckets,
      during: median(md.timing.map((t) => t.startedDuringBackward)),
      // In each step, the wait of the rank whose backward pass ended last.
      lastWait: median(md.timing.map((t, k) => { const p = md.peer[k]!; return t.backwardEndAt >= p.backwardEndAt ? t.waitMs : p.waitMs; })),
      rank0Last: md.timing.filter((t, k) => t.backwardEndAt >= md.peer[k]!.backwardEndAt).length / md.timing.length,
    })) as [any, any];
    const hidden = 1 - over.wait / plain.wait, hiddenLast = 1 - over.lastWait / plain.lastWait;
    console.log(`\n${r.label} (${(r.params / 1e6).toFixed(2)} M parameters, ${r.single.length} timed rounds after ${plan.warmup} warm-up; medians on rank 0, ms)`);
    console.log(`                                 step  fwd+bwd  wait after bwd  update+agree  buckets (started during bwd)`);
    console.log(`  1 worker                     ${fmt(one)}`);
    for (const [name, x] of [['2 workers, reduce after bwd', plain], ['2 workers, overlap', over]] as const) {
      console.log(`  ${name.padEnd(27)}${fmt(x.total)}  ${fmt(x.compute)}  ${fmt(x.wait)}         ${fmt(x.apply)}     ${x.buckets} (${x.during})`);
    }
    console.log(`  all-reduce time hidden behind backward: ${(100 * hidden).toFixed(0)}% (wait ${over.wait.toFixed(2)} ms with overlap, ${plain.wait.toFixed(2)} ms without)`);
    console.log(`    on the rank that ended backward last: ${(100 * hiddenLast).toFixed(0)}% (wait ${over.lastWait.toFixed(2)} ms with overlap, ${plain.lastWait.toFixed(2)} ms without;` +
      ` rank 0 ended last in ${(100 * plain.rank0Last).toFixed(0)}% of the steps without overlap, ${(100 * over.rank0Last).toFixed(0)}% with)`);
    if (trace) for (const md of r.modes) for (const [rank, timing] of [[0, md.timing], [1, md.peer]] as const) console.log(timeline(`${md.overlap ? 'overlap' : 'reduce after bwd'}, rank ${rank}`, timing));
    rows.push(
      row({ case: `${r.label}: step, 2 workers without overlap vs 1 worker`, unit: 'ms', pullback: plain.total, peer: one, peerName: '1 worker', better: 'lower', adapter }),
      row({ case: `${r.label}: step, 2 workers with overlap vs 1 worker`, unit: 'ms', pullback: over.total, peer: one, peerName: '1 worker', better: 'lower', adapter }),
      row({ case: `${r.label}: step, 2 workers with overlap vs without`, unit: 'ms', pullback: over.total, peer: plain.total, peerName: '2 workers, reduce after backward', better: 'lower', adapter }),
      row({ case: `${r.label}: fraction of all-reduce time hidden behind backward`, unit: 'fraction', pullback: hidden, peer: 0.5, peerName: 'target', better: 'higher', adapter }),
      row({ case: `${r.label}: fraction of all-reduce time hidden behind backward, on the rank that ended backward last`, unit: 'fraction', pullback: hiddenLast, peer: 0.5, peerName: 'target', better: 'higher', adapter }),
    );
  }
  report('dp', rows);
  console.log(`\n${quick ? '--quick: ' : ''}total ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
