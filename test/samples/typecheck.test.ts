// The samples are outside the package's tsconfig (they import 'pullback' as a user would, through the package's
// exports); they must still type-check under strict, against the built declarations, so that an API change that
// breaks them fails here and not in a user's hands.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { root } from '../support/compile.js';

test('samples/ type-check under strict against the built package', () => {
  const configPath = join(root, 'samples/tsconfig.json');
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  assert.ok(!config.error, config.error && ts.flattenDiagnosticMessageText(config.error.messageText, ' '));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, join(root, 'samples'));
  assert.ok(parsed.fileNames.some((f) => f.endsWith('samples/mnist/train.ts')), 'the samples are included');
  const program = ts.createProgram(parsed.fileNames, parsed.options);
  const errors = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? `${relative(root, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
  assert.equal(errors, []);
});

test.run();
