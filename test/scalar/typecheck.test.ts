// The generated sweeps are real TypeScript: every test program, transformed, type-checks under `strict`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { root, transformProgram } from '../support/compile.js';

test('transformed test programs type-check under strict', () => {
  const dir = join(root, '.cache/typecheck-test');
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const f of readdirSync(join(root, 'test/programs/scalar'))) {
    if (!f.endsWith('.ts')) continue;
    const r = transformProgram(`test/programs/scalar/${f}`);
    assert.ok(r.changed, `${f} has marked functions`);
    const out = join(dir, f);
    writeFileSync(out, r.code);
    files.push(out);
  }
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true, noEmit: true, skipLibCheck: true, types: [],
  });
  const errors = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${d.file.fileName.slice(dir.length + 1)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
  assert.equal(errors, []);
});

test.run();
