// SPDX-License-Identifier: MIT
// The transformer sample runs as a user runs it (node --import pullback/register), in its --quick mode: checkpointed
// and plain gradients must agree, the loss must fall, and it must print samples and the held-out exact match.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSafetensors } from '../../sdk/index.js';
import { root } from '../support/compile.js';

interface History { steps: number; exactMatch: number; skippedSteps: number; loss: { steps: number[]; values: number[] } }

test('samples/transformer --quick: checkpointing keeps the gradients, the loss falls, samples and exact match are printed', () => {
  const out = mkdtempSync(join(tmpdir(), 'pullback-transformer-'));
  try {
    const r = spawnSync(process.execPath, ['--import', 'pullback/register', 'samples/transformer/train.ts', '--quick', '--out', out], {
      cwd: root, encoding: 'utf8', timeout: 90_000,
    });
    assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stderr}\n${r.stdout}`);
    const { stdout } = r;
    assert.match(stdout, /^backend: (cpu|webgpu|reference)/m);

    // The same batch's gradients with each block checkpointed and without: the recomputation is the same
    // arithmetic, so they agree to rounding (here bit for bit on the CPU; allow f32 rounding elsewhere).
    const check = /checkpoint check: .* differ by at most (\S+) \(largest gradient (\S+), (\d+) values\); loss (\S+) and (\S+)/.exec(stdout);
    assert.ok(check, stdout);
    const [, diff, largest, values, l1, l2] = check!;
    assert.ok(Number(largest) > 0 && Number(values) > 50_000, check![0]);
    assert.ok(Number(diff) <= 1e-5 * Number(largest), `checkpointed and plain gradients differ by ${diff} (largest ${largest})`);
    assert.is(l1, l2);

    const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as History;
    const losses = history.loss.values;
    assert.ok(losses.length >= 4 && losses.every(Number.isFinite), `losses ${losses}`);
    // Cross-entropy over 11 tokens starts near ln 11 ≈ 2.4; the quick run's 40 steps bring it well down.
    assert.ok(losses[0]! > 1.5, `first loss ${losses[0]}`);
    assert.ok(losses.at(-1)! < 0.75 * losses[0]!, `loss went from ${losses[0]} to ${losses.at(-1)}`);
    assert.is(history.skippedSteps, 0, 'no step should overflow at the starting loss scale');

    // Samples as it learns (prompt → answer, ✓ or ✗ with the expected answer) and the final exact match.
    assert.match(stdout, /^ {4}(\d ){7}\d → (\d ){7}\d {2}(✓|✗ expected (\d ){7}\d)$/m);
    assert.match(stdout, new RegExp(`held-out exact match: ${history.exactMatch.toFixed(2)}% \\(\\d+/200\\) after 40 steps; final loss ${losses.at(-1)!.toFixed(4)}`));

    const weights = loadSafetensors(join(out, 'weights.safetensors'));
    const shapes = Object.fromEntries(Object.entries(weights.tensors).map(([k, t]) => [k, t.shape.join('x')]));
    assert.is(shapes['tok.table'], '11x64');
    assert.is(shapes['pos.table'], '16x64');
    assert.is(shapes['blocks.1.att.q.w'], '64x64');
    assert.is(shapes['blocks.1.up.w'], '64x256');
    assert.is(shapes['head.w'], '64x11');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test.run();
