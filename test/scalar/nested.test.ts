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

test('the generated inner gradient is readable TypeScript', () => {
  assert.match(adjointSource(m.trajectoryLoss), /potential\$grad0/);
});

test.run();
