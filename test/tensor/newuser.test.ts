// Tensor programs in the styles a new user writes (test/programs/tensor/newuser.ts): each generated gradient
// against finite differences in f64, and against the eager tape over the same function left untransformed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gradcheck, grad, randn, tensor, sum, mul, useBackend, referenceTensorBackend, tensorsIn, memoryStats, type Tensor } from '../../sdk/index.js';
import { lookupTensor } from '../../sdk/tensor/ad.js';
import { load } from '../support/compile.js';

const m = await load('test/programs/tensor/newuser.ts');
useBackend(referenceTensorBackend);
const R = (shape: number[], seed: number, s = 0.5) => randn(shape, seed).mul(s);

const cases: [string, any, () => unknown[], number[]][] = [
  ['arrow, namespace import, destructuring, methods', m.autoencoder, () => [{ enc: { w: R([4, 3], 1), b: R([3], 2) }, dec: { w: R([3, 4], 3), b: R([4], 4) }, scale: R([4], 5) }, R([5, 4], 6)], [0, 1]],
  ['unmarked helper called twice on one value', m.gated, () => [R([3, 3], 7), R([2, 3], 8)], [0, 1]],
  ['cell returning a tree, unrolled 6 steps', m.unroll, () => [{ wh: R([3, 3], 9), wc: R([3, 3], 10) }, R([2, 3], 11), 6], [0, 1]],
  ['early return (mode 0)', m.branchy, () => [R([3, 4], 12), R([2, 3], 13), 0], [0, 1]],
  ['else-if branch (mode 1)', m.branchy, () => [R([3, 4], 12), R([2, 3], 13), 1], [0, 1]],
  ['fall-through branch (mode 2)', m.branchy, () => [R([3, 4], 12), R([2, 3], 13), 2], [0, 1]],
  ['slice, concat, where, clip, maximum', m.plumbing, () => [R([3, 3], 14, 1), R([2, 3], 15, 1)], [0, 1]],
  ['array of weight tensors', m.ensemble, () => [[R([3, 2], 16), R([3, 2], 17), R([3, 2], 18)], R([4, 3], 19)], [0, 1]],
  ['numbers on either side', m.numbers, () => [R([2, 3], 20)], [0]],
  ['a marked identity: the result outlives the freed argument', m.useIdent, () => [R([3, 3], 21), R([2, 3], 22)], [0, 1]],
  ['outputs pushed into an array, then concatenated', m.collect, () => [R([3, 3], 23), [R([2, 3], 24), R([2, 3], 25), R([2, 3], 26)]], [0, 1]],
];

for (const [name, f, args, argnums] of cases) {
  test(`${name}: matches finite differences and the eager tape`, async () => {
    assert.ok(lookupTensor(f), 'the function was transformed');
    const a = args();
    const r = gradcheck(f, a as never, { argnums, tolerance: 1e-6, eps: 1e-5 });
    assert.ok(r.ok, `max error ${r.maxError} at ${JSON.stringify(r.where)} (analytic ${r.analytic}, numeric ${r.numeric})`);
    // The same source, untransformed (the primal body calls the generated code, so go through a wrapper the
    // registry does not know): grad records a tape.
    const untransformed = (...xs: unknown[]) => f(...xs);
    const g1 = grad(f, argnums)(...a) as unknown[];
    const g2 = grad(untransformed, argnums)(...a) as unknown[];
    const t1 = tensorsIn(g1), t2 = tensorsIn(g2);
    assert.is(t1.length, t2.length);
    for (let i = 0; i < t1.length; i++) {
      const x = await t1[i]!.data(), y = await t2[i]!.data();
      x.forEach((v, j) => assert.ok(Math.abs(v - y[j]!) < 1e-12, `${name}: leaf ${i}[${j}] ${v} vs ${y[j]}`));
    }
  });
}

test('plain calls of marked functions, and unmarked helpers inside them, free their intermediates', () => {
  const p = { enc: { w: R([4, 3], 1), b: R([3], 2) }, dec: { w: R([3, 4], 3), b: R([4], 4) }, scale: R([4], 5) };
  const x = R([5, 4], 6);
  const before = memoryStats().liveTensors;
  for (let i = 0; i < 50; i++) (m.autoencoder(p, x) as Tensor).dispose();
  for (let i = 0; i < 50; i++) for (const t of tensorsIn(grad(m.autoencoder)(p, x))) t.dispose();
  assert.is(memoryStats().liveTensors, before);
  // An unmarked helper's intermediates are released when it returns (its recorded pullbacks keep what they need).
  const w = R([3, 3], 7), xs = R([2, 3], 8);
  const start = memoryStats().liveTensors;
  for (let i = 0; i < 20; i++) for (const t of tensorsIn(grad(m.gated, [0, 1])(w, xs))) t.dispose();
  assert.is(memoryStats().liveTensors, start);
});

test('unroll keeps no state tensor alive after the gradient', () => {
  const p = { wh: R([3, 3], 9), wc: R([3, 3], 10) }, h0 = R([2, 3], 11);
  const before = memoryStats().liveTensors;
  const g = grad(m.unroll)(p, h0, 6);
  for (const t of tensorsIn(g)) t.dispose();
  assert.is(memoryStats().liveTensors, before);
});

test('a tensor gradient inside another is refused with a clear error', () => {
  const inner = (x: Tensor) => sum(mul(x, x));
  const outer = (x: Tensor) => { grad(inner)(x); return sum(x); };
  assert.throws(() => grad(outer)(R([2], 1)), /nested differentiation of tensor functions is not supported yet/);
});

test('compile-time errors point at the line and say what to do', async () => {
  const { transformProgram } = await import('../support/compile.js');
  const src = `import { type Tensor, relu, sum } from 'pullback';
/** @differentiable */
export function bad(p: { w: Tensor }, x: Tensor): Tensor {
  p.w = relu(x);
  return sum(p.w);
}
/** @differentiable */
export async function bad2(x: Tensor): Promise<Tensor> {
  const v = await x.data();
  return sum(x);
}
/** @differentiable */
export function bad3(x: Tensor): Tensor {
  const v = x.item();
  return sum(x);
}
`;
  const r = transformProgram('test/programs/tensor/bad-inline.ts', src);
  const errs = r.diagnostics.filter((d) => d.category === 'error').map((d) => `${d.line}:${d.column}: ${d.message}`);
  assert.ok(errs.some((e) => /^4:3: storing a Tensor into an object or array is not differentiable: parameters and their trees are read-only/.test(e)), errs.join('\n'));
  assert.ok(errs.some((e) => /^8:1: bad2 is not differentiable: async functions/.test(e)), errs.join('\n'));
  assert.ok(errs.some((e) => /^14:13: x\.item\(\) is not differentiable: reading a tensor back/.test(e)), errs.join('\n'));
  void tensor;
});

test.run();
