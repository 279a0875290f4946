// SPDX-License-Identifier: MIT
// The CLI's command line, input collection and output layout (run in this process; the real
// `pullback` command is run end to end in entry-points.test.ts and diagnostics.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Compiler, CompilerOptions } from '../../transformer/compiler.js';
import { USAGE, commonDir } from '../../transformer/entry/cli.js';
import { identityCompiler, node, workspace } from './support.js';
import { ok, viaCli } from './builds.js';

const ws = workspace();
test.after(() => {
  if (!process.env.PULLBACK_KEEP_TMP) rmSync(ws, { recursive: true, force: true });
});

/**
 * A createCompiler that records the options it got and the files it transformed. The CLI's own logic
 * is tested over the identity compiler; the real one runs through bin/pullback.js in the other tests.
 */
function spy() {
  const made: CompilerOptions[] = [];
  const transformed: string[] = [];
  const make = (options: CompilerOptions): Compiler => {
    made.push(options);
    const inner = identityCompiler();
    return {
      get project() {
        return inner.project;
      },
      transform: (f, t) => (transformed.push(f), inner.transform(f, t)),
    };
  };
  return { make, made, transformed };
}
const cli = (args: string[]) => viaCli(ws, args, spy().make);

test('--help prints the usage and exits 0', async () => {
  const { code, out } = await cli(['--help']);
  assert.is(code, 0);
  assert.is(out, USAGE);
  assert.match(USAGE, 'pullback compile <files or folders...> --outDir <dir> [--emit-adjoint] [--wasm]');
});

test('usage errors exit 2 and say what is wrong', async () => {
  const cases: [string[], string][] = [
    [[], 'Usage:'],
    [['build', 'x.ts', '--outDir', 'o'], "unknown command 'build'"],
    [['compile', '--outDir', 'o'], 'no input files'],
    [['compile', 'fixture/src'], '--outDir is required'],
    [['compile', 'fixture/src', '--outDir', 'o', '--bogus'], "Unknown option '--bogus'"],
    [['compile', 'fixture/nothing-here', '--outDir', 'o'], 'fixture/nothing-here: no such file or folder'],
    [['compile', 'fixture/tsconfig.json', '--outDir', 'o'], 'not a TypeScript source'],
  ];
  for (const [args, message] of cases) {
    const { code, err } = await cli(args);
    assert.is(code, 2, args.join(' '));
    assert.match(err, message, args.join(' '));
  }
  assert.not.ok(existsSync(join(ws, 'o')));
});

test('one compiler for all inputs; --no-wasm and --wasm reach it', async () => {
  const s = spy();
  const { code } = await viaCli(ws, ['compile', 'fixture/src', '--outDir', 'out-spy', '--no-wasm'], s.make);
  assert.is(code, 0);
  assert.equal(s.made, [{ wasm: false }]);
  assert.equal(s.transformed, ['driver', 'lib/net', 'lib/poly', 'lib/vec', 'main', 'types'].map((f) => join(ws, 'fixture/src', `${f}.ts`)));
  const plain = spy();
  await viaCli(ws, ['compile', 'fixture/src/main.ts', '--outDir', 'out-spy2'], plain.make);
  assert.equal(plain.made, [{ wasm: undefined }]);
  const on = spy();
  await viaCli(ws, ['compile', 'fixture/src/main.ts', '--outDir', 'out-spy3', '--wasm'], on.make);
  assert.equal(on.made, [{ wasm: true }]);
});

test('files from several folders keep their layout below the common folder', async () => {
  const { code, out } = await cli(['compile', 'fixture/src/lib/vec.ts', 'fixture/src/main.ts', '--outDir', 'out-files']);
  assert.is(code, 0);
  assert.match(out, 'compiled 2 file(s) into out-files');
  assert.ok(existsSync(join(ws, 'out-files/main.js')));
  assert.ok(existsSync(join(ws, 'out-files/lib/vec.js')));
  assert.is(commonDir(['/a/b/c.ts', '/a/bc/d.ts']), '/a');
  assert.is(commonDir(['/a/b/c.ts', '/a/b/e/d.ts']), '/a/b');
});

test('extensionless relative imports of other inputs get .js / /index.js, so Node can run the output', async () => {
  const { code } = await cli(['compile', 'fixture/extensionless', '--outDir', 'out-ext']);
  assert.is(code, 0);
  const js = readFileSync(join(ws, 'out-ext/main.js'), 'utf8');
  assert.match(js, "from './helper.js'");
  assert.match(js, "from './util/index.js'");
  const ran = ok(await node([join(ws, 'out-ext/main.js')], ws), 'out-ext/main.js');
  assert.is(ran.stdout.trim(), '[42,1.5]');
});

test.run();
