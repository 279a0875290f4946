// SPDX-License-Identifier: MIT
// Custom derivatives on the Wasm path: a marked function that calls a function with a /** @derivative */ rule
// runs on Wasm when the primal and the rule are in the scalar subset (one gradient, a tuple of numbers, an
// array, a tuple with an array in it), agrees with the JS adjoint to a relative 1e-12, and stays on JS, with
// the reason, when the rule uses JavaScript-only features.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { explain, grad, gradcheck } from '../../sdk/index.js';
import { adjoint, compareModule, loadWasm, relativeError, sweepOnce } from './support.js';

const file = 'test/programs/wasm/rules.ts';
const m = await loadWasm(file);

test('functions that call custom rules in the subset run on Wasm', () => {
  for (const f of [m.usesSoftplus, m.usesTuple, m.usesArrayRule, m.nested]) {
    const e = explain(f);
    assert.is(e.backend, 'wasm', `${f.name}: ${String(e)}`);
  }
});

test('their Wasm sweeps agree with the JS sweeps to 1e-12, and with finite differences', () => {
  const r = compareModule(m, file);
  assert.equal(r.compared.sort(), ['nested', 'usesArrayRule', 'usesSoftplus', 'usesTuple']);
  const x = Float64Array.from([0.3, -0.7, 0.2, 0.9]);
  for (const [f, args] of [[m.usesSoftplus, [x, 0.8]], [m.usesTuple, [0.4, 1.3]], [m.usesArrayRule, [x, 0.6]], [m.nested, [x, 0.8]]] as const) {
    const c = gradcheck(f, args as never, { argnums: [0, 1], tolerance: 1e-6 });
    assert.ok(c.ok, `${f.name}: max error ${c.maxError}`);
  }
  // Both branches of the primal (LIMIT is a module constant) on Wasm: w·x[i] above and below 30.
  const ad = adjoint(m.usesSoftplus)!;
  const args = [Float64Array.from([0.5, 1, 2, -3]), 20];
  assert.ok(relativeError(sweepOnce(ad, ad, args), sweepOnce(ad, ad.js!, args)) <= 1e-12);
});

test('a rule with JavaScript-only features keeps its callers on JS, and explain says why', () => {
  const e = explain(m.usesJsOnlyRule);
  assert.is(e.backend, 'js', String(e));
  assert.match(e.reason ?? '', /calls the custom derivative cubeRule, which cannot run on Wasm: .*\[x\]\.map/);
  assert.ok(Math.abs((grad(m.usesJsOnlyRule)(0.5) as number) - (3 * 0.25 + 1 / (1 + Math.exp(-0.5)))) < 1e-15);
  const c = explain(m.callsJsOnly);
  assert.is(c.backend, 'js', String(c));
  assert.match(c.reason ?? '', /calls usesJsOnlyRule, which stays on JS/);
});

test.run();
