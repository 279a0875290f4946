// SPDX-License-Identifier: MIT
// Marked functions that call marked functions of other files run on Wasm: the callees' sweeps (and their own
// constants, plain functions and rules) are compiled into the caller's module, under names of their file's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { explain, grad } from '../../sdk/index.js';
import { join, relative } from 'node:path';
import { root } from '../support/compile.js';
import { adjoint, compareModule, compiler, loadWasm } from './support.js';

const file = 'test/programs/wasm/cross.ts';
const m = await loadWasm(file);

/** Central differences of f with respect to array argument 0. */
function numeric(f: (...a: any[]) => number, args: unknown[]): number[] {
  const x = args[0] as Float64Array, h = 1e-6;
  return Array.from(x, (_, i) => {
    const up = Float64Array.from(x), down = Float64Array.from(x);
    up[i] += h;
    down[i] -= h;
    return (f(up, ...args.slice(1)) - f(down, ...args.slice(1))) / (2 * h);
  });
}

const cases: [string, unknown[]][] = [
  ['total', [Float64Array.from([0.3, -1.2, 0.8, 2.1]), 0.7]],
  ['viaNamespace', [Float64Array.from([0.4, -0.3, 1.1]), 0.9]],
  ['overlapping', [Float64Array.from([0.5, -0.7, 1.3, 0.2])]],
  ['importedConstants', [Float64Array.from([0.5, -0.7, 1.3])]],
];

test('calls into other files lower: the callers run on Wasm', () => {
  for (const [name] of cases) {
    const e = explain(m[name]);
    assert.is(e.backend, 'wasm', String(e));
    assert.is(e.reason, undefined);
  }
});

test('their gradients match finite differences (the two files\' K and sq are kept apart, views of one array add up)', () => {
  for (const [name, args] of cases) {
    const g = grad(m[name])(...args) as Float64Array;
    const fd = numeric(m[name], args);
    g.forEach((v, i) => assert.ok(Math.abs(v - fd[i]!) <= 1e-6 * Math.max(1, Math.abs(fd[i]!)), `${name}: d/dx${i} = ${v}, finite differences ${fd[i]}`));
  }
});

test('numeric constants of other files take their values (1.5 there, 0.5 here)', () => {
  assert.equal(Array.from(grad(m.importedConstants)(Float64Array.from([2, 5, 4])) as Float64Array), [6, 1.5, 6]);
});

test('the Wasm sweeps agree with the JS sweeps to 1e-12', () => {
  const r = compareModule(m, file);
  for (const [name] of cases) assert.ok(r.compared.includes(name), `${name} compared (compared: ${r.compared.join(', ')})`);
});

test('a callee of another file that stays on JS keeps its callers on JS, and explain names its file', () => {
  const e = explain(m.callsScaled);
  assert.is(e.backend, 'js');
  assert.match(e.reason ?? '', /it calls scaled \(cross-lib\.ts\), which stays on JS \(it reads `scale` from outside the function/);
  const g = grad(m.callsScaled)(Float64Array.from([1.5, 2])) as Float64Array;
  assert.equal(Array.from(g), [6, 1]);
  assert.ok(adjoint(m.callsScaled));
});

test('the result names the files compiled into the module, for builds that watch files', () => {
  const deps = (compiler.transform(join(root, file)).dependencies ?? []).map((f) => relative(root, f)).sort();
  assert.equal(deps, ['test/programs/wasm/cross-lib.ts', 'test/programs/wasm/rules.ts']);
});

test.run();
