// SPDX-License-Identifier: MIT
// Every pullback by the identity <c, J·t> = <Jᵀc, t> on the f64 reference (J·t by central differences in f64),
// then the same pullback run on WebGPU (its backward kernels and compositions) against the reference's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run, referenceBackend, vjp, webgpuBackend } from '../../runtime-gpu/backend.js';
import { ops } from '../../runtime-gpu/ops/index.js';
import type { HostTensor } from '../../runtime-gpu/host.js';
import { Rng, assertClose, dot, rand, runtime, toGpu, toHost } from '../support/gpu.js';
import { type Case, cases } from '../support/gpu-cases.js';

/** Inputs that carry a cotangent: f32 values, except where's condition. */
const differentiable = (c: Case, t: HostTensor, i: number) => t.dtype === 'f32' && !(c.op === 'where' && i === 0);

/** Cases where the identity does not apply: comparisons (zero derivative, jumps) and rounding to f16/i32. */
function skipReason(c: Case, ins: HostTensor[]): string | null {
  if (!ops[c.op].pullback) return 'backward kernel';
  if (c.op === 'binary' && ['lt', 'le', 'gt', 'ge', 'eq', 'ne'].includes((c.attrs as { fn: string }).fn)) return 'comparison';
  if (c.op === 'cast') return 'rounding';
  if (!ins.some((t, i) => differentiable(c, t, i))) return 'no float inputs';
  return null;
}

let checked = 0;
cases.forEach((c, ci) => {
  const ins0 = c.inputs(new Rng(5000 + ci));
  if (skipReason(c, ins0)) return;
  test(`pullback ${c.op}: ${c.label}`, async () => {
    const rng = new Rng(9000 + ci);
    const ins = c.inputs(new Rng(5000 + ci));
    const f = (xs: HostTensor[]) => run(referenceBackend, c.op, xs, c.attrs as never)[0]!;
    const y = f(ins);
    const cot = rand(rng, y.shape as number[]);
    const tan = ins.map((t, i) => (differentiable(c, t, i) ? rand(rng, t.shape as number[]) : null));
    const eps = 1e-6;
    const shifted = (s: number) => ins.map((t, i) => (tan[i] ? { ...t, data: t.data.map((v, k) => v + s * eps * tan[i]!.data[k]!) } : t));
    const yp = f(shifted(1)), ym = f(shifted(-1));
    let lhs = 0;
    for (let k = 0; k < cot.data.length; k++) lhs += cot.data[k]! * (yp.data[k]! - ym.data[k]!) / (2 * eps);
    const { pullback } = vjp(referenceBackend, c.op, ins, c.attrs as never);
    const bars = pullback([cot], ins.map((_, i) => !!tan[i]));
    let rhs = 0;
    ins.forEach((t, i) => {
      if (!tan[i]) return;
      const b = bars[i];
      assert.ok(b, `${c.op}: no cotangent for input ${i}`);
      assert.equal(b!.shape, t.shape, `${c.op}: cotangent ${i} has the input's shape`);
      rhs += dot(b!, tan[i]!);
    });
    const err = Math.abs(lhs - rhs) / (1 + Math.abs(lhs) + Math.abs(rhs));
    assert.ok(err < 1e-6, `${c.op} ${c.label}: <c, J t> = ${lhs} but <J^T c, t> = ${rhs}`);

    // The same pullback on the GPU.
    const rt = await runtime();
    const g = webgpuBackend(rt);
    const gIns = ins.map((t) => toGpu(rt, t));
    const gv = rt.tidy(() => {
      const { pullback: gp } = vjp(g, c.op, gIns, c.attrs as never);
      return gp([toGpu(rt, cot)], ins.map((_, i) => !!tan[i]));
    });
    for (let i = 0; i < ins.length; i++) {
      if (!tan[i]) continue;
      assertClose(`${c.op} ${c.label}: GPU cotangent of input ${i}`, await toHost(gv[i]!), bars[i]!, c.rtol ?? 1e-3, c.atol ?? 1e-4);
    }
    for (const t of [...gIns, ...gv]) t?.dispose();
    checked++;
  });
});

test('every differentiable op has a pullback case', () => {
  const withPullback = Object.values(ops).filter((r) => r.pullback).map((r) => r.name);
  const covered = new Set(cases.filter((c) => !skipReason(c, c.inputs(new Rng(1)))).map((c) => c.op));
  // cast is differentiable but only checked through kernels (its pullback is a cast back).
  assert.equal(withPullback.filter((n) => !covered.has(n) && n !== 'cast'), []);
  assert.ok(checked > 40, `only ${checked} pullbacks were checked`);
});

test.run();
