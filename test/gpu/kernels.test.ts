// SPDX-License-Identifier: MIT
// Every WebGPU kernel against the f64 reference on random inputs of awkward sizes, at f32 tolerance.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, referenceBackend, webgpuBackend } from '../../runtime-gpu/backend.js';
import { opNames } from '../../runtime-gpu/ops/index.js';
import { Rng, assertClose, runtime, toGpu, toHost } from '../support/gpu.js';
import { cases } from '../support/gpu-cases.js';

const GEMM_OPS = new Set(['matmul', 'conv2d', 'conv2dBackwardInput', 'conv2dBackwardFilter']);
const ATTENTION_OPS = new Set(['attention', 'attentionBackward']);

test('every op in the table has at least one kernel case', () => {
  const covered = new Set(cases.map((c) => c.op));
  assert.equal(opNames.filter((n) => !covered.has(n)), []);
});

cases.forEach((c, i) => {
  test(`${c.op}: ${c.label}`, async () => {
    const rt = await runtime();
    const ins = c.inputs(new Rng(1000 + i));
    const want = run(referenceBackend, c.op, ins, c.attrs as never);
    const gpuIns = ins.map((h) => toGpu(rt, h));
    // Ops with two implementations are checked in both: GEMMs (workgroup-memory tiles or register blocking) and
    // attention (flash-style kernels or materialised scores for short sequences).
    const flag = GEMM_OPS.has(c.op) ? 'tiledGemm' : ATTENTION_OPS.has(c.op) ? 'shortAttention' : null;
    const saved = flag ? rt[flag] : false;
    try {
      for (const setting of flag ? [saved, !saved] : [saved]) {
        if (flag) rt[flag] = setting;
        const tiled = setting;
        const got = run(webgpuBackend(rt), c.op, gpuIns, c.attrs as never);
        assert.is(got.length, want.length, 'number of outputs');
        for (let k = 0; k < want.length; k++) {
          const w = want[k]!;
          // f16 outputs are compared after the reference rounds to f16.
          const tol = w.dtype === 'f16' ? [1e-3, 1e-4] : [c.rtol ?? 2e-4, c.atol ?? 2e-5];
          assertClose(`${c.op} ${c.label} output ${k}${flag ? ` (${flag} = ${tiled})` : ''}`, await toHost(got[k]!), w, tol[0], tol[1]);
        }
        for (const t of got) t.dispose();
      }
    } finally {
      if (flag) rt[flag] = saved;
    }
    for (const t of gpuIns) t.dispose();
  });
});

test.run();
