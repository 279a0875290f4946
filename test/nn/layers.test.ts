// SPDX-License-Identifier: MIT
// nn layers: gradients of every layer through user-style marked programs (test/programs/nn) against finite
// differences in f64; forward values against computations written out here; dropout; shared weights; a
// Sequential model; and one program on the CPU (Wasm) backend against the reference.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as nn from '../../sdk/nn/index.js';
import { grad, valueAndGrad, explain, tensor, useBackend, withBackend, referenceTensorBackend, cpuTensorBackend, tensorsIn, mapTree,
  maxPool2d, relu, tanh, sigmoid, softmax, flatten, type Tensor } from '../../sdk/index.js';
import { load, transformProgram } from '../support/compile.js';
import { R, ints, values, checkGrad, close } from './support.js';

const m = await load('test/programs/nn/models.ts');
useBackend(referenceTensorBackend);

const withBias = (i: number, o: number, seed: number): nn.LinearParams => ({ w: R([i, o], seed), b: R([o], seed + 1, 0.3) });
const attnParams = (d: number, seed: number): nn.MultiHeadAttentionParams =>
  ({ q: withBias(d, d, seed), k: withBias(d, d, seed + 2), v: withBias(d, d, seed + 4), o: withBias(d, d, seed + 6) });

// ---- gradients against finite differences ----

for (const act of ['none', 'relu', 'gelu'] as const) {
  checkGrad(`linear (activation ${act})`, m.linearProbe, () => [withBias(4, 3, 1), R([5, 4], 3), R([5, 3], 4), act], [0, 1]);
}
checkGrad('linear without bias on a [2, 3, 4] input', m.linearProbe, () => [{ w: R([4, 3], 5) }, R([2, 3, 4], 6), R([2, 3, 3], 7), 'none'], [0, 1]);
checkGrad('conv2d (stride 1, padding 1, bias)', m.conv2dProbe, () => [{ w: R([3, 2, 3, 3], 8), b: R([3], 9) }, R([2, 2, 4, 4], 10), R([2, 3, 4, 4], 11), 1, 1], [0, 1]);
checkGrad('conv2d (stride 2, no padding, no bias)', m.conv2dProbe, () => [{ w: R([2, 2, 2, 2], 12) }, R([1, 2, 5, 5], 13), R([1, 2, 2, 2], 14), 2, 0], [0, 1]);
checkGrad('layerNorm', m.layerNormProbe, () => [{ gamma: R([5], 15, 1), beta: R([5], 16) }, R([3, 5], 17, 1), R([3, 5], 18)], [0, 1]);
checkGrad('embedding (repeated indices)', m.embeddingProbe, () => [{ table: R([5, 3], 19) }, ints([0, 3, 3, 1, 0, 4], [2, 3]), R([2, 3, 3], 20)]);
checkGrad('multiHeadAttention (2 heads)', m.attentionProbe, () => [attnParams(4, 21), R([2, 3, 4], 29, 1), R([2, 3, 4], 30), 2, false], [0, 1], 1e-5);
checkGrad('multiHeadAttention (2 heads, causal)', m.attentionProbe, () => [attnParams(4, 31), R([1, 4, 4], 39, 1), R([1, 4, 4], 40), 2, true], [0, 1], 1e-5);
checkGrad('multiHeadAttention on [S, D] with 4 heads', m.attentionProbe, () => [attnParams(4, 41), R([3, 4], 49, 1), R([3, 4], 50), 4, true], [0, 1], 1e-5);
checkGrad('multiHeadAttention, cross-attention to a context', m.crossAttentionProbe, () => [attnParams(4, 51), R([2, 2, 4], 59, 1), R([2, 5, 4], 60, 1), R([2, 2, 4], 61), 2], [0, 1, 2], 1e-5);
checkGrad('dropout in training (fixed mask)', m.dropoutProbe, () => [R([4, 5], 62), R([4, 5], 63), true, 7]);
checkGrad('dropout in evaluation', m.dropoutProbe, () => [R([4, 5], 64), R([4, 5], 65), false, 7]);
checkGrad('one linear layer applied twice (shared parameters)', m.twice, () => [withBias(3, 3, 66), R([4, 3], 68), R([4, 3], 69)], [0, 1]);

/** A small CNN with every parameter-free kind between the layers. */
const cnnModel = (seed: number): nn.Layer[] => [
  { kind: 'conv2d', params: { w: R([3, 1, 3, 3], seed), b: R([3], seed + 1) }, padding: 1 },
  { kind: 'relu' },
  { kind: 'maxPool2d', kernel: 2 },
  { kind: 'flatten' },
  { kind: 'linear', params: withBias(12, 5, seed + 2), activation: 'gelu' },
  { kind: 'layerNorm', params: { gamma: R([5], seed + 4, 1), beta: R([5], seed + 5) } },
  { kind: 'dropout', p: 0.3 },
  { kind: 'tanh' },
  { kind: 'linear', params: withBias(5, 4, seed + 6) },
  { kind: 'sigmoid' },
  { kind: 'softmax' },
];
/** Tokens through an embedding, attention and a projection. */
const tokenModel = (seed: number): nn.Layer[] => [
  { kind: 'embedding', params: { table: R([6, 4], seed) } },
  { kind: 'multiHeadAttention', params: attnParams(4, seed + 1), heads: 2, causal: true },
  { kind: 'layerNorm', params: { gamma: R([4], seed + 9, 1), beta: R([4], seed + 10) } },
  { kind: 'linear', params: withBias(4, 3, seed + 11), activation: 'relu' },
];
checkGrad('sequential CNN (conv2d, relu, maxPool2d, flatten, linear, layerNorm, dropout, tanh, sigmoid, softmax)', m.sequentialProbe,
  () => [cnnModel(70), R([2, 1, 4, 4], 80, 1), R([2, 4], 81), true, 3], [0, 1], 1e-5);
checkGrad('sequential over tokens (embedding, causal multiHeadAttention, layerNorm, linear)', m.sequentialProbe,
  () => [tokenModel(90), ints([1, 5, 2, 2, 0, 3], [2, 3]), R([2, 3, 3], 110), false, 0], 0, 1e-5);

// ---- forward values against computations written out here ----

test('linear: relu(x @ w + b) by hand', async () => {
  const p = { w: tensor([[1, -2], [0.5, 1], [-1, 3]]), b: tensor([0.25, -0.5]) };
  const x = tensor([[1, 2, 3], [-1, 0, 1]]);
  // row 0: [1 + 1 - 3 + 0.25, -2 + 2 + 9 - 0.5] = [-0.75, 8.5]; row 1: [-1 - 1 + 0.25, 2 + 3 - 0.5] = [-1.75, 4.5]
  assert.equal(await values(nn.linear(p, x, { activation: 'relu' })), [0, 8.5, 0, 4.5]);
  assert.equal(await values(nn.linear(p, x)), [-0.75, 8.5, -1.75, 4.5]);
  assert.equal(await values(nn.linear({ w: p.w }, x)), [-1, 9, -2, 5]);
});

test('conv2d: loops over the output against the layer (stride 2, padding 1, bias)', async () => {
  const [N, Ci, H, W, Co, K, S, P] = [2, 2, 5, 4, 3, 3, 2, 1];
  const p = { w: R([Co, Ci, K, K], 120, 1), b: R([Co], 121, 1) }, x = R([N, Ci, H, W], 122, 1);
  const [wv, bv, xv] = [await values(p.w), await values(p.b), await values(x)];
  const OH = Math.floor((H + 2 * P - K) / S) + 1, OW = Math.floor((W + 2 * P - K) / S) + 1;
  const want: number[] = [];
  for (let n = 0; n < N; n++) for (let o = 0; o < Co; o++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    let acc = bv[o]!;
    for (let c = 0; c < Ci; c++) for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) {
      const r = i * S - P + a, q = j * S - P + b;
      if (r >= 0 && r < H && q >= 0 && q < W) acc += xv[((n * Ci + c) * H + r) * W + q]! * wv[((o * Ci + c) * K + a) * K + b]!;
    }
    want.push(acc);
  }
  const y = nn.conv2d(p, x, { stride: S, padding: P });
  assert.equal([...y.shape], [N, Co, OH, OW]);
  close('conv2d', await values(y), want, 1e-12, 1e-12);
  // The activation option, as linear's; an unknown one is an error, not ignored.
  close('conv2d relu', await values(nn.conv2d(p, x, { stride: S, padding: P, activation: 'relu' })), want.map((v) => Math.max(v, 0)), 1e-12, 1e-12);
  const g = await values(nn.conv2d(p, x, { stride: S, padding: P, activation: 'gelu' }));
  close('conv2d gelu', g, want.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))), 1e-12, 1e-12);
  assert.throws(() => nn.conv2d(p, x, { activation: 'swish' as never }), /conv2d: unknown activation 'swish' \(relu, gelu or none\)/);
  // maxPool2d is in nn too (it has no parameters: the op itself).
  assert.equal([...nn.maxPool2d(y, { kernel: 2, stride: 1 }).shape], [N, Co, OH - 1, OW - 1]);
});

test('layerNorm: (x - mean) / sqrt(var + eps) · gamma + beta, biased variance', async () => {
  const p = { gamma: tensor([1, 2, 0.5, -1]), beta: tensor([0, 1, -1, 0.5]) }, x = tensor([[1, 2, 3, 6], [0, 0, 1, -1]]);
  const xs = [[1, 2, 3, 6], [0, 0, 1, -1]], g = [1, 2, 0.5, -1], b = [0, 1, -1, 0.5], eps = 1e-3;
  const want = xs.flatMap((row) => {
    const mu = row.reduce((s, v) => s + v, 0) / row.length;
    const v = row.reduce((s, e) => s + (e - mu) ** 2, 0) / row.length;
    return row.map((e, i) => ((e - mu) / Math.sqrt(v + eps)) * g[i]! + b[i]!);
  });
  close('layerNorm', await values(nn.layerNorm(p, x, { eps })), want, 1e-6, 1e-6);
  const fresh = nn.initLayerNorm(4);
  assert.equal([await values(fresh.gamma), await values(fresh.beta)], [[1, 1, 1, 1], [0, 0, 0, 0]]);
});

test('embedding: picks the rows of the table', async () => {
  const p = { table: tensor([[0, 1], [2, 3], [4, 5]]) };
  const y = nn.embedding(p, ints([2, 0, 2, 1], [2, 2]));
  assert.equal([...y.shape], [2, 2, 2]);
  assert.equal(await values(y), [4, 5, 0, 1, 4, 5, 2, 3]);
});

/** Multi-head attention written out with loops: x [S, D] in one batch. */
async function attentionByHand(p: nn.MultiHeadAttentionParams, x: number[][], heads: number, causal: boolean): Promise<number[]> {
  const D = x[0]!.length, S = x.length, dh = D / heads;
  const lin = async (l: nn.LinearParams, rows: number[][]) => {
    const w = await values(l.w), b = l.b ? await values(l.b) : new Array(D).fill(0);
    return rows.map((r) => Array.from({ length: D }, (_, j) => r.reduce((s, v, i) => s + v * w[i * D + j]!, b[j]!)));
  };
  const [q, k, v] = [await lin(p.q, x), await lin(p.k, x), await lin(p.v, x)];
  const merged = x.map(() => new Array<number>(D).fill(0));
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < S; i++) {
      const scores = Array.from({ length: S }, (_, j) => {
        if (causal && j > i) return -Infinity;
        let s = 0;
        for (let e = 0; e < dh; e++) s += q[i]![h * dh + e]! * k[j]![h * dh + e]!;
        return s / Math.sqrt(dh);
      });
      const mx = Math.max(...scores), ex = scores.map((s) => Math.exp(s - mx)), z = ex.reduce((a, b) => a + b, 0);
      for (let e = 0; e < dh; e++) merged[i]![h * dh + e] = ex.reduce((s, w, j) => s + (w / z) * v[j]![h * dh + e]!, 0);
    }
  }
  return (await lin(p.o, merged)).flat();
}

for (const causal of [false, true]) {
  test(`multiHeadAttention: projections, 2 heads${causal ? ', causal' : ''}, merge and output projection by hand`, async () => {
    const p = attnParams(4, 130), x = R([3, 4], 140, 1);
    const rows = await values(x);
    const want = await attentionByHand(p, [rows.slice(0, 4), rows.slice(4, 8), rows.slice(8, 12)], 2, causal);
    close('attention', await values(nn.multiHeadAttention(p, x, { heads: 2, causal })), want, 1e-10, 1e-10);
    // A batch axis gives the same rows.
    const batched = nn.multiHeadAttention(p, x.reshape([1, 3, 4]), { heads: 2, causal });
    assert.equal([...batched.shape], [1, 3, 4]);
    close('attention, batched', await values(batched), want, 1e-10, 1e-10);
  });
}

test('multiHeadAttention: heads must divide dModel', () => {
  assert.throws(() => nn.multiHeadAttention(attnParams(4, 1), R([2, 4], 2), { heads: 3 }), /dModel divisible by heads \(3\), got \[2, 4\]/);
});

test('parameter-free layers by hand: maxPool2d, flatten, relu, gelu, tanh, sigmoid, softmax', async () => {
  // [1, 1, 2, 4] pooled with 2x2 windows -> [1, 1, 1, 2], flattened -> [1, 2].
  const x = tensor([[[[1, -3, 0.5, 2], [-2, 0, -1, -0.25]]]]);
  const pooled = [1, 2];
  const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  const softmaxRow = (r: number[]) => { const e = r.map((v) => Math.exp(v)), z = e.reduce((a, b) => a + b); return e.map((v) => v / z); };
  const want: Record<'relu' | 'gelu' | 'tanh' | 'sigmoid' | 'softmax', number[]> = {
    relu: pooled, gelu: pooled.map(gelu), tanh: pooled.map(Math.tanh), sigmoid: pooled.map((v) => 1 / (1 + Math.exp(-v))), softmax: softmaxRow(pooled),
  };
  for (const kind of ['relu', 'gelu', 'tanh', 'sigmoid', 'softmax'] as const) {
    const y = nn.sequential([{ kind: 'maxPool2d', kernel: 2 }, { kind: 'flatten' }, { kind }], x);
    assert.equal([...y.shape], [1, 2], kind);
    close(kind, await values(y), want[kind], 1e-6, 1e-7);
  }
  const neg = nn.sequential([{ kind: 'relu' }], tensor([-1, 0, 2]));
  assert.equal(await values(neg), [0, 0, 2]);
});

test('sequential = its layers applied one by one', async () => {
  const model = cnnModel(150), x = R([2, 1, 4, 4], 160, 1);
  const p = model as any[];
  let h = nn.conv2d(p[0].params, x, { padding: 1 });
  h = flatten(maxPool2d(relu(h), { kernel: 2 }), 1);
  h = nn.linear(p[4].params, h, { activation: 'gelu' });
  h = tanh(nn.layerNorm(p[5].params, h));
  h = softmax(sigmoid(nn.linear(p[8].params, h)));
  close('sequential (eval)', await values(nn.sequential(model, x, { training: false })), await values(h), 1e-12, 1e-12);
});

// ---- dropout ----

test('dropout: the identity in evaluation and with p = 0', async () => {
  const x = R([6, 7], 170);
  assert.equal(await values(nn.dropout(x, { p: 0.5, training: false })), await values(x));
  assert.equal(await values(nn.dropout(x, { p: 0, training: true, seed: 1 })), await values(x));
});

test('dropout: kept elements scaled by 1/(1-p), about 1-p of them kept, the mask reproducible with its seed', async () => {
  const x = tensor(new Float64Array(20000).fill(1), [100, 200]);
  const a = await values(nn.dropout(x, { p: 0.25, training: true, seed: 11 }));
  const b = await values(nn.dropout(x, { p: 0.25, training: true, seed: 11 }));
  const c = await values(nn.dropout(x, { p: 0.25, training: true, seed: 12 }));
  assert.ok(a.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6), 'values are 0 or 1/(1-p)');
  const kept = a.filter((v) => v !== 0).length / a.length;
  // 20000 Bernoulli(0.75) draws: the standard deviation of the fraction is 0.003.
  assert.ok(Math.abs(kept - 0.75) < 0.015, `kept fraction ${kept}`);
  assert.equal(a, b, 'same seed, same mask');
  assert.ok(a.some((v, i) => v !== c[i]), 'another seed, another mask');
});

test('dropout: in a Sequential, each layer gets its own mask from the step seed', async () => {
  const model: nn.Layer[] = [{ kind: 'dropout', p: 0.5 }, { kind: 'dropout', p: 0.5 }];
  const ones = tensor(new Float64Array(64).fill(1), [64]);
  const once = await values(nn.sequential([{ kind: 'dropout', p: 0.5 }], ones, { training: true, seed: 5 }));
  const twice = await values(nn.sequential(model, ones, { training: true, seed: 5 }));
  assert.ok(twice.every((v) => v === 0 || v === 4));
  assert.ok(twice.filter((v) => v !== 0).length < once.filter((v) => v !== 0).length, 'the second mask drops more');
});

test('dropout: its result outlives its input when the caller frees the input at its last use', async () => {
  const p = withBias(3, 2, 175), x = R([4, 3], 176);
  for (const training of [false, true]) {
    const v = await (m.dropoutThenUse(p, x, training) as Tensor).item();
    assert.ok(Number.isFinite(v), `training ${training}`);
    const g = grad(m.dropoutThenUse)(p, x, training) as nn.LinearParams;
    assert.ok((await values(g.w)).some((e) => e !== 0), `training ${training}: gradient`);
  }
});

test('dropout: missing decisions are errors that say what to pass', () => {
  const x = R([2, 2], 1);
  assert.throws(() => nn.dropout(x, { p: 0.5, training: true }), /training needs a seed for the mask/);
  assert.throws(() => nn.dropout(x, { p: 1, training: true, seed: 1 }), /p must be a probability in \[0, 1\), got 1/);
  assert.throws(() => nn.sequential([{ kind: 'dropout', p: 0.1 }], x), /layer 0 is dropout: pass \{ training: true \| false \}/);
});

// ---- shared weights ----

test('a layer applied twice gets the sum of the gradients of both uses', async () => {
  const p = withBias(3, 3, 180), x = R([4, 3], 182), c = R([4, 3], 183);
  const shared = grad(m.twice)(p, x, c) as nn.LinearParams;
  const copy = { w: p.w.mul(1), b: p.b!.mul(1) };
  const [g1, g2] = grad(m.twoLayers, [0, 1])(p, copy, x, c) as unknown as [nn.LinearParams, nn.LinearParams];
  for (const k of ['w', 'b'] as const) {
    const [first, second] = [await values(g1[k]!), await values(g2[k]!)];
    close(`d${k}`, await values(shared[k]!), first.map((v, i) => v + second[i]!), 1e-12, 1e-12);
    assert.ok(second.some((v) => v !== 0), 'the second use contributes');
  }
});

test('the gradient of a Sequential is a list of the same shape, kinds and options kept', () => {
  const model = tokenModel(190);
  const g = grad(m.sequentialProbe)(model, ints([1, 2], [1, 2]), R([1, 2, 3], 191), false, 0) as nn.Layer[];
  assert.equal(g.map((l) => l.kind), model.map((l) => l.kind));
  assert.equal(mapTree(g, (t) => [...t.shape]), mapTree(model, (t) => [...t.shape]));
  assert.is((g[1] as { heads: number }).heads, 2);
});

// ---- how the layers are differentiated ----

test('the layers and losses are differentiated by generated code (sdk/nn goes through the transformer)', () => {
  for (const f of [nn.linear, nn.conv2d, nn.layerNorm, nn.embedding, nn.dropout, nn.multiHeadAttention, nn.sequential,
    nn.losses.softmaxCrossEntropy, nn.losses.binaryCrossEntropyWithLogits, nn.losses.mse, nn.losses.l1, nn.losses.huber]) {
    assert.match(String(explain(f)), /generated at build time/, f.name);
  }
});

test('sdk/nn goes through the transformer with no diagnostic (the layers stay within what marked functions support)', () => {
  for (const file of ['sdk/nn/layers.ts', 'sdk/nn/losses.ts', 'sdk/nn/init.ts', 'sdk/nn/index.ts']) {
    const r = transformProgram(file);
    assert.equal(r.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`), [], file);
  }
  assert.ok(transformProgram('sdk/nn/layers.ts').changed);
});

// ---- the CPU backend ----

test('a layer program on the CPU (Wasm) backend agrees with the reference to f32 tolerance', async () => {
  const cpu = await cpuTensorBackend();
  const make = () => ({ model: cnnModel(200), x: R([2, 1, 4, 4], 210, 1), c: R([2, 4], 211) });
  const ref = make();
  const [v0, g0] = valueAndGrad(m.sequentialProbe, [0, 1])(ref.model, ref.x, ref.c, true, 9) as unknown as [Tensor, [nn.Layer[], Tensor]];
  // The same values on the CPU backend: the seeded generators draw on the host, so the tensors are the same.
  const [v1, g1] = withBackend(cpu, () => {
    const on = make();
    assert.is(on.x.backend.name, 'cpu');
    return valueAndGrad(m.sequentialProbe, [0, 1])(on.model, on.x, on.c, true, 9);
  }) as unknown as [Tensor, [nn.Layer[], Tensor]];
  close('value', [await v1.item()], [await v0.item()], 1e-4, 1e-5);
  const [a, b] = [tensorsIn(g0), tensorsIn(g1)];
  assert.is(a.length, b.length);
  for (let i = 0; i < a.length; i++) close(`gradient ${i}`, await values(b[i]!), await values(a[i]!), 1e-3, 1e-4);
});

test.run();
