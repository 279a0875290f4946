// SPDX-License-Identifier: MIT
// dataParallel on WebGPU, each rank with its own device (SwiftShader here, or the adapter PULLBACK_GPU_ADAPTER names):
// the hook reads each gradient back asynchronously and the buckets' all-reduces are called in bucket order as the
// reads resolve. Two workers taking two SGD steps end with the parameters of one worker on the whole batches, the
// same on both ranks, with the gradients spread over several buckets (so the ordering of their starts is exercised);
// and a worker that exits in the middle of a run, its device with it, fails that step on rank 0 with nothing updated.
import * as assert from 'uvu/assert';
import { load } from '../support/compile.js';
import { close, envAdapter, runSuiteOn } from '../tensor/helpers.js';

type Config = import('./fixtures/dp-worker.js').Config;
type Report = import('./fixtures/dp-worker.js').Report;

const w = await load('test/distributed/fixtures/dp-worker.ts');
const file = 'test/distributed/data-parallel-webgpu.test.ts';

await runSuiteOn('webgpu', file, 'dataParallel', (_be, test) => {
  test('2 workers, 2 steps, 64-float buckets: = one worker on the whole batches, ranks identical', async () => {
    // 3 layers of 12-16-16-5: 565 gradient values in 6 tensors, in 6 buckets of at most 64 floats in step 1 (a larger
    // tensor gets one of its own) and 16 in step 2 (see below); a batch of 11 rows in slices of 5 and 6 (the
    // gradients weighted by 10/11 and 12/11).
    const cfg: Config = {
      workers: 2, sizes: [12, 16, 16, 5], batch: 11, reduction: 'mean', steps: 2, optimizer: 'sgd', bucketBytes: 256,
      timeoutMs: 60_000, backend: 'webgpu', adapter: envAdapter ?? 'swiftshader',
    };
    const reports: Report[] = await w.run(cfg);
    assert.equal(reports.map((r) => r.rank), [0, 1]);
    const [r0, r1] = reports as [Report, Report];
    assert.equal(r1.initial, r0.initial, 'rank 1 did not start from rank 0\'s parameters');
    assert.equal(r1.final, r0.final, 'the ranks\' parameters differ after 2 steps');
    assert.equal(r1.losses, r0.losses);
    // In step 2 the first layer's weight, final last, is read back and reduced row by row, the last row with its bias.
    const lengths = r0.bucketTimes.map((b) => b.length);
    assert.equal(lengths.slice(-12), [...Array<number>(11).fill(16), 32], `bucket lengths ${lengths}`);
    assert.ok(r0.final.some((v, i) => v !== r0.initial[i]), 'the steps changed nothing');
    const want = await w.oneWorker(cfg, r0.initial);
    close('parameters after 2 steps', r0.final, want.params, 1e-5, 1e-6);
    close('losses', r0.losses, want.losses, 1e-5, 1e-6);
  });

  test('a worker that exits (its device with it) at step 2: rank 0 fails that step naming it, parameters unchanged', async () => {
    const timeoutMs = 8000;
    const reports: Report[] = await w.run({
      workers: 2, sizes: [12, 16, 16, 5], batch: 11, reduction: 'mean', steps: 3, optimizer: 'sgd', timeoutMs,
      backend: 'webgpu', adapter: envAdapter ?? 'swiftshader', fault: { rank: 1, step: 1, how: 'exit' },
    });
    assert.equal(reports.map((r) => r.rank), [0]); // rank 1 is gone
    const [r0] = reports as [Report];
    assert.is(r0.losses.length, 1, `rank 0 trained ${r0.losses.length} steps`);
    assert.is(r0.error?.rank, 1, `rank 0: ${r0.error?.name}: ${r0.error?.message}`);
    assert.match(r0.error!.message, /rank 1 exited with code 3/);
    assert.ok(r0.error!.ms < timeoutMs, `rank 0 learnt of the failure after ${r0.error!.ms.toFixed(0)} ms`);
    assert.not.ok(r0.error!.changed, 'rank 0 changed its parameters in the failed step');
  });
});
