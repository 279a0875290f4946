// SPDX-License-Identifier: MIT
// Grid code on Wasm: a number parameter read in indices (a grid size) and in a loop test (a step count) gets
// an integer version of the sweeps, which the exported wrappers run when the arguments are integers, and the
// general version otherwise; both agree with the JS sweeps. grad's forward sweep of a linear stencil records
// none of the elements it overwrites (its reverse reads no field value inside the time loop).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { explain, grad } from '../../sdk/index.js';
import { Tape } from '../../sdk/ad/tape.js';
import { load } from '../support/compile.js';
import { adjoint, loadWasm, relativeError, sweepOnce } from './support.js';

const file = 'test/programs/scalar/constructs.ts';
const w = await loadWasm(file);
const j = await load(file);
const field = (len: number) => Float64Array.from({ length: len }, (_, i) => Math.sin(1.7 * i + 0.3));

for (const name of ['stencil', 'diffuse'] as const) {
  test(`${name}: Wasm sweeps agree with JS with integer sizes (integer version) and a fractional step count (general version)`, () => {
    const ad = adjoint(w[name])!;
    assert.is(explain(w[name]).backend, 'wasm', String(explain(w[name])));
    // steps = 2.5 runs three steps in JS; the wrappers must not take the integer version for it.
    for (const args of [[field(25), 5, 3, 0.1], [field(36), 6, 2.5, 0.15], [field(16), 4, 1, 0.2]]) {
      const got = sweepOnce(ad, ad, args), ref = sweepOnce(ad, ad.js!, args);
      assert.ok(ref.flat().every(Number.isFinite), `${name}(${args.slice(1).join(', ')}): the JS sweeps are not finite`);
      const err = relativeError(got, ref);
      assert.ok(err <= 1e-12, `${name}(${args.slice(1).join(', ')}): relative difference ${err}`);
      const g = grad(w[name])(...(args as [Float64Array, number, number, number])) as Float64Array;
      const gj = grad(j[name])(...(args as [Float64Array, number, number, number])) as Float64Array;
      assert.ok(relativeError([[...g]], [[...gj]]) <= 1e-12, `${name}: grad on Wasm and on JS differ`);
    }
  });
}

test('a grid allocated from rows · cols (an i64 product in the integer version) runs on Wasm and agrees with JS', () => {
  const ad = adjoint(w.gridAlloc)!;
  assert.is(explain(w.gridAlloc).backend, 'wasm', String(explain(w.gridAlloc)));
  for (const args of [[field(12), 3, 4], [field(10), 2, 5]]) {
    const err = relativeError(sweepOnce(ad, ad, args), sweepOnce(ad, ad.js!, args));
    assert.ok(err <= 1e-12, `gridAlloc(${args.slice(1).join(', ')}): relative difference ${err}`);
  }
});

test('grad of a linear stencil records no overwritten element; a nonlinear one records each', () => {
  const n = 6, steps = 4;
  const taped = (f: unknown) => {
    const ad = adjoint(f)!;
    const t = new Tape();
    ad.grad!.fwd.call(undefined, t, field(n * n), n, steps, 0.1, new Float64Array(n * n));
    return t.sp;
  };
  // Trip counts and counters only: a few per row and step, against n·n per step when elements are recorded.
  assert.ok(taped(j.diffuse) < steps * n * n, `diffuse's gradient sweep recorded ${taped(j.diffuse)} values`);
  assert.ok(taped(j.stencil) >= steps * n * n, `stencil's gradient sweep recorded ${taped(j.stencil)} values`);
});

test.run();
