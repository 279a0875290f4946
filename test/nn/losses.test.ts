// SPDX-License-Identifier: MIT
// nn losses: gradients through a user-style program (a linear head, then the loss) against finite differences
// in f64; values against the formulas written out here; 'sum' = n × 'mean' in value and gradient; numerical
// stability of the logit forms; argument errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as nn from '../../sdk/nn/index.js';
import { grad, valueAndGrad, tensor, useBackend, referenceTensorBackend, mean, softmaxCrossEntropy, tensorsIn, type Tensor } from '../../sdk/index.js';
import { load } from '../support/compile.js';
import { R, ints, values, checkGrad, close } from './support.js';

const m = await load('test/programs/nn/models.ts');
useBackend(referenceTensorBackend);

const head = (i: number, o: number, seed: number): nn.LinearParams => ({ w: R([i, o], seed), b: R([o], seed + 1, 0.3) });
/** Targets in [0, 1] for the binary cross-entropy. */
const probs = (shape: number[], seed: number): Tensor => R(shape, seed, 1).sigmoid();

type Case = { kind: 'crossEntropy' | 'bce' | 'mse' | 'l1' | 'huber'; extra: number; target: () => Tensor; out: number; what: string };
const cases: Case[] = [
  { kind: 'crossEntropy', extra: 0, target: () => ints([0, 2, 1, 3, 3]), out: 4, what: 'softmaxCrossEntropy' },
  { kind: 'crossEntropy', extra: 0.2, target: () => ints([0, 2, 1, 3, 3]), out: 4, what: 'softmaxCrossEntropy, labelSmoothing 0.2' },
  { kind: 'bce', extra: 0, target: () => probs([5, 3], 2), out: 3, what: 'binaryCrossEntropyWithLogits' },
  { kind: 'mse', extra: 0, target: () => R([5, 3], 3, 1), out: 3, what: 'mse' },
  { kind: 'l1', extra: 0, target: () => R([5, 3], 4, 1), out: 3, what: 'l1' },
  { kind: 'huber', extra: 0.4, target: () => R([5, 3], 5, 1), out: 3, what: 'huber (delta 0.4)' },
];

// ---- gradients against finite differences ----

for (const c of cases) for (const reduction of ['mean', 'sum'] as const) {
  checkGrad(`${c.what}, reduction ${reduction}`, m.headLoss, () => [head(4, c.out, 10), R([5, 4], 12, 1), c.target(), c.kind, reduction, c.extra], [0, 1]);
}
checkGrad('softmaxCrossEntropy over [B, S, V] logits, labelSmoothing 0.1 (a tiny language model)', m.lmLoss, () => [
  { emb: { table: R([5, 4], 20) }, ln: { gamma: R([4], 21, 1), beta: R([4], 22) },
    att: { q: head(4, 4, 23), k: head(4, 4, 25), v: head(4, 4, 27), o: head(4, 4, 29) } },
  ints([0, 3, 1, 4, 2, 2], [2, 3]), ints([3, 1, 4, 2, 2, 0], [2, 3])], 0, 1e-5);

// ---- 'sum' = n × 'mean' ----

for (const c of cases) {
  test(`${c.what}: reduction 'sum' is n × 'mean' in value and gradient`, async () => {
    const p = head(4, c.out, 30), x = R([5, 4], 32, 1), t = c.target();
    const n = c.kind === 'crossEntropy' ? 5 : 5 * c.out;
    const [vm, gm] = valueAndGrad(m.headLoss)(p, x, t, c.kind, 'mean', c.extra) as [Tensor, nn.LinearParams];
    const [vs, gs] = valueAndGrad(m.headLoss)(p, x, t, c.kind, 'sum', c.extra) as [Tensor, nn.LinearParams];
    close('value', [await vs.item()], [n * (await vm.item())], 1e-6, 1e-9);
    for (const k of ['w', 'b'] as const) close(`d${k}`, await values(gs[k]!), (await values(gm[k]!)).map((v) => n * v), 1e-6, 1e-9);
    // 'mean' is the default.
    const dflt = c.kind === 'crossEntropy' ? nn.losses.softmaxCrossEntropy(nn.linear(p, x), t, { labelSmoothing: c.extra })
      : c.kind === 'bce' ? nn.losses.binaryCrossEntropyWithLogits(nn.linear(p, x), t)
        : c.kind === 'mse' ? nn.losses.mse(nn.linear(p, x), t)
          : c.kind === 'l1' ? nn.losses.l1(nn.linear(p, x), t) : nn.losses.huber(nn.linear(p, x), t, { delta: c.extra });
    close('default reduction', [await dflt.item()], [await vm.item()], 1e-6, 1e-9);
  });
}

// ---- values against the formulas ----

const logits = [[2, -1, 0.5], [0, 0, 0], [-3, 4, 1]], labels = [0, 2, 1];
const logSoftmaxRow = (r: number[]) => { const mx = Math.max(...r), z = Math.log(r.reduce((s, v) => s + Math.exp(v - mx), 0)) + mx; return r.map((v) => v - z); };

test('softmaxCrossEntropy: -log softmax(logits)[label], averaged over rows; the fused op without smoothing', async () => {
  const want = logits.map((r, i) => -logSoftmaxRow(r)[labels[i]!]!);
  const x = tensor(logits), y = ints(labels);
  close('mean', [await nn.losses.softmaxCrossEntropy(x, y).item()], [want.reduce((a, b) => a + b) / 3], 1e-6, 1e-9);
  close('sum', [await nn.losses.softmaxCrossEntropy(x, y, { reduction: 'sum' }).item()], [want.reduce((a, b) => a + b)], 1e-6, 1e-9);
  close('the per-row op', [await nn.losses.softmaxCrossEntropy(x, y).item()], [await mean(softmaxCrossEntropy(x, y)).item()], 0, 0);
});

test('softmaxCrossEntropy with labelSmoothing ε: against the smoothed target (1-ε)·onehot + ε/C', async () => {
  const eps = 0.3, C = 3;
  const want = logits.map((r, i) => -logSoftmaxRow(r).reduce((s, lp, c) => s + ((c === labels[i] ? 1 - eps : 0) + eps / C) * lp, 0));
  close('smoothed', [await nn.losses.softmaxCrossEntropy(tensor(logits), ints(labels), { labelSmoothing: eps }).item()], [want.reduce((a, b) => a + b) / 3], 1e-6, 1e-9);
  // The gradient of a row is softmax - target, over n rows.
  const g = await values(grad((z: Tensor) => nn.losses.softmaxCrossEntropy(z, ints(labels), { labelSmoothing: eps }))(tensor(logits)) as Tensor);
  const wantG = logits.flatMap((r, i) => logSoftmaxRow(r).map((lp, c) => (Math.exp(lp) - ((c === labels[i] ? 1 - eps : 0) + eps / C)) / 3));
  close('gradient', g, wantG, 1e-6, 1e-9);
});

test('softmaxCrossEntropy with ignoreIndex: left-out rows add nothing, mean over the rows kept, none kept is 0', async () => {
  const masked = [0, -100, 1];
  const want = [-logSoftmaxRow(logits[0]!)[0]!, -logSoftmaxRow(logits[2]!)[1]!];
  const x = tensor(logits), y = ints(masked);
  close('mean over the 2 rows kept', [await nn.losses.softmaxCrossEntropy(x, y, { ignoreIndex: -100 }).item()], [(want[0]! + want[1]!) / 2], 1e-6, 1e-9);
  close('sum', [await nn.losses.softmaxCrossEntropy(x, y, { ignoreIndex: -100, reduction: 'sum' }).item()], [want[0]! + want[1]!], 1e-6, 1e-9);
  // The gradient: softmax - onehot on the rows kept, over 2; zero on the row left out.
  const g = await values(grad((z: Tensor) => nn.losses.softmaxCrossEntropy(z, ints(masked), { ignoreIndex: -100 }))(tensor(logits)) as Tensor);
  const wantG = logits.flatMap((r, i) => logSoftmaxRow(r).map((lp, c) => (i === 1 ? 0 : (Math.exp(lp) - (c === masked[i] ? 1 : 0)) / 2)));
  close('gradient', g, wantG, 1e-6, 1e-9);
  // With smoothing too, and a label equal to ignoreIndex in range (class 2 left out).
  const eps = 0.2;
  const smooth = (r: number[], l: number) => -logSoftmaxRow(r).reduce((s, lp, c) => s + ((c === l ? 1 - eps : 0) + eps / 3) * lp, 0);
  close('smoothed', [await nn.losses.softmaxCrossEntropy(x, ints(labels), { ignoreIndex: 2, labelSmoothing: eps }).item()],
    [(smooth(logits[0]!, 0) + smooth(logits[2]!, 1)) / 2], 1e-6, 1e-9);
  close('none kept', [await nn.losses.softmaxCrossEntropy(x, ints([-1, -1, -1]), { ignoreIndex: -1 }).item()], [0], 0, 0);
  assert.throws(() => nn.losses.softmaxCrossEntropy(x, y, { ignoreIndex: 0.5 }), /losses\.softmaxCrossEntropy: ignoreIndex must be an integer, got 0\.5/);
});

test('binaryCrossEntropyWithLogits: -[t log σ(x) + (1-t) log(1-σ(x))]; finite at ±100; gradient σ(x) - t, also at 0', async () => {
  const xs = [-2, -0.5, 0, 1, 3], ts = [0, 1, 0.5, 0.25, 1];
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const want = xs.map((x, i) => -(ts[i]! * Math.log(sig(x)) + (1 - ts[i]!) * Math.log(1 - sig(x))));
  close('values', [await nn.losses.binaryCrossEntropyWithLogits(tensor(xs), tensor(ts), { reduction: 'sum' }).item()], [want.reduce((a, b) => a + b)], 1e-6, 1e-9);
  // Large logits: the naive form gives log(0) = -Infinity; the stable one gives |x| for a wrong confident guess.
  close('large', [await nn.losses.binaryCrossEntropyWithLogits(tensor([100, -100, 100]), tensor([0, 1, 1]), { reduction: 'sum' }).item()], [200], 1e-6, 1e-9);
  const g = await values(grad((z: Tensor) => nn.losses.binaryCrossEntropyWithLogits(z, tensor(ts), { reduction: 'sum' }))(tensor(xs)) as Tensor);
  close('gradient', g, xs.map((x, i) => sig(x) - ts[i]!), 1e-6, 1e-9);
});

test('mse, l1, huber: by hand, with the gradient of huber clipped to [-δ, δ]', async () => {
  const p = [0.5, -2, 3, 1], t = [0, 0, 1, 1.2], d = p.map((v, i) => v - t[i]!), delta = 1;
  const hub = d.map((v) => (Math.abs(v) <= delta ? v * v / 2 : delta * (Math.abs(v) - delta / 2)));
  const [P, T] = [tensor(p), tensor(t)];
  close('mse', [await nn.losses.mse(P, T).item()], [d.reduce((s, v) => s + v * v, 0) / 4], 1e-6, 1e-9);
  close('l1', [await nn.losses.l1(P, T).item()], [d.reduce((s, v) => s + Math.abs(v), 0) / 4], 1e-6, 1e-9);
  close('huber', [await nn.losses.huber(P, T).item()], [hub.reduce((s, v) => s + v, 0) / 4], 1e-6, 1e-9);
  const g = await values(grad((z: Tensor) => nn.losses.huber(z, T, { reduction: 'sum' }))(P) as Tensor);
  close('huber gradient', g, d.map((v) => Math.max(-delta, Math.min(delta, v))), 1e-6, 1e-9);
});

// ---- errors ----

test('losses: wrong shapes and options are errors that name the loss and what to do', () => {
  const a = R([4, 1], 1), b = R([4], 2);
  assert.throws(() => nn.losses.mse(a, b), /losses\.mse.*pred \[4, 1\] and target \[4\] must have the same shape/);
  assert.throws(() => nn.losses.mse(b, b, { reduction: 'none' as never }), /reduction must be 'mean' or 'sum', got "none"/);
  assert.throws(() => nn.losses.huber(b, b, { delta: 0 }), /delta must be a positive number, got 0/);
  assert.throws(() => nn.losses.softmaxCrossEntropy(R([3, 4], 3), ints([0, 1])), /labels must have the shape of logits without its class axis/);
  assert.throws(() => nn.losses.softmaxCrossEntropy(R([2, 4], 3), ints([0, 1]), { labelSmoothing: 1.5 }), /labelSmoothing must be in \[0, 1\], got 1.5/);
});

test('losses give gradients to every parameter of the head', () => {
  const g = grad(m.headLoss)(head(4, 3, 40), R([5, 4], 42), ints([0, 1, 2, 1, 0]), 'crossEntropy', 'mean', 0) as nn.LinearParams;
  assert.is(tensorsIn(g).length, 2);
});

test.run();
