// SPDX-License-Identifier: MIT
// The optimizers over parameter trees against closed forms on tiny problems, on the reference backend (f64) and
// the CPU backend (f32): one SGD step on ½‖w‖², momentum and Nesterov under a constant gradient, L2 vs decoupled
// weight decay, Adam's first step lr·g/(|g| + eps), schedules, clipping by global norm, tied parameters; then the
// state tree, the gradients a step consumes, flat memory, and every error message.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Tensor, type TensorBackend, cpuTensorBackend, memoryStats, referenceTensorBackend, tensor, useBackend, valueAndGrad } from '../../sdk/index.js';
import { adam, adamw, clipGradNorm, sgd, stepDecay, type Optimizer } from '../../sdk/optim/index.js';
import { namedTensors } from '../../sdk/train/index.js';
import { load } from '../support/compile.js';

const m = await load('test/programs/train/models.ts');
const backends: [string, TensorBackend, number][] = [['reference', referenceTensorBackend, 1e-12], ['cpu', await cpuTensorBackend(), 2e-6]];

const A = [0.5, -1.25, 2], B0 = [3, -0.75], B1 = [-0.1, 0.2, 0.3, -0.4];
const f32 = (xs: number[]) => xs.map(Math.fround);
const vals = async (t: Tensor) => Array.from(await t.data());

function close(what: string, got: number[], want: number[], tol: number): void {
  assert.is(got.length, want.length, `${what}: length`);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= tol * (1 + Math.abs(want[i]!)), `${what}: element ${i} is ${g}, expected ${want[i]}`));
}

/** { a, b: [b0, b1] }: a tree with an array inside. */
const tree = () => ({ a: tensor(A), b: [tensor(B0), tensor(B1)] });
type Tree = ReturnType<typeof tree>;
/** A gradient tree of constant values. */
const constGrads = (c: number[][]) => ({ a: tensor(c[0]!), b: [tensor(c[1]!), tensor(c[2]!)] });
const flat = async (p: Tree) => [await vals(p.a), await vals(p.b[0]!), await vals(p.b[1]!)];
const each = (xs: number[][], f: (x: number, i: number) => number) => xs.map((x) => x.map(f));
const P0 = [f32(A), f32(B0), f32(B1)];

for (const [name, be, tol] of backends) {
  test(`${name}: one SGD step on ½‖w‖² (gradient w) gives (1 − lr)·w; the tree keeps its tensors and the gradients are consumed`, async () => {
    useBackend(be);
    const p = tree();
    const before = [p.a, p.b[0], p.b[1]];
    const [loss, g] = valueAndGrad(m.halfNormSq)(p) as [Tensor, Tree];
    close('loss', [await loss.item()], [0.5 * P0.flat().reduce((s, x) => s + x * x, 0)], tol);
    loss.dispose();
    const info = await sgd({ lr: 0.1 }).step(p, g);
    assert.equal(info, { step: 1, lr: 0.1 });
    assert.ok(p.a === before[0] && p.b[0] === before[1] && p.b[1] === before[2], 'params keep their identity');
    assert.ok(g.a.disposed && g.b[0]!.disposed && g.b[1]!.disposed, 'the step disposed the gradients');
    const got = await flat(p);
    P0.forEach((w, j) => close(`leaf ${j}`, got[j]!, w.map((x) => 0.9 * x), tol));
  });

  test(`${name}: SGD momentum μ under a constant gradient: Σ of velocities g, (1+μ)g, (1+μ+μ²)g; Nesterov adds μ·v`, async () => {
    useBackend(be);
    const G = [[1, -2, 0.5], [0.25, 4], [-1, 1, -1, 1]], lr = 0.05, mu = 0.9;
    for (const nesterov of [false, true]) {
      const p = tree(), opt = sgd({ lr, momentum: mu, nesterov });
      for (let k = 0; k < 3; k++) await opt.step(p, constGrads(G));
      // Velocities v1 = g, v2 = (1+μ)g, v3 = (1+μ+μ²)g; the update uses v, or g + μ·v with Nesterov.
      const v = [1, 1 + mu, 1 + mu + mu * mu];
      const total = nesterov ? v.reduce((s, vk) => s + 1 + mu * vk, 0) : v.reduce((s, vk) => s + vk, 0);
      const want = P0.map((w, j) => w.map((x, i) => x - lr * total * G[j]![i]!));
      const got = await flat(p);
      want.forEach((w, j) => close(`nesterov ${nesterov} leaf ${j}`, got[j]!, w, tol));
      close('velocity of a', await vals((opt.state!.velocity as Tree).a), G[0]!.map((g) => v[2]! * g), tol);
      opt.dispose();
    }
  });

  test(`${name}: weight decay: SGD and Adam add it to the gradient (L2), AdamW multiplies the weights by 1 − lr·wd`, async () => {
    useBackend(be);
    const zero = [[0, 0, 0], [0, 0], [0, 0, 0, 0]], lr = 0.01, wd = 0.5, eps = 1e-8;
    const p1 = tree();
    await sgd({ lr, weightDecay: wd }).step(p1, constGrads(zero));
    const g1 = await flat(p1);
    P0.forEach((w, j) => close(`sgd leaf ${j}`, g1[j]!, w.map((x) => x * (1 - lr * wd)), tol));
    // Adam with L2: d = wd·p, so the first step is lr · d / (|d| + eps).
    const p2 = tree();
    await adam({ lr, weightDecay: wd }).step(p2, constGrads(zero));
    const g2 = await flat(p2);
    P0.forEach((w, j) => close(`adam leaf ${j}`, g2[j]!, w.map((x) => x - (lr * wd * x) / (Math.abs(wd * x) + eps)), tol));
    // AdamW: p·(1 − lr·wd), and a zero gradient moves nothing else.
    const p3 = tree();
    await adamw({ lr, weightDecay: wd }).step(p3, constGrads(zero));
    const g3 = await flat(p3);
    P0.forEach((w, j) => close(`adamw leaf ${j}`, g3[j]!, w.map((x) => x * (1 - lr * wd)), tol));
  });

  test(`${name}: Adam's first step is lr·g/(|g| + eps) ≈ lr·sign(g) (bias-corrected moments); the second matches the formula`, async () => {
    useBackend(be);
    const G = [[1e-3, -2, 0.5], [30, -4e-2], [-1, 1, -1e2, 7]], lr = 0.01, eps = 1e-8, b1 = 0.9, b2 = 0.999;
    const p = tree(), opt = adam({ lr });
    await opt.step(p, constGrads(G));
    const got = await flat(p);
    P0.forEach((w, j) => close(`leaf ${j}`, got[j]!, w.map((x, i) => x - (lr * G[j]![i]!) / (Math.abs(G[j]![i]!) + eps)), tol));
    P0.forEach((w, j) => close(`≈ sign, leaf ${j}`, got[j]!, w.map((x, i) => x - lr * Math.sign(G[j]![i]!)), 1e-5));
    // A second step with gradient −g: m = 0.9·0.1·g − 0.1·g, v = g², bias corrections 1 − β^2.
    const neg = G.map((r) => r.map((g) => -g));
    await opt.step(p, constGrads(neg));
    const got2 = await flat(p);
    const want2 = got.map((w, j) => w.map((x, i) => {
      const g = G[j]![i]!;
      const mHat = ((1 - b1) * b1 * g - (1 - b1) * g) / (1 - b1 ** 2), vHat = ((1 - b2) * b2 * g * g + (1 - b2) * g * g) / (1 - b2 ** 2);
      return x - (lr * mHat) / (Math.sqrt(vHat) + eps);
    }));
    want2.forEach((w, j) => close(`step 2 leaf ${j}`, got2[j]!, w, tol * 10));
    assert.is(await opt.state!.step.item(), 2);
    assert.is(opt.steps, 2);
  });

  test(`${name}: a schedule sets each step's rate (stepDecay 0.1 → 0.05 after 2 steps)`, async () => {
    useBackend(be);
    const ones = [[1, 1, 1], [1, 1], [1, 1, 1, 1]];
    const p = tree(), opt = sgd({ lr: stepDecay({ lr: 0.1, stepSize: 2, gamma: 0.5 }) });
    const lrs: number[] = [];
    for (let k = 0; k < 4; k++) lrs.push((await opt.step(p, constGrads(ones))).lr);
    assert.equal(lrs, [0.1, 0.1, 0.05, 0.05]);
    assert.is(opt.lrAt(4), 0.025);
    const got = await flat(p);
    P0.forEach((w, j) => close(`leaf ${j}`, got[j]!, w.map((x) => x - 0.3), tol));
  });

  test(`${name}: clipping by global norm: ‖(3, 4)‖ = 5 clipped to 1, folded into the fused update; below the limit nothing changes`, async () => {
    useBackend(be);
    const G = [[3, 0, 0], [0, 4], [0, 0, 0, 0]];
    const c = await clipGradNorm(constGrads(G), 1);
    close('norm', [c.norm], [5], tol);
    close('factor', [c.gradScale], [1 / (5 + 1e-6)], tol);
    // Gradients still multiplied by a loss scale of 1024: the norm is the true one.
    const scaled = await clipGradNorm(constGrads(each(G, (x) => x * 1024)), 1, { gradScale: 1 / 1024 });
    close('norm of scaled gradients', [scaled.norm], [5], tol);
    close('factor of scaled gradients', [scaled.gradScale], [1 / 1024 / (5 + 1e-6)], tol);
    const p = tree();
    const info = await sgd({ lr: 1, clipNorm: 1 }).step(p, constGrads(G));
    close('reported norm', [info.gradNorm!], [5], tol);
    const got = await flat(p);
    P0.forEach((w, j) => close(`clipped leaf ${j}`, got[j]!, w.map((x, i) => x - G[j]![i]! / (5 + 1e-6)), tol));
    const q = tree();
    await sgd({ lr: 1, clipNorm: 10 }).step(q, constGrads(G));
    const got2 = await flat(q);
    P0.forEach((w, j) => close(`unclipped leaf ${j}`, got2[j]!, w.map((x, i) => x - G[j]![i]!), tol));
  });
}

test('a tensor (or a sub-tree) at two places of the tree (tied) is one parameter: updated once, with the gradient summed over its uses', async () => {
  useBackend(referenceTensorBackend);
  const w = tensor(A);
  const p = { a: w, b: [w] };
  const [loss, g] = valueAndGrad(m.halfNormSq)(p) as [Tensor, typeof p];
  loss.dispose();
  assert.ok(g.a === g.b[0], 'valueAndGrad gives one gradient tensor for the tied leaf');
  const opt = sgd({ lr: 0.1, momentum: 0.5 });
  await opt.step(p, g);
  close('tied', await vals(w), f32(A).map((x) => x - 0.1 * 2 * x), 1e-12);
  assert.is(namedTensors(opt.state).length, 3, 'step, velocity.a, velocity.b.0');
  assert.ok((opt.state!.velocity as typeof p).a === (opt.state!.velocity as typeof p).b[0], 'one velocity buffer for the tied leaf');
  // A sub-tree shared by two keys (a layer used twice): its tensors are the same parameters.
  const u = tensor([1, 2]), layer = { u };
  const shared = { enc: layer, dec: layer };
  const gu = tensor([0.5, 0.5]);
  const opt2 = sgd({ lr: 1 });
  await opt2.step(shared, { enc: { u: gu }, dec: { u: gu } });
  close('shared sub-tree', await vals(u), [0.5, 1.5], 0);
  assert.is(namedTensors(opt2.state).length, 1, 'step only');
  const bad = { a: tensor([1, 1, 1]), b: [tensor([1, 1, 1])] };
  try { await opt.step(p, bad); assert.unreachable('different gradients for a tied parameter'); } catch (e) {
    assert.match((e as Error).message, /sgd\.step: parameter 0 \(f32\[3\]\) appears at several places of the tree \(tied\) but the gradient tree has different tensors there/);
  }
});

test('the state is a tree of Tensors named like the parameters, with the step count', async () => {
  useBackend(referenceTensorBackend);
  const p = tree();
  const cases: [Optimizer, string[]][] = [
    [sgd({ lr: 0.1 }), ['step']],
    [sgd({ lr: 0.1, momentum: 0.9 }), ['step', 'velocity.a', 'velocity.b.0', 'velocity.b.1']],
    [adam({ lr: 0.1 }), ['step', 'm.a', 'm.b.0', 'm.b.1', 'v.a', 'v.b.0', 'v.b.1']],
    [adamw({ lr: 0.1 }), ['step', 'm.a', 'm.b.0', 'm.b.1', 'v.a', 'v.b.0', 'v.b.1']],
  ];
  for (const [opt, names] of cases) {
    assert.is(opt.state, undefined, 'no state before init or the first step');
    opt.init(p);
    assert.equal(namedTensors(opt.state).map(([n]) => n), names, opt.kind);
    assert.is(opt.state!.step.dtype, 'i32');
    await opt.step(p, constGrads([[1, 1, 1], [1, 1], [1, 1, 1, 1]]));
    assert.is(await opt.state!.step.item(), 1);
    for (const [n, t] of namedTensors(opt.state)) if (n !== 'step') assert.equal(t.shape, n.endsWith('a') ? [3] : n.endsWith('0') ? [2] : [4], n);
    opt.dispose();
    assert.is(opt.state, undefined);
  }
});

test('memory is flat over 50 steps: the gradients are consumed and the step counter is replaced, not added', async () => {
  useBackend(await cpuTensorBackend());
  const p = tree(), opt = adamw({ lr: 1e-3 });
  const live: number[] = [];
  for (let k = 0; k < 50; k++) {
    const [loss, g] = valueAndGrad(m.halfNormSq)(p) as [Tensor, Tree];
    loss.dispose();
    await opt.step(p, g);
    if (k === 1 || k === 49) live.push(memoryStats().liveTensors);
  }
  assert.is(live[1], live[0]);
});

test('errors say what is wrong and what to do; nothing is freed or updated by a refused step', async () => {
  useBackend(referenceTensorBackend);
  const rejects = async (p: Promise<unknown>, re: RegExp) => {
    try { await p; } catch (e) { assert.match((e as Error).message, re); return; }
    assert.unreachable(`expected ${re}`);
  };
  const p = tree();
  const g = constGrads([[1, 1, 1], [1, 1], [1, 1, 1, 1]]);
  const opt = sgd({ lr: 0.1 });
  await rejects(opt.step(p, { a: g.a }), /sgd\.step: the gradient tree holds 1 tensors but the parameter tree 3; pass the gradients valueAndGrad returned for these parameters/);
  await rejects(opt.step(p, p), /sgd\.step: gradient 0 is itself a parameter tensor; pass \(params, grads\) in that order/);
  assert.ok(!g.a.disposed && !p.a.disposed, 'a refused step frees nothing');
  close('a refused step updates nothing', await vals(p.a), f32(A), 0);
  await opt.step(p, g);
  await rejects(opt.step(p, g), /sgd\.step: gradient 0 \(f32\[3\]\) was already disposed \(by an earlier step\? a step consumes its gradients\)/);
  await rejects(adam({ lr: 0.1 }).step({ w: tensor([1, 2], [2], 'f16') }, { w: tensor([1, 2]) }), /adam\.init: parameter 0 is f16\[2\]; optimizers update f32 parameters \(keep f32 master weights/);
  await rejects(opt.step(p, constGrads([[1, 1, 1], [1, 1], [1, 1, 1, 1]]), { gradScale: 0 }), /sgd\.step: gradScale must be a finite number > 0, got 0/);
  const m2 = sgd({ lr: 0.1, momentum: 0.9 });
  m2.init({ a: tensor([1]) });
  await rejects(m2.step(p, constGrads([[1, 1, 1], [1, 1], [1, 1, 1, 1]])), /sgd\.step: the optimizer's velocity holds 1 tensors but the parameter tree 3; these are not the parameters it was initialised for/);
  await rejects(sgd({ lr: () => -1 }).step(p, constGrads([[1, 1, 1], [1, 1], [1, 1, 1, 1]])), /sgd: the learning rate of step 0 is -1; it must be a finite number ≥ 0/);
  assert.throws(() => sgd({ lr: -0.1 }), /sgd: lr must be a finite number ≥ 0 or a schedule \(step => rate\), got -0.1/);
  assert.throws(() => sgd({ lr: 0.1, nesterov: true }), /sgd: nesterov needs a momentum > 0/);
  assert.throws(() => adam({ lr: 0.1, beta1: 1 }), /adam: beta1 must be in \[0, 1\), got 1/);
  assert.throws(() => adamw({ lr: 0.1, clipNorm: 0 }), /adamw: clipNorm must be a finite number > 0, got 0/);
  assert.throws(() => (sgd as (o: unknown) => Optimizer)(undefined), /sgd: expected options \{ lr, \.\.\. \}, got undefined/);
  await rejects(clipGradNorm(constGrads([[Infinity, 0, 0], [0, 0], [0, 0, 0, 0]]), 1), /clipGradNorm: the gradient norm is Infinity: some gradient is inf or NaN\. With a loss scale, use a LossScaler/);
  await rejects(adam({ lr: 1 }).loadState({ step: tensor([1]) }), /adam\.loadState: 'step' must be an i32 scalar, got f32\[1\]/);
  await rejects(sgd({ lr: 1 }).loadState({ step: tensor([1], [], 'i32'), m: {} }), /sgd\.loadState: the state has 'm', which a sgd optimizer with momentum 0 does not keep \(it keeps step\)/);
});

test.run();
