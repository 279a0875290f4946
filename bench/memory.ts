// SPDX-License-Identifier: MIT
// npm run bench:memory (node --import pullback/register bench/memory.ts [--quick]) — peak tensor bytes and step
// time of one training step (forward + backward) with and without checkpointing, on the CPU backend:
//  - without checkpointing, peak bytes against the floor: parameters + data + gradients + the activations the
//    pullbacks keep (measured after the forward pass: what is alive then beyond parameters and data);
//  - with checkpointing, peak activation bytes (peak minus parameters, data and accumulated gradients) against
//    no checkpointing, and the step time of both.
import { init, memoryStats, resetPeakMemory, randn, rand, valueAndGrad, vjp, tensorsIn, backend, type Tensor } from 'pullback';
import * as m from './programs/models.js';
import { median, report, row, type BenchRow } from './report.js';

const quick = process.argv.includes('--quick');
const info = await init({ backend: 'cpu' });
const adapter = info.description;
const MB = 1 / (1 << 20);
const bytes = (ts: Tensor[]) => ts.reduce((s, t) => s + t.size * 4, 0);
const rows: BenchRow[] = [];

function measure(name: string, f: (...a: any[]) => Tensor, params: unknown, args: unknown[], ckptArgs: unknown[], reps: number) {
  const run = (a: unknown[]) => {
    const [loss, g] = valueAndGrad(f)(params, ...a) as [Tensor, unknown];
    loss.dispose();
    for (const t of tensorsIn(g)) t.dispose();
  };
  const paramBytes = bytes(tensorsIn(params));
  const dataBytes = bytes(args.filter((a): a is Tensor => typeof a === 'object' && a !== null && 'shape' in a));
  // Saved activations: alive after the forward pass, beyond parameters and data.
  const base = memoryStats().liveBytes;
  const [out, pb] = vjp(f, params, ...args) as unknown as [Tensor, (c: Tensor) => unknown[]];
  const saved = memoryStats().liveBytes - base - out.size * 4;
  const seed = randn(out.shape, 0);
  for (const t of tensorsIn(pb(seed))) t.dispose();
  out.dispose(); seed.dispose();

  const step = (a: unknown[]) => {
    run(a); // warm
    resetPeakMemory();
    const start = memoryStats().liveBytes;
    run(a);
    const s = memoryStats();
    const times: number[] = [];
    for (let i = 0; i < reps; i++) { const t0 = performance.now(); run(a); times.push(performance.now() - t0); }
    return { peak: s.peakBytes - start + paramBytes + dataBytes, peakAct: s.peakNonGradBytes - start, ms: median(times) };
  };
  const plain = step(args);
  const ck = step(ckptArgs);
  const floor = paramBytes + dataBytes + paramBytes + saved;
  console.log(`${name}: params ${(paramBytes * MB).toFixed(1)} MiB, saved activations ${(saved * MB).toFixed(2)} MiB, peak ${(plain.peak * MB).toFixed(1)} MiB ` +
    `(floor ${(floor * MB).toFixed(1)}), peak activations ${(plain.peakAct * MB).toFixed(2)} -> ${(ck.peakAct * MB).toFixed(2)} MiB with checkpoint, ` +
    `step ${plain.ms.toFixed(1)} -> ${ck.ms.toFixed(1)} ms`);
  rows.push(row({ case: `${name}: peak bytes of a step`, unit: 'MiB', pullback: plain.peak * MB, peer: floor * MB, peerName: 'params+data+grads+saved activations (floor)', better: 'lower', adapter }));
  rows.push(row({ case: `${name}: peak activation bytes with checkpoint`, unit: 'MiB', pullback: ck.peakAct * MB, peer: plain.peakAct * MB, peerName: 'pullback without checkpoint', better: 'lower', adapter }));
  rows.push(row({ case: `${name}: step time with checkpoint`, unit: 'ms', pullback: ck.ms, peer: plain.ms, peerName: 'pullback without checkpoint', better: 'lower', adapter }));
}

const width = 512, batch = 64;
for (const depth of quick ? [4, 16] : [4, 16, 64]) {
  const layers: m.Dense[] = Array.from({ length: depth }, (_, i) => ({ w: randn([width, width], i).mul(Math.sqrt(2 / width)), b: randn([width], 1000 + i).mul(0.01) }));
  const x = rand([batch, width], 7);
  measure(`mlp depth ${depth} (width ${width}, batch ${batch})`, m.mlpLoss, layers, [x, 0], [x, 8], quick ? 2 : 5);
}

const d = 128, seq = 128, heads = 4, nb = 4, tb = quick ? 2 : 4;
const w = (shape: number[], seed: number, s = 1 / Math.sqrt(d)) => randn(shape, seed).mul(s);
const blocks: m.Block[] = Array.from({ length: nb }, (_, i) => ({
  ln1: { g: randn([d], 1 + i).mul(0).add(1), b: randn([d], 2).mul(0) }, ln2: { g: randn([d], 3).mul(0).add(1), b: randn([d], 4).mul(0) },
  wq: w([d, d], 10 * i + 5), wk: w([d, d], 10 * i + 6), wv: w([d, d], 10 * i + 7), wo: w([d, d], 10 * i + 8),
  fc1: { w: w([d, 4 * d], 10 * i + 9), b: randn([4 * d], 3).mul(0) }, fc2: { w: w([4 * d, d], 10 * i + 10, 1 / Math.sqrt(4 * d)), b: randn([d], 4).mul(0) },
}));
const tx = randn([tb, seq, d], 99);
measure(`transformer ${nb} blocks (d_model ${d}, seq ${seq}, batch ${tb})`, m.transformerLoss, blocks, [tx, heads, false], [tx, heads, true], quick ? 2 : 5);

console.log(`\nbackend: ${backend().description}`);
report('memory', rows);
