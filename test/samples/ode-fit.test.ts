// The ODE-fitting sample runs as a user runs it (node --import pullback/register), in its --quick mode.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { root } from '../support/compile.js';

test('samples/ode-fit recovers Lotka-Volterra parameters on the Wasm adjoint and writes its plot', () => {
  // As `npm run demo:ode` runs it: the register hook with the Wasm lowering on.
  const r = spawnSync(process.execPath, ['--import', 'pullback/register', 'samples/ode-fit/fit.ts', '--quick'], { cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...process.env, PULLBACK_WASM: '1' } });
  assert.is(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /gradient backend: wasm\n/);
  const losses = [...r.stdout.matchAll(/loss (\d+\.\d+)/g)].map((m) => Number(m[1]));
  assert.ok(losses.length >= 5, r.stdout);
  assert.ok(losses[losses.length - 1]! < losses[0]! / 10, `loss went from ${losses[0]} to ${losses[losses.length - 1]}`);
  const png = join(root, 'out/ode-fit.png');
  assert.ok(existsSync(png) && statSync(png).size > 1000);
});

test.run();
