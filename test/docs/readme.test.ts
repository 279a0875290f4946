// The README cannot rot: every TypeScript block in it goes through the transformer without errors, the
// adjoint it shows is the one the transformer writes today, and the quickstart runs as shown.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root, transformProgram } from '../support/compile.js';

const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
const dir = join(root, '.cache/docs');
mkdirSync(dir, { recursive: true });

test('the README has TypeScript examples', () => {
  assert.ok(blocks.length >= 3, `${blocks.length} blocks`);
});

blocks.forEach((code, i) => {
  const generated = /function \w+\$fwd\(/.test(code);
  const generatedTensor = /function \w+\$vjp\(/.test(code);
  test(`README block ${i + 1} ${generated || generatedTensor ? 'is the adjoint the transformer writes' : 'compiles through the transformer'}`, () => {
    if (generated || generatedTensor) {
      // The example it belongs to precedes it; its adjoint, without the doc comments, must be this text.
      const source = generated
        ? blocks.find((b) => /@differentiable/.test(b) && /export function energy/.test(b))!
        : blocks.find((b) => /@differentiable/.test(b) && /export function loss\(/.test(b))!;
      const r = transformProgram(`.cache/docs/${generated ? 'quickstart' : 'train-shown'}.ts`, source);
      const shown = r.adjointSource.split('\n').filter((l) => !/^\s*\/\*\*.*\*\/$/.test(l)).join('\n');
      assert.ok(shown.includes(code.trim()), `README adjoint differs from the generated one:\n${shown}`);
      return;
    }
    const r = transformProgram(`.cache/docs/block${i + 1}.ts`, code);
    assert.equal(r.diagnostics.filter((d) => d.category === 'error'), []);
  });
});

test('the quickstart runs with node --import pullback/register', () => {
  const source = blocks.find((b) => /export function energy/.test(b))!;
  const file = join(dir, 'energy.ts');
  writeFileSync(file, source);
  const r = spawnSync(process.execPath, ['--import', 'pullback/register', file], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /function energy\$rev/);
});

test('the training example runs and its memory stays flat', () => {
  const source = blocks.find((b) => /export function loss\(/.test(b))!;
  const file = join(dir, 'train.ts');
  writeFileSync(file, `${source}\nprocess.exit(0);\n`);
  const r = spawnSync(process.execPath, ['--import', 'pullback/register', file], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  assert.is(r.status, 0, r.stderr);
  const losses = [...r.stdout.matchAll(/^(\d+) ([\d.e-]+)$/gm)].map((m) => Number(m[2]));
  assert.is(losses.length, 4, r.stdout);
  assert.ok(losses[3]! < losses[0]! / 4, `the loss did not fall: ${losses.join(', ')}`);
  assert.match(r.stdout, /live tensors: \d+/);
});

test('every export of pullback is named in the README', async () => {
  const api = await import('pullback');
  const missing = Object.keys(api).filter((name) => !new RegExp(`\\b${name}\\b`).test(readme));
  assert.equal(missing, [], `exports the README does not mention: ${missing.join(', ')}`);
});

test.run();
