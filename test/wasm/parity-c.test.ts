// SPDX-License-Identifier: MIT
// Wasm sweeps against JS sweeps, to a relative 1e-12, for every function of the scalar test programs that
// lowers (here: second newuser newuser2). The programs are split over four files so that a cold asc cache
// (one asc run per program, seconds each) keeps each file within about a minute.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compareModule, loadWasm } from './support.js';

for (const name of 'second newuser newuser2'.split(' ')) {
  const file = `test/programs/scalar/${name}.ts`;
  const mod = await loadWasm(file);
  test(`${name}.ts: every function that runs on Wasm agrees with its JS adjoint`, () => {
    const r = compareModule(mod, file);
    assert.ok(r.compared.length > 0, `${file}: no function runs on Wasm (on JS: ${r.js.join(', ')})`);
    console.log(`  ${name}.ts: ${r.compared.length} on Wasm (worst relative difference ${r.worst.toExponential(1)}), ${r.js.length} on JS`);
  });
}

test.run();
