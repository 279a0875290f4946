// Golden files: the adjoint generated for each test/fixtures/<case>/input.ts must equal expected.ts, so every
// change in generated code shows up in review. PULLBACK_UPDATE_GOLDEN=1 rewrites them; an expected.ts whose
// input.ts is gone fails.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, transformProgram } from '../support/compile.js';

const dir = join(root, 'test/fixtures');
const update = process.env.PULLBACK_UPDATE_GOLDEN === '1';
const cases = readdirSync(dir).filter((c) => existsSync(join(dir, c, 'input.ts')) || existsSync(join(dir, c, 'expected.ts')));

for (const c of cases) {
  test(`golden: ${c}`, () => {
    const input = join(dir, c, 'input.ts');
    const expected = join(dir, c, 'expected.ts');
    assert.ok(existsSync(input), `test/fixtures/${c}/expected.ts has no input.ts: delete the stale expected file`);
    const r = transformProgram(`test/fixtures/${c}/input.ts`, readFileSync(input, 'utf8'));
    assert.equal(r.diagnostics.filter((d) => d.category === 'error'), []);
    if (update || !existsSync(expected)) {
      writeFileSync(expected, r.adjointSource);
      if (!update) assert.unreachable(`test/fixtures/${c}/expected.ts was missing and has been written: review and commit it`);
      return;
    }
    assert.fixture(r.adjointSource, readFileSync(expected, 'utf8'));
  });
}

test('there are golden cases', () => {
  assert.ok(cases.length >= 12, `only ${cases.length} golden cases`);
});

test.run();
