// SPDX-License-Identifier: MIT
// How the rollup plugin and the register hook find .ts files behind `./x.js` and `./x` imports.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pullback from '../../transformer/entry/rollup.js';
import { createHooks, type ResolveResult } from '../../transformer/entry/loader.js';
import { driverOutput, node, workspace } from './support.js';
import { ok, viaRegister, viaRollup } from './builds.js';

const ws = workspace();
const fixture = join(ws, 'fixture');
test.after(() => {
  if (!process.env.PULLBACK_KEEP_TMP) rmSync(ws, { recursive: true, force: true });
});

test('rollup resolveId: .js and extensionless imports from a .ts module find the .ts file', () => {
  const resolveId = pullback().resolveId as (source: string, importer?: string) => string | null;
  const main = join(fixture, 'extensionless/main.ts');
  assert.is(resolveId('./helper', main), join(fixture, 'extensionless/helper.ts'));
  assert.is(resolveId('./util', main), join(fixture, 'extensionless/util/index.ts'));
  assert.is(resolveId('./lib/poly.js', join(fixture, 'src/main.ts')), join(fixture, 'src/lib/poly.ts'));
  assert.is(resolveId('./missing', main), null);
  assert.is(resolveId('./helper', join(fixture, 'extensionless/main.js')), null, 'a .js importer is left to rollup');
  assert.is(resolveId('pullback', main), null);
  assert.is(resolveId('./helper', undefined), null);
});

test('rollup: the extensionless fixture bundles and runs', async () => {
  await viaRollup(ws, 'fixture/extensionless/main.ts', 'out-rollup-ext');
  const ran = ok(await node([join(ws, 'out-rollup-ext/main.js')], ws), 'bundle');
  assert.is(ran.stdout.trim(), '[42,1.5]');
});

const notFound = (specifier: string) => Object.assign(new Error(`Cannot find '${specifier}'`), { code: 'ERR_MODULE_NOT_FOUND' });

test('loader resolve: falls back to the .ts file only when Node finds nothing', async () => {
  const { resolve } = createHooks(() => { throw new Error('no compiler needed'); });
  const parentURL = pathToFileURL(join(fixture, 'src/main.ts')).href;
  const missing = async (s: string): Promise<ResolveResult> => { throw notFound(s); };
  const url = (p: string) => pathToFileURL(join(fixture, p)).href;
  assert.equal(await resolve('./lib/poly.js', { parentURL }, missing), { url: url('src/lib/poly.ts'), shortCircuit: true });
  assert.equal(await resolve('../extensionless/util', { parentURL }, missing), { url: url('extensionless/util/index.ts'), shortCircuit: true });
  const found = { url: url('src/lib/poly.js') };
  assert.is(await resolve('./lib/poly.js', { parentURL }, async () => found), found, 'an existing target is kept');
  for (const [specifier, next] of [
    ['./lib/nothing.js', missing], ['pullback/none', missing],
    ['./lib/poly.js', async () => { throw new Error('some other failure'); }],
  ] as const) {
    const error = await resolve(specifier, { parentURL }, next).then(() => undefined, (e: Error) => e);
    assert.ok(error, `${specifier} should not resolve`);
  }
});

test('register hook: runs the extensionless fixture, and a .ts file next to a stale .js is not used', async () => {
  const ran = ok(await viaRegister(ws, 'fixture/extensionless/main.ts'), 'node --import pullback/register');
  assert.is(ran.stdout.trim(), '[42,1.5]');
  writeFileSync(join(fixture, 'src/lib/vec.js'), 'export const sumSquares = () => -1;\n');
  const out = driverOutput(ok(await viaRegister(ws, 'fixture/src/driver.ts'), 'driver')) as { values: [string, number][] };
  assert.equal(out.values.find(([n]) => n === 'sumSquares'), ['sumSquares', -1], 'the existing .js wins, as Node resolves it');
});

test.run();
