// SPDX-License-Identifier: MIT
// Fused optimizer steps and gradient statistics over engine Tensors, on the backend the tensors live on:
// WebGPU runs runtime-gpu/optim.ts's packed WGSL kernels, the CPU backend the Wasm SIMD kernels (one pass per
// tensor), the reference backend the f64 spec. Parameters and optimizer state are updated in place: the Tensor
// objects keep their identity, so a model's parameter tree is built once and stepped many times.
//
// Run a step after the backward pass that read the parameters has finished (a pending pullback that still holds
// a parameter would see the updated values).
import {
  type AdamHyper, type SgdHyper, adamHyper, adamReference, adamStep, checkAliasing, checkLists, keyed, nonFinite,
  nonFiniteReference, sgdHyper, sgdReference, sgdStep, sumSquares, sumSquaresReference,
} from '../../runtime-gpu/optim.js';
import type { HostTensor } from '../../runtime-gpu/host.js';
import type { Tensor as GpuTensor } from '../../runtime-gpu/runtime.js';
import { OpError, describe } from '../../runtime-gpu/shape.js';
import type { CpuTensor, WasmBackend } from '../../runtime-wasm/backend.js';
import type { CpuKernels } from '../../runtime-wasm/kernels.js';
import { Tensor, type TensorBackend } from '../tensor/engine.js';

export type { AdamHyper, SgdHyper };

/** The one backend every listed tensor lives on (null when the lists are empty). */
function backendOf(op: string, lists: readonly (readonly Tensor[] | null)[]): TensorBackend | null {
  let be: TensorBackend | null = null;
  for (const list of lists) {
    for (const t of list ?? []) {
      if (!(t instanceof Tensor)) throw new OpError(op, `expected Tensors, got ${t === null ? 'null' : typeof t}`);
      be ??= t.backend;
      if (t.backend !== be) throw new OpError(op, `tensors live on different backends (${be.name} and ${t.backend.name}); keep parameters, gradients and state on one`);
    }
  }
  return be;
}

/** The kernel instance of the CPU backend (its `kernels` is the Wasm backend). */
function cpuKernels(op: string, be: TensorBackend): CpuKernels {
  const k = (be.kernels as Partial<WasmBackend>).cpu;
  if (!k) throw new OpError(op, `the cpu backend '${be.description}' does not expose its Wasm kernels (kernels.cpu)`);
  return k;
}

const values = <V>(op: string, list: readonly Tensor[]): V[] => list.map((t) => t.value(op) as V);
const ptrOf = (t: CpuTensor): number => t.buf.ptr;

/**
 * One SGD step, in place, on every parameter (PyTorch semantics, dampening 0):
 * d = gradScale · g + weightDecay · p; with momentum v = momentum · v + d and d = nesterov ? d + momentum · v : v;
 * then p -= lr · d. `velocities` (zero-filled at the start, one per parameter) are needed when momentum > 0.
 * @example
 * const vel = params.map((p) => zeros(p.shape));
 * for (const batch of data) { const g = gradFn(params, batch); sgdUpdate(params, g, vel, { lr: 0.1, momentum: 0.9 }); }
 */
export function sgdUpdate(params: readonly Tensor[], grads: readonly Tensor[], velocities: readonly Tensor[] | null, hyper: SgdHyper): void {
  const op = 'sgdUpdate';
  const h = sgdHyper(op, hyper);
  const be = backendOf(op, [params, grads, velocities]);
  const useV = h.momentum !== 0;
  if (useV && !velocities) throw new OpError(op, `momentum ${h.momentum} needs velocities (one zero-filled buffer per parameter)`);
  checkLists(op, params, { grads, velocities: useV ? velocities : null });
  if (!be) return;
  switch (be.name) {
    case 'reference':
      sgdReference(values<HostTensor>(op, params), values(op, grads), velocities && values(op, velocities), h, op);
      return;
    case 'webgpu': {
      const ps = values<GpuTensor>(op, params);
      sgdStep(ps[0]!.rt, ps, values(op, grads), velocities && values(op, velocities), h, op);
      return;
    }
    case 'cpu': {
      const k = cpuKernels(op, be);
      const ps = values<CpuTensor>(op, params), gs = values<CpuTensor>(op, grads), vs = useV ? values<CpuTensor>(op, velocities!) : null;
      checkAliasing(op, [...keyed('params', ps, ptrOf), ...keyed('velocities', vs, ptrOf)], keyed('grads', gs, ptrOf));
      ps.forEach((p, j) => k.sgd(p.buf, gs[j]!.buf, {
        lr: h.lr, momentum: h.momentum, velocity: vs ? vs[j]!.buf : null, weightDecay: h.weightDecay, nesterov: h.nesterov, gradScale: h.gradScale,
      }, p.size));
      return;
    }
    default: {
      const never: never = be.name;
      throw new OpError(op, `no optimizer kernels for the '${String(never)}' backend`);
    }
  }
}

/**
 * One Adam step (AdamW with `decoupled: true`), in place on the parameters and their moments m and v
 * (zero-filled at the start, one each per parameter); PyTorch semantics with bias correction, `step` counting from 1.
 * @example
 * const m = params.map((p) => zeros(p.shape)), v = params.map((p) => zeros(p.shape));
 * adamUpdate(params, grads, m, v, { lr: 1e-3, step: t, weightDecay: 0.01, decoupled: true });
 */
export function adamUpdate(params: readonly Tensor[], grads: readonly Tensor[], m: readonly Tensor[], v: readonly Tensor[], hyper: AdamHyper): void {
  const op = 'adamUpdate';
  const c = adamHyper(op, hyper);
  const be = backendOf(op, [params, grads, m, v]);
  checkLists(op, params, { grads, m, v });
  if (!be) return;
  switch (be.name) {
    case 'reference':
      adamReference(values<HostTensor>(op, params), values(op, grads), values(op, m), values(op, v), c.h, op);
      return;
    case 'webgpu': {
      const ps = values<GpuTensor>(op, params);
      adamStep(ps[0]!.rt, ps, values(op, grads), values(op, m), values(op, v), c.h, op);
      return;
    }
    case 'cpu': {
      const k = cpuKernels(op, be);
      const ps = values<CpuTensor>(op, params), gs = values<CpuTensor>(op, grads), ms = values<CpuTensor>(op, m), vs = values<CpuTensor>(op, v);
      checkAliasing(op, [...keyed('params', ps, ptrOf), ...keyed('m', ms, ptrOf), ...keyed('v', vs, ptrOf)], keyed('grads', gs, ptrOf));
      const { h } = c;
      ps.forEach((p, j) => k.adam(p.buf, gs[j]!.buf, ms[j]!.buf, vs[j]!.buf, {
        lr: h.lr, step: h.step, beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weightDecay, decoupled: h.decoupled, gradScale: h.gradScale,
      }, p.size));
      return;
    }
    default: {
      const never: never = be.name;
      throw new OpError(op, `no optimizer kernels for the '${String(never)}' backend`);
    }
  }
}

function checkF32(op: string, tensors: readonly Tensor[]): void {
  tensors.forEach((t, j) => { if (t.dtype !== 'f32') throw new OpError(op, `tensors[${j}] is ${describe(t)}; only f32 tensors are supported`); });
}

/**
 * Σ over the tensors of Σ x²: the squared global norm, for clipping gradients by norm. One read-back on WebGPU
 * (the reduction runs on the device; the CPU sums in f64, the reference in f64).
 * @example const norm = Math.sqrt(await globalNormSq(grads)); const clip = Math.min(1, maxNorm / (norm + 1e-6));
 */
export async function globalNormSq(tensors: readonly Tensor[]): Promise<number> {
  const op = 'globalNormSq';
  const be = backendOf(op, [tensors]);
  checkF32(op, tensors);
  if (!be) return 0;
  switch (be.name) {
    case 'reference': return sumSquaresReference(values(op, tensors));
    case 'cpu': {
      const k = cpuKernels(op, be);
      return values<CpuTensor>(op, tensors).reduce((s, t) => s + k.sumSquares(t.buf, t.size), 0);
    }
    case 'webgpu': {
      const ts = values<GpuTensor>(op, tensors);
      const s = sumSquares(ts[0]!.rt, ts);
      try { return await s.item(); } finally { s.dispose(); }
    }
    default: {
      const never: never = be.name;
      throw new OpError(op, `no kernels for the '${String(never)}' backend`);
    }
  }
}

/**
 * Whether some element of the tensors is inf or NaN: a mixed-precision step whose scaled loss overflowed, to be
 * skipped (and the loss scale lowered). One read-back of one scalar on WebGPU.
 * @example if (await hasNonFinite(grads)) scale /= 2; else adamUpdate(params, grads, m, v, { lr, step: ++t, gradScale: 1 / scale });
 */
export async function hasNonFinite(tensors: readonly Tensor[]): Promise<boolean> {
  const op = 'hasNonFinite';
  const be = backendOf(op, [tensors]);
  checkF32(op, tensors);
  if (!be) return false;
  switch (be.name) {
    case 'reference': return nonFiniteReference(values(op, tensors));
    case 'cpu': {
      const k = cpuKernels(op, be);
      return values<CpuTensor>(op, tensors).some((t) => k.nonFinite(t.buf, t.size));
    }
    case 'webgpu': {
      const ts = values<GpuTensor>(op, tensors);
      const s = nonFinite(ts[0]!.rt, ts);
      try { return (await s.item()) !== 0; } finally { s.dispose(); }
    }
    default: {
      const never: never = be.name;
      throw new OpError(op, `no kernels for the '${String(never)}' backend`);
    }
  }
}
