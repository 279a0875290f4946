// SPDX-License-Identifier: MIT
// Parameter trees as safetensors: names are tree paths; save → load is bit-identical (f32, f16, i32) with or
// without a tree to load into; the file Python wrote loads as a tree; a missing, extra or mismatched tensor, a
// corrupt or truncated file each fail with a message naming it, before a single tensor is made; optimizer state
// saved mid-run resumes bit-identically.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Tensor, init, loadSafetensors, memoryStats, randn, tensor, valueAndGrad } from '../../sdk/index.js';
import { adamw, sgd, type Optimizer } from '../../sdk/optim/index.js';
import { loadParams, namedTensors, saveParams } from '../../sdk/train/index.js';
import { load } from '../support/compile.js';

const m = await load('test/programs/train/models.ts');
await init({ backend: 'cpu' });
const root = fileURLToPath(new URL('../../..', import.meta.url));
const fixture = join(root, 'test/fixtures-bin/python-written.safetensors');

const bits = async (t: Tensor) => Array.from(new Uint32Array(Float32Array.from(await t.data()).buffer));
const model = () => ({
  layers: [{ w: randn([3, 4], 1), b: tensor([0.1, -0.2, 0.3, 1e-30]) }, { w: randn([4, 2], 2), b: tensor([-0, 7]) }],
  embed: tensor([1, -2.5, 0.1, 65504, 6e-8, -1e-5], [2, 3], 'f16'),
  ids: tensor([-2147483648, -1, 0, 2147483647], [4], 'i32'),
  kind: 'mlp', // not a tensor: not saved, kept by loading into a tree
});
type Model = ReturnType<typeof model>;
const leavesOf = (p: unknown) => namedTensors(p).map(([, t]) => t);

function throwsWith(f: () => unknown, re: RegExp): void {
  try { f(); } catch (e) { assert.match((e as Error).message, re, (e as Error).message); return; }
  assert.unreachable(`expected an error matching ${re}`);
}

test('names are tree paths; every tensor is saved with its dtype; non-tensor leaves are skipped', async () => {
  const p = model();
  assert.equal(namedTensors(p).map(([n]) => n), ['layers.0.w', 'layers.0.b', 'layers.1.w', 'layers.1.b', 'embed', 'ids']);
  const file = loadSafetensors(await saveParams(undefined, p, { format: 'pt' }));
  assert.equal(Object.keys(file.tensors).sort(), ['embed', 'ids', 'layers.0.b', 'layers.0.w', 'layers.1.b', 'layers.1.w']);
  assert.equal(file.metadata, { format: 'pt' });
  assert.is(file.tensors['embed']!.dtype, 'F16');
  assert.is(file.tensors['ids']!.dtype, 'I32');
  assert.equal(file.tensors['layers.1.w']!.shape, [4, 2]);
  throwsWith(() => namedTensors({ 'a.b': tensor([1]) }), /namedTensors: the key "a\.b" contains '\.', but names join keys with '\.'; rename it/);
  throwsWith(() => namedTensors({ x: { '': tensor([1]) } }), /namedTensors: the key "" under 'x' is empty/);
  throwsWith(() => namedTensors(tensor([1])), /namedTensors: pass a tree \(an object or array\) of Tensors, not a bare Tensor/);
});

test('save → load is bit-identical, into a tree (same structure, other leaves kept) and from the names alone (arrays rebuilt)', async () => {
  const p = model();
  const dir = mkdtempSync(join(tmpdir(), 'pullback-params-'));
  try {
    const path = join(dir, 'model.safetensors');
    const bytes = await saveParams(path, p);
    const into = loadParams(path, p);
    const fresh = loadParams<Model>(bytes);
    assert.is(into.kind, 'mlp');
    assert.ok(Array.isArray(fresh.layers) && fresh.layers.length === 2, 'layers.0, layers.1 make an array');
    assert.equal(Object.keys(fresh).sort(), ['embed', 'ids', 'layers']);
    for (const q of [into, fresh]) {
      const [a, b] = [namedTensors(p), namedTensors(q)];
      assert.equal(b.map(([n]) => n).sort(), a.map(([n]) => n).sort());
      for (const [name, t] of a) {
        const u = b.find(([n]) => n === name)![1];
        assert.ok(u !== t, `${name} is a new tensor`);
        assert.is(u.dtype, t.dtype, `${name}: dtype`);
        assert.equal(u.shape, t.shape, `${name}: shape`);
        assert.equal(await bits(u), await bits(t), `${name}: bits`);
      }
      assert.equal(await bits(into.layers[1]!.b), await bits(tensor([-0, 7])), '-0 survives');
    }
    // Saving the loaded tree again gives the same bytes.
    assert.equal(Array.from(await saveParams(undefined, fresh)), Array.from(bytes));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('the Python-written fixture loads as a tree (BF16 → f32, U8 → i32 exactly; F64 rounded only when asked; an I64 beyond i32 left out)', async () => {
  throwsWith(() => loadParams(fixture), new RegExp(
    "loadParams\\(.*python-written\\.safetensors\\): 2 problems:\\n  'steps' is I64 and its element 0 \\(1234567890123\\) does not fit in i32, the engine's integer type; leave it out with \\{ filter \\}" +
    "\\n  'double' is F64, which the engine holds as f32 at most; pass \\{ roundF64: true \\} to round it"));
  const t = loadParams<Record<string, any>>(fixture, undefined, { filter: (n) => n !== 'steps', roundF64: true });
  assert.equal(Object.keys(t).sort(), ['counts', 'double', 'embed', 'empty', 'linear', 'mask']);
  const v = async (x: Tensor) => Array.from(await x.data());
  assert.equal(t.linear.weight.shape, [2, 3]);
  assert.equal(await v(t.linear.weight), [0.5, -1.25, 3.0, 1e-3, -0.0, 123456.789].map(Math.fround));
  assert.equal(await v(t.linear.bias), [0.1, 0.2, 0.3].map(Math.fround));
  assert.is(t.embed.half.dtype, 'f16');
  assert.equal(await v(t.embed.half), [1, -2.5, 0.0999755859375, 65504]);
  assert.is(t.embed.bf16.dtype, 'f32');
  assert.equal(await v(t.embed.bf16), [1, -3.140625, 0.10009765625]);
  assert.equal([t.counts.dtype, ...(await v(t.counts))], ['i32', -2147483648, -1, 0, 2147483647]);
  assert.equal([t.mask.dtype, ...(await v(t.mask))], ['i32', 0, 1, 255, 7, 128]);
  assert.equal(await v(t.double), [Math.fround(3.141592653589793), -0]);
  assert.equal(t.empty.shape, [0, 4]);
});

test('loading into a tree checks every name, shape and dtype and names each problem before making any tensor', async () => {
  const p = model();
  const bytes = await saveParams(undefined, p);
  const live = memoryStats().liveTensors;
  const other = { ...model(), layers: [{ w: randn([3, 5], 1), b: tensor([1, 2, 3, 4]) }], extra: tensor([1, 2]) };
  const liveOther = memoryStats().liveTensors;
  throwsWith(() => loadParams(bytes, other), new RegExp([
    'loadParams\\(buffer\\): 3 problems:',
    "  'layers\\.0\\.w' has shape \\[3, 4\\] in the file but \\[3, 5\\] in the tree",
    "  'extra' \\(f32\\[2\\]\\) is missing from the file",
    "  the file has tensors the tree has no place for: 'layers\\.1\\.b', 'layers\\.1\\.w' \\(leave them out with \\{ filter \\}\\)",
  ].join('\\n')));
  const wrongType = { ...p, ids: tensor([1, 2, 3, 4]) };
  const liveWrong = memoryStats().liveTensors;
  throwsWith(() => loadParams(bytes, wrongType), /loadParams\(buffer\): 'ids' is I32 in the file but f32 \(F32\) in the tree/);
  assert.is(memoryStats().liveTensors, liveWrong, 'a refused load makes no tensor');
  assert.ok(liveOther > live);
  // A filter leaves the other tensors of the file out (they are not 'extra').
  const part = loadParams(bytes, { layers: p.layers }, { filter: (n) => n.startsWith('layers.') });
  assert.is(leavesOf(part).length, 4);
});

test('a corrupt or truncated file fails with the safetensors message and makes no tensor', async () => {
  const like = model();
  const bytes = await saveParams(undefined, like);
  const live = memoryStats().liveTensors;
  throwsWith(() => loadParams(bytes.subarray(0, bytes.length - 3)), /loadSafetensors\(buffer\): tensor '.*': data_offsets \[\d+, \d+\] go beyond the data section, which has \d+ bytes \(truncated file\?\)/);
  throwsWith(() => loadParams(bytes.subarray(0, 5), like), /loadSafetensors\(buffer\): truncated: the file has 5 bytes, fewer than the 8-byte header length/);
  const broken = Uint8Array.from(bytes);
  broken[9] = 0x7b; // '{' inside the JSON header
  throwsWith(() => loadParams(broken), /loadSafetensors\(buffer\): the header is not valid JSON/);
  throwsWith(() => loadParams(join(root, 'no/such/file.safetensors')), /ENOENT/);
  assert.is(memoryStats().liveTensors, live);
});

test('a tensor at two places of the tree is saved under both names and loads back as one tensor', async () => {
  const w = tensor([1, 2, 3]);
  const tied = { enc: { w }, dec: { w } };
  const bytes = await saveParams(undefined, tied);
  assert.equal(Object.keys(loadSafetensors(bytes).tensors).sort(), ['dec.w', 'enc.w']);
  const back = loadParams(bytes, tied);
  assert.ok(back.enc.w === back.dec.w, 'still tied');
});

test('optimizer state saved mid-run resumes bit-identically (AdamW moments and step count, SGD velocity)', async () => {
  const x = randn([16, 4], 7), y = randn([16, 1], 8);
  const params = () => ({
    w1: randn([4, 8], 1).mul(0.5), b1: tensor(new Float32Array(8)), w2: randn([8, 8], 2).mul(0.3),
    b2: tensor(new Float32Array(8)), w3: randn([8, 1], 3).mul(0.3), b3: tensor([0]),
  });
  type P = ReturnType<typeof params>;
  const train = async (p: P, opt: Optimizer, n: number) => {
    for (let k = 0; k < n; k++) {
      const [l, g] = valueAndGrad(m.mlpLoss)(p, x, y) as [Tensor, P];
      l.dispose();
      await opt.step(p, g);
    }
  };
  for (const make of [() => adamw({ lr: 1e-2 }), () => sgd({ lr: 0.05, momentum: 0.9, nesterov: true })]) {
    const a = params(), optA = make();
    await train(a, optA, 5);
    const ckpt = await saveParams(undefined, { params: a, opt: optA.state });
    await train(a, optA, 5);

    const fresh = params(), optB = make();
    optB.init(fresh);
    const loaded = loadParams(ckpt, { params: fresh, opt: optB.state });
    await optB.loadState(loaded.opt!);
    assert.is(optB.steps, 5);
    await train(loaded.params, optB, 5);
    for (const k of Object.keys(a) as (keyof P)[]) assert.equal(await bits(loaded.params[k]), await bits(a[k]), `${optA.kind} ${k}`);
    for (const [[n, s], [, t]] of namedTensors(optA.state).map((e, i) => [e, namedTensors(optB.state)[i]!] as const)) {
      if (n !== 'step') assert.equal(await bits(t), await bits(s), `${optA.kind} state ${n}`);
    }
  }
});

test.run();
