// Reverse mode over tensors: the transformer's generated code against finite differences in f64 (reference
// backend), the same gradients on the CPU backend and on WebGPU (SwiftShader) against the reference's, against the
// eager tape; shared parameters, stopGradient, checkpoint, custom derivatives, and flat memory over repeated steps
// with no dispose() anywhere.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { grad, valueAndGrad, vjp, gradcheck, explain, adjointSource, tensor, randn, rand, withBackend, useBackend, referenceTensorBackend,
  memoryStats, tensorsIn, mapTree, cpuTensorBackend, toBackend, matmul, mean, relu, type Tensor, type TensorBackend } from '../../sdk/index.js';
import { F32_GRAD_TOL, backendUnderTest, close, noGpuReason } from './helpers.js';
import { load } from '../support/compile.js';

const m = await load('test/programs/tensor/models.ts');
useBackend(referenceTensorBackend);

const R = (shape: number[], seed: number, scale = 0.5) => withBackend(referenceTensorBackend, () => randn(shape, seed).mul(scale));
const labels = (vals: number[]) => tensor(vals, [vals.length], 'i32');
const mlpParams = (seed: number) => ({ layers: [[4, 6], [6, 5], [5, 3]].map(([i, o], k) => ({ w: R([i!, o!], seed + k), b: R([o!], seed + 10 + k, 0.1) })) });

/** The models, each with its arguments (made on the reference backend), the arguments differentiated and the tolerance. */
const models: { name: string; f: any; args: () => unknown[]; argnums?: number | number[]; tolerance?: number }[] = [
  { name: 'mlp (loop over layers, relu, bias, softmax cross-entropy)', f: m.mlpLoss, args: () => [mlpParams(1), R([7, 4], 2), labels([0, 1, 2, 1, 0, 2, 2])] },
  { name: 'block applied twice (shared parameters)', f: m.twice, args: () => [{ w: R([4, 4], 3), g: R([4], 4), b: R([4], 5) }, R([3, 4], 6), false] },
  { name: 'block applied twice, checkpointed', f: m.twice, args: () => [{ w: R([4, 4], 3), g: R([4], 4), b: R([4], 5) }, R([3, 4], 6), true] },
  { name: 'rnn over 20 steps with one weight matrix', f: m.rnn, args: () => [{ wx: R([3, 4], 7), wh: R([4, 4], 8, 0.3) }, Array.from({ length: 20 }, (_, i) => R([2, 3], 100 + i)), R([2, 4], 9)], argnums: [0, 2] },
  { name: 'tied embeddings', f: m.tied, args: () => [{ table: R([6, 4], 10) }, labels([0, 3, 5, 3]), labels([1, 3, 0, 2])] },
  { name: 'target network (stopGradient)', f: m.td, args: () => [{ w: R([3, 2], 11) }, { w: R([3, 2], 12) }, R([5, 3], 13), R([5, 2], 14)] },
  { name: 'methods on tensors', f: m.methods, args: () => [R([3, 4], 15), R([2, 3], 16)], argnums: [0, 1] },
  { name: 'small cnn (conv2d, maxPool2d, reshape)', f: m.cnn, args: () => [{ k: R([2, 1, 3, 3], 17), w: R([8, 3], 18) }, R([2, 1, 4, 4], 19), labels([1, 2])] },
  { name: 'layer norm + causal attention block', f: m.attn, args: () => [{ wq: R([4, 4], 20), wk: R([4, 4], 21), wv: R([4, 4], 22), g: R([4], 23), b: R([4], 24) }, R([1, 5, 4], 25)], tolerance: 1e-5 },
];

for (const { name, f, args, argnums = 0, tolerance = 1e-6 } of models) {
  test(`${name}: generated gradient matches finite differences (f64)`, () => {
    const r = gradcheck(f, args() as never, { argnums, tolerance, eps: 1e-5 });
    assert.ok(r.ok, `${name}: max error ${r.maxError} at ${JSON.stringify(r.where)} (analytic ${r.analytic}, numeric ${r.numeric})`);
  });
}

/** A copy of a tree of arguments with every Tensor moved to `be` (a Tensor used twice stays one Tensor). */
async function moveTree(tree: unknown, be: TensorBackend): Promise<unknown> {
  const copies = new Map(await Promise.all(tensorsIn(tree).map(async (t) => [t, await toBackend(t, be)] as const)));
  return mapTree(tree, (t) => copies.get(t)!);
}

/** Every model's value and generated gradients on an f32 backend against the reference's (checked above in f64). */
async function parity(be: TensorBackend): Promise<void> {
  const [rtol, atol] = F32_GRAD_TOL;
  for (const { name, f, args, argnums = 0 } of models) {
    const a = withBackend(referenceTensorBackend, args);
    const [v0, g0] = withBackend(referenceTensorBackend, () => valueAndGrad(f, argnums)(...a)) as [Tensor, unknown];
    const moved = await moveTree(a, be) as unknown[];
    const [v1, g1] = withBackend(be, () => valueAndGrad(f, argnums)(...moved)) as [Tensor, unknown];
    assert.is(v1.backend, be, `${name}: computed on ${be.name}`);
    close(`${name} on ${be.name}: value`, await v1.data(), await v0.data(), rtol, atol);
    const want = tensorsIn(g0), got = tensorsIn(g1);
    assert.is(got.length, want.length, `${name} on ${be.name}: gradient leaves`);
    for (let i = 0; i < want.length; i++) close(`${name} on ${be.name}: gradient leaf ${i}`, await got[i]!.data(), await want[i]!.data(), rtol, atol);
  }
}

test('cpu: every model\'s value and generated gradients agree with the reference to f32 tolerance', async () => {
  try { await parity((await backendUnderTest('cpu', 'test/tensor/grad'))!); } finally { useBackend(referenceTensorBackend); }
});

const gpu = noGpuReason ? null : await backendUnderTest('webgpu', 'test/tensor/grad');
useBackend(referenceTensorBackend);
(gpu ? test : test.skip)(`webgpu: every model's value and generated gradients agree with the reference to f32 tolerance${gpu ? '' : ` (skipped: ${noGpuReason})`}`, async () => {
  await parity(gpu!);
});

test('stopGradient: the target network gets zero gradient', async () => {
  const g = grad(m.td, 1)({ w: R([3, 2], 11) }, { w: R([3, 2], 12) }, R([5, 3], 13), R([5, 2], 14)) as { w: Tensor };
  assert.equal(Array.from(await g.w.data()), [0, 0, 0, 0, 0, 0]);
});

test('a parameter used twice gets the sum of both uses (block twice = two blocks with one weight)', async () => {
  const p = { w: R([4, 4], 3), g: R([4], 4), b: R([4], 5) };
  const x = R([3, 4], 6);
  const g1 = grad(m.twice)(p, x, false) as typeof p;
  const g2 = grad(m.twice)(p, x, true) as typeof p;
  for (const k of ['w', 'g', 'b'] as const) {
    const a = await g1[k].data(), b = await g2[k].data();
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-12, `checkpoint changes d${k}[${i}]: ${v} vs ${b[i]}`));
  }
});

test('transformed code and the eager tape agree', async () => {
  // The same function, untransformed: grad records its ops at run time.
  const p = mlpParams(1), x = R([7, 4], 2), y = labels([0, 1, 2, 1, 0, 2, 2]);
  const { softmaxCrossEntropy } = await import('../../sdk/index.js');
  const eager = (pp: typeof p, xx: Tensor, yy: Tensor): Tensor => {
    let h = xx;
    pp.layers.forEach((l, i) => { const z = matmul(h, l.w, { bias: l.b }); h = i < pp.layers.length - 1 ? relu(z) : z; });
    return mean(softmaxCrossEntropy(h, yy));
  };
  assert.match(String(explain(eager)), /not transformed, so grad records a tape/);
  assert.match(String(explain(m.mlpLoss)), /generated at build time/);
  const [v1, g1] = valueAndGrad(m.mlpLoss)(p, x, y) as [Tensor, typeof p];
  const [v2, g2] = valueAndGrad(eager)(p, x, y) as [Tensor, typeof p];
  assert.ok(Math.abs((await v1.item()) - (await v2.item())) < 1e-12);
  const a = tensorsIn(g1), b = tensorsIn(g2);
  assert.is(a.length, 6);
  for (let i = 0; i < a.length; i++) {
    const da = await a[i]!.data(), db = await b[i]!.data();
    da.forEach((v, j) => assert.ok(Math.abs(v - db[j]!) < 1e-12, `leaf ${i}[${j}]: ${v} vs ${db[j]}`));
  }
});

test('gradient trees have the shape of the parameters', () => {
  const p = mlpParams(1);
  const g = grad(m.mlpLoss)(p, R([7, 4], 2), labels([0, 1, 2, 1, 0, 2, 2])) as typeof p;
  assert.is(g.layers.length, 3);
  g.layers.forEach((l, i) => { assert.equal(l.w.shape, p.layers[i]!.w.shape); assert.equal(l.b.shape, p.layers[i]!.b.shape); });
  assert.equal(mapTree(g, (t) => t.shape.length), { layers: [{ w: 2, b: 1 }, { w: 2, b: 1 }, { w: 2, b: 1 }] });
});

test('vjp over tensors: a cotangent for a non-scalar output', async () => {
  const w = R([3, 2], 30), x = R([4, 3], 31);
  const f = (a: Tensor, b: Tensor) => matmul(b, a);
  const [y, pb] = vjp(f, w, x) as unknown as [Tensor, (c: Tensor) => [Tensor, Tensor]];
  assert.equal(y.shape, [4, 2]);
  const [dw, dx] = pb(tensor(new Array(8).fill(1), [4, 2]));
  // d/dw sum(x @ w) = x^T @ 1
  const xs = await x.data(), dws = await dw.data();
  for (let i = 0; i < 3; i++) for (let j = 0; j < 2; j++) {
    let s = 0; for (let r = 0; r < 4; r++) s += xs[r * 3 + i]!;
    assert.ok(Math.abs(dws[i * 2 + j]! - s) < 1e-12);
  }
  assert.equal(dx.shape, [4, 3]);
});

test('grad of a function that does not return a scalar says what to do', () => {
  assert.throws(() => grad((a: Tensor) => relu(a))(R([2, 2], 1)), /returns a scalar Tensor.*returned a f32\[2, 2\] tensor.*sum\(\) or mean\(\)/);
});

test('an untransformed function over numbers still gets the scalar error', () => {
  assert.throws(() => grad((x: number) => x * x)(3), /has no generated adjoint: it was not transformed/);
});

test('adjointSource shows the generated tensor code with its memory plan', () => {
  const src = adjointSource(m.tied);
  assert.match(src, /function tied\$vjp\(\$s/);
  assert.match(src, /\$f\.free\(e\);/);
});

test('1,000 training steps on the CPU backend keep memory flat, with no dispose()', async () => {
  const cpu = await cpuTensorBackend();
  useBackend(cpu);
  try {
    const p = { layers: [[16, 32], [32, 32], [32, 4]].map(([i, o], k) => ({ w: randn([i!, o!], k).mul(0.2), b: randn([o!], 50 + k).mul(0.01) })) };
    const x = rand([8, 16], 7), y = tensor([0, 1, 2, 3, 0, 1, 2, 3], [8], 'i32');
    const step = () => {
      const g = grad(m.mlpLoss)(p, x, y) as typeof p;
      // An SGD step written by hand (not an optimizer): new values replace the old ones in the tree.
      p.layers = p.layers.map((l, i) => ({ w: l.w.sub(g.layers[i]!.w.mul(0.1)), b: l.b.sub(g.layers[i]!.b.mul(0.1)) }));
    };
    const settle = async () => { for (let i = 0; i < 3; i++) { (globalThis as any).gc?.(); await new Promise((r) => setTimeout(r, 0)); } };
    for (let i = 0; i < 20; i++) step();
    await settle();
    const before = memoryStats();
    const [l0] = valueAndGrad(m.mlpLoss)(p, x, y) as [Tensor, unknown];
    const first = await l0.item();
    for (let i = 0; i < 1000; i++) step();
    await settle();
    const after = memoryStats();
    const [l1] = valueAndGrad(m.mlpLoss)(p, x, y) as [Tensor, unknown];
    assert.ok((await l1.item()) < first, 'training lowers the loss');
    // Old parameters and gradients are garbage the program dropped: the FinalizationRegistry frees them (the
    // test runner exposes gc() so that the count is exact here).
    assert.ok(after.liveTensors <= before.liveTensors + 2, `live tensors grew from ${before.liveTensors} to ${after.liveTensors}`);
    assert.ok(after.liveBytes <= before.liveBytes + 64, `live bytes grew from ${before.liveBytes} to ${after.liveBytes}`);
  } finally { useBackend(referenceTensorBackend); }
});

test.run();
