// SPDX-License-Identifier: MIT
// Fused optimizer steps and gradient statistics over many tensors: the f64 reference (the spec) and the WGSL
// kernels, side by side.
//
// Dispatches. Several tensors share one dispatch: each is bound as its own storage buffers and owns a
// contiguous range of the dispatch's workgroups (a table of first workgroups baked into the shader), so a
// workgroup works on one tensor only. For T tensors and L storage buffers per shader stage (SwiftShader 12,
// Dawn on an NVIDIA H200 16), with K = min(16, ⌊(L - 1) / b⌋) tensors per dispatch for b buffers per tensor:
//   sgdStep    ⌈T / K⌉ dispatches, b = 2 (p, g), or 3 with momentum (p, g, v);
//   adamStep   ⌈T / K⌉ dispatches, b = 4 (p, g, m, v);
//   sumSquares, nonFinite   ⌈T / K⌉ dispatches with b = 1, each workgroup writing one partial, plus one
//              single-workgroup dispatch that folds the partials (skipped when there is only one partial).
// The hyper-parameters travel in a small storage buffer uploaded once per step (in order with the queued work),
// so a new learning rate or step number reuses the compiled pipeline; the shader text depends only on the sizes
// of the tensors in a dispatch and on momentum / Nesterov being on, so a training loop compiles each once.
// Reductions are workgroup trees (no atomics on floats); inf / NaN is detected on the bits, because WGSL lets
// implementations assume that floating-point values are finite.
import { OpError, describe, type Meta } from './shape.js';
import type { HostTensor } from './host.js';
import type { GpuRuntime, Tensor } from './runtime.js';
import { bindings, grid, u32 } from './wgsl.js';

/** PyTorch's SGD (dampening 0). Defaults: momentum 0, nesterov false, weightDecay 0, gradScale 1. */
export interface SgdHyper {
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  /** L2 penalty: weightDecay · p is added to the gradient. */
  weightDecay?: number;
  /** Multiplies each gradient first (1 / lossScale unscales a mixed-precision gradient). */
  gradScale?: number;
}

/** PyTorch's Adam, or AdamW when decoupled. Defaults: betas 0.9 and 0.999, eps 1e-8, weightDecay 0 (Adam) / 0.01 (AdamW), gradScale 1. */
export interface AdamHyper {
  lr: number;
  /** The step being taken, from 1 (for the bias corrections 1 - beta^step). */
  step: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Adam: L2 (added to the gradient); AdamW: the parameter is multiplied by 1 - lr · weightDecay first. */
  weightDecay?: number;
  decoupled?: boolean;
  gradScale?: number;
}

function checkNumber(op: string, name: string, v: number, ok: (v: number) => boolean, want: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new OpError(op, `${name} must be ${want}, got ${v}`);
}

/** The SGD hyper-parameters with defaults filled in, checked as PyTorch does. */
export function sgdHyper(op: string, h: SgdHyper): Required<SgdHyper> {
  const r = { lr: h.lr, momentum: h.momentum ?? 0, nesterov: h.nesterov ?? false, weightDecay: h.weightDecay ?? 0, gradScale: h.gradScale ?? 1 };
  checkNumber(op, 'lr', r.lr, (v) => v >= 0, 'a finite number ≥ 0');
  checkNumber(op, 'momentum', r.momentum, (v) => v >= 0, 'a finite number ≥ 0');
  checkNumber(op, 'weightDecay', r.weightDecay, (v) => v >= 0, 'a finite number ≥ 0');
  checkNumber(op, 'gradScale', r.gradScale, (v) => v > 0, 'a finite number > 0');
  if (r.nesterov && r.momentum === 0) throw new OpError(op, 'nesterov needs a momentum > 0');
  return r;
}

/** Adam's per-step coefficients, computed in f64: what every backend's kernel multiplies by. */
export interface AdamCoefficients {
  beta1: number; beta2: number; eps: number; gradScale: number;
  /** Added to the gradient times p (Adam's L2; 0 for AdamW). */
  l2: number;
  /** p is multiplied by this first (1 - lr · weightDecay for AdamW; 1 for Adam). */
  shrink: number;
  /** lr / (1 - beta1^step). */
  stepSize: number;
  /** 1 / sqrt(1 - beta2^step). */
  invSqrtBc2: number;
  /** The resolved options (defaults filled in). */
  h: Required<AdamHyper>;
}

/** The Adam hyper-parameters with defaults filled in, checked as PyTorch does, and the step's coefficients. */
export function adamHyper(op: string, h: AdamHyper): AdamCoefficients {
  const decoupled = h.decoupled ?? false;
  const r: Required<AdamHyper> = {
    lr: h.lr, step: h.step, beta1: h.beta1 ?? 0.9, beta2: h.beta2 ?? 0.999, eps: h.eps ?? 1e-8,
    weightDecay: h.weightDecay ?? (decoupled ? 0.01 : 0), decoupled, gradScale: h.gradScale ?? 1,
  };
  checkNumber(op, 'lr', r.lr, (v) => v >= 0, 'a finite number ≥ 0');
  if (!Number.isSafeInteger(r.step) || r.step < 1) throw new OpError(op, `step must be an integer ≥ 1 (the step being taken, for bias correction), got ${r.step}`);
  checkNumber(op, 'beta1', r.beta1, (v) => v >= 0 && v < 1, 'in [0, 1)');
  checkNumber(op, 'beta2', r.beta2, (v) => v >= 0 && v < 1, 'in [0, 1)');
  checkNumber(op, 'eps', r.eps, (v) => v >= 0, 'a finite number ≥ 0');
  checkNumber(op, 'weightDecay', r.weightDecay, (v) => v >= 0, 'a finite number ≥ 0');
  checkNumber(op, 'gradScale', r.gradScale, (v) => v > 0, 'a finite number > 0');
  return {
    beta1: r.beta1, beta2: r.beta2, eps: r.eps, gradScale: r.gradScale,
    l2: decoupled ? 0 : r.weightDecay,
    shrink: decoupled ? 1 - r.lr * r.weightDecay : 1,
    stepSize: r.lr / (1 - r.beta1 ** r.step),
    invSqrtBc2: 1 / Math.sqrt(1 - r.beta2 ** r.step),
    h: r,
  };
}

/** Checks that the lists pair up: same length, and each entry of `others` has the shape of the parameter. */
export function checkLists(op: string, params: readonly Meta[], others: Record<string, readonly Meta[] | null>): void {
  params.forEach((p, i) => {
    if (p.dtype !== 'f32') throw new OpError(op, `params[${i}] is ${describe(p)}; optimizer steps update f32 tensors (keep f32 master weights)`);
  });
  for (const [name, list] of Object.entries(others)) {
    if (!list) continue;
    if (list.length !== params.length) throw new OpError(op, `${params.length} params but ${list.length} ${name}`);
    list.forEach((t, i) => {
      const p = params[i]!;
      if (t.dtype !== 'f32' || t.shape.length !== p.shape.length || t.shape.some((d, k) => d !== p.shape[k])) {
        throw new OpError(op, `${name}[${i}] is ${describe(t)} but params[${i}] is ${describe(p)}`);
      }
    });
  }
}

/** `[name[i], key(list[i])]` for checkAliasing. */
export function keyed<T>(name: string, list: readonly T[] | null, key: (t: T) => unknown): [string, unknown][] {
  return list ? list.map((t, i) => [`${name}[${i}]`, key(t)]) : [];
}

/**
 * Every tensor a step writes must own its storage: a tensor listed twice (or a reshape of another) would be
 * updated twice, and WebGPU rejects a writable binding that aliases another. `key` is the storage (a GPUBuffer,
 * a Wasm address, a Float64Array).
 */
export function checkAliasing(op: string, writable: readonly [string, unknown][], readable: readonly [string, unknown][]): void {
  const seen = new Map<unknown, string>();
  for (const [name, k] of writable) {
    const prev = seen.get(k);
    if (prev) throw new OpError(op, `${prev} and ${name} share one buffer (the same tensor, or reshapes of one); each tensor a step updates must be distinct`);
    seen.set(k, name);
  }
  for (const [name, k] of readable) {
    const prev = seen.get(k);
    if (prev) throw new OpError(op, `${name} shares its buffer with ${prev}, which the step writes`);
  }
}

// ---- reference (f64, in place on host tensors): the spec ----

/** One SGD step in f64, in place on params (and velocities when momentum > 0). */
export function sgdReference(params: readonly HostTensor[], grads: readonly HostTensor[], velocities: readonly HostTensor[] | null, hyper: SgdHyper, op = 'sgdStep'): void {
  const h = sgdHyper(op, hyper);
  const useV = h.momentum !== 0;
  if (useV && !velocities) throw new OpError(op, `momentum ${h.momentum} needs velocities (one zero-filled buffer per parameter)`);
  checkLists(op, params, { grads, velocities: useV ? velocities : null });
  const data = (t: HostTensor) => t.data;
  checkAliasing(op, [...keyed('params', params, data), ...keyed('velocities', useV ? velocities : null, data)], keyed('grads', grads, data));
  params.forEach((pt, j) => {
    const p = pt.data, g = grads[j]!.data, v = useV ? velocities![j]!.data : null;
    for (let i = 0; i < p.length; i++) {
      let d = h.gradScale * g[i]! + h.weightDecay * p[i]!;
      if (v) {
        // PyTorch starts the buffer at the first gradient; from zeros, momentum · 0 + d is the same.
        v[i] = h.momentum * v[i]! + d;
        d = h.nesterov ? d + h.momentum * v[i]! : v[i]!;
      }
      p[i] = p[i]! - h.lr * d;
    }
  });
}

/** One Adam / AdamW step in f64, in place on params, m and v. */
export function adamReference(params: readonly HostTensor[], grads: readonly HostTensor[], m: readonly HostTensor[], v: readonly HostTensor[], hyper: AdamHyper, op = 'adamStep'): void {
  const c = adamHyper(op, hyper);
  checkLists(op, params, { grads, m, v });
  const data = (t: HostTensor) => t.data;
  checkAliasing(op, [...keyed('params', params, data), ...keyed('m', m, data), ...keyed('v', v, data)], keyed('grads', grads, data));
  params.forEach((pt, j) => {
    const p = pt.data, g = grads[j]!.data, M = m[j]!.data, V = v[j]!.data;
    for (let i = 0; i < p.length; i++) {
      const d = c.gradScale * g[i]! + c.l2 * p[i]!;
      M[i] = c.beta1 * M[i]! + (1 - c.beta1) * d;
      V[i] = c.beta2 * V[i]! + (1 - c.beta2) * d * d;
      p[i] = p[i]! * c.shrink - c.stepSize * M[i]! / (Math.sqrt(V[i]!) * c.invSqrtBc2 + c.eps);
    }
  });
}

/** Σ over the tensors of Σ x², in f64. */
export function sumSquaresReference(tensors: readonly HostTensor[]): number {
  let s = 0;
  for (const t of tensors) for (const x of t.data) s += x * x;
  return s;
}

/** Whether some element is inf or NaN. */
export function nonFiniteReference(tensors: readonly HostTensor[]): boolean {
  return tensors.some((t) => t.data.some((x) => !Number.isFinite(x)));
}

// ---- WebGPU ----

const WG = 256;
/** At most this many tensors per dispatch, whatever the device allows (keeps the shaders short). */
const PACK = 16;
/** Reductions: each thread folds about this many elements before the workgroup tree... */
const PER_THREAD = 8;
/** ...with at most this many workgroups per tensor (more elements: more per thread). */
const MAX_REDUCE_GROUPS = 512;

/**
 * Updates: elements per invocation on SwiftShader (rowPerInvocation), where each workgroup costs a pass of a CPU
 * thread over its invocations and fewer, longer workgroups run faster; one on real GPUs.
 */
const PER_INVOCATION = 16;

/** A tensor's bindings in one packed dispatch: its buffers in role order, and its element count. */
interface Item { bufs: GPUBuffer[]; n: number }
interface Role { name: string; write: boolean }

/** Splits items into dispatches of at most K, K from the device's storage-buffer limit. */
function chunks<T>(rt: GpuRuntime, items: readonly T[], perItem: number, extra: number): T[][] {
  const k = Math.max(1, Math.min(PACK, Math.floor((rt.limits.maxStorageBuffersPerShaderStage - extra) / perItem)));
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += k) out.push(items.slice(i, i + k));
  return out;
}

/** The tensor's buffer, after checking that it lives on rt (and was not disposed). */
function bufOf(op: string, rt: GpuRuntime, t: Tensor, what: string): GPUBuffer {
  if (t.rt !== rt) throw new OpError(op, `${what} lives on another GPU runtime`);
  return t.buf(op);
}

/**
 * WGSL for one dispatch over several tensors: tensor j's buffers are `<role>j`, it owns workgroups
 * [first[j], first[j+1]), and `body` runs for each of its elements i < n (`per` elements per invocation, a
 * workgroup's width apart, so that adjacent invocations touch adjacent elements).
 */
function packedUpdate(roles: readonly Role[], sizes: readonly number[], hyper: readonly string[], body: (b: (role: string) => string) => string, per = 1): { code: string; groups: number } {
  const decl = bindings([...sizes.flatMap((_, j) => roles.map((r) => ({ name: `${r.name}${j}`, type: 'f32', write: r.write }))), { name: 'hp', type: 'f32' }]);
  let first = 0;
  const branches = sizes.map((n, j) => {
    const g = Math.ceil(n / (WG * per));
    const elem = `if (i < ${u32(n)}) { ${body((r) => `${r}${j}`)} }`;
    const text = per === 1
      ? `if (w < ${u32(first + g)}) { let i = (w - ${u32(first)}) * ${WG}u + lid.x; ${elem} }`
      : `if (w < ${u32(first + g)}) { for (var e = 0u; e < ${per}u; e++) { let i = ((w - ${u32(first)}) * ${per}u + e) * ${WG}u + lid.x; ${elem} } }`;
    first += g;
    return text;
  });
  const code = `${decl}
@compute @workgroup_size(${WG}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = wid.y * nwg.x + wid.x;
  ${hyper.map((name, k) => `let ${name} = hp[${k}];`).join(' ')}
  ${branches.join('\n  else ')}
}`;
  return { code, groups: first };
}

/** Runs `body` over every tensor of the lists, packed into as few dispatches as the device allows. */
function runPacked(rt: GpuRuntime, op: string, roles: readonly Role[], items: readonly Item[], hyperNames: readonly string[], hyperValues: readonly number[],
  body: (b: (role: string) => string) => string): void {
  const live = items.filter((it) => it.n > 0);
  if (!live.length) return;
  const hp = rt.fromArray(hyperValues, [hyperValues.length]);
  try {
    for (const chunk of chunks(rt, live, roles.length, 1)) {
      const { code, groups } = packedUpdate(roles, chunk.map((it) => it.n), hyperNames, body, rt.rowPerInvocation ? PER_INVOCATION : 1);
      rt.dispatch(code, [...chunk.flatMap((it) => it.bufs), hp.buf(op)], grid(groups, 1));
    }
  } finally {
    // Safe before the queued dispatches run: a pooled buffer is only reused by later commands on the one queue.
    hp.dispose();
  }
}

/**
 * One SGD step on every parameter, in place (PyTorch semantics, dampening 0):
 *   d = gradScale · g + weightDecay · p;  with momentum: v = momentum · v + d, d = nesterov ? d + momentum · v : v;
 *   p -= lr · d.
 * `velocities` (zero-filled at the start, one per parameter) are needed when momentum > 0.
 * Dispatches: ⌈T / K⌉ for T parameters (see the file comment). `op` names the caller in error messages.
 * @example sgdStep(rt, [w, b], [dw, db], [vw, vb], { lr: 0.1, momentum: 0.9, nesterov: true });
 */
export function sgdStep(rt: GpuRuntime, params: readonly Tensor[], grads: readonly Tensor[], velocities: readonly Tensor[] | null, hyper: SgdHyper, op = 'sgdStep'): void {
  const h = sgdHyper(op, hyper);
  const useV = h.momentum !== 0;
  if (useV && !velocities) throw new OpError(op, `momentum ${h.momentum} needs velocities (one zero-filled buffer per parameter)`);
  checkLists(op, params, { grads, velocities: useV ? velocities : null });
  const items = params.map((p, j): Item => {
    const bufs = [bufOf(op, rt, p, `params[${j}]`), bufOf(op, rt, grads[j]!, `grads[${j}]`)];
    if (useV) bufs.push(bufOf(op, rt, velocities![j]!, `velocities[${j}]`));
    return { bufs, n: p.size };
  });
  checkAliasing(op, [...keyed('params', items, (it) => it.bufs[0]), ...keyed('velocities', useV ? items : null, (it) => it.bufs[2])],
    keyed('grads', items, (it) => it.bufs[1]));
  const roles: Role[] = [{ name: 'p', write: true }, { name: 'g', write: false }, ...(useV ? [{ name: 'v', write: true }] : [])];
  const momentum = (b: (r: string) => string) => !useV ? ''
    : ` let u = mom * ${b('v')}[i] + d; ${b('v')}[i] = u; ${h.nesterov ? 'd = d + mom * u;' : 'd = u;'}`;
  runPacked(rt, op, roles, items, ['lr', 'mom', 'wd', 'scale'], [h.lr, h.momentum, h.weightDecay, h.gradScale],
    (b) => `let pv = ${b('p')}[i]; var d = scale * ${b('g')}[i] + wd * pv;${momentum(b)} ${b('p')}[i] = pv - lr * d;`);
}

/**
 * One Adam (or AdamW, with decoupled) step on every parameter, in place (PyTorch semantics):
 *   d = gradScale · g (+ weightDecay · p for Adam);  AdamW: p ← p · (1 - lr · weightDecay);
 *   m = β1 m + (1 - β1) d;  v = β2 v + (1 - β2) d²;  p -= lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + eps).
 * m and v start zero-filled, one each per parameter. Dispatches: ⌈T / K⌉ (see the file comment). `op` names the caller in errors.
 * @example adamStep(rt, params, grads, m, v, { lr: 1e-3, step: t, weightDecay: 0.01, decoupled: true });
 */
export function adamStep(rt: GpuRuntime, params: readonly Tensor[], grads: readonly Tensor[], m: readonly Tensor[], v: readonly Tensor[], hyper: AdamHyper, op = 'adamStep'): void {
  const c = adamHyper(op, hyper);
  checkLists(op, params, { grads, m, v });
  const items = params.map((p, j): Item => ({
    bufs: [bufOf(op, rt, p, `params[${j}]`), bufOf(op, rt, grads[j]!, `grads[${j}]`), bufOf(op, rt, m[j]!, `m[${j}]`), bufOf(op, rt, v[j]!, `v[${j}]`)],
    n: p.size,
  }));
  checkAliasing(op, [...keyed('params', items, (it) => it.bufs[0]), ...keyed('m', items, (it) => it.bufs[2]), ...keyed('v', items, (it) => it.bufs[3])],
    keyed('grads', items, (it) => it.bufs[1]));
  const roles: Role[] = [{ name: 'p', write: true }, { name: 'g', write: false }, { name: 'm', write: true }, { name: 'v', write: true }];
  runPacked(rt, op, roles, items,
    ['b1', 'c1', 'b2', 'c2', 'eps', 'l2', 'shrink', 'stepSize', 'invSqrtBc2', 'scale'],
    [c.beta1, 1 - c.beta1, c.beta2, 1 - c.beta2, c.eps, c.l2, c.shrink, c.stepSize, c.invSqrtBc2, c.gradScale],
    (b) => `let pv = ${b('p')}[i]; let d = scale * ${b('g')}[i] + l2 * pv;
      let mn = b1 * ${b('m')}[i] + c1 * d; let vn = b2 * ${b('v')}[i] + c2 * d * d;
      ${b('m')}[i] = mn; ${b('v')}[i] = vn;
      ${b('p')}[i] = pv * shrink - stepSize * mn / (sqrt(vn) * invSqrtBc2 + eps);`);
}

/** A reduction over every element of many tensors: how one element enters the accumulator and how two merge. */
interface Fold { op: string; step: (x: string) => string; merge: string }
const SUM_SQUARES: Fold = { op: 'sumSquares', step: (x) => `a = a + ${x} * ${x};`, merge: 'a = a + b;' };
// The exponent bits all ones: inf or NaN. The flag is 0.0 or 1.0, merged with max.
const NON_FINITE: Fold = { op: 'nonFinite', step: (x) => `if ((bitcast<u32>(${x}) & 0x7f800000u) == 0x7f800000u) { a = 1.0; }`, merge: 'a = max(a, b);' };

/** The workgroup tree that leaves the workgroup's fold of `a` in sa[0] (and in `a` of thread 0). */
function tree(f: Fold): string {
  return `sa[lid.x] = a;
  for (var s = ${WG / 2}u; s > 0u; s = s / 2u) {
    workgroupBarrier();
    if (lid.x < s) { let b = sa[lid.x + s]; ${f.merge} sa[lid.x] = a; }
  }`;
}

/**
 * Folds every element of the tensors into one f32 scalar on the GPU: per packed dispatch, each workgroup folds
 * a strided share of one tensor and writes one partial; a last single-workgroup dispatch folds the partials.
 */
function reduceAll(rt: GpuRuntime, f: Fold, tensors: readonly Tensor[]): Tensor {
  tensors.forEach((t, j) => { if (t.dtype !== 'f32') throw new OpError(f.op, `tensors[${j}] is ${describe(t)}; only f32 tensors are supported`); });
  const items = tensors.map((t, j) => ({ buf: bufOf(f.op, rt, t, `tensors[${j}]`), n: t.size, g: Math.min(MAX_REDUCE_GROUPS, Math.ceil(t.size / (WG * PER_THREAD))) }))
    .filter((it) => it.n > 0);
  const total = items.reduce((s, it) => s + it.g, 0);
  if (total === 0) return rt.fill([], 0);
  const out = rt.empty([], 'f32', f.op);
  // One partial: the first stage writes the result itself.
  const partials = total === 1 ? out : rt.empty([total], 'f32', f.op);
  let base = 0;
  for (const chunk of chunks(rt, items, 1, 1)) {
    let first = 0;
    const branches = chunk.map((it, j) => {
      const text = `if (w < ${u32(first + it.g)}) {
    for (var i = (w - ${u32(first)}) * ${WG}u + lid.x; i < ${u32(it.n)}; i = i + ${u32(it.g * WG)}) { let x = t${j}[i]; ${f.step('x')} }
  }`;
      first += it.g;
      return text;
    });
    const code = `${bindings([...chunk.map((_, j) => ({ name: `t${j}`, type: 'f32' })), { name: 'partials', type: 'f32', write: true }])}
var<workgroup> sa: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = wid.y * nwg.x + wid.x;
  var a = 0.0;
  ${branches.join(' else ')}
  ${tree(f)}
  if (lid.x == 0u && w < ${u32(first)}) { partials[${u32(base)} + w] = a; }
}`;
    rt.dispatch(code, [...chunk.map((it) => it.buf), partials.buf(f.op)], grid(first, 1));
    base += first;
  }
  if (partials !== out) {
    const code = `${bindings([{ name: 'partials', type: 'f32' }, { name: 'out', type: 'f32', write: true }])}
var<workgroup> sa: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(local_invocation_id) lid: vec3u) {
  var a = 0.0;
  for (var i = lid.x; i < ${u32(total)}; i = i + ${WG}u) { let b = partials[i]; ${f.merge} }
  ${tree(f)}
  if (lid.x == 0u) { out[0] = a; }
}`;
    rt.dispatch(code, [partials.buf(f.op), out.buf(f.op)], [1]);
    partials.dispose();
  }
  return out;
}

/**
 * Σ over the tensors of Σ x², as an f32 scalar tensor on the GPU (the squared global norm, for clipping).
 * Read it back with `await s.item()`; the caller owns (and disposes) it. Dispatches: ⌈T / K⌉ + 1 (see the file comment).
 * @example const s = sumSquares(rt, grads); const norm = Math.sqrt(await s.item()); s.dispose();
 */
export function sumSquares(rt: GpuRuntime, tensors: readonly Tensor[]): Tensor {
  return reduceAll(rt, SUM_SQUARES, tensors);
}

/**
 * An f32 scalar tensor on the GPU: 1 if some element of the tensors is inf or NaN, else 0 (whether a
 * mixed-precision step overflowed). One read-back of it decides the step.
 * @example const bad = nonFinite(rt, grads); if (await bad.item()) lossScale /= 2; else adamStep(...); bad.dispose();
 */
export function nonFinite(rt: GpuRuntime, tensors: readonly Tensor[]): Tensor {
  return reduceAll(rt, NON_FINITE, tensors);
}
