// SPDX-License-Identifier: MIT
// The tsc plugin's program transformer, called in this process on a Program of the fixture (tspc runs
// it end to end in entry-points.test.ts and diagnostics.test.ts): which files it hands the compiler,
// that the re-created Program holds the new text, and that tsc's per-file diagnostic queries (as used
// by --incremental and --watch) see our diagnostics in the right file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import ts from 'typescript';
import { transformProgram, PULLBACK_DIAGNOSTIC_CODE, type TscPluginConfig } from '../../transformer/entry/tsc-plugin.js';
import type { Compiler, TransformResult } from '../../transformer/compiler.js';
import { identityCompiler, repo } from './support.js';

const src = join(repo, 'test/programs/entry/src');
const options: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true, skipLibCheck: true, types: [], noEmit: true,
};
// One Program for all tests: transformProgram never changes the one it is given.
const base = ts.createProgram([join(src, 'main.ts'), join(src, 'types.ts')], options);
const program = () => base;

/** The identity compiler, except for `edit`, recording the files it was given. */
function compiler(edit: (file: string, result: TransformResult) => TransformResult = (_, r) => r) {
  const seen: string[] = [];
  const inner = identityCompiler();
  const c: Compiler = {
    get project() {
      return inner.project;
    },
    transform: (file, text) => (seen.push(file), edit(file, inner.transform(file, text))),
  };
  return { c, seen };
}

const run = (p: ts.Program, c: Compiler, config: TscPluginConfig = {}) =>
  transformProgram(p, undefined, config, { ts }, c);

test('the compiler gets the program\'s own sources, minus excluded ones, never declaration files', () => {
  const all = compiler();
  run(program(), all.c);
  assert.equal(all.seen.map((f) => f.slice(src.length + 1)).sort(), ['lib/poly.ts', 'lib/vec.ts', 'main.ts', 'types.ts']);
  const some = compiler();
  run(program(), some.c, { exclude: /[\\/]lib[\\/]/ });
  assert.equal(some.seen.map((f) => f.slice(src.length + 1)).sort(), ['main.ts', 'types.ts']);
});

test('an unchanged program is returned as it is; a changed one holds the new text and type-checks it', () => {
  const p = program();
  assert.is(run(p, compiler().c), p);
  const added = compiler((file, r) => file.endsWith('main.ts')
    ? { ...r, changed: true, code: `${r.code}\nexport const added: number = energy(1, 2);\nconst wrong: string = 1;\n` }
    : r);
  const next = run(p, added.c);
  const main = next.getSourceFile(join(src, 'main.ts'))!;
  assert.match(main.text, 'export const added: number = energy(1, 2);');
  const errors = ts.getPreEmitDiagnostics(next).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  assert.equal(errors, ["Type 'number' is not assignable to type 'string'."]);
});

test('our diagnostics: in the original file at the compiler\'s span, per-file queries included', () => {
  const p = program();
  const main = p.getSourceFile(join(src, 'main.ts'))!;
  const start = main.text.indexOf('Math.sin');
  const reporting = compiler((file, r) => file.endsWith('main.ts')
    ? { ...r, changed: true, code: `${r.code}\nexport const added = 1;\n`, diagnostics: [
      { file, line: 7, column: 34, start, length: 8, category: 'warning', message: 'a warning' }] }
    : r);
  const next = run(p, reporting.c);
  const ours = next.getSemanticDiagnostics(next.getSourceFile(join(src, 'main.ts'))).filter((d) => d.code === PULLBACK_DIAGNOSTIC_CODE);
  assert.is(ours.length, 1);
  assert.is(ours[0].category, ts.DiagnosticCategory.Warning);
  const { line, character } = ours[0].file!.getLineAndCharacterOfPosition(ours[0].start!);
  assert.equal([line + 1, character + 1, ours[0].length], [7, 34, 8]);
  assert.is(ts.formatDiagnostic(ours[0], ts.createCompilerHost(options)).includes('main.ts(7,34): warning TS99001: a warning'), true);
  assert.is(next.getSemanticDiagnostics(next.getSourceFile(join(src, 'types.ts'))).length, 0);
  assert.is(next.getSemanticDiagnostics().filter((d) => d.code === PULLBACK_DIAGNOSTIC_CODE).length, 1);
});

test('generated sweeps are not held to the user\'s style options; the user\'s own code still is', async () => {
  const { createCompiler } = await import('../../transformer/compiler.js');
  const strictStyle: ts.CompilerOptions = { ...options, noUnusedLocals: true, noUnusedParameters: true, noUncheckedIndexedAccess: true };
  const file = join(repo, 'test/programs/entry/src/lib/vec.ts');
  const p = ts.createProgram([file], strictStyle);
  const real = createCompiler();
  const result = real.transform(file, p.getSourceFile(file)!.text);
  assert.ok(result.changed && result.generated.length > 0, 'vec.ts has a marked function');
  // The generated code by itself trips these options (unused shadows, unchecked element reads)...
  const next = transformProgram(p, undefined, {}, { ts }, real);
  const raw = ts.createProgram({ rootNames: [file], options: strictStyle, host: Object.assign(ts.createCompilerHost(strictStyle), {
    getSourceFile: (f: string, v: ts.ScriptTarget) => ts.createSourceFile(f, f === file ? result.code : ts.sys.readFile(f) ?? '', v) }) });
  assert.ok(raw.getSemanticDiagnostics().length > 0, 'expected the unfiltered generated code to have style errors');
  // ...and the plugin reports only what lies in the user's own text.
  const reported = next.getSemanticDiagnostics(next.getSourceFile(file));
  for (const d of reported) assert.ok(d.start! < result.code.indexOf('// ---- pullback'), ts.flattenDiagnosticMessageText(d.messageText, '\n'));
});

test.run();
