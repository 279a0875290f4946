// SPDX-License-Identifier: MIT
// The tensor engine: one Tensor type over every backend (reference f64, CPU/Wasm, WebGPU), reference counts that
// the generated code and the pullbacks share, and reverse-mode sessions.
//
// Ownership. A tensor made by an op has one reference, its creator's: the user (who may call dispose(), or leave
// it to the FinalizationRegistry) or the code the transformer generated (which frees it right after its last use).
// A pullback that needs a value to run (matmul its inputs, softmax its output, layerNorm its statistics) takes a
// reference of its own when the op runs and drops it when it has run, so a value lives exactly as long as the
// forward code uses it or the backward pass still needs it. Values a pullback needs only the shape of are not kept.
//
// Sessions. grad/vjp open a session. A tensor is active in it when it is a leaf being differentiated or an op
// output with an active input; only ops with an active input are recorded, and only active inputs get a
// cotangent. Cotangents live in the session's map keyed by tensor identity, so a parameter used several times
// (tied embeddings, an RNN's weights, a block applied twice) receives the sum of every use.
import { execOf, run } from '../../runtime-gpu/backend.js';
import { ops } from '../../runtime-gpu/ops/index.js';
import { matmulPullbackInRows } from '../../runtime-gpu/ops/matmul.js';
import type { Backend, Exec, OpAttrs, OpName, PullbackArgs, UnaryFn } from '../../runtime-gpu/ops/types.js';
import { UNARY_SAVES } from '../../runtime-gpu/ops/elementwise.js';
import { type DType, type Meta, type Shape, OpError, bytesPerElement, fmt, size } from '../../runtime-gpu/shape.js';

/** What the engine needs from a backend: the op table's kernels plus moving values in and out. */
export interface TensorBackend<V = any> {
  /** 'reference' (f64 on the CPU, the spec), 'cpu' (Wasm SIMD) or 'webgpu'. */
  readonly name: 'reference' | 'cpu' | 'webgpu';
  readonly kernels: Backend<V>;
  upload(data: ArrayLike<number>, shape: Shape, dtype: DType): V;
  download(v: V): Promise<Float32Array | Int32Array | Float64Array>;
  free(v: V): void;
  /** A human description of the device (adapter name, thread count). */
  readonly description: string;
}

let current: TensorBackend | undefined;
let chooser: (() => TensorBackend) | undefined;

/** Makes `be` the backend that new tensors are created on (undefined: none, as before the first init()). */
export function setTensorBackend(be: TensorBackend | undefined): void { current = be; }
/** What to call the first time a tensor is made with no backend chosen (the SDK's automatic choice). */
export function setBackendChooser(f: () => TensorBackend): void { chooser = f; }
export function currentBackend(): TensorBackend {
  if (!current) {
    if (!chooser) throw new Error('pullback: no tensor backend; call `await init()` first');
    current = chooser();
  }
  return current;
}
export function hasBackend(): boolean { return current !== undefined; }

// ---- memory accounting (of tensors, whatever the backend's pooling) ----
const stats = { liveBytes: 0, peakBytes: 0, liveTensors: 0, gradBytes: 0, peakNonGradBytes: 0 };

export interface TensorMemoryStats {
  /** Bytes held by live tensors (every backend; a WebGPU pool's free buffers are not counted). */
  liveBytes: number;
  /** The highest liveBytes since start or since resetPeakMemory(). */
  peakBytes: number;
  /** Tensors alive (made and not yet freed by their owner, a pullback, or the garbage collector). */
  liveTensors: number;
  /**
   * The highest liveBytes minus the bytes of parameter gradients being accumulated by a backward pass: what the
   * forward values, saved activations and in-flight cotangents took at their peak (benchmarks of checkpointing).
   */
  peakNonGradBytes: number;
}
export function tensorMemoryStats(): TensorMemoryStats {
  const { liveBytes, peakBytes, liveTensors, peakNonGradBytes } = stats;
  return { liveBytes, peakBytes, liveTensors, peakNonGradBytes };
}
export function resetPeakMemory(): void { stats.peakBytes = stats.liveBytes; stats.peakNonGradBytes = stats.liveBytes - stats.gradBytes; }

/** Frees the backend value of a Tensor the program lost without disposing it. */
const finalizer = new FinalizationRegistry<Cell>((cell) => cell.drop());

class Cell {
  constructor(public v: unknown, readonly be: TensorBackend, readonly bytes: number) {
    stats.liveBytes += bytes;
    stats.liveTensors++;
    if (stats.liveBytes > stats.peakBytes) stats.peakBytes = stats.liveBytes;
    if (stats.liveBytes - stats.gradBytes > stats.peakNonGradBytes) stats.peakNonGradBytes = stats.liveBytes - stats.gradBytes;
  }
  drop(): void {
    if (this.v === null) return;
    this.be.free(this.v);
    this.v = null;
    stats.liveBytes -= this.bytes;
    stats.liveTensors--;
  }
}

let nextId = 1;
/** When set, every new Tensor is appended (to free what plain user code, such as a derivative rule, made). */
let created: Tensor[] | null = null;

/** Runs fn and returns what it returned with every Tensor made meanwhile. */
export function collecting<R>(fn: () => R): { result: R; made: Tensor[] } {
  const prev = created;
  const made: Tensor[] = [];
  created = made;
  try { return { result: fn(), made }; } finally {
    created = prev;
    prev?.push(...made);
  }
}

export class Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  /** @internal */ readonly id = nextId++;
  /** @internal */ readonly cell: Cell;
  /** @internal References: the owner's, plus one per pullback that will read this value. */
  refs = 1;
  /** @internal The owner's reference has not been given back yet. */
  owned = true;
  /** @internal The session in which this tensor is active (0: none). */
  active = 0;

  /** @internal The id the next tensor will get (ids only grow: `t.id >= mark` means made since the mark). */
  static nextId(): number { return nextId; }

  /** @internal Use tensor(), zeros(), ... to make tensors. */
  constructor(be: TensorBackend, v: unknown) {
    created?.push(this);
    const m = be.kernels.meta(v);
    this.shape = m.shape;
    this.dtype = m.dtype;
    this.size = size(m.shape);
    this.cell = new Cell(v, be, Math.ceil(this.size * bytesPerElement(m.dtype)));
    finalizer.register(this, this.cell, this.cell);
  }

  get rank(): number { return this.shape.length; }
  get backend(): TensorBackend { return this.cell.be; }
  get disposed(): boolean { return this.cell.v === null; }

  /** @internal The backend value; throws naming `op` when the tensor was freed. */
  value(op = 'tensor'): any {
    const v = this.cell.v;
    if (v === null) throw new OpError(op, `a ${describe(this)} tensor was used after it was disposed`);
    return v;
  }
  /** @internal */
  retain(): this { this.refs++; return this; }
  /** @internal */
  release(): void {
    if (--this.refs > 0) return;
    finalizer.unregister(this.cell);
    this.cell.drop();
  }

  /** Gives back the owner's reference; the memory is freed once no pending backward pass needs the value. Idempotent. */
  dispose(): void {
    if (!this.owned) return;
    this.owned = false;
    this.release();
  }

  /** Reads the values back (waits for the device). f16 comes back as f32; i32 as an Int32Array. */
  async data(): Promise<Float32Array | Int32Array | Float64Array> {
    return this.backend.download(this.value('data'));
  }
  /** The value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new OpError('item', `a ${describe(this)} tensor has ${this.size} elements, not 1`);
    return (await this.data())[0]!;
  }
  /** The values as a plain array. */
  async array(): Promise<number[]> { return Array.from(await this.data()); }
  toString(): string { return `Tensor(${describe(this)})`; }
}

export const describe = (m: Meta): string => `${m.dtype}${fmt(m.shape)}`;

export function wrap(be: TensorBackend, v: unknown): Tensor { return new Tensor(be, v); }

function backendOf(op: string, inputs: readonly Tensor[]): TensorBackend {
  const be = inputs.length ? inputs[0]!.backend : currentBackend();
  for (const t of inputs) {
    if (!(t instanceof Tensor)) throw new OpError(op, `expected Tensors, got ${t === null ? 'null' : typeof t}${typeof t === 'object' && t ? ` (${(t as object).constructor?.name})` : ''}`);
    if (t.backend !== be) throw new OpError(op, `inputs live on different backends (${be.name} and ${t.backend.name}); move one with toBackend()`);
  }
  return be;
}

// ---- what each pullback reads (beyond shapes) ----
type Keeps = { inputs: readonly number[]; outputs: readonly number[] };
const ALL = { inputs: [0, 1, 2, 3, 4, 5], outputs: [0, 1, 2, 3] } as const;
const NONE: Keeps = { inputs: [], outputs: [] };
/** Which inputs and outputs an op's pullback reads values of; the rest are used for their shapes only. */
function keepsOf(name: OpName, attrs: any): Keeps {
  switch (name) {
    case 'unary': return UNARY_SAVES[attrs.fn as UnaryFn] === 'y' ? { inputs: [], outputs: [0] } : UNARY_SAVES[attrs.fn as UnaryFn] === 'x' ? { inputs: [0], outputs: [] } : NONE;
    case 'binary': return attrs.fn === 'add' || attrs.fn === 'sub' ? NONE : { inputs: [0, 1], outputs: [0] };
    case 'where': return { inputs: [0], outputs: [] };
    case 'broadcastTo': case 'cast': case 'sum': case 'permute': case 'slice': case 'pad': case 'concat': return NONE;
    case 'max': return { inputs: [0], outputs: [0] };
    case 'logsumexp': return { inputs: [0], outputs: [0] };
    case 'matmul': return { inputs: [0, 1], outputs: attrs.activation === 'relu' ? [0] : attrs.activation === 'gelu' ? [1] : [] };
    case 'softmax': case 'logSoftmax': return { inputs: [], outputs: [0] };
    case 'softmaxCrossEntropy': return { inputs: [0, 1], outputs: [1] };
    case 'layerNorm': return { inputs: [0, 1], outputs: [1, 2] };
    case 'conv2d': return { inputs: [0, 1], outputs: [] };
    case 'maxPool2d': return { inputs: [], outputs: [1] };
    case 'gather': return { inputs: [1], outputs: [] };
    default: return ALL;
  }
}

/** One recorded op: what its pullback needs to turn output cotangents into input cotangents. */
interface OpNode {
  name: OpName | 'reshape';
  inputs: readonly Tensor[];
  outputs: readonly Tensor[];
  attrs: any;
  /** Tensors this node holds a reference to until it runs. */
  kept: Tensor[];
}
/**
 * A recorded call whose backward is a closure (a generated pullback, a custom rule, a checkpoint). `leaves`: the
 * watched leaves it reads that no node recorded in the forward pass accounts for (a custom rule's arguments, what a
 * checkpoint recomputes from), so that the gradient-final count holds them until the closure has run.
 */
interface CallNode { pb: () => void; leaves?: readonly Tensor[] }
type Node = OpNode | CallNode;

/** Called once per watched leaf, as soon as its gradient is final (see Session.onGradFinal). */
export type GradFinalHook = (leaf: Tensor, grad: Tensor) => void;
/**
 * Called with each block of rows of a weight gradient computed in blocks (see Session.onGradPart): `part` holds the
 * elements from `offset` on (row-major) of the gradient, and they are final.
 */
export type GradPartHook = (leaf: Tensor, part: Tensor, offset: number) => void;

export class Session {
  static last = 0;
  readonly id = ++Session.last;
  /** Cotangents by tensor; a leaf's stays until the session ends. */
  readonly cot = new Map<Tensor, Tensor>();
  /** Where ops are recorded (a generated pullback's own list, or the eager tape); null: not recording. */
  record: Node[] | null = null;

  /** The leaves being differentiated (their cotangents are the gradients the caller gets). */
  private readonly leaves = new Set<Tensor>();

  /** Marks a leaf as differentiated in this session. */
  watch(t: Tensor): void { t.active = this.id; this.leaves.add(t); }
  isActive(t: Tensor): boolean { return t.active === this.id; }

  // ---- the gradient-final hook ----
  //
  // A leaf's gradient is final once every recorded node that reads it has run its pullback: nothing else adds to a
  // leaf's cotangent. So each watched leaf counts the recorded nodes that take it as an input (with a hook set), the
  // backward pass counts them down, and at zero the hook gets the leaf and its gradient. With generated code this is
  // the transformer's own schedule: a frame records the pullbacks of a marked function in the order of the
  // statements the transformer emitted, and the backward pass runs them in reverse, so a leaf's count reaches zero
  // right after the adjoint statement of its first use in the program. That is the point where generated code
  // would call the hook; running it here gives the same moment for generated code, custom rules, checkpoints and
  // the eager tape alike, without a second code path. A checkpoint records nothing in the forward pass and the
  // nodes of its recomputation only during the backward one; it declares the leaves it reads (CallNode.leaves) so
  // that their count cannot reach zero before it has run. Without a hook nothing is counted.

  /** Recorded nodes still to run that read each watched leaf not yet reported (null: no hook). */
  private uses: Map<Tensor, number> | null = null;
  private hook: GradFinalHook | null = null;
  /** Whether a gradient-final hook is set (a checkpoint then notes which leaves its forward reads). */
  get countsUses(): boolean { return this.uses !== null; }

  /**
   * Calls `hook(leaf, grad)` for each watched leaf as soon as its gradient is final, during the backward pass; a
   * leaf that nothing read is reported by finishGradFinal(). `grad` is the tensor the gradient tree will hold (a
   * zero-filled one when no cotangent arrived): the hook may read it but not dispose it. Set before the forward pass.
   */
  onGradFinal(hook: GradFinalHook): void {
    this.hook = hook;
    this.uses = new Map([...this.leaves].map((t) => [t, 0]));
  }
  /** @internal A node that reads `ts` was recorded: counts the watched leaves among them, and returns those. */
  countUses(ts: Iterable<Tensor>): Tensor[] {
    const u = this.uses, counted: Tensor[] = [];
    if (!u) return counted;
    for (const t of ts) {
      const n = u.get(t);
      if (n !== undefined) { u.set(t, n + 1); counted.push(t); }
    }
    return counted;
  }
  /** A node that read `ts` has run: a leaf no remaining node reads has its final gradient. */
  private usesDone(ts: readonly Tensor[] | undefined): void {
    const u = this.uses;
    if (!u || !ts) return;
    for (const t of ts) {
      const n = u.get(t);
      if (n === undefined) continue;
      if (n > 1) u.set(t, n - 1); else this.final(t);
    }
  }
  private final(t: Tensor): void {
    this.uses!.delete(t);
    let g = this.cot.get(t);
    if (!g) this.set(t, (g = constant(t.backend, t.shape, 0))); // what gradientTree would make
    this.hook!(t, g);
  }
  // ---- gradients in blocks of rows ----
  //
  // The last gradient of a backward pass is typically the first layer's weight gradient, W̄ = xᵀ z̄, and it is often
  // the largest one: whoever waits for it (a data-parallel all-reduce) waits for all of it, after the backward pass.
  // Rows k0..k1 of W̄ need only columns k0..k1 of x, so W̄ can be computed in blocks of rows, and each block is final
  // the moment it is computed when the matmul is the last node reading W (and no cotangent reached W before it).
  // For the leaves asked for, the engine then computes the gradient block by block and reports each block; the
  // gradient-final hook still gets the whole gradient (the blocks concatenated) after the node, as before.

  private partHook: GradPartHook | null = null;
  private splitRows: ReadonlyMap<Tensor, number> | null = null;

  /**
   * For each leaf of `rows` (a 2-D f32 weight [K, N]): when its gradient is completed by one matmul in which it is
   * the untransposed right operand, computes that gradient in blocks of `rows.get(leaf)` rows and calls
   * `hook(leaf, block, offset)` with each as soon as it is computed; otherwise the gradient is computed whole and only
   * the gradient-final hook sees it. Needs onGradFinal (which counts the uses that tell when a gradient is final).
   */
  onGradPart(hook: GradPartHook, rows: ReadonlyMap<Tensor, number>): void {
    if (!this.uses) throw new Error('onGradPart needs onGradFinal first (it counts the uses that tell when a gradient is final)');
    this.partHook = hook;
    this.splitRows = rows;
  }
  /** Rows per block if this matmul node completes the gradient of a leaf asked for in blocks, else 0. */
  private rowsOf(n: OpNode, needs: readonly boolean[]): number {
    const w = n.inputs[1]!, rows = this.splitRows?.get(w);
    if (!rows || !needs[1] || n.attrs.transB || w.rank !== 2 || w.dtype !== 'f32' || n.inputs[0]!.dtype !== 'f32' || rows >= w.shape[0]!) return 0;
    // Final right after this node: its last reader, no cotangent before it, and read once here (not as a, nor as bias).
    if (this.uses!.get(w) !== 1 || this.cot.has(w) || n.inputs.indexOf(w) !== 1 || n.inputs.lastIndexOf(w) !== 1) return 0;
    return rows;
  }

  /** After the backward pass: reports the leaves still counted (read by no recorded node), in the order watched. */
  finishGradFinal(): void {
    if (this.uses) for (const t of [...this.uses.keys()]) this.final(t);
  }

  private set(t: Tensor, g: Tensor | undefined): void {
    const prev = this.cot.get(t);
    if (this.leaves.has(t)) stats.gradBytes += (g?.cell.bytes ?? 0) - (prev?.cell.bytes ?? 0);
    if (g) this.cot.set(t, g); else this.cot.delete(t);
  }

  /** Adds `g` (whose reference passes to the session) to the cotangent of `t`. */
  accumulate(t: Tensor, g: Tensor): void {
    const prev = this.cot.get(t);
    if (!prev) { this.set(t, g); return; }
    const k = g.backend.kernels;
    let v: unknown;
    if (g.dtype === 'f16') {
      // f16 is a storage format: add in f32, store the sum as f16 again.
      const [a] = run(k, 'cast', [prev.value('grad')], { dtype: 'f32' }), [b] = run(k, 'cast', [g.value('grad')], { dtype: 'f32' });
      const [s32] = run(k, 'binary', [a, b], { fn: 'add' });
      [v] = run(k, 'cast', [s32], { dtype: 'f16' });
      for (const x of [a, b, s32]) g.backend.free(x);
    } else {
      [v] = run(k, 'binary', [prev.value('grad'), g.value('grad')], { fn: 'add' });
    }
    const sum = wrap(g.backend, v);
    this.set(t, sum);
    prev.release(); g.release();
  }
  /** Removes and returns the cotangent of t (the caller owns it). */
  take(t: Tensor): Tensor | undefined {
    const g = this.cot.get(t);
    if (g) this.set(t, undefined);
    return g;
  }

  /** Runs recorded nodes backwards, then drops them. */
  backward(nodes: Node[]): void {
    for (let i = nodes.length - 1; i >= 0; i--) {
      const n = nodes[i]!;
      nodes.length = i; // drop the node (and what it keeps) as soon as it has run
      if ('pb' in n) n.pb(); else this.runNode(n);
      if (this.uses) this.usesDone('pb' in n ? n.leaves : n.inputs);
    }
  }

  private runNode(n: OpNode): void {
    const cots = n.outputs.map((o) => this.take(o) ?? null);
    const blocks: Tensor[] = []; // of a gradient computed in rows: reported as they come, owned here until the node has run
    try {
      if (cots[0] === null) return; // no cotangent reached this op: nothing flows to its inputs
      const needs = n.inputs.map((t) => this.isActive(t) && t.dtype !== 'i32');
      if (!needs.some(Boolean)) return;
      const be = n.outputs[0]!.backend;
      const created: unknown[] = [];
      const base = execOf(be.kernels);
      const x: Exec<unknown> = {
        ...base,
        op: (name, ins, attrs) => { const o = base.op(name, ins, attrs); created.push(...o); return o; },
        reshape: (t, s) => { const o = base.reshape(t, s); created.push(o); return o; },
        full: (s, v, d) => { const o = base.full(s, v, d); created.push(o); return o; },
      };
      const used = new Set<unknown>();
      let grads: (unknown | null)[];
      if (n.name === 'reshape') {
        grads = [x.reshape(cots[0]!.value('reshape backward'), n.inputs[0]!.shape)];
      } else {
        const rule = ops[n.name];
        const args: PullbackArgs<unknown, OpName> = {
          inputs: n.inputs.map((t) => t.cell.v ?? metaOnly(t)), outputs: n.outputs.map((t) => t.cell.v ?? metaOnly(t)),
          attrs: n.attrs, cot: cots.map((c) => (c ? c.value(`${n.name} backward`) : null)), needs,
        };
        const rows = n.name === 'matmul' && this.partHook ? this.rowsOf(n, needs) : 0;
        if (rows) {
          const w = n.inputs[1]!, cols = w.shape[1]!, hook = this.partHook!;
          grads = matmulPullbackInRows(x, args as PullbackArgs<unknown, 'matmul'>, rows, (v, row) => {
            used.add(v);
            blocks.push(wrap(be, v));
            hook(w, blocks[blocks.length - 1]!, row * cols);
          });
        } else grads = (rule.pullback as any)(x, args);
      }
      // Wrap what flows to the inputs; a pullback may pass a cotangent straight through (add), possibly twice.
      const known = new Map<unknown, Tensor>();
      cots.forEach((c) => c && known.set(c.cell.v, c));
      grads.forEach((g, i) => {
        if (g === null || g === undefined || !needs[i]) return;
        let t = known.get(g);
        if (t) t.retain();
        else { t = wrap(be, g); known.set(g, t); }
        used.add(g);
        this.accumulate(n.inputs[i]!, t);
      });
      for (const v of created) if (!used.has(v)) be.free(v);
    } finally {
      for (const t of blocks) t.release();
      for (const c of cots) c?.release();
      for (const t of n.kept) t.release();
      n.kept.length = 0;
    }
  }

  /** Frees every cotangent still held (those not handed to the caller). */
  end(): void {
    for (const [t, g] of [...this.cot]) { this.set(t, undefined); g.release(); }
  }
}

/** A stand-in for a value a pullback does not read: its shape and dtype (the only things it may ask for). */
function metaOnly(t: Tensor): Meta { return { shape: t.shape, dtype: t.dtype }; }

let session: Session | null = null;
export function currentSession(): Session | null { return session; }
/** Runs fn with `s` as the current session (null: none) and `record` as where ops go. */
export function within<R>(s: Session | null, record: Node[] | null, fn: () => R): R {
  const prev = session, prevRecord = s?.record ?? null;
  session = s;
  if (s) s.record = record;
  try { return fn(); } finally {
    if (s) s.record = prevRecord;
    session = prev;
  }
}
export type { Node as RecordedOp, OpNode, CallNode };

/** Records an op on the current session if one of its inputs is active there. */
function record(name: OpNode['name'], inputs: readonly Tensor[], outputs: readonly Tensor[], attrs: unknown): void {
  const s = session;
  if (!s?.record) return;
  if (!inputs.some((t) => s.isActive(t))) return;
  if (name !== 'reshape' && !ops[name].pullback) return;
  // Comparisons are piecewise constant: their masks carry no gradient, so they are not recorded.
  if (name === 'binary' && ['lt', 'le', 'gt', 'ge', 'eq', 'ne'].includes((attrs as { fn: string }).fn)) return;
  const keeps = name === 'reshape' ? NONE : keepsOf(name, attrs);
  const kept = [...keeps.inputs.map((i) => inputs[i]), ...keeps.outputs.map((i) => outputs[i])]
    .filter((t): t is Tensor => t !== undefined).map((t) => t.retain());
  for (const o of outputs) if (o.dtype !== 'i32') o.active = s.id;
  if (s.countsUses) s.countUses(inputs);
  s.record.push({ name, inputs, outputs, attrs, kept });
}

/** When set, every op's inputs are added (the leaves a checkpoint's unrecorded forward reads). */
let reads: Set<Tensor> | null = null;
/** Runs fn and returns what it returned with every tensor an op read meanwhile. */
export function readsOf<R>(fn: () => R): { result: R; read: Set<Tensor> } {
  const prev = reads, read = new Set<Tensor>();
  reads = read;
  try { return { result: fn(), read }; } finally {
    reads = prev;
    if (prev) for (const t of read) prev.add(t);
  }
}

/** Runs one op of the op table on the inputs' backend (shapes checked), recording it for reverse mode. */
export function prim<K extends OpName>(name: K, inputs: readonly Tensor[], attrs: OpAttrs[K]): Tensor[] {
  if (reads) for (const t of inputs) reads.add(t);
  const be = backendOf(name, inputs);
  const outs = run(be.kernels, name, inputs.map((t) => t.value(name)), attrs).map((v) => wrap(be, v));
  record(name, inputs, outs, attrs);
  return outs;
}

/** A new shape for the same values: free (the storage is shared), and differentiable. */
export function reshapeTensor(x: Tensor, shape: Shape): Tensor {
  reads?.add(x);
  const be = backendOf('reshape', [x]);
  const out = wrap(be, be.kernels.reshape(x.value('reshape'), shape));
  record('reshape', [x], [out], undefined);
  return out;
}

/** The same values, never active: no gradient flows through (target networks, truncated backprop). */
export function detach(x: Tensor): Tensor {
  const be = backendOf('stopGradient', [x]);
  return wrap(be, be.kernels.reshape(x.value('stopGradient'), x.shape));
}

/** A constant on a backend (not recorded). */
export function constant(be: TensorBackend, shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
  return wrap(be, be.kernels.full(shape, value, dtype));
}

export function upload(data: ArrayLike<number>, shape: Shape, dtype: DType, be: TensorBackend = currentBackend()): Tensor {
  if (data.length !== size(shape)) throw new OpError('tensor', `${data.length} values do not fill shape ${fmt(shape)}`);
  return wrap(be, be.upload(data, shape, dtype));
}
