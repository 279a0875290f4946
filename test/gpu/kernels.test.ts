// SPDX-License-Identifier: MIT
// Every WebGPU kernel against the f64 reference on random inputs of awkward sizes, at f32 tolerance.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, referenceBackend, webgpuBackend } from '../../runtime-gpu/backend.js';
import { opNames } from '../../runtime-gpu/ops/index.js';
import { Rng, assertClose, runtime, toGpu, toHost } from '../support/gpu.js';
import { type Case, cases } from '../support/gpu-cases.js';
import { rand } from '../support/gpu.js';
import type { HostTensor } from '../../runtime-gpu/host.js';

type Flag = 'tiledGemm' | 'vec4Matmul' | 'shortAttention' | 'rowPerInvocation' | 'nativeF16';
/**
 * Ops with more than one implementation are checked in each, over every combination of the runtime switches
 * that choose between them: GEMMs (workgroup-memory tiles or register blocking; convolutions also direct
 * kernels), attention (flash-style kernels or materialised scores for short sequences, whose softmax runs per
 * workgroup or per invocation) and row kernels (one workgroup or one invocation per row).
 */
const FLAGS: Partial<Record<string, Flag[]>> = {
  matmul: ['tiledGemm', 'vec4Matmul'], conv2d: ['tiledGemm'], conv2dBackwardInput: ['tiledGemm'], conv2dBackwardFilter: ['tiledGemm'],
  attention: ['shortAttention', 'rowPerInvocation'], attentionBackward: ['shortAttention'],
  layerNorm: ['rowPerInvocation'], layerNormBackward: ['rowPerInvocation'],
  sum: ['rowPerInvocation'], max: ['rowPerInvocation'], logsumexp: ['rowPerInvocation'],
  softmax: ['rowPerInvocation'], logSoftmax: ['rowPerInvocation'], softmaxCrossEntropy: ['rowPerInvocation'],
};
const settings = (flags: Flag[]): Partial<Record<Flag, boolean>>[] =>
  flags.reduce<Partial<Record<Flag, boolean>>[]>((acc, f) => acc.flatMap((s) => [{ ...s, [f]: true }, { ...s, [f]: false }]), [{}]);

const r = (...shapes: number[][]) => (rng: Rng): HostTensor[] => shapes.map((s) => rand(rng, s));
/** Block edges of the SwiftShader variants: direct convolutions (4 ow x up to 4 oh x 4/8/16 channels per invocation), vec4 rows. */
const variants: Case[] = [
  { op: 'conv2d', label: 'direct: [1, 5, 9, 13] * [11, 5, 3, 3] pad 1 (channel and row blocks cut)', attrs: { padding: 1 }, inputs: r([1, 5, 9, 13], [11, 5, 3, 3]) },
  { op: 'conv2d', label: 'direct: [3, 2, 11, 7] * [3, 2, 5, 3] stride 2 pad [2, 0]', attrs: { stride: 2, padding: [2, 0] }, inputs: r([3, 2, 11, 7], [3, 2, 5, 3]) },
  { op: 'conv2d', label: 'direct: [2, 7, 5, 6] * [17, 7, 1, 1]', attrs: {}, inputs: r([2, 7, 5, 6], [17, 7, 1, 1]) },
  { op: 'conv2dBackwardInput', label: 'direct: dy [2, 13, 7, 10], w [13, 11, 3, 2] (from 9x11)', attrs: { inputHW: [9, 11] }, inputs: r([2, 13, 7, 10], [13, 11, 3, 2]) },
  { op: 'conv2dBackwardInput', label: 'direct: dy [1, 3, 13, 5], w [3, 1, 3, 3] pad 2 (from 11x3)', attrs: { padding: 2, inputHW: [11, 3] }, inputs: r([1, 3, 13, 5], [3, 1, 3, 3]) },
  { op: 'conv2dBackwardFilter', label: 'direct: dy [5, 19, 9, 7], x [5, 3, 9, 7] pad 1 (16-channel blocks, batch chunks)', attrs: { padding: 1, kernelHW: [3, 3] }, inputs: r([5, 19, 9, 7], [5, 3, 9, 7]) },
  { op: 'conv2dBackwardFilter', label: 'direct: dy [2, 9, 4, 3], x [2, 2, 11, 7] stride 2, 5x3 filter', attrs: { stride: 2, kernelHW: [5, 3] }, inputs: r([2, 9, 4, 3], [2, 2, 11, 7]) },
  { op: 'conv2dBackwardFilter', label: 'direct: dy [1, 3, 5, 5], x [1, 1, 5, 5] pad 1', attrs: { padding: 1, kernelHW: [3, 3] }, inputs: r([1, 3, 5, 5], [1, 1, 5, 5]) },
  { op: 'layerNorm', label: 'vec4 rows [1, 4]', attrs: {}, inputs: r([1, 4], [4], [4]) },
  { op: 'layerNorm', label: 'vec4 rows [67, 128]', attrs: {}, inputs: r([67, 128], [128], [128]) },
  { op: 'layerNorm', label: 'long rows [3, 2053]', attrs: {}, inputs: r([3, 2053], [2053], [2053]) },
  ...[[131, 36], [1, 2052], [2, 1]].map(([R, D]): Case => ({ op: 'layerNormBackward', label: `[${R}, ${D}]`, attrs: {}, inputs: (rng) => {
    const [x, g, b, dy] = r([R!, D!], [D!], [D!], [R!, D!])(rng);
    const [, mean, rstd] = run(referenceBackend, 'layerNorm', [x!, g!, b!], {});
    return [x!, g!, mean!, rstd!, dy!];
  }, rtol: 1e-3, atol: 1e-4 })),
  // vec4 matmuls with M across the 8-row (hardware) and 16-row (SwiftShader) blocks, ragged at the end.
  { op: 'matmul', label: 'vec4 NN [37, 8] x [8, 12] + [12], relu', attrs: { activation: 'relu' }, inputs: r([37, 8], [8, 12], [12]) },
  { op: 'matmul', label: 'vec4 TN [5, 36]ᵀ x [5, 8]', attrs: { transA: true }, inputs: r([5, 36], [5, 8]) },
  { op: 'matmul', label: 'vec4 TN batched [2, 3, 20]ᵀ x [2, 3, 4]', attrs: { transA: true }, inputs: r([2, 3, 20], [2, 3, 4]) },
  { op: 'matmul', label: 'vec4 NT [19, 8] x [5, 8]ᵀ', attrs: { transB: true }, inputs: r([19, 8], [5, 8]) },
  // Reductions: column sums (a bias gradient) loop per invocation on SwiftShader and use trees otherwise; a long
  // reduction into one output keeps the tree on both.
  { op: 'sum', label: 'columns [131, 67] axis 0 (bias gradient)', attrs: { axes: [0] }, inputs: r([131, 67]) },
  { op: 'sum', label: 'long [3, 9001] all, scale 1/27003', attrs: { scale: 1 / 27003 }, inputs: r([3, 9001]) },
  { op: 'max', label: 'columns [97, 65] axis 0', attrs: { axes: [0] }, inputs: r([97, 65]) },
  { op: 'logsumexp', label: 'columns [2, 129, 33] axes 0, 1', attrs: { axes: [0, 1] }, inputs: r([2, 129, 33]) },
  // Row softmaxes: many rows run one per invocation on SwiftShader; few long rows keep the workgroup tree.
  { op: 'softmax', label: 'rows [67, 10]', attrs: {}, inputs: r([67, 10]) },
  { op: 'logSoftmax', label: 'few long rows [2, 9000]', attrs: {}, inputs: r([2, 9000]) },
  { op: 'softmaxCrossEntropy', label: 'rows [129, 10]', attrs: {}, inputs: (rng) => [rand(rng, [129, 10]), rand(rng, [129], 'int', 'i32', 10)] },
  ...[false, true].map((causal): Case => ({ op: 'attention', label: `short path ${causal ? 'causal ' : ''}q [5, 17, 4], k [5, 20, 4], v [5, 20, 8] (85 rows)`, attrs: { causal }, inputs: r([5, 17, 4], [5, 20, 4], [5, 20, 8]) })),
];

test('every op in the table has at least one kernel case', () => {
  const covered = new Set(cases.map((c) => c.op));
  assert.equal(opNames.filter((n) => !covered.has(n)), []);
});

[...cases, ...variants].forEach((c, i) => {
  test(`${c.op}: ${c.label}`, async () => {
    const rt = await runtime();
    const ins = c.inputs(new Rng(1000 + i));
    const want = run(referenceBackend, c.op, ins, c.attrs as never);
    const gpuIns = ins.map((h) => toGpu(rt, h));
    // f16 tensors are read both ways where the adapter has shader-f16 (a GPU; SwiftShader has not): natively and packed.
    const f16 = rt.adapter.features.includes('shader-f16') && [...ins, ...want].some((t) => t.dtype === 'f16');
    const flags: Flag[] = [...(FLAGS[c.op] ?? []), ...(f16 ? ['nativeF16' as const] : [])];
    const saved = Object.fromEntries(flags.map((f) => [f, rt[f]]));
    try {
      for (const setting of settings(flags)) {
        Object.assign(rt, setting);
        const label = flags.length ? ` (${flags.map((f) => `${f} = ${setting[f]}`).join(', ')})` : '';
        const got = run(webgpuBackend(rt), c.op, gpuIns, c.attrs as never);
        assert.is(got.length, want.length, 'number of outputs');
        for (let k = 0; k < want.length; k++) {
          const w = want[k]!;
          // f16 outputs are compared after the reference rounds to f16.
          const tol = w.dtype === 'f16' ? [1e-3, 1e-4] : [c.rtol ?? 2e-4, c.atol ?? 2e-5];
          assertClose(`${c.op} ${c.label} output ${k}${label}`, await toHost(got[k]!), w, tol[0], tol[1]);
        }
        for (const t of got) t.dispose();
      }
    } finally {
      Object.assign(rt, saved);
    }
    for (const t of gpuIns) t.dispose();
  });
});

test.run();
