// grad inside marked functions, differentiated by an outer grad (reverse over forward over the inner function).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { grad, gradcheck, adjointSource } from '../../sdk/index.js';
import { load } from '../support/compile.js';

const m = await load('test/programs/scalar/nested.ts');

test('perturbation confusion: d/dx [x · ∂/∂y (x·y)] = 2x', () => {
  assert.is(grad(m.confusion)(3, 7), 6);
  assert.is(m.confusion(3, 7), 9);
});

test('a force from a potential inside a time-stepping loop, differentiated again', () => {
  const q0 = Float64Array.from([0.8, -0.5]);
  for (const argnums of [0, 1]) {
    const r = gradcheck(m.trajectoryLoss, [q0, 1.7, 40], { argnums, tolerance: 1e-6 });
    assert.ok(r.ok, `argnums ${argnums}: ${JSON.stringify(r)}`);
  }
});

test('an inner gradient-descent loop differentiated with respect to its hyper-parameters', () => {
  const r = gradcheck(m.bilevel, [0.05, 0.1], { tolerance: 1e-6 });
  assert.ok(r.ok, JSON.stringify(r));
});

test('const [value, gradient] = valueAndGrad(f)(...) inside marked functions', () => {
  for (const args of [[0.7, 0.3], [-1.2, 0.05]]) {
    const r = gradcheck(m.useValueAndGrad, args as never, { tolerance: 1e-6 });
    assert.ok(r.ok, JSON.stringify(r));
  }
  const r2 = gradcheck(m.energyAndForce, [Float64Array.from([0.4, -0.3]), 1.3] as never, { tolerance: 1e-6 });
  assert.ok(r2.ok, JSON.stringify(r2));
  const w = 0.7, l = 0.3;
  const v = (w - 2) ** 2 + l * w ** 4, g = 2 * (w - 2) + 4 * l * w ** 3;
  assert.ok(Math.abs(m.useValueAndGrad(w, l) - (v * g + g * g)) < 1e-12, 'the primal is unchanged');
});

test('vjp inside marked functions: an inner gradient-descent loop from the pullback', () => {
  const r = gradcheck(m.bilevelVjp, [0.05, 0.1], { tolerance: 1e-6 });
  assert.ok(r.ok, JSON.stringify(r));
  assert.ok(Math.abs(m.bilevelVjp(0.05, 0.1) - m.bilevel(0.05, 0.1)) < 1e-12, 'vjp and grad give the same inner steps');
  const [g1, g2] = [grad(m.bilevelVjp, [0, 1])(0.05, 0.1), grad(m.bilevel, [0, 1])(0.05, 0.1)] as number[][];
  for (let i = 0; i < 2; i++) assert.ok(Math.abs(g1![i]! - g2![i]!) < 1e-10 * (1 + Math.abs(g2![i]!)), `d/d(hyper-parameter ${i}): ${g1![i]} vs ${g2![i]}`);
});

test('vjp of a vector-valued function inside a marked function, cotangent depending on the inputs', () => {
  const x = Float64Array.from([0.4, -0.7, 1.3]);
  for (const argnums of [0, 1]) {
    const r = gradcheck(m.pullbackNorm, [x, 0.9] as never, { argnums, tolerance: 1e-6 });
    assert.ok(r.ok, `argnums ${argnums}: ${JSON.stringify(r)}`);
  }
  // The primal against the pullback written out by hand: Jᵀc for y = (s x0 x1, sin x1 + s², e^{0.3 x0} x2).
  const s = 0.9, [x0, x1, x2] = x as unknown as [number, number, number];
  const y = [s * x0 * x1, Math.sin(x1) + s * s, Math.exp(0.3 * x0) * x2];
  const c = y.map((v, i) => v + x[i]!);
  const gx = [c[0]! * s * x1 + c[2]! * 0.3 * Math.exp(0.3 * x0) * x2, c[0]! * s * x0 + c[1]! * Math.cos(x1), c[2]! * Math.exp(0.3 * x0)];
  const gs = c[0]! * x0 * x1 + c[1]! * 2 * s;
  const want = gs * gs + y.reduce((a, v, i) => a + v * v + gx[i]! * gx[i]!, 0);
  assert.ok(Math.abs(m.pullbackNorm(x, s) - want) < 1e-12 * want, `${m.pullbackNorm(x, s)} vs ${want}`);
});

test('vjp inside a marked function keeps its arguments as they were at the call', () => {
  const x = Float64Array.from([0.4, -0.7, 1.3]);
  const r = gradcheck(m.keptArguments, [x, 0.9] as never, { argnums: [0, 1], tolerance: 1e-6 });
  assert.ok(r.ok, JSON.stringify(r));
});

test('both gradients of a pullback destructured once, of a function returning an array literal', () => {
  const r = gradcheck(m.bothEntries, [[0.3, 0.7], 1.2] as never, { argnums: [0, 1], tolerance: 1e-6 });
  assert.ok(r.ok, JSON.stringify(r));
});

test('perturbation confusion through vjp: d/dx [x · ∂/∂y (x·y)] = 2x', () => {
  assert.is(grad(m.confusionVjp)(3, 7), 6);
  assert.is(m.confusionVjp(3, 7), 9);
});

test('the generated inner gradient is readable TypeScript', () => {
  assert.match(adjointSource(m.trajectoryLoss), /potential\$grad0/);
});

test.run();
