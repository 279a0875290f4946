// SPDX-License-Identifier: MIT
// fit on the CPU backend: an MLP (a marked function) fits a synthetic regression to a stated loss; memory stays
// flat over 200 steps with no dispose in user code; every form of data (Dataset, arrays of Tensors or host arrays,
// a function of the epoch, prefetch's async iterable) trains; the loss is read back every logEvery steps and at
// epoch ends only; a loss scaler skips an injected overflow; the progress display on a terminal, in a log, quiet.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Tensor, Dataset, SeededRandom, batches, init, memoryStats, prefetch, randn, tensor } from '../../sdk/index.js';
import { LossScaler, adam, cosineWithWarmup, sgd } from '../../sdk/optim/index.js';
import { ProgressBar, fit, formatDuration, type FitStep, type ProgressOutput } from '../../sdk/train/index.js';
import { load } from '../support/compile.js';

const m = await load('test/programs/train/models.ts');
await init({ backend: 'cpu' });

// 512 points in [-1, 1]², y = sin(π a)·b + a/2.
const r = new SeededRandom(1), N = 512;
const xs = new Float32Array(2 * N), ys = new Float32Array(N);
for (let i = 0; i < N; i++) {
  const a = r.range(-1, 1), b = r.range(-1, 1);
  xs[2 * i] = a; xs[2 * i + 1] = b; ys[i] = Math.sin(Math.PI * a) * b + 0.5 * a;
}
const ds = new Dataset({ inputs: xs, sampleShape: [2], labels: ys, labelShape: [1] });
const H = 32;
const mlp = () => ({
  w1: randn([2, H], 1).mul(0.7), b1: tensor(new Float32Array(H)), w2: randn([H, H], 2).mul(1 / Math.sqrt(H)),
  b2: tensor(new Float32Array(H)), w3: randn([H, 1], 3).mul(1 / Math.sqrt(H)), b3: tensor([0]),
});
const quiet = { quiet: true } as const;
/** An output that records what is written. */
const recorder = (isTTY: boolean): ProgressOutput & { text: string } => {
  const o = { text: '', isTTY, columns: 120, write(s: string) { o.text += s; } };
  return o;
};
const hostBatches = (count: number, size: number) => Array.from({ length: count }, (_, k) => {
  const b = ds.gather(Array.from({ length: size }, (_, i) => (k * size + i) % N));
  return [b.inputs, b.labels];
});

test('an MLP fits a synthetic regression: mean loss below 0.01 after 20 epochs of 16 batches (Adam, warmup + cosine, shuffled)', async () => {
  const p = mlp();
  const X = tensor(xs, [N, 2]), Y = tensor(ys, [N, 1]);
  const before = await (m.mlpLoss(p, X, Y) as Tensor).item();
  const opt = adam({ lr: cosineWithWarmup({ lr: 1e-2, warmupSteps: 20, totalSteps: 320 }) });
  const h = await fit(m.mlpLoss, p, ds, { optimizer: opt, epochs: 20, batchSize: 32, shuffle: true, seed: 1, ...quiet });
  const after = await (m.mlpLoss(p, X, Y) as Tensor).item();
  assert.ok(before > 0.2, `initial MSE ${before}`);
  assert.ok(after < 0.01, `MSE after 320 steps ${after} (from ${before})`);
  assert.is(h.totalSteps, 320);
  assert.is(h.epochLosses.length, 20);
  assert.ok(h.epochLosses[19]! < 0.01 && h.epochLosses[19]! < h.epochLosses[0]! / 10, `epoch losses ${h.epochLosses}`);
  // Read back every 10 steps and at each epoch's end (every 16), never twice for one step.
  const want = [...new Set([...Array.from({ length: 32 }, (_, i) => 10 * (i + 1)), ...Array.from({ length: 20 }, (_, i) => 16 * (i + 1))])].sort((a, b) => a - b);
  assert.equal(h.steps, want);
  assert.is(h.losses.length, want.length);
  assert.is(opt.steps, 320);
});

test('memory is flat over 200 steps with no dispose in user code (uploaded batches, losses, gradients all freed)', async () => {
  const p = mlp();
  const live: number[] = [], bytes: number[] = [];
  const start = memoryStats().liveTensors;
  const opt = adam({ lr: 1e-3 });
  const h = await fit(m.mlpLoss, p, hostBatches(20, 16), {
    optimizer: opt, epochs: 10, ...quiet,
    onStep: ({ step }) => { if (step === 10 || step === 200) { live.push(memoryStats().liveTensors); bytes.push(memoryStats().liveBytes); } },
  });
  assert.is(h.totalSteps, 200);
  assert.is(live[1], live[0], `live tensors at steps 10 and 200: ${live}`);
  assert.is(bytes[1], bytes[0], `live bytes at steps 10 and 200: ${bytes}`);
  // What stays: the optimizer's state (step, m and v for 6 parameters).
  assert.is(memoryStats().liveTensors, start + 13);
  opt.dispose();
  assert.is(memoryStats().liveTensors, start);
});

test('data: arrays of Tensors (left to their owner), a function of the epoch, and prefetch with disposeBatches', async () => {
  const x = tensor(xs.subarray(0, 64), [32, 2]), y = tensor(ys.subarray(0, 32), [32, 1]);
  const p1 = mlp();
  const h1 = await fit(m.mlpLoss, p1, [[x, y], [x, y]], { optimizer: sgd({ lr: 0.1 }), epochs: 3, ...quiet });
  assert.is(h1.totalSteps, 6);
  assert.ok(!x.disposed && !y.disposed, "the caller's tensors are not disposed");

  const p2 = mlp(), epochs: number[] = [];
  const h2 = await fit(m.mlpLoss, p2, (epoch) => { epochs.push(epoch); return batches(ds, { batchSize: 128, shuffle: true, epoch }); }, { optimizer: sgd({ lr: 0.1 }), epochs: 2, ...quiet });
  assert.equal(epochs, [0, 1]);
  assert.is(h2.totalSteps, 8);

  const p3 = mlp(), opt3 = sgd({ lr: 0.1 });
  opt3.init(p3);
  const live = memoryStats().liveTensors;
  const uploads = () => prefetch(batches(ds, { batchSize: 64 }), { upload: (b) => [tensor(b.inputs.data, b.inputs.shape), tensor(b.labels.data, b.labels.shape)] });
  const h3 = await fit(m.mlpLoss, p3, uploads, { optimizer: opt3, epochs: 2, disposeBatches: true, ...quiet });
  assert.is(h3.totalSteps, 16);
  assert.is(memoryStats().liveTensors, live, 'prefetched batches were disposed after their steps');
});

test('onStep sees each step (loss only when read back) and stops the run by returning false', async () => {
  const seen: FitStep[] = [];
  const h = await fit(m.mlpLoss, mlp(), hostBatches(10, 8), {
    optimizer: sgd({ lr: 0.05 }), epochs: 5, logEvery: 2, ...quiet,
    onStep: (s) => { seen.push(s); return s.step < 5; },
  });
  assert.is(h.totalSteps, 5);
  assert.equal(seen.map((s) => [s.step, s.epoch, s.batch, s.loss === undefined, s.lr, s.ok]), [
    [1, 0, 0, true, 0.05, true], [2, 0, 1, false, 0.05, true], [3, 0, 2, true, 0.05, true], [4, 0, 3, false, 0.05, true], [5, 0, 4, true, 0.05, true],
  ]);
  assert.equal(h.steps, [2, 4, 5], 'read at steps 2 and 4, and the rest at the (early) end');
  assert.is(h.epochLosses.length, 1);
});

test('with a loss scaler an injected overflow skips one step and training goes on', async () => {
  const one = tensor(1), spike = tensor(1e38);
  const items = hostBatches(8, 16).map((b, k) => [...b, k === 3 ? spike : one]);
  const scaler = new LossScaler({ initScale: 2 ** 15 });
  const oks: boolean[] = [];
  const opt = adam({ lr: 1e-3 });
  const h = await fit(m.spikedLoss, mlp(), items, { optimizer: opt, scaler, ...quiet, onStep: (s) => { oks.push(s.ok); assert.is(s.scale, scaler.scale); } });
  assert.equal(oks, [true, true, true, false, true, true, true, true]);
  assert.is(h.skippedSteps, 1);
  assert.is(opt.steps, 7);
  assert.is(scaler.scale, 2 ** 14);
});

test('progress: plain lines off a terminal, a bar redrawn in place on one, nothing when quiet', async () => {
  const log = recorder(false);
  await fit(m.mlpLoss, mlp(), ds, { optimizer: sgd({ lr: 0.1 }), epochs: 2, batchSize: 256, output: log, progressIntervalMs: 0 });
  const lines = log.text.trimEnd().split('\n');
  assert.match(lines[0]!, /^epoch 1\/2 · step 1\/4 · [\d.]+ steps\/s · ETA \d+s$/);
  assert.ok(lines.some((l) => /^epoch 1\/2 · step 2 · mean loss [\d.]+ · \d+s$/.test(l)), log.text);
  assert.match(lines.at(-1)!, /^epoch 2\/2 · step 4\/4 · [\d.]+ steps\/s · \d+s · loss [\d.]+$/);
  assert.not.match(log.text, /\r/);

  const tty = recorder(true);
  await fit(m.mlpLoss, mlp(), ds, { optimizer: sgd({ lr: 0.1 }), epochs: 1, batchSize: 128, output: tty, progressIntervalMs: 0 });
  assert.match(tty.text, /^\r\x1b\[2K\[=====> {14}\] 1\/4 · [\d.]+ steps\/s · ETA \d+s/);
  assert.ok(tty.text.endsWith('\n') && tty.text.split('\n').length === 2, 'one line, ended at the finish');

  const silent = recorder(false);
  await fit(m.mlpLoss, mlp(), ds, { optimizer: sgd({ lr: 0.1 }), batchSize: 256, output: silent, quiet: true });
  assert.is(silent.text, '');
});

test('the progress line: bar, rate, loss, ETA and durations, on a fake clock', () => {
  let now = 0;
  const plain = new ProgressBar({ total: 100, epochs: 2, output: recorder(false), now: () => now });
  now = 2000;
  assert.is(plain.line({ step: 50, epoch: 0, loss: 0.123456 }, now), 'epoch 1/2 · step 50/100 · 25.0 steps/s · ETA 2s · loss 0.1235');
  // Extra numbers follow the loss, after the time, so that a line cut at the terminal's width keeps the ETA.
  assert.is(plain.line({ step: 50, epoch: 0, loss: 0.5, metrics: { acc: '97.5%', lr: 0.001 } }, now), 'epoch 1/2 · step 50/100 · 25.0 steps/s · ETA 2s · loss 0.5000 · acc 97.5% · lr 0.001000');
  now = 0;
  const bar = new ProgressBar({ total: 100, output: recorder(true), now: () => now });
  assert.is(bar.line({ step: 50, epoch: 0 }, 4000), '[==========>         ] 50/100 · 12.5 steps/s · ETA 4s');
  assert.is(bar.line({ step: 100, epoch: 0, loss: NaN }, 4000, true), '[====================] 100/100 · 25.0 steps/s · 4s · loss NaN');
  now = 0;
  const open = new ProgressBar({ output: recorder(false), now: () => now });
  assert.is(open.line({ step: 7, epoch: 3, loss: 2.5e-7 }, 2000), 'step 7 · 3.5 steps/s · loss 2.500e-7');
  assert.equal([formatDuration(0.4), formatDuration(59), formatDuration(75), formatDuration(3725), formatDuration(NaN)], ['0s', '59s', '1m15s', '1h02m', '?']);
});

test('errors name what is missing or wrong', async () => {
  const rejects = async (p: Promise<unknown>, re: RegExp) => {
    try { await p; } catch (e) { assert.match((e as Error).message, re); return; }
    assert.unreachable(`expected ${re}`);
  };
  const p = mlp();
  await rejects(fit(m.mlpLoss, p, ds, {} as never), /fit: options\.optimizer is required, e\.g\. fit\(lossFn, params, data, \{ optimizer: adam\(\{ lr: 1e-3 \}\) \}\)/);
  await rejects(fit(m.mlpLoss, p, ds, { optimizer: sgd({ lr: 0.1 }) }), /fit: training on a Dataset needs options\.batchSize/);
  await rejects(fit(m.mlpLoss, p, batches(ds, { batchSize: 64 }), { optimizer: sgd({ lr: 0.1 }), epochs: 2 }), /fit: the data is an iterator \(a generator\?\), which can be walked once, but epochs is 2; pass an array, or a function epoch => iterable/);
  await rejects(fit(m.mlpLoss, p, [42], { optimizer: sgd({ lr: 0.1 }), ...quiet }), /fit: batch 0 is a number; expected an array of arguments for lossFn\(params, \.\.\.batch\), a Batch from batches\(\), or a Tensor/);
  await rejects(fit(m.mlpLoss, p, 42 as never, { optimizer: sgd({ lr: 0.1 }) }), /fit: data must be a Dataset, an iterable or async iterable of batches, or a function epoch => iterable; got a number/);
  await rejects(fit(m.mlpLoss, {}, ds, { optimizer: sgd({ lr: 0.1 }), batchSize: 8 }), /fit: params holds no Tensor; pass the parameter tree lossFn differentiates/);
  await rejects(fit(m.mlpLoss, p, ds, { optimizer: sgd({ lr: 0.1 }), batchSize: 8, epochs: 0 }), /fit: epochs must be an integer ≥ 1, got 0/);
});

test.run();
