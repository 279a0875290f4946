// SPDX-License-Identifier: MIT
// The AssemblyScript printer reads an element once where nothing can have changed it in between (passes/
// assemblyscript.ts, `loaded`): what it prints, and that the sweeps it prints agree bit for bit with the JS ones
// where a store, an alias, a moved index or a branch stands between two reads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { toAssemblyScript } from '../../transformer/passes/assemblyscript.js';
import { compareModule, loadWasm } from './support.js';

const scope = { functions: new Set<string>(), constant: () => undefined };

test('a read repeated within plain statements becomes one load; a store, an assignment and a branch end that', () => {
  const as = toAssemblyScript(`function f(x: Float64Array, y: Float64Array, i: number): number {
  let a = 0, b = 0;
  a = x[i] * x[i];
  b = a + x[i];
  y[i] = b;
  a = a + x[i];
  i = i + 1;
  b = b + x[i];
  if (b > 0) { a = a + x[i]; }
  b = a > 0 ? x[i] : b;
  a = a + x[i];
  return a + b + x[i];
}`, scope).text;
  const loads = (as.match(/\$ldc\(x\$\$\$p, x\$\$\$n, /g) ?? []).length;
  // x[i] loaded once for the first three reads, again after the store to y, after i moves, in the if, in the
  // ?:'s branch (which may not run: its read is not kept), after it, and in the return (only assignments and
  // declarations share loads).
  assert.is(loads, 7, as);
  assert.match(as, /a = \(\$\$e0 = \$ldc\(x\$\$\$p, x\$\$\$n, <i64>\(i\)\)\) \* \$\$e0;\n\s*b = a \+ \$\$e0;/, as);
  assert.match(as, /b = \(a > 0\.0 \? \$ldc\(x\$\$\$p, x\$\$\$n, <i64>\(i\)\) : b\);\n\s*a = a \+ \(\$\$e\d+ = \$ldc/, as);
});

test('shared reads agree bit for bit with the JS sweeps around stores, aliases, moved indices and branches', async () => {
  const file = 'test/wasm/loads-program.ts';
  const r = compareModule(await loadWasm(file), file, 0);
  assert.equal(r.js, [], `on JS: ${r.js.join(', ')}`);
  assert.equal(r.compared.sort(), ['branches', 'readWriteRead', 'shifting', 'throughAlias']);
});

test.run();
