// SPDX-License-Identifier: MIT
// The gradient-final hook (tensorValueAndGrad's onGradFinal, what data-parallel training starts its all-reduces
// from), on the CPU backend: it fires once per parameter, in reverse layer order while the backward pass goes on
// (a probe's derivative rule, which runs between the second layer's pullback and the first's, logs between them),
// with the gradient's final values; the same with checkpointed layers (whose recomputation happens inside the
// backward pass), with a parameter used twice, with a leaf that no cotangent reaches, with leaves nothing reads,
// and on the eager tape of an untransformed function.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Tensor, init, matmul, mean, relu, softmaxCrossEntropy, tensor, valueAndGrad } from '../../sdk/index.js';
import { tensorValueAndGrad } from '../../sdk/tensor/ad.js';
import { hostValues } from '../../sdk/distributed/data-parallel.js';
import { load } from '../support/compile.js';

const m = await load('test/distributed/fixtures/dp-models.ts');
await init({ backend: 'cpu' });

type Dense = { w: Tensor; b: Tensor };
const layers: Dense[] = m.initMlp([6, 8, 7, 5], 3);
const x = tensor(Float32Array.from({ length: 4 * 6 }, (_, i) => Math.sin(i)), [4, 6]);
const y = tensor([0, 3, 1, 4], [4], 'i32');
const names = new Map<Tensor, string>(layers.flatMap((l, i) => [[l.w, `w${i}`], [l.b, `b${i}`]] as [Tensor, string][]));

/** Runs f with the hook, logging each final leaf (between the probe's events) and copying its values at that moment. */
function watched(f: Function, args: unknown[], argnums: number[] = [0]) {
  const events: string[] = m.events;
  events.length = 0;
  const seen: Tensor[] = [], atHook = new Map<Tensor, { grad: Tensor; values: number[] }>();
  const r = tensorValueAndGrad(f, undefined, args, argnums, {
    onGradFinal: (leaf, grad) => {
      events.push(names.get(leaf) ?? 'other');
      seen.push(leaf);
      atHook.set(leaf, { grad, values: Array.from(hostValues(grad)) });
    },
  });
  return { ...r, events: [...events], seen, atHook };
}

/** Each gradient the caller gets is the tensor the hook saw, with the values it had then. */
function sameAsAtHook(w: ReturnType<typeof watched>, leaves: readonly Tensor[], grads: readonly Tensor[]) {
  leaves.forEach((leaf, i) => {
    const h = w.atHook.get(leaf);
    assert.ok(h, `no hook call for ${names.get(leaf)}`);
    assert.ok(h!.grad === grads[i], `${names.get(leaf)}: the hook saw another tensor than the one returned`);
    assert.equal(Array.from(hostValues(grads[i]!)), h!.values, `${names.get(leaf)}: the gradient changed after the hook`);
  });
}
const gradsOf = (g: unknown) => (g as Dense[]).flatMap((l) => [l.w, l.b]);
const leavesOf = (ls: Dense[]) => ls.flatMap((l) => [l.w, l.b]);

test('generated code: once per parameter, last layer first, the first layer after the probe, with the final values', () => {
  const w = watched(m.mlpLoss, [layers, x, y, 'mean']);
  assert.equal(w.events, ['w2', 'b2', 'w1', 'b1', 'probe', 'w0', 'b0']);
  assert.is(w.seen.length, new Set(w.seen).size);
  sameAsAtHook(w, leavesOf(layers), gradsOf(w.grads[0]));
  // And they are the gradients valueAndGrad computes without the hook.
  const [, plain] = valueAndGrad(m.mlpLoss)(layers, x, y, 'mean') as unknown as [Tensor, Dense[]];
  gradsOf(plain).forEach((g, i) => assert.equal(Array.from(hostValues(g)), w.atHook.get(leavesOf(layers)[i]!)!.values));
});

test('checkpointed layers: their parameters are final only after the recomputation, in the same order, with the same values', () => {
  const plain = watched(m.mlpLoss, [layers, x, y, 'mean']);
  const w = watched(m.checkpointedLoss, [layers, x, y]);
  // Each checkpoint gets the whole tree but reads one layer: the others are not held back by it.
  assert.equal(w.events, ['w2', 'b2', 'w1', 'b1', 'probe', 'w0', 'b0']);
  sameAsAtHook(w, leavesOf(layers), gradsOf(w.grads[0]));
  for (const leaf of leavesOf(layers)) assert.equal(w.atHook.get(leaf)!.values, plain.atHook.get(leaf)!.values, names.get(leaf));
});

test('a parameter used by two layers is final once, after its first use has been differentiated', () => {
  const sq = m.initMlp([6, 8, 8], 5) as Dense[];
  const tied = [sq[0]!, sq[1]!, sq[1]!, { w: tensor(new Float32Array(8 * 5).map((_, i) => Math.cos(i) / 3), [8, 5]), b: tensor(new Float32Array(5)) }];
  names.set(sq[0]!.w, 'a.w').set(sq[0]!.b, 'a.b').set(sq[1]!.w, 't.w').set(sq[1]!.b, 't.b').set(tied[3]!.w, 'h.w').set(tied[3]!.b, 'h.b');
  const w = watched(m.mlpLoss, [tied, x, y, 'mean']);
  assert.equal(w.events, ['h.w', 'h.b', 't.w', 't.b', 'probe', 'a.w', 'a.b']);
});

test('leaves with no cotangent: zeros, the tensor returned; leaves nothing reads: after the backward pass, zeros', () => {
  // argnums [0, 2]: the labels (i32) are read by the loss but get no cotangent.
  names.set(y, 'labels');
  const w = watched(m.mlpLoss, [layers, x, y, 'mean'], [0, 2]);
  assert.equal(w.events, ['labels', 'w2', 'b2', 'w1', 'b1', 'probe', 'w0', 'b0']);
  assert.ok(w.atHook.get(y)!.grad === w.grads[1]);
  assert.equal(w.atHook.get(y)!.values, [0, 0, 0, 0]);
  // Only the first layer is used; the others are reported once the backward pass is over.
  const short = [layers[0]!, layers[1]!, { w: tensor(new Float32Array(35), [7, 5]), b: tensor(new Float32Array(5)) }];
  names.set(short[2]!.w, 'u.w').set(short[2]!.b, 'u.b');
  const head = (ls: Dense[], xx: Tensor, yy: Tensor) => mean(softmaxCrossEntropy(matmul(xx, ls[0]!.w, { bias: ls[0]!.b }), yy));
  const w2 = watched(head, [short, x, tensor([0, 3, 1, 7], [4], 'i32')]);
  assert.equal(w2.events, ['w0', 'b0', 'w1', 'b1', 'u.w', 'u.b']);
  sameAsAtHook(w2, leavesOf(short), gradsOf(w2.grads[0]));
  assert.ok(w2.atHook.get(short[2]!.w)!.values.every((v) => v === 0));
});

test('the eager tape (an untransformed function) reports the same order and values as the generated code', () => {
  const eager = (ls: Dense[], xx: Tensor, yy: Tensor): Tensor => {
    let h = xx;
    ls.forEach((l, i) => { const z = matmul(h, l.w, { bias: l.b }); h = i < ls.length - 1 ? relu(z) : z; });
    return mean(softmaxCrossEntropy(h, yy));
  };
  const w = watched(eager, [layers, x, y]);
  assert.equal(w.events, ['w2', 'b2', 'w1', 'b1', 'w0', 'b0']);
  sameAsAtHook(w, leavesOf(layers), gradsOf(w.grads[0]));
});

test('gradParts: a weight gradient completed by one matmul comes in blocks of rows as they are computed, then whole', () => {
  // Layers 6-8-7-5 over a 4-row batch; w0 [6, 8] in blocks of 4 rows (4 + 2), w1 [8, 7] in blocks of 3 (3 + 3 + 2).
  const plain = watched(m.mlpLoss, [layers, x, y, 'mean']);
  const events: string[] = m.events;
  events.length = 0;
  const blocks: { leaf: Tensor; offset: number; values: number[] }[] = [], atHook = new Map<Tensor, number[]>();
  const rows = new Map<Tensor, number>([[layers[0]!.w, 4], [layers[1]!.w, 3], [layers[2]!.b, 2]]);
  const r = tensorValueAndGrad(m.mlpLoss, undefined, [layers, x, y, 'mean'], [0], {
    onGradFinal: (leaf, grad) => { events.push(names.get(leaf)!); atHook.set(leaf, Array.from(hostValues(grad))); },
    gradParts: { rows, hook: (leaf, part, offset) => { events.push(`${names.get(leaf)}@${offset}`); blocks.push({ leaf, offset, values: Array.from(hostValues(part)) }); } },
  });
  // The blocks come right before their gradient is final, in order of rows; a 1-D leaf (b2) is not split.
  assert.equal(events, ['w2', 'b2', 'w1@0', 'w1@21', 'w1@42', 'w1', 'b1', 'probe', 'w0@0', 'w0@32', 'w0', 'b0']);
  for (const leaf of leavesOf(layers)) {
    const whole = atHook.get(leaf)!, mine = blocks.filter((b) => b.leaf === leaf);
    // Each block holds the final values of its rows; the gradient is the blocks, and equals the one computed whole.
    for (const b of mine) assert.equal(b.values, whole.slice(b.offset, b.offset + b.values.length), `${names.get(leaf)}@${b.offset}`);
    if (mine.length) assert.is(mine.reduce((n, b) => n + b.values.length, 0), whole.length);
    const want = plain.atHook.get(leaf)!.values;
    assert.ok(whole.every((v, i) => Math.abs(v - want[i]!) <= 1e-6 * (1 + Math.abs(want[i]!))), `${names.get(leaf)} differs from the gradient computed whole`);
  }
  gradsOf(r.grads[0]).forEach((g, i) => assert.equal(Array.from(hostValues(g)), atHook.get(leavesOf(layers)[i]!)));
  // Not where another use added to it: the weight of a layer applied twice.
  const sq = m.initMlp([6, 8, 8, 5], 9) as Dense[];
  const tied = [sq[0]!, sq[1]!, sq[1]!, sq[2]!];
  names.set(sq[1]!.w, 't.w');
  const seen: string[] = [];
  tensorValueAndGrad(m.mlpLoss, undefined, [tied, x, y, 'mean'], [0], {
    onGradFinal: () => {},
    gradParts: { rows: new Map([[sq[1]!.w, 2]]), hook: (leaf, _p, offset) => { seen.push(`${names.get(leaf)}@${offset}`); } },
  });
  assert.equal(seen, [], 'its first use completes a gradient to which the second use added: computed whole');
  assert.throws(() => tensorValueAndGrad(m.mlpLoss, undefined, [layers, x, y, 'mean'], [0], { gradParts: { rows, hook: () => {} } }), /onGradFinal/);
});

test.run();
