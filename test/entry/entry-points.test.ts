// SPDX-License-Identifier: MIT
// The four ways in (tsc plugin in both ts-patch modes, rollup plugin, CLI, register hook) build the
// multi-module fixture test/programs/entry/src, and its driver prints the same JSON through each: the
// primal values, the exports, and (with the SDK built) the gradients, which exist only if the code the
// compiler generated made it through the front end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { createCompiler } from '../../transformer/compiler.js';
import { driverOutput, node, repo, workspace } from './support.js';
import { later, ok, viaBin, viaRegister, viaRollup, viaTspc } from './builds.js';

const ws = workspace();
const run = async (file: string) => driverOutput(ok(await node([join(ws, file)], ws), file));

const builds = {
  'tsc plugin (transformProgram)': later(viaTspc(ws, 'fixture/tsconfig.json', 'real-tsc').then((r) => ok(r, 'tspc')).then(() => run('real-tsc/driver.js'))),
  'tsc plugin (source transformer)': later(viaTspc(ws, 'fixture/tsconfig.source.json', 'real-tsc-source').then((r) => ok(r, 'tspc')).then(() => run('real-tsc-source/driver.js'))),
  'rollup plugin': later(viaRollup(ws, 'fixture/src/driver.ts', 'real-rollup').then(() => run('real-rollup/driver.js'))),
  'CLI': later(viaBin(ws, ['compile', 'fixture/src', '--outDir', 'real-cli', '--emit-adjoint']).then((r) => ok(r, 'pullback compile')).then(() => run('real-cli/driver.js'))),
  'register hook': later(viaRegister(ws, 'fixture/src/driver.ts').then((r) => driverOutput(ok(r, 'node --import pullback/register')))),
};

// The fixture's primal values, computed here with the same expressions in the same order.
const rosenbrock = (v: number[]) => {
  let s = 0;
  for (let i = 0; i + 1 < v.length; i++) {
    const a = v[i + 1] - v[i] * v[i];
    const b = 1 - v[i];
    s += 100 * a * a + b * b;
  }
  return s + 1e-3 * v.reduce((t, x) => t + x * x, 0);
};
const horner = (x: number, c0: number, c1: number, c2: number) => c0 + x * (c1 + x * c2);
const energy = (x: number, k: number) => horner(x, 1, -k, 0.5) + Math.sin(x) * k;
const expectedValues = [
  ['energy', energy(0.3, 2)], ['energy', energy(1.7, -0.5)],
  ['rosenbrock', rosenbrock([0.5, -1.25, 2, 0.75])], ['horner', horner(0.9, 1, 2, 3)],
  ['sumSquares', 25], ['springForce', -1.5],
];

type Output = { values: unknown; grads: unknown; tensorGrads: unknown; exports: Record<string, Record<string, unknown>> };

async function outputs(builds: Record<string, () => Promise<unknown>>): Promise<[string, Output][]> {
  const all: [string, Output][] = [];
  for (const [name, get] of Object.entries(builds)) all.push([name, (await get()) as Output]);
  return all;
}

function assertSame(all: [string, Output][]) {
  const [firstName, first] = all[0];
  for (const [name, out] of all.slice(1)) {
    assert.equal(out, first, `${name} differs from ${firstName}`);
  }
}

test.after(() => {
  if (!process.env.PULLBACK_KEEP_TMP) rmSync(ws, { recursive: true, force: true });
});

test('the fixture gives the same JSON through every entry point, with the right values', async () => {
  const all = await outputs(builds);
  assertSame(all);
  assert.equal(all[0][1].values, expectedValues);
});

const sdkBuilt = existsSync(join(repo, 'dist/sdk/index.js'));
if (!sdkBuilt) console.log('entry-points: gradient test skipped: the SDK (dist/sdk/index.js) is not built yet');
(sdkBuilt ? test : test.skip)('gradients are computed and bit-identical through every entry point', async () => {
  const all = await outputs(builds);
  assertSame(all);
  const grads = all[0][1].grads as [string, unknown][] | null;
  assert.ok(Array.isArray(grads), 'the driver found no grad() in the SDK');
  for (const [name, g] of grads) assert.not.match(String(g), /^error:/, `${name}: ${g}`);
  // The tensor function: relu(x w + b), mean squared error against y, by hand.
  const x = [[1, 2], [-1, 0.5]], w = [[0.5, -0.25], [1, 0.75]], b = [0.1, -0.2], y = [[0.3, 0.1], [0, 1]];
  const dw = [[0, 0], [0, 0]], db = [0, 0];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) {
    const z = x[i]![0]! * w[0]![j]! + x[i]![1]! * w[1]![j]! + b[j]!;
    const g = z > 0 ? (2 * (z - y[i]![j]!)) / 4 : 0;
    db[j] += g;
    for (let k = 0; k < 2; k++) dw[k]![j] += x[i]![k]! * g;
  }
  const tg = all[0][1].tensorGrads as { w: number[]; b: number[] };
  assert.ok(tg, 'the driver computed no tensor gradient');
  tg.w.forEach((v, i) => assert.ok(Math.abs(v - dw[i >> 1]![i & 1]!) < 1e-6, `dw[${i}] = ${v}, expected ${dw[i >> 1]![i & 1]}`));
  tg.b.forEach((v, i) => assert.ok(Math.abs(v - db[i]!) < 1e-6, `db[${i}] = ${v}, expected ${db[i]}`));
});

/** Every file under dir, relative to it, sorted. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

test('CLI --emit-adjoint: one .js and .js.map per input in the same layout, <name>.adjoint.ts where the compiler made one', async () => {
  await builds.CLI();
  const inputs = ['driver', 'lib/net', 'lib/poly', 'lib/vec', 'main', 'types'];
  const compiler = createCompiler();
  const adjoints = inputs.filter((i) => compiler.transform(join(ws, 'fixture/src', `${i}.ts`)).adjointSource.trim() !== '');
  assert.equal(adjoints, ['lib/net', 'lib/poly', 'lib/vec', 'main'], 'the files with marked functions');
  const expected = [...inputs.flatMap((i) => [`${i}.js`, `${i}.js.map`]), ...adjoints.map((i) => `${i}.adjoint.ts`)].sort();
  assert.equal(files(join(ws, 'real-cli')), expected);
  for (const i of adjoints) {
    assert.is(readFileSync(join(ws, 'real-cli', `${i}.adjoint.ts`), 'utf8'),
      compiler.transform(join(ws, 'fixture/src', `${i}.ts`)).adjointSource);
  }
  const map = JSON.parse(readFileSync(join(ws, 'real-cli/lib/poly.js.map'), 'utf8')) as { sources: string[] };
  assert.is(resolve(join(ws, 'real-cli/lib'), map.sources[0]), join(ws, 'fixture/src/lib/poly.ts'));
  assert.match(readFileSync(join(ws, 'real-cli/lib/poly.js'), 'utf8'), /\n\/\/# sourceMappingURL=poly\.js\.map\n$/);
});

test.run();
