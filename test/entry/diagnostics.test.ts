// SPDX-License-Identifier: MIT
// Every front end surfaces the compiler's diagnostics at file:line:col (tsc: file(line,col)), fails on
// errors and only reports warnings. First with the fake compiler, whose error (at `try`, 6:3) and warning
// (at `Math.log`, 7:9) in test/programs/entry/errors/bad.ts, and its warning in warn.ts (5:10), are
// known; then with the real compiler,
// each front end must report exactly what createCompiler() itself reports for that file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createCompiler, formatDiagnostic } from '../../transformer/compiler.js';
import { fakeCompiler, workspace } from './support.js';
import { fakePlugin, fakeRegister, later, viaBin, viaCli, viaRegister, viaRollup, viaTspc } from './builds.js';

const ws = workspace();
const bad = join(ws, 'fixture/errors/bad.ts');
const warn = join(ws, 'fixture/errors/warn.ts');
const tsconfig = (name: string, plugin: object, files = ['errors/bad.ts', 'errors/warn.ts']) => {
  const compilerOptions = { rootDir: '.', plugins: [plugin] };
  writeFileSync(join(ws, 'fixture', name), JSON.stringify({ extends: './tsconfig.json', compilerOptions, files, include: [] }));
  return join('fixture', name);
};

const fakeError = 'fake: try/catch is not differentiable; move it out of the marked function';
const fakeWarning = 'fake: warning at Math.log';

const fake = {
  tscProgram: later(viaTspc(ws, tsconfig('tsconfig.errors-fake.json', { transform: fakePlugin, transformProgram: true }), 'fake-tsc')),
  tscSource: later(viaTspc(ws, tsconfig('tsconfig.errors-fake-source.json', { transform: fakePlugin }), 'fake-tsc-source')),
  register: later(viaRegister(ws, 'fixture/errors/bad.ts', fakeRegister)),
};
// (No tspc run with the real plugin here: the fake plugin runs the real compiler and passes its
// diagnostics through, so the runs above show them; the real plugin runs in entry-points.test.ts.)
const real = {
  cli: later(viaBin(ws, ['compile', 'fixture/errors/bad.ts', '--outDir', 'real-cli'])),
  register: later(viaRegister(ws, 'fixture/errors/bad.ts')),
};

test.after(() => {
  if (!process.env.PULLBACK_KEEP_TMP) rmSync(ws, { recursive: true, force: true });
});

for (const mode of ['tscProgram', 'tscSource'] as const) {
  test(`tsc plugin (${mode === 'tscProgram' ? 'transformProgram' : 'source transformer'}): TypeScript diagnostics at the node, non-zero exit`, async () => {
    const ran = await fake[mode]();
    assert.match(ran.stdout, `fixture/errors/bad.ts(6,3): error TS99001: ${fakeError}`);
    assert.match(ran.stdout, `fixture/errors/bad.ts(7,9): warning TS99001: ${fakeWarning}`);
    assert.match(ran.stdout, `fixture/errors/warn.ts(5,10): warning TS99001: ${fakeWarning}`);
    assert.is.not(ran.code, 0);
    // Exactly the compiler's diagnostics (the real compiler's ones included), each once.
    const compiler = fakeCompiler();
    const expected = [bad, warn].flatMap((f) => compiler.transform(f).diagnostics);
    for (const d of expected) {
      assert.match(ran.stdout, `fixture/errors/${basename(d.file)}(${d.line},${d.column}): ${d.category} TS99001: ${d.message}`);
    }
    assert.is(ran.stdout.match(/TS99001/g)?.length, expected.length, ran.stdout);
  });
}

test('rollup plugin: the build fails with an error that lists file:line:col', async () => {
  const error = await viaRollup(ws, 'fixture/errors/bad.ts', 'fake-rollup', fakeCompiler()).then(() => undefined, (e: Error) => e);
  assert.ok(error, 'the build did not fail');
  assert.match(error.message, `${bad}:6:3: ${fakeError}`);
  assert.not.match(error.message, fakeWarning);
});

test('rollup plugin: warnings reach onLog as file:line:col and do not fail the build', async () => {
  const logs = await viaRollup(ws, 'fixture/errors/warn.ts', 'fake-rollup-warn', fakeCompiler());
  const ours = logs.filter((l) => l.plugin === 'pullback');
  assert.is(ours.length, 1);
  assert.match(ours[0].message, `${warn}:5:10: warning: ${fakeWarning}`);
  assert.equal(ours[0].loc, { file: warn, line: 5, column: 10 });
  assert.ok(existsSync(join(ws, 'fake-rollup-warn/warn.js')));
});

test('CLI: file:line:col relative to the working folder, exit status 1, nothing written for the file', async () => {
  const { code, err } = await viaCli(ws, ['compile', 'fixture/errors', '--outDir', 'fake-cli'], fakeCompiler);
  assert.match(err, `fixture/errors/bad.ts:6:3: ${fakeError}\n`);
  assert.match(err, `fixture/errors/bad.ts:7:9: warning: ${fakeWarning}\n`);
  assert.match(err, `fixture/errors/warn.ts:5:10: warning: ${fakeWarning}\n`);
  assert.is(code, 1);
  assert.not.ok(existsSync(join(ws, 'fake-cli/bad.js')));
  assert.ok(existsSync(join(ws, 'fake-cli/warn.js')), 'a file with warnings only is written');
});

test('register hook: the import fails with an Error listing file:line:col; the warning is printed', async () => {
  const ran = await fake.register();
  assert.match(ran.stderr, `${bad}:6:3: ${fakeError}`);
  assert.match(ran.stderr, `${bad}:7:9: warning: ${fakeWarning}`);
  assert.match(ran.stderr, 'PullbackCompileError');
  assert.is.not(ran.code, 0);
});

test('real compiler: CLI, register hook and rollup report what createCompiler() reports for bad.ts', async () => {
  const expected = createCompiler().transform(bad).diagnostics;
  if (expected.length === 0) console.log('diagnostics: the compiler reports nothing for errors/bad.ts yet; checking that no front end reports anything either');
  const errors = expected.some((d) => d.category === 'error');

  const cli = await real.cli();
  for (const d of expected) assert.match(cli.stderr, formatDiagnostic({ ...d, file: 'fixture/errors/bad.ts' }));
  assert.is(cli.code, errors ? 1 : 0, cli.stderr);

  const hook = await real.register();
  for (const d of expected) assert.match(hook.stderr, formatDiagnostic(d));
  assert.is(hook.code === 0, !errors, hook.stderr);

  const rollupError = await viaRollup(ws, 'fixture/errors/bad.ts', 'real-rollup').then(() => undefined, (e: Error) => e);
  assert.is(rollupError !== undefined, errors, String(rollupError));
  for (const d of expected.filter((d) => d.category === 'error')) assert.match(rollupError!.message, formatDiagnostic(d));
});

test.run();
