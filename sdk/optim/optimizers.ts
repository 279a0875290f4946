// SPDX-License-Identifier: MIT
// Optimizers over parameter trees (plain objects and arrays with Tensor leaves, as valueAndGrad takes and returns
// them): SGD (momentum, Nesterov, L2), Adam and AdamW. Each holds its own state (the momentum or moment buffers
// and the step count) as a tree of Tensors shaped like the parameters, so that it can be saved with saveParams.
//
// A step is ONE fused call (fused.ts) over every leaf, in place: the parameters keep their identity, so the
// model's tree is built once and stepped many times. The step then disposes the gradients it consumed, so a
// training loop `const [loss, g] = valueAndGrad(f)(params, x); await opt.step(params, g);` needs no dispose.
//
// The order of leaves is the tree's (depth first, in key order). A Tensor that appears at several places of the
// tree (tied weights) is one parameter: it is updated once, with the gradient valueAndGrad summed over its uses.
import { Tensor, constant } from '../tensor/engine.js';
import { mapTree } from '../tensor/ad.js';
import { zerosLike } from '../tensor/ops.js';
import { adamUpdate, globalNormSq, sgdUpdate } from './fused.js';
import type { Schedule } from './schedules.js';

/** A learning rate: a number, or a schedule from the step (0 for the first update) to the rate. */
export type LearningRate = number | Schedule;

/** What every optimizer takes besides its own hyper-parameters. */
export interface OptimizerCommon {
  lr: LearningRate;
  /**
   * Clip the gradient by its global norm (over every leaf) before the update: the update uses
   * g · min(1, clipNorm / (‖g‖ + 1e-6)). The factor is folded into the fused update (no extra pass over the
   * gradients), at the cost of one read-back of the norm per step.
   */
  clipNorm?: number;
}

/** PyTorch's SGD (dampening 0). */
export interface SgdOptions extends OptimizerCommon {
  /** Default 0 (plain SGD, no velocity buffers). */
  momentum?: number;
  /** Nesterov momentum (needs momentum > 0). Default false. */
  nesterov?: boolean;
  /** L2 penalty: weightDecay · p is added to the gradient. Default 0. */
  weightDecay?: number;
}

/** PyTorch's Adam / AdamW. */
export interface AdamOptions extends OptimizerCommon {
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Adam: an L2 penalty added to the gradient (default 0). AdamW: decoupled, p ← p · (1 − lr · weightDecay) (default 0.01). */
  weightDecay?: number;
}

/** Options of one step. */
export interface StepOptions {
  /**
   * Multiplies every gradient before it is used (the fused kernels do it on the fly): `1 / scale` for gradients of
   * a loss scaled by a LossScaler, or the factor clipGradNorm returned.
   */
  gradScale?: number;
}

/** What a step did. */
export interface StepInfo {
  /** Updates taken so far, this one included. */
  step: number;
  /** The learning rate this update used. */
  lr: number;
  /** With clipNorm: the global norm of the (unscaled) gradient before clipping. */
  gradNorm?: number;
}

/**
 * The optimizer's state: `step` (an i32 scalar, the number of updates taken), and per parameter the SGD velocity
 * or Adam's first and second moments, each a tree shaped like the parameters.
 */
export interface OptimizerState {
  step: Tensor;
  velocity?: unknown;
  m?: unknown;
  v?: unknown;
}

export type OptimizerKind = 'sgd' | 'adam' | 'adamw';

/**
 * An optimizer and its state. Make one with sgd(), adam() or adamw().
 * @example
 * const opt = adamw({ lr: 1e-3 });
 * for (const [x, y] of data) {
 *   const [loss, grads] = valueAndGrad(lossFn)(params, x, y);
 *   await opt.step(params, grads); // updates params in place and disposes grads
 *   loss.dispose();
 * }
 */
export interface Optimizer {
  readonly kind: OptimizerKind;
  /** Updates taken so far. */
  readonly steps: number;
  /**
   * The state tree (undefined before init() or the first step), updated in place by each step; only `step` is
   * replaced (the old count is freed), so read `state.step` when you need it rather than keeping it.
   */
  readonly state: OptimizerState | undefined;
  /** The learning rate of update `step` (0 for the first). */
  lrAt(step: number): number;
  /** Makes zero-filled state for these parameters (again: the old state is freed) and returns it. The first step calls it. */
  init(params: unknown): OptimizerState;
  /**
   * One update of every parameter, in place, in one fused call; then disposes the gradient tensors (they are
   * consumed). Await it: with clipNorm the update waits for the read-back of the gradient norm.
   */
  step(params: unknown, grads: unknown, options?: StepOptions): Promise<StepInfo>;
  /**
   * Replaces the state with a saved one (e.g. from loadParams(file, opt.state)): same names, shapes and dtypes as
   * the current state when there is one. The optimizer takes ownership of the tensors and frees its old ones.
   */
  loadState(state: OptimizerState): Promise<void>;
  /** Frees the state. */
  dispose(): void;
}

// ---- trees ----

/**
 * @internal Every Tensor leaf of a tree (plain objects and arrays, walked depth first in key order) with its path,
 * the keys joined by '.': one entry per place, so a sub-tree shared by two keys (tied layers) is listed under both.
 * `onKey` sees each key before it is entered (to refuse keys a name cannot hold).
 */
export function treeLeaves(tree: unknown, onKey?: (key: string, path: string) => void): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  const open = new Set<unknown>(); // the objects being walked: a cycle is not followed
  const walk = (x: unknown, path: string): void => {
    if (x instanceof Tensor) { out.push([path, x]); return; }
    if (x === null || typeof x !== 'object' || ArrayBuffer.isView(x) || open.has(x)) return;
    const proto = Object.getPrototypeOf(x);
    const entries: [string, unknown][] = Array.isArray(x) ? x.map((v, i) => [String(i), v])
      : proto === Object.prototype || proto === null ? Object.entries(x) : [];
    open.add(x);
    for (const [k, v] of entries) {
      onKey?.(k, path);
      walk(v, path ? `${path}.${k}` : k);
    }
    open.delete(x);
  };
  walk(tree, '');
  return out;
}

/** The distinct Tensors of a tree, in tree order, and for each place the distinct one it holds. */
interface Leaves { all: Tensor[]; unique: Tensor[]; slot: number[] }
function leavesOf(tree: unknown): Leaves {
  const all = treeLeaves(tree).map(([, t]) => t), unique: Tensor[] = [], slot: number[] = [];
  const at = new Map<Tensor, number>();
  for (const t of all) {
    let j = at.get(t);
    if (j === undefined) { j = unique.length; at.set(t, j); unique.push(t); }
    slot.push(j);
  }
  return { all, unique, slot };
}

/** Zeros shaped like each distinct leaf, in the tree's structure (a tied leaf gets one buffer). */
function zerosTree(tree: unknown): unknown {
  const made = new Map<Tensor, Tensor>();
  return mapTree(tree, (t) => {
    let z = made.get(t);
    if (!z) { z = zerosLike(t); made.set(t, z); }
    return z;
  });
}

const shapeOf = (t: Tensor) => `${t.dtype}[${t.shape.join(', ')}]`;

/**
 * The gradients paired with the distinct parameters: one per parameter, checked for count and aliasing, so that a
 * mistake (a gradient tree of other parameters, arguments swapped) is reported before anything is updated or freed.
 */
function pairGradients(op: string, params: Leaves, grads: unknown): Tensor[] {
  const g = leavesOf(grads).all;
  if (g.length !== params.all.length) {
    throw new Error(`${op}: the gradient tree holds ${g.length} tensors but the parameter tree ${params.all.length}; pass the gradients valueAndGrad returned for these parameters`);
  }
  const out: Tensor[] = [];
  params.slot.forEach((j, i) => {
    if (out[j] === undefined) out[j] = g[i]!;
    else if (out[j] !== g[i]) {
      throw new Error(`${op}: parameter ${j} (${shapeOf(params.unique[j]!)}) appears at several places of the tree (tied) but the gradient tree has different tensors there; give it one gradient, the sum over its uses (valueAndGrad does)`);
    }
  });
  const isParam = new Set(params.unique);
  out.forEach((t, j) => {
    if (isParam.has(t)) throw new Error(`${op}: gradient ${j} is itself a parameter tensor; pass (params, grads) in that order`);
    if (t.disposed) throw new Error(`${op}: gradient ${j} (${shapeOf(t)}) was already disposed (by an earlier step? a step consumes its gradients)`);
  });
  return out;
}

function checkPositive(fn: string, name: string, v: number | undefined): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)) throw new RangeError(`${fn}: ${name} must be a finite number > 0, got ${v}`);
}

// ---- gradient clipping ----

/**
 * The global norm ‖g‖ of a gradient tree (over every leaf; a tied leaf counted once) and the factor that clips it
 * to maxNorm: `gradScale · min(1, maxNorm / (‖g‖ + 1e-6))`. Nothing is modified: pass the factor as the next
 * step's gradScale, which applies it inside the fused update (no extra pass). One read-back.
 * `gradScale` is the scale the gradients still carry (1 / lossScale), so that the norm is the true one.
 * @example
 * const { norm, gradScale } = await clipGradNorm(grads, 1.0);
 * await opt.step(params, grads, { gradScale });
 */
export async function clipGradNorm(grads: unknown, maxNorm: number, options: StepOptions = {}): Promise<{ norm: number; gradScale: number }> {
  checkPositive('clipGradNorm', 'maxNorm', maxNorm);
  const gs = options.gradScale ?? 1;
  checkPositive('clipGradNorm', 'gradScale', gs);
  const norm = Math.sqrt(await globalNormSq(leavesOf(grads).unique)) * gs;
  if (!Number.isFinite(norm)) {
    throw new Error(`clipGradNorm: the gradient norm is ${norm}: some gradient is inf or NaN. With a loss scale, use a LossScaler, which skips such steps; otherwise the training has diverged (lower the learning rate)`);
  }
  return { norm, gradScale: gs * Math.min(1, maxNorm / (norm + 1e-6)) };
}

// ---- the optimizers ----

type Hyper = { kind: 'sgd'; momentum: number; nesterov: boolean; weightDecay: number }
  | { kind: 'adam' | 'adamw'; beta1: number; beta2: number; eps: number; weightDecay: number };

/** Which buffers each kind keeps per parameter. */
const BUFFERS = (h: Hyper): ('velocity' | 'm' | 'v')[] => (h.kind === 'sgd' ? (h.momentum !== 0 ? ['velocity'] : []) : ['m', 'v']);

class TreeOptimizer implements Optimizer {
  private st: OptimizerState | undefined;
  private count = 0;
  constructor(private readonly h: Hyper, private readonly lr: LearningRate, private readonly clipNorm: number | undefined) {}

  get kind(): OptimizerKind { return this.h.kind; }
  get steps(): number { return this.count; }
  get state(): OptimizerState | undefined { return this.st; }

  lrAt(step: number): number {
    const lr = typeof this.lr === 'function' ? this.lr(step) : this.lr;
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw new RangeError(`${this.kind}: the learning rate of step ${step} is ${lr}; it must be a finite number ≥ 0`);
    return lr;
  }

  init(params: unknown): OptimizerState {
    const ps = leavesOf(params);
    if (!ps.unique.length) throw new Error(`${this.kind}.init: the parameter tree holds no Tensor`);
    ps.unique.forEach((p, j) => {
      if (p.dtype !== 'f32') throw new Error(`${this.kind}.init: parameter ${j} is ${shapeOf(p)}; optimizers update f32 parameters (keep f32 master weights, cast to f16 inside the model)`);
    });
    this.dispose();
    const st: OptimizerState = { step: constant(ps.unique[0]!.backend, [], 0, 'i32') };
    for (const b of BUFFERS(this.h)) st[b] = zerosTree(params);
    this.st = st;
    this.count = 0;
    return st;
  }

  async step(params: unknown, grads: unknown, options: StepOptions = {}): Promise<StepInfo> {
    const op = `${this.kind}.step`;
    const ps = leavesOf(params);
    const gs = pairGradients(op, ps, grads);
    try {
      let gradScale = options.gradScale ?? 1;
      checkPositive(op, 'gradScale', gradScale);
      const st = this.st ?? this.init(params);
      const buffers = Object.fromEntries(BUFFERS(this.h).map((b) => [b, leavesOf(st[b]).unique]));
      for (const [b, list] of Object.entries(buffers)) {
        if (list.length !== ps.unique.length) {
          throw new Error(`${op}: the optimizer's ${b} holds ${list.length} tensors but the parameter tree ${ps.unique.length}; these are not the parameters it was initialised for (call opt.init(params) to start over)`);
        }
      }
      let gradNorm: number | undefined;
      if (this.clipNorm !== undefined) ({ norm: gradNorm, gradScale } = await clipGradNorm(gs, this.clipNorm, { gradScale }));
      const lr = this.lrAt(this.count);
      const h = this.h;
      if (h.kind === 'sgd') {
        sgdUpdate(ps.unique, gs, buffers.velocity ?? null, { lr, momentum: h.momentum, nesterov: h.nesterov, weightDecay: h.weightDecay, gradScale });
      } else {
        adamUpdate(ps.unique, gs, buffers.m!, buffers.v!, {
          lr, step: this.count + 1, beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weightDecay, decoupled: h.kind === 'adamw', gradScale,
        });
      }
      this.count++;
      const old = st.step;
      st.step = constant(old.backend, [], this.count, 'i32');
      old.dispose();
      return gradNorm === undefined ? { step: this.count, lr } : { step: this.count, lr, gradNorm };
    } finally {
      for (const g of gs) g.dispose();
    }
  }

  async loadState(state: OptimizerState): Promise<void> {
    const op = `${this.kind}.loadState`;
    if (state === null || typeof state !== 'object' || !(state.step instanceof Tensor)) throw new Error(`${op}: expected a state tree with a 'step' Tensor (as opt.state is), got ${state === null ? 'null' : typeof state}`);
    const { step } = state;
    if (step.dtype !== 'i32' || step.size !== 1) throw new Error(`${op}: 'step' must be an i32 scalar, got ${shapeOf(step)}`);
    const names = BUFFERS(this.h);
    for (const k of Object.keys(state)) {
      if (k !== 'step' && !names.includes(k as never)) throw new Error(`${op}: the state has '${k}', which a ${this.describe()} does not keep (it keeps step${names.map((n) => `, ${n}`).join('')})`);
    }
    for (const b of names) {
      const got = leavesOf(state[b]).unique;
      if (!got.length) throw new Error(`${op}: the state has no '${b}' tensors; a ${this.describe()} keeps them`);
      const cur = this.st && leavesOf(this.st[b]).unique;
      if (cur && cur.length !== got.length) throw new Error(`${op}: '${b}' holds ${got.length} tensors, the current state ${cur.length}`);
      got.forEach((t, j) => {
        if (t.dtype !== 'f32') throw new Error(`${op}: ${b} tensor ${j} is ${shapeOf(t)}; the state is f32`);
        if (cur && shapeOf(cur[j]!) !== shapeOf(t)) throw new Error(`${op}: ${b} tensor ${j} is ${shapeOf(t)} but the current state's is ${shapeOf(cur[j]!)}`);
      });
    }
    const n = await step.item();
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${op}: 'step' is ${n}; it must be an integer ≥ 0`);
    if (this.st) this.dispose();
    this.st = state;
    this.count = n;
  }

  dispose(): void {
    if (!this.st) return;
    const st = this.st;
    this.st = undefined;
    st.step.dispose();
    for (const b of ['velocity', 'm', 'v'] as const) for (const t of leavesOf(st[b]).unique) t.dispose();
  }

  private describe(): string {
    return this.h.kind === 'sgd' ? `sgd optimizer with momentum ${this.h.momentum}` : `${this.h.kind} optimizer`;
  }
}

function checkCommon(fn: string, o: OptimizerCommon): void {
  if (o === null || typeof o !== 'object') throw new TypeError(`${fn}: expected options { lr, ... }, got ${o === null ? 'null' : typeof o}`);
  const { lr } = o;
  if (typeof lr !== 'function' && (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0)) {
    throw new RangeError(`${fn}: lr must be a finite number ≥ 0 or a schedule (step => rate), got ${lr === undefined ? 'undefined' : String(lr)}`);
  }
  checkPositive(fn, 'clipNorm', o.clipNorm);
}
function checkNonNegative(fn: string, name: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`${fn}: ${name} must be a finite number ≥ 0, got ${v}`);
}
function checkBeta(fn: string, name: string, v: number): void {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new RangeError(`${fn}: ${name} must be in [0, 1), got ${v}`);
}

/**
 * Stochastic gradient descent, PyTorch's semantics (dampening 0): d = g + weightDecay · p; with momentum
 * v ← momentum · v + d and d = nesterov ? d + momentum · v : v; then p ← p − lr · d.
 * @example
 * const opt = sgd({ lr: 0.1, momentum: 0.9, nesterov: true });
 * await opt.step(params, grads);
 */
export function sgd(options: SgdOptions): Optimizer {
  checkCommon('sgd', options);
  const { momentum = 0, nesterov = false, weightDecay = 0 } = options;
  checkNonNegative('sgd', 'momentum', momentum);
  checkNonNegative('sgd', 'weightDecay', weightDecay);
  if (nesterov && momentum === 0) throw new RangeError('sgd: nesterov needs a momentum > 0');
  return new TreeOptimizer({ kind: 'sgd', momentum, nesterov, weightDecay }, options.lr, options.clipNorm);
}

function adamLike(kind: 'adam' | 'adamw', options: AdamOptions): Optimizer {
  checkCommon(kind, options);
  const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = kind === 'adamw' ? 0.01 : 0 } = options;
  checkBeta(kind, 'beta1', beta1);
  checkBeta(kind, 'beta2', beta2);
  checkNonNegative(kind, 'eps', eps);
  checkNonNegative(kind, 'weightDecay', weightDecay);
  return new TreeOptimizer({ kind, beta1, beta2, eps, weightDecay }, options.lr, options.clipNorm);
}

/**
 * Adam (PyTorch's, with bias correction); weightDecay is an L2 penalty added to the gradient.
 * @example
 * const opt = adam({ lr: 1e-3 });
 */
export function adam(options: AdamOptions): Optimizer { return adamLike('adam', options); }

/**
 * AdamW: Adam with decoupled weight decay, p ← p · (1 − lr · weightDecay) before the Adam update (default 0.01).
 * @example
 * const opt = adamw({ lr: cosineWithWarmup({ lr: 3e-4, warmupSteps: 100, totalSteps: 10_000 }), clipNorm: 1 });
 */
export function adamw(options: AdamOptions): Optimizer { return adamLike('adamw', options); }
