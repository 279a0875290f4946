// SPDX-License-Identifier: MIT
// The MNIST sample runs as a user runs it (node --import pullback/register), in its --quick mode: it must print
// the backend, lower the loss, and write its weights, history and pictures.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSafetensors } from '../../sdk/index.js';
import { root } from '../support/compile.js';

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

interface History { model: string; steps: number; testAccuracy: number; loss: { steps: number[]; values: number[] } }

function runSample(model: 'cnn' | 'mlp'): { out: string; stdout: string; history: History } {
  const out = mkdtempSync(join(tmpdir(), `pullback-mnist-${model}-`));
  const r = spawnSync(process.execPath, ['--import', 'pullback/register', 'samples/mnist/train.ts', '--quick', '--model', model, '--out', out], {
    cwd: root, encoding: 'utf8', timeout: 60_000,
  });
  assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr}\n${r.stdout}`);
  const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as History;
  return { out, stdout: r.stdout, history };
}

test('samples/mnist --quick trains the CNN: the loss falls, and weights, history and pictures are written', () => {
  const { out, stdout, history } = runSample('cnn');
  try {
    assert.match(stdout, /^backend: (cpu|webgpu|reference)/m);
    const losses = history.loss.values;
    assert.ok(losses.length >= 4, `${losses.length} loss read-backs`);
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    // Cross-entropy starts near ln 10 ≈ 2.3 and falls well below it within the quick run's 48 steps.
    assert.ok(losses[0]! > 1.5, `first loss ${losses[0]}`);
    assert.ok(losses.at(-1)! < losses[0]! / 2, `loss went from ${losses[0]} to ${losses.at(-1)}`);
    assert.ok(history.testAccuracy > 60, `test accuracy ${history.testAccuracy}% after ${history.steps} steps`);
    assert.match(stdout, new RegExp(`test accuracy: ${history.testAccuracy.toFixed(2)}%`));

    const weights = loadSafetensors(join(out, 'weights.safetensors'));
    const shapes = Object.fromEntries(Object.entries(weights.tensors).map(([k, t]) => [k, t.shape.join('x')]));
    assert.equal(shapes, { 'c1.w': '8x1x3x3', 'c1.b': '8', 'c2.w': '16x8x3x3', 'c2.b': '16', 'out.w': '784x10', 'out.b': '10' });
    assert.is(weights.metadata.model, 'cnn');
    for (const png of ['curves.png', 'predictions.png']) {
      const p = join(out, png);
      assert.ok(existsSync(p) && statSync(p).size > 2000, `${png} missing or tiny`);
      assert.equal([...readFileSync(p).subarray(0, 8)], PNG, `${png} is not a PNG`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('samples/mnist --quick --model mlp trains the MLP', () => {
  const { out, history } = runSample('mlp');
  try {
    assert.is(history.model, 'mlp');
    assert.ok(history.loss.values.at(-1)! < history.loss.values[0]! / 2, `loss went from ${history.loss.values[0]} to ${history.loss.values.at(-1)}`);
    assert.ok(history.testAccuracy > 70, `test accuracy ${history.testAccuracy}%`);
    const weights = loadSafetensors(join(out, 'weights.safetensors'));
    assert.equal(Object.keys(weights.tensors).sort(), ['h.b', 'h.w', 'out.b', 'out.w']);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test.run();
