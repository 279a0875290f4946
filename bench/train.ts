// SPDX-License-Identifier: MIT
// npm run bench:train (node --import pullback/register bench/train.ts [--quick]) — one training step (forward,
// backward, AdamW update) of
//  (a) the MLP 784→256→256→10 at batch 128 (mean softmax cross-entropy, integer labels), and
//  (b) the 4-block pre-norm transformer of bench/programs/models.ts (d_model 128, seq 128, 4 heads, batch 4, mean
//      squared output),
// on pullback's CPU (Wasm) and WebGPU backends against TensorFlow.js (tf.variableGrads + tf.train.adam with the
// decoupled weight decay done by hand) and jax-js (valueAndGrad + AdamW in jax-js ops, eager and jitted) on the
// matching backend, in one process. Every library starts from the same host-generated weights (bench/peers.ts) and
// trains on the same batch. A step ends when its loss has been read back, every step (as a loop with a progress bar
// would); for jax-js, which is lazy, also when the new parameters and moments are ready. Steps run interleaved
// (pullback, TF.js, jax-js, jax-js + jit, pullback, ...) after the first step and a warm-up; the table reports
// medians, the spread is printed below it, and so is pullback's memory before and after the timed steps.
//
// Flags: --quick (fewer steps; the WebGPU transformer at batch 1), --backend=cpu,webgpu, --model=mlp,transformer,
// --libs=pullback-f16,tfjs,jax,jax+jit (what runs beside pullback: its f16-activation transformer and the peers),
// --transformer=blocks,dModel,seq,heads,batch (another transformer size), --reps=N (exactly N timed steps).
// PULLBACK_GPU_ADAPTER=hardware on a machine with a GPU (default here: SwiftShader).
import { init, backend, memoryStats, resetPeakMemory, tensor, zeros, valueAndGrad, adamUpdate, tensorsIn, sync, Tensor } from 'pullback';
import * as m from './programs/models.js';
import {
  ADAMW, type ModelCase, type Trainer, type TransformerCase, jaxTrainer, mlpCase, tfTrainer, transformerCase, useJax, useTf,
} from './peers.js';
import { median, report, row, type BenchRow } from './report.js';
import { paramTree } from './params.js';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const quick = argv.includes('--quick');
const backends = (flag('backend')?.split(',') ?? ['cpu', 'webgpu']) as ('cpu' | 'webgpu')[];
const models = (flag('model')?.split(',') ?? ['mlp', 'transformer']) as ModelCase['kind'][];
const libs = flag('libs')?.split(',') ?? ['pullback-f16', 'tfjs', 'jax', 'jax+jit'];
/** --transformer=blocks,dModel,seq,heads,batch: another transformer size (default 4,128,128,4,4). */
const transformerSize = flag('transformer')?.split(',').map(Number);
if (transformerSize && (transformerSize.length !== 5 || !transformerSize.every((v) => Number.isInteger(v) && v > 0))) {
  throw new Error(`--transformer wants five positive integers blocks,dModel,seq,heads,batch; got '${flag('transformer')}'`);
}
const gpuAdapter = (process.env.PULLBACK_GPU_ADAPTER ?? 'swiftshader') as 'swiftshader' | 'hardware' | 'auto';

/**
 * How many steps: a Wasm step takes milliseconds, a SwiftShader transformer step a minute for all four libraries, so
 * the counts follow the measured cost of a round (one step of every library). Warm-up rounds come after the first
 * step (which compiles); timed rounds continue to maxReps, or stop at the per-case budget once minReps are done.
 */
const plan = quick
  ? { warmup: (roundMs: number) => (roundMs < 5_000 ? 1 : 0), minReps: 1, maxReps: 5, budgetMs: 8_000 }
  : { warmup: (roundMs: number) => (roundMs < 10_000 ? 2 : roundMs < 40_000 ? 1 : 0), minReps: 3, maxReps: 15, budgetMs: 60_000 };
// --reps=N: exactly N timed rounds (for investigating one case).
if (flag('reps')) plan.minReps = plan.maxReps = Number(flag('reps'));

// ---- pullback ----------------------------------------------------------------------------------


/** The gradient of each parameter leaf, found by the leaf's path in the params tree (not by traversal order). */
function gradientsOf(params: unknown, grads: unknown, path = 'params'): Tensor[] {
  if (params instanceof Tensor) {
    if (!(grads instanceof Tensor)) throw new Error(`pullback returned no gradient tensor for ${path} (got ${String(grads)})`);
    return [grads];
  }
  const entries = Array.isArray(params) ? params.map((v, i) => [i, v] as const) : Object.entries(params as object);
  return entries.flatMap(([k, v]) => gradientsOf(v, (grads as Record<string | number, unknown>)[k], `${path}${typeof k === 'number' ? `[${k}]` : `.${k}`}`));
}

/** pullback: valueAndGrad of the marked loss, adamUpdate (fused, in place), gradients disposed, loss read back. */
function pullbackTrainer(c: ModelCase, { f16 = false } = {}): Trainer {
  const params = paramTree(c);
  const flat = tensorsIn(params);
  const mom = flat.map((p) => zeros(p.shape)), vel = flat.map((p) => zeros(p.shape));
  const data: Tensor[] = c.kind === 'mlp'
    ? [tensor(c.x, [c.batch, c.sizes[0]!]), tensor(c.labels, [c.batch], 'i32')]
    : [tensor(c.x, [c.batch, c.seq, c.dModel])];
  const lossAndGrad = c.kind === 'mlp'
    ? () => valueAndGrad(m.classifierLoss)(params as m.Dense[], data[0]!, data[1]!)
    : f16 ? () => valueAndGrad(m.transformerLossF16)(params as m.Block[], data[0]!, c.heads)
    : () => valueAndGrad(m.transformerLoss)(params as m.Block[], data[0]!, c.heads, false);
  let t = 0;
  return {
    async step() {
      const [loss, g] = lossAndGrad() as unknown as [Tensor, unknown];
      adamUpdate(flat, gradientsOf(params, g), mom, vel, { ...ADAMW, step: ++t, decoupled: true });
      for (const x of tensorsIn(g)) x.dispose();
      // The read waits for everything queued before it, the update included (one queue on WebGPU).
      const l = (await loss.data())[0]!;
      loss.dispose();
      return l;
    },
    dispose() { for (const x of [...flat, ...mom, ...vel, ...data]) x.dispose(); },
  };
}

// ---- timing --------------------------------------------------------------------------------------

interface Contender {
  lib: 'pullback' | 'pullback-f16' | 'tfjs' | 'jax' | 'jax+jit';
  name: string;
  peerName: string;
  make: () => Promise<Trainer> | Trainer;
  trainer?: Trainer | null;
  error?: string;
  firstLoss?: number;
  lastLoss?: number;
  firstMs?: number;
  steps: number;
  times: number[];
}

const rows: BenchRow[] = [];
const notes: string[] = [];
const lossLines: string[] = [];
const problems: string[] = [];
const message = (e: unknown) => (e instanceof Error ? `${e.constructor.name}: ${e.message.split('\n')[0]}` : String(e));

/** Frees c's tensors; after a failed step some may be gone already, which is then reported, not thrown. */
function disposeOf(c: Contender): void {
  try { c.trainer?.dispose(); } catch (e) { problems.push(`${c.name}: dispose after a failure: ${message(e)}`); }
  c.trainer = null;
}

/** One step of c, timed; a failure takes c out of the case and is recorded. */
async function step(c: Contender, times: number[] | null): Promise<void> {
  if (!c.trainer) return;
  try {
    const t0 = performance.now();
    c.lastLoss = await c.trainer.step();
    times?.push(performance.now() - t0);
    c.steps++;
  } catch (e) {
    c.error = `failed after ${c.steps} step(s): ${message(e)}`;
    console.log(`  ${c.name}: ${c.error}`);
    disposeOf(c);
  }
}

async function runCase(label: string, adapter: string, cs: Contender[]): Promise<void> {
  console.log(`\n${label}`);
  const mem = () => memoryStats();
  const before = mem().liveTensors;
  for (const c of cs) {
    try {
      c.trainer = await c.make();
    } catch (e) {
      c.error = message(e);
      console.log(`  ${c.name}: cannot run: ${c.error}`);
      continue;
    }
    const live = mem().liveBytes;
    resetPeakMemory();
    const t0 = performance.now();
    await step(c, null);
    if (!c.trainer) continue;
    c.firstMs = performance.now() - t0;
    if (c.lib.startsWith('pullback')) {
      // Peak tensor memory of the step (f16 activations keep half-size matmul inputs for the backward pass).
      const line = `${label} / ${c.name}: peak tensor memory of a step ${((mem().peakBytes - live) / 2 ** 20).toFixed(2)} MiB above the ${(live / 2 ** 20).toFixed(2)} MiB live before it`;
      notes.push(line);
    }
    c.firstLoss = c.lastLoss;
    console.log(`  ${c.name}: first step ${c.firstMs.toFixed(0)} ms, loss ${c.firstLoss!.toPrecision(8)}`);
  }
  const running = () => cs.filter((c) => c.trainer);
  const warmup = plan.warmup(running().reduce((s, c) => s + c.firstMs!, 0));
  for (let i = 0; i < warmup; i++) for (const c of running()) await step(c, null);

  const pb = cs[0]!;
  const m0 = mem();
  const start = performance.now();
  for (let r = 0; r < plan.maxReps && running().length; r++) {
    for (const c of running()) await step(c, c.times);
    const elapsed = performance.now() - start;
    if (r + 1 >= plan.minReps && elapsed * (1 + 1 / (r + 1)) > plan.budgetMs) break;
  }
  const m1 = mem();
  const pool = m1.pooledBytes === undefined ? '' : `; WebGPU pool ${(m0.pooledBytes! / 2 ** 20).toFixed(1)} -> ${(m1.pooledBytes / 2 ** 20).toFixed(1)} MiB`;
  const memLine = `${label}: pullback live tensors ${m0.liveTensors} before the timed steps, ${m1.liveTensors} after ${pb.times.length} steps ` +
    `(live ${(m0.liveBytes / 2 ** 20).toFixed(2)} -> ${(m1.liveBytes / 2 ** 20).toFixed(2)} MiB${pool})`;
  notes.push(memLine);
  console.log(`  ${memLine}`);
  if (pb.trainer && m1.liveTensors !== m0.liveTensors) problems.push(`${label}: pullback's live tensors went from ${m0.liveTensors} to ${m1.liveTensors} over ${pb.times.length} steps`);

  for (const c of cs) {
    if (!c.times.length) continue;
    const line = `${c.name}: median ${median(c.times).toFixed(1)} ms, min ${Math.min(...c.times).toFixed(1)}, max ${Math.max(...c.times).toFixed(1)} ` +
      `(${c.times.length} timed steps after ${warmup} warm-up; first step ${c.firstMs!.toFixed(0)} ms)`;
    notes.push(`${label} / ${line}`);
    console.log(`  ${line}`);
  }
  const pbMs = pb.times.length ? median(pb.times) : NaN;
  if (!pb.times.length) problems.push(`${label}: pullback did not run: ${pb.error ?? 'no timed steps'}`);

  // The first step's loss (same weights, same batch) must agree to f32 rounding. The last one is after the same
  // number of AdamW steps in every library, so it checks the gradients and the optimizer too (roundings compound).
  // On the transformer the Wasm peers land ~1e-5 below pullback: their mean of 65,536 squares is a running f32 sum;
  // pullback's agrees with its f64 reference backend to ~3e-7.
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-6);
  const firstTol = 1e-4, lastTol = 1e-3;
  const fmt = (x: number | undefined) => x?.toPrecision(8) ?? '-';
  lossLines.push(`${label}:`, `  ${'pullback'.padEnd(24)} first ${fmt(pb.firstLoss)}  last ${fmt(pb.lastLoss)} (after ${pb.steps} steps)`);
  for (const c of cs.slice(1)) {
    if (c.firstLoss !== undefined && pb.firstLoss !== undefined) {
      const r1 = rel(c.firstLoss, pb.firstLoss);
      const r2 = c.steps === pb.steps && c.lastLoss !== undefined && pb.lastLoss !== undefined ? rel(c.lastLoss, pb.lastLoss) : NaN;
      // f16 activations round the matmul inputs to 11 bits (measured: 5e-6 relative at the first step, 2e-4 after 8).
      const f16 = c.lib === 'pullback-f16';
      const ok = r1 <= (f16 ? 1e-2 : firstTol) && !(r2 > (f16 ? 5e-2 : lastTol));
      lossLines.push(`  ${c.name.padEnd(24)} first ${fmt(c.firstLoss)} (rel diff ${r1.toExponential(1)})  last ${fmt(c.lastLoss)} ` +
        `(after ${c.steps} steps, rel diff ${r2.toExponential(1)})  ${ok ? 'ok' : 'MISMATCH'}`);
      if (!ok) problems.push(`${label}: ${c.name}'s loss disagrees with pullback's: first step rel diff ${r1.toExponential(1)}, last ${r2.toExponential(1)}`);
    } else {
      lossLines.push(`  ${c.name.padEnd(24)} -  ${c.error ?? ''}`);
    }
    const peerMs = c.times.length ? median(c.times) : null;
    if (c.lib === 'pullback-f16') {
      // pullback against itself: f16 activations (the "pullback" column) against f32 (the "peer" column).
      rows.push(row({ case: `${label}: train step, f16 activations (${backend().name !== 'webgpu' ? 'held as rounded f32 on the CPU' : backend().shaderF16 ? 'shader-f16' : 'packed: no shader-f16'})`, unit: 'ms', pullback: peerMs ?? NaN, peer: pbMs, peerName: `pullback, f32 activations${peerMs === null && c.error ? ` (the f16 run cannot run: ${c.error})` : ''}`, better: 'lower', adapter }));
      continue;
    }
    rows.push(row({
      case: `${label}: train step`, unit: 'ms', pullback: pbMs, peer: peerMs,
      peerName: c.peerName + (peerMs === null && c.error ? ` — cannot run: ${c.error}` : ''), better: 'lower', adapter,
    }));
  }
  for (const c of cs) disposeOf(c);
  const leaked = mem().liveTensors - before;
  if (leaked !== 0) problems.push(`${label}: ${leaked} pullback tensors still alive after disposing the case's tensors`);
}

// ---- the cases -------------------------------------------------------------------------------------

const describeCase = (c: ModelCase) => c.kind === 'mlp'
  ? `MLP ${c.sizes.join('-')} batch ${c.batch}`
  : `transformer ${c.blocks} blocks d${c.dModel} s${c.seq} h${c.heads} batch ${c.batch}`;

const t0 = performance.now();
for (const be of backends) {
  let adapter: string;
  try {
    adapter = (be === 'cpu' ? await init({ backend: 'cpu' }) : await init({ backend: 'webgpu', adapter: gpuAdapter })).description;
  } catch (e) {
    problems.push(`pullback's ${be} backend did not start: ${message(e)}`);
    console.log(`pullback's ${be} backend did not start: ${message(e)}`);
    continue;
  }
  const started = async (lib: string, f: () => Promise<string>) => {
    try { return await f(); } catch (e) { problems.push(`${lib} on ${be}: ${message(e)}`); return null; }
  };
  const tfName = libs.includes('tfjs') ? await started('TF.js', () => useTf(be === 'cpu' ? 'wasm' : 'webgpu')) : null;
  const jaxName = libs.some((l) => l.startsWith('jax')) ? await started('jax-js', () => useJax(be === 'cpu' ? 'wasm' : 'webgpu')) : null;
  const need = (name: string | null, what: string) => { if (!name) throw new Error(`${what} did not start on ${be}`); };
  console.log(`\n== ${be}: pullback on ${adapter}; peers ${tfName ?? '-'}, ${jaxName ?? '-'}`);

  const cases: ModelCase[] = [];
  if (models.includes('mlp')) cases.push(mlpCase());
  // --quick: SwiftShader runs a batch-4 transformer step of all four libraries in about a minute; batch 1 there.
  if (models.includes('transformer')) {
    cases.push(transformerSize ? transformerCase(...transformerSize) : quick && be === 'webgpu' ? transformerCase(4, 128, 128, 4, 1) : transformerCase());
  }
  for (const c of cases) {
    const tf = tfName ?? 'TF.js', jx = jaxName ?? 'jax-js';
    const all: Contender[] = [
      { lib: 'pullback', name: 'pullback', peerName: '-', make: () => pullbackTrainer(c), steps: 0, times: [] },
      ...(c.kind === 'transformer' ? [{ lib: 'pullback-f16' as const, name: 'pullback f16 activations', peerName: '-', make: () => pullbackTrainer(c, { f16: true }), steps: 0, times: [] }] : []),
      { lib: 'tfjs', name: tf, peerName: `${tf} (Adam + decoupled decay by hand)`, make: () => { need(tfName, 'TF.js'); return tfTrainer(c); }, steps: 0, times: [] },
      { lib: 'jax', name: `${jx} eager`, peerName: `${jx} 0.1.25 eager`, make: () => { need(jaxName, 'jax-js'); return jaxTrainer(c, { jit: false }); }, steps: 0, times: [] },
      { lib: 'jax+jit', name: `${jx} + jit`, peerName: `${jx} 0.1.25 + jit`, make: () => { need(jaxName, 'jax-js'); return jaxTrainer(c, { jit: true }); }, steps: 0, times: [] },
    ];
    await runCase(`${describeCase(c)}, ${be}`, adapter, all.filter((x) => x.lib === 'pullback' || libs.includes(x.lib)));
    if (be === 'webgpu') await sync();
  }
}

console.log(`\nbackend last used: ${backend().description}`);
report('train', rows);
console.log('\nloss of the first step (same weights, same batch) and of the last (after the same number of AdamW steps):');
for (const l of lossLines) console.log(l);
console.log('\nspread of the interleaved steps and pullback memory:');
for (const n of notes) console.log(`  ${n}`);
console.log(`\n${quick ? '--quick: ' : ''}timed steps per case: ${plan.minReps} to ${plan.maxReps}, within ${(plan.budgetMs / 1000).toFixed(0)} s once ` +
  `${plan.minReps} are done; the loss is read back every step; total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
if (problems.length) {
  console.log('\nproblems:');
  for (const p of problems) console.log(`  - ${p}`);
}
// The Dawn instances keep Node alive.
process.exit(0);
