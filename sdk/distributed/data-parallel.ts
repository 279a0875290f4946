// SPDX-License-Identifier: MIT
// Data-parallel training over a Communicator. Every rank runs the same script (SPMD, as torchrun does): each takes
// its contiguous slice of the global batch, runs reverse mode on it, and the gradients are averaged across ranks
// before one optimizer step that every rank applies, so the parameters stay bitwise identical.
//
// Overlap. The backward pass reports each parameter's gradient the moment it is final (the gradient-final hook,
// Session.onGradFinal: the transformer's generated pullbacks run in reverse program order, so the last layer's
// gradients are final first). The hook copies the gradient into a staging bucket of `bucketBytes`; when a bucket
// is full its all-reduce starts on the communicator's progress thread while this thread goes on with the backward
// pass. Buckets are started in one order on every rank (a collective is matched by its place in the sequence):
// the first step packs them in reverse tree order, then rank 0's observed order of finality is broadcast and the
// buckets are rebuilt from it, as PyTorch's DistributedDataParallel does; with it go the times of finality, from
// which the gradients final at the very end get a small last bucket of their own (tailStart), since the last
// bucket's all-reduce is the part of the communication that the backward pass cannot hide. For the same reason a
// large weight whose gradient is final at the very end (a first layer's: in an MLP on images most of the parameters)
// is reduced in blocks of rows: the backward pass computes its gradient block by block (Session.onGradPart) and each
// block's all-reduce starts while the next one is computed, so that only the last block waits after the backward pass.
//
// WebGPU. A device's values come back asynchronously, and the backward pass only records work that the device does
// later. So on a WebGPU rank the hook starts a read-back of the gradient (the copy is encoded in order, so it holds
// the gradient's value at that point whatever later work does to the buffer) and returns; each read packs its
// gradient into the bucket when it resolves, while the device computes the next ones, and a bucket's all-reduce
// starts once all of its gradients are packed and the buckets before it have started (the same order on every
// rank). The times of finality are then when the reads resolved, and the backward pass, for StepTiming, ends when
// the last one has.
//
// Averaging. With gradReduce 'mean' (for losses with reduction 'mean') rank r's gradient is weighted by
// W·b_r/B (b_r rows of B, W ranks) and the ranks' mean is taken, which is the gradient of the mean loss over the
// whole batch: slices may differ in size by one row. With gradReduce 'sum' (reduction 'sum') the gradients are
// summed: the gradient of the summed loss over the whole batch.
//
// Faults. A rank that throws during a step aborts the communicator with its error, so every other rank's pending
// collective rejects with a CommError naming that rank and the cause (part of the communicator: a rank that dies
// or does not answer within the timeout is reported the same way). The update is applied only once the
// communicator's commit has resolved, which every rank calls when it holds the reduced gradients and the loss. An
// all-reduce could not serve: it does not end at one instant on every rank, so a rank that dies during its last
// messages would leave some ranks updated and others not. A commit resolves on every surviving rank or rejects on
// every rank (a vote in shared memory, see ring.ts): either every surviving rank applies the step or none does.
import type { CpuTensor, WasmBackend } from '../../runtime-wasm/backend.js';
import type { HostTensor } from '../../runtime-gpu/host.js';
import type { Tensor as GpuTensor } from '../../runtime-gpu/runtime.js';
import { Tensor, constant, upload } from '../tensor/engine.js';
import { mapTree, tensorValueAndGrad, tensorsIn } from '../tensor/ad.js';
import { slice } from '../tensor/ops.js';
import type { Optimizer } from '../optim/optimizers.js';
import { CommError, type Communicator, type ReduceOp } from './communicator.js';
import { launch } from './launch.js';

/** Options of {@link dataParallel}. */
export interface DataParallelOptions {
  /** Ranks in all, this one included (the launching thread is rank 0 and starts workers - 1 threads). */
  workers: number;
  /** Size of a gradient bucket, the unit of one all-reduce (default 1 MiB: 262,144 f32 values). A larger parameter gets a bucket of its own. */
  bucketBytes?: number;
  /** Start each bucket's all-reduce during the backward pass as soon as it is full (default true); false: all after it. */
  overlap?: boolean;
  /**
   * With overlap, compute a large weight gradient that becomes final at the very end of the backward pass (a first
   * layer's) in blocks of rows, each reduced while the next is computed (default true). It costs a slice and a
   * matmul per block and a concat: turn it off where that costs more than the communication it hides (measure
   * with bench:dp, e.g. two ranks sharing two CPU cores).
   */
  blockGradients?: boolean;
  /**
   * How the ranks' gradients combine (default 'mean'). 'mean' for a loss with reduction 'mean' (the mean over the
   * batch): the result is the gradient of the mean loss over the whole global batch, also with unequal slices.
   * 'sum' for reduction 'sum': the gradient of the summed loss over the whole batch.
   */
  gradReduce?: 'mean' | 'sum';
  /**
   * Which batch arguments (0 is the first after params) are split across ranks along axis 0. Default: every Tensor
   * of rank ≥ 1. Name them when the loss also takes tensors that every rank needs whole (a mask, a lookup table,
   * class weights): those are passed to every rank as they are.
   */
  batchArgs?: readonly number[];
  /** How long a rank waits for the others before the step fails with a CommError (passed to launch). */
  timeoutMs?: number;
  /** The script the workers run (default: this process's, process.argv[1]), with these Node flags (default process.execArgv). */
  entry?: string | URL;
  execArgv?: string[];
  /** Given to every worker (launchData()). */
  workerData?: unknown;
  /** In rank 0: what a worker posts with worker_threads' parentPort.postMessage (results, metrics), with its rank. */
  onMessage?: (rank: number, message: unknown) => void;
  /** An open communicator to train over instead of launching workers (workers is then its worldSize). */
  comm?: Communicator;
}

/** Where one step's time went, on this rank. */
export interface StepTiming {
  /**
   * Slicing the batch, forward and backward passes (the hook's copies included). On WebGPU until the device has
   * computed every gradient and each has been read back: the end of the backward pass in the fields below.
   */
  computeMs: number;
  /** From the end of the backward pass until every gradient bucket was reduced: communication not hidden. */
  waitMs: number;
  /** The loss all-reduce, the commit and the optimizer update. */
  applyMs: number;
  /** The whole step. */
  totalMs: number;
  /** All-reduces of gradient buckets in this step. */
  buckets: number;
  /** How many of them were started before the backward pass ended. */
  startedDuringBackward: number;
  /** When this rank's backward pass ended, in ms on the clock every thread of the process shares (performance.timeOrigin + performance.now()). */
  backwardEndAt: number;
  /**
   * Each bucket's all-reduce, in the order started, in ms relative to the end of this rank's backward pass (negative:
   * before it): when this thread asked for it, when the communicator's progress thread started it, and when it was done
   * there. Empty when the communicator does not record times (Communicator.recentCalls).
   */
  bucketTimes: { length: number; calledMs: number; startedMs: number; endedMs: number }[];
}

/** What {@link DataParallel.step} returns. */
export interface DataParallelStep {
  /** The loss of the whole global batch: the weighted mean (gradReduce 'mean') or the sum ('sum') of the ranks' losses. */
  loss: number;
  /** The optimizer step's learning rate. */
  lr: number;
  timing: StepTiming;
}

/** A data-parallel trainer: see {@link dataParallel}. */
export interface DataParallel<P> {
  readonly rank: number;
  readonly worldSize: number;
  /** rank === 0: the rank that should print and save. */
  readonly isMain: boolean;
  /** The communicator (for other collectives, e.g. to gather metrics). */
  readonly comm: Communicator;
  /** Copies rank 0's values into every parameter of the tree (in place, on every rank) and returns the tree. */
  broadcast<T = P>(params: T): Promise<T>;
  /**
   * One training step on the global batch: this rank's contiguous slice of every batch Tensor along axis 0 (see batchArgs),
   * gradients reduced across ranks, then optimizer.step on every rank (params updated in place).
   */
  step(params: P, optimizer: Optimizer, ...batch: unknown[]): Promise<DataParallelStep>;
  /** The rows [start, end) of a global batch of `rows` that this rank trains on. */
  sliceOf(rows: number): [number, number];
  /** Ends the communicator (and, on rank 0, the workers). */
  close(): Promise<void>;
}

/**
 * Data-parallel training of `lossFn(params, ...batch)` (a marked function returning a scalar Tensor, as given to
 * valueAndGrad) on `workers` ranks. Every rank runs the same script; the first call launches the workers.
 * Backends: 'cpu', 'reference' and 'webgpu' (each rank inits its own backend: on WebGPU each worker thread has its
 * own GPUDevice, and the gradients come back to shared memory through asynchronous read-backs).
 * @example
 * await init({ backend: 'cpu' });
 * const dp = await dataParallel(lossFn, { workers: 2 });
 * const params = await dp.broadcast(initParams(dp.rank)); // rank 0's values everywhere
 * const opt = adamw({ lr: 1e-3 });
 * for (const [x, y] of data) {
 *   const { loss } = await dp.step(params, opt, x, y); // x, y: the global batch; this rank trains on its slice
 *   if (dp.isMain) console.log(loss);
 * }
 * await dp.close();
 */
export async function dataParallel<P>(lossFn: (params: P, ...batch: any[]) => Tensor, options: DataParallelOptions): Promise<DataParallel<P>> {
  if (typeof lossFn !== 'function') throw new TypeError('dataParallel: lossFn must be a function (params, ...batch) => scalar Tensor');
  if (!options || typeof options !== 'object') throw new TypeError('dataParallel: expected options { workers, ... }');
  const { bucketBytes = 1 << 20, overlap = true, blockGradients = true, gradReduce = 'mean', batchArgs } = options;
  if (typeof blockGradients !== 'boolean') throw new TypeError(`dataParallel: blockGradients must be true or false, got ${String(blockGradients)}`);
  if (batchArgs !== undefined && (!Array.isArray(batchArgs) || !batchArgs.length || !batchArgs.every((i) => Number.isSafeInteger(i) && i >= 0))) {
    throw new RangeError(`dataParallel: batchArgs must list the indices (0 = the first argument after params) of the batch arguments to split, got ${JSON.stringify(batchArgs)}`);
  }
  if (!Number.isSafeInteger(bucketBytes) || bucketBytes < 4) throw new RangeError(`dataParallel: bucketBytes must be an integer ≥ 4, got ${bucketBytes}`);
  if (gradReduce !== 'mean' && gradReduce !== 'sum') throw new RangeError(`dataParallel: gradReduce must be 'mean' or 'sum', got ${String(gradReduce)}`);
  let comm = options.comm;
  if (!comm) {
    const { workers } = options;
    if (!Number.isSafeInteger(workers) || workers < 1) throw new RangeError(`dataParallel: workers must be an integer ≥ 1, got ${workers}`);
    const { entry, execArgv, timeoutMs, workerData, onMessage } = options;
    comm = await launch({ workers, entry, execArgv, timeoutMs, workerData, onMessage });
  }
  return new Trainer<P>(lossFn, comm, Math.max(1, Math.floor(bucketBytes / 4)), overlap, overlap && blockGradients, gradReduce, batchArgs);
}

// ---- host access ----

/**
 * @internal The values of an f32 tensor, synchronously: on the CPU backend a live view of the Wasm memory (valid
 * until the next allocation: copy it at once), on the reference backend its f64 array. These are what a hook running
 * inside the backward pass can read; WebGPU values come back asynchronously only (see readBack).
 */
export function hostValues(t: Tensor, op = 'dataParallel'): Float32Array | Float64Array {
  const v = t.value(op);
  switch (t.backend.name) {
    case 'cpu': return (t.backend.kernels as WasmBackend).cpu.f32((v as CpuTensor).buf);
    case 'reference': return (v as HostTensor).data;
    default:
      throw new Error(`${op}: tensors on the ${t.backend.name} backend cannot be read synchronously`);
  }
}

/** Whether a tensor's values can be read only asynchronously (WebGPU: a copy into a mapped buffer). */
const deferred = (t: Tensor): boolean => t.backend.name === 'webgpu';

/**
 * The values of `t` as they are now, in the order of the device's work: the WebGPU runtime encodes the copy into a
 * staging buffer and submits it before this returns (GpuRuntime.read does so before its first await), so what later
 * work does to the tensor's buffer (a pooled buffer reused for another tensor) cannot change what comes back.
 */
function readBack(t: Tensor): Promise<Float32Array | Int32Array | Float64Array> {
  return t.data();
}

/** Refuses a backend data-parallel training cannot serve, before anything starts. */
function checkBackend(t: Tensor, op: string): void {
  if (deferred(t)) t.value(op);
  else hostValues(t, op);
}

/** A new f32 tensor shaped like `like`, on its backend, holding `src`. */
function fromHost(like: Tensor, src: Float32Array): Tensor {
  if (deferred(like)) return upload(src, like.shape, 'f32', like.backend);
  const t = constant(like.backend, like.shape, 0);
  hostValues(t).set(src);
  return t;
}

/**
 * Writes `src` into `t` in place (its identity, and any view sharing its buffer, kept). On WebGPU the queued work is
 * submitted first, so that work recorded before this call reads the old values and work recorded after it the new.
 */
function writeInPlace(t: Tensor, src: Float32Array): void {
  if (!deferred(t)) { hostValues(t, 'dataParallel.broadcast').set(src); return; }
  const v = t.value('dataParallel.broadcast') as GpuTensor;
  v.rt.flush();
  v.rt.device.queue.writeBuffer(v.buf('dataParallel.broadcast'), 0, src);
}

/** The distinct Tensors of a tree, in tree order (depth first, key order: the optimizers' order). */
function distinctLeaves(tree: unknown): Tensor[] {
  return [...new Set(tensorsIn(tree))];
}

// ---- buckets ----

/**
 * Which bucket and offset each parameter's gradient goes to, and the buckets' staging buffers. A gradient is packed
 * as one unit, or, for a large weight whose gradient is among the last of the backward pass (see `rows`), as several:
 * blocks of rows that the backward pass computes and reports one by one (Session.onGradPart), each opening a bucket
 * of its own so that its all-reduce starts while the next block is computed. A bucket holds whole units.
 */
class Layout {
  /** Parameter index (tree order) -> its first unit; its units follow in order of their rows. */
  readonly first: Int32Array;
  /** Elements per unit of each parameter (its size when it is one unit; the last block may be shorter). */
  readonly unit: Int32Array;
  /** Unit -> bucket, offset in it, and length. */
  readonly unitBucket: number[] = [];
  readonly unitOffset: number[] = [];
  readonly unitLength: number[] = [];
  readonly buffers: Float32Array[] = [];
  /** Units per bucket. */
  readonly counts: number[] = [];
  /** The weights whose gradients come in blocks, and the rows per block (for tensorValueAndGrad's gradParts). */
  readonly rows = new Map<Tensor, number>();
  /**
   * `order`: parameter indices in the order their gradients are packed; `finalMs`, when known (rank 0's first step),
   * when each became final, in ms relative to the end of that backward pass, in the same order. `split`: whether
   * the large weights final at the very end come in blocks (when buckets are reduced during the backward pass).
   */
  constructor(readonly leaves: readonly Tensor[], order: readonly number[], capacity: number, readonly learned: boolean, finalMs?: ArrayLike<number>, split = false) {
    this.first = new Int32Array(leaves.length);
    this.unit = new Int32Array(leaves.length);
    const tail = finalMs ? tailStart(order.map((j) => leaves[j]!.size), finalMs, capacity) : -1;
    if (finalMs && split) {
      // The all-reduce of what becomes final at the very end of the backward pass is what it cannot hide; a large
      // weight among those (a first layer's, often most of the parameters) is reduced in blocks of rows instead.
      const m = order.length, end = finalMs[m - 1]!, near = TAIL_GAP * (end - finalMs[0]!);
      const piece = Math.max(1, Math.floor(capacity * PIECE_SHARE));
      order.forEach((j, k) => {
        const w = leaves[j]!;
        if (w.rank !== 2 || w.size < 2 * piece || finalMs[k]! < end - near) return;
        const [K, N] = w.shape as [number, number];
        const rows = Math.ceil(K / Math.ceil(w.size / piece));
        if (rows < K) { this.rows.set(w, rows); this.unit[j] = rows * N; }
      });
    }
    const sizes: number[] = [];
    let fill = 0;
    order.forEach((j, k) => {
      const n = leaves[j]!.size, blocks = this.rows.has(leaves[j]!);
      if (!blocks) this.unit[j] = n;
      this.first[j] = this.unitBucket.length;
      for (let at = 0; at < n || (n === 0 && at === 0); at += Math.max(1, this.unit[j]!)) {
        const len = Math.min(n - at, this.unit[j]!);
        if (!sizes.length || (fill > 0 && (fill + len > capacity || (at === 0 && k === tail) || blocks))) { sizes.push(0); this.counts.push(0); fill = 0; }
        const b = sizes.length - 1;
        this.unitBucket.push(b); this.unitOffset.push(fill); this.unitLength.push(len);
        fill += len;
        sizes[b] = fill;
        this.counts[b]!++;
        if (n === 0) break;
      }
    });
    // Shared memory: the communicator's progress thread reduces in these buffers directly, with no copies.
    for (const n of sizes) this.buffers.push(new Float32Array(new SharedArrayBuffer(4 * n)));
  }
  same(leaves: readonly Tensor[]): boolean {
    return leaves.length === this.leaves.length && leaves.every((t, i) => t === this.leaves[i]);
  }
  /** The reduced gradient of parameter j (a view of its bucket when it is one unit). */
  gradient(j: number): Float32Array {
    const n = this.leaves[j]!.size, u0 = this.first[j]!;
    const view = (u: number) => this.buffers[this.unitBucket[u]!]!.subarray(this.unitOffset[u]!, this.unitOffset[u]! + this.unitLength[u]!);
    if (this.unit[j] === n) return view(u0);
    const out = new Float32Array(n);
    for (let u = u0, at = 0; at < n; at += this.unitLength[u]!, u++) out.set(view(u), at);
    return out;
  }
}

/** A weight gradient in blocks: about this share of a bucket per block. */
const PIECE_SHARE = 1 / 4;

/** Of the tail gradients' share of a bucket, and of the backward pass a gap in finality must span to be cut at. */
const TAIL_SHARE = 1 / 4, TAIL_GAP = 1 / 20;

/**
 * @internal Where the last bucket should start, or -1 for plain greedy packing: an index into `sizes` and `finalMs`,
 * the sizes of the gradients in the order they are packed and when each became final. The last bucket's
 * all-reduce is the one the backward pass cannot hide, and greedy packing may fill it with gradients that were final
 * long before the end (the whole first block of a transformer, of which only the attention projections are final at
 * the very end). So the last gradients, at most a quarter of a bucket, get a bucket of their own when they became
 * final clearly later than the ones before them: cut at the widest gap in finality times among the possible cuts, if
 * that gap spans at least a twentieth of the backward pass (from the first gradient final to the last). Gradients
 * final together (a layer's weight and bias) stay together: splitting them would only add an all-reduce.
 */
export function tailStart(sizes: ArrayLike<number>, finalMs: ArrayLike<number>, capacity: number): number {
  const m = sizes.length, span = finalMs[m - 1]! - finalMs[0]!;
  let best = -1, widest = 0;
  for (let k = m - 1, n = sizes[k]!; k > 0 && n <= capacity * TAIL_SHARE; n += sizes[--k]!) {
    const gap = finalMs[k]! - finalMs[k - 1]!;
    if (gap > widest) { best = k; widest = gap; }
  }
  return best > 0 && widest >= TAIL_GAP * span ? best : -1;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

class Trainer<P> implements DataParallel<P> {
  readonly rank: number;
  readonly worldSize: number;
  private layout: Layout | null = null;
  private steps = 0;
  /** Set once a step failed: the communicator is aborted and the group cannot go on. */
  private failed: Error | null = null;

  constructor(
    private readonly lossFn: Function, readonly comm: Communicator, private readonly capacity: number,
    private readonly overlap: boolean, private readonly blocks: boolean, private readonly gradReduce: 'mean' | 'sum',
    private readonly batchArgs?: readonly number[],
  ) {
    this.rank = comm.rank;
    this.worldSize = comm.worldSize;
  }

  get isMain(): boolean { return this.rank === 0; }

  sliceOf(rows: number): [number, number] {
    const W = this.worldSize;
    return [Math.floor((this.rank * rows) / W), Math.floor(((this.rank + 1) * rows) / W)];
  }

  async broadcast<T>(params: T): Promise<T> {
    this.usable('broadcast');
    const leaves = distinctLeaves(params);
    for (const t of leaves) if (t.dtype !== 'f32') throw new Error(`dataParallel.broadcast: parameters must be f32, got a ${t.dtype}[${t.shape.join(', ')}] tensor`);
    const buf = new Float32Array(leaves.reduce((n, t) => n + t.size, 0));
    let at = 0;
    for (const t of leaves) { buf.set(deferred(t) ? await readBack(t) : hostValues(t, 'dataParallel.broadcast'), at); at += t.size; }
    await this.collective(() => this.comm.broadcast(buf, 0));
    at = 0;
    for (const t of leaves) { writeInPlace(t, buf.subarray(at, at + t.size)); at += t.size; }
    return params;
  }

  async step(params: P, optimizer: Optimizer, ...batch: unknown[]): Promise<DataParallelStep> {
    this.usable('step');
    const n = ++this.steps;
    try {
      // A mistake here is the same on every rank (one script), but it still ends the group: no rank is left waiting.
      if (!optimizer || typeof optimizer.step !== 'function') throw new TypeError('expected (params, optimizer, ...batch), e.g. dp.step(params, adamw({ lr: 1e-3 }), x, y)');
      const leaves = distinctLeaves(params);
      if (!leaves.length) throw new Error('params holds no Tensor; pass the parameter tree lossFn differentiates');
      for (const t of leaves) {
        if (t.dtype !== 'f32') throw new Error(`parameters must be f32 (optimizers update f32 master weights), got a ${t.dtype}[${t.shape.join(', ')}] tensor`);
        checkBackend(t, 'dataParallel.step'); // refuses a backend the hook cannot read, before anything starts
      }
      return await this.run(params, leaves, optimizer, batch);
    } catch (e) {
      // Some rank failed: this one (tell the others), or another (the communicator says which, and why).
      const err = e instanceof CommError ? e : new Error(`dataParallel: step ${n} failed on rank ${this.rank}: ${message(e)}`, { cause: e });
      if (!(e instanceof CommError)) this.comm.abort(e);
      this.failed = err;
      throw err;
    }
  }

  private async run(params: P, leaves: Tensor[], optimizer: Optimizer, batch: unknown[]): Promise<DataParallelStep> {
    const t0 = performance.now();
    let layout = this.layout;
    if (!layout || !layout.same(leaves)) {
      // First guess: the reverse of the tree order (a model's last layers come last in its tree and finish first).
      layout = this.layout = new Layout(leaves, leaves.map((_, i) => leaves.length - 1 - i), this.capacity, false);
    }
    const index = new Map(leaves.map((t, i) => [t, i]));
    const { args, rows, local, made } = this.split(batch);
    const calls = this.comm.stats(), firstSeq = calls.allReduces + calls.broadcasts + calls.barriers + calls.commits + 1;
    const weight = this.gradReduce === 'mean' ? (local * this.worldSize) / rows : 1;
    const op: ReduceOp = this.gradReduce;
    const gpu = deferred(leaves[0]!); // the leaves share one backend (the forward pass would have refused a mix)

    // The hook: pack each final gradient into its bucket; a full bucket (and every one before it) starts reducing.
    // On WebGPU the hook only starts a read-back of the gradient (captured at that point of the device's work, see
    // readBack) and the backward pass goes on; the gradient is packed when its read resolves, while the device
    // computes the gradients after it. `unfilled` counts each bucket's gradients not yet packed, and start() calls
    // the all-reduces strictly in bucket order, whatever order the reads resolve in: a bucket whose reads are done
    // waits for the buckets before it, so every rank calls them in the same sequence.
    const unfilled = Int32Array.from(layout.counts);
    const reductions: Promise<void>[] = [];
    const reads: Promise<void>[] = [];
    // When each gradient became final, on a clock that leaves out the time spent in this hook (copies, starting
    // all-reduces), so the times describe the backward pass itself, whichever layout and overlap setting it ran with.
    // On WebGPU: when its read-back resolved, i.e. when the device had computed it (the hook runs as the work is
    // recorded, long before the device does it).
    const order: number[] = [], finalAt: number[] = [];
    let hookMs = 0;
    let next = 0, backwardDone = false, startedDuringBackward = 0, ended = false;
    const L = layout;
    const start = (): void => {
      while (!ended && next < unfilled.length && unfilled[next] === 0) {
        const p = this.comm.allReduce(L.buffers[next]!, op);
        p.catch(() => {}); // observed below; a rejection must not count as unhandled meanwhile
        reductions.push(p);
        if (!backwardDone) startedDuringBackward++;
        next++;
      }
    };
    // Packs the values of parameter j from element `from` on: whole units (a gradient, or blocks of its rows).
    const pack = (j: number, src: Float32Array | Float64Array | Int32Array, from: number): void => {
      let done = 0;
      do { // (once for an empty gradient: its unit counts too)
        const u = L.first[j]! + (L.unit[j] ? (from + done) / L.unit[j]! : 0), b = L.unitBucket[u]!, n = L.unitLength[u]!;
        const dst = L.buffers[b]!, at = L.unitOffset[u]!;
        if (weight === 1) dst.set(src.subarray(done, done + n), at);
        else for (let i = 0; i < n; i++) dst[at + i] = src[done + i]! * weight;
        unfilled[b]!--;
        done += n;
      } while (done < src.length);
      if (this.overlap) start();
    };
    // Reads a gradient (or a block of one) and packs it: at once on the CPU, when the read resolves on WebGPU.
    const take = (j: number, t: Tensor, from: number, k: number): void => {
      if (gpu) {
        const read = readBack(t).then((src) => {
          if (k >= 0) finalAt[k] = performance.now();
          if (!ended) pack(j, src, from);
        });
        read.catch(() => {}); // observed below
        reads.push(read);
      } else pack(j, hostValues(t, 'dataParallel.step'), from);
    };
    const inBlocks = new Uint8Array(leaves.length);
    const onGradPart = (leaf: Tensor, part: Tensor, offset: number): void => {
      const j = index.get(leaf);
      if (j === undefined) return;
      const entered = performance.now();
      inBlocks[j] = 1;
      take(j, part, offset, -1);
      hookMs += performance.now() - entered;
    };
    const onGradFinal = (leaf: Tensor, grad: Tensor): void => {
      const j = index.get(leaf);
      if (j === undefined) return;
      const entered = performance.now();
      const k = order.push(j) - 1;
      if (!gpu) finalAt.push(entered - hookMs);
      if (!inBlocks[j]) take(j, grad, 0, k); // else its blocks are packed already
      else if (gpu) finalAt[k] = entered; // (only rank 0's first step uses these, and it has no blocks)
      hookMs += performance.now() - entered;
    };

    let loss: Tensor | undefined, grads: unknown;
    try {
      const gradParts = L.rows.size ? { rows: L.rows, hook: onGradPart } : undefined;
      const r = tensorValueAndGrad(this.lossFn, undefined, [params, ...args], [0], { onGradFinal, gradParts });
      loss = r.value; grads = r.grads[0];
      // On WebGPU the loss is read back after the gradients (in the device's order), and the backward pass ends,
      // for the timings, when the device has computed every gradient and they are all packed.
      const lossRead = gpu ? loss.item() : null;
      lossRead?.catch(() => {});
      await Promise.all(reads);
      backwardDone = true;
      const t1 = performance.now(), backwardEndAt = performance.timeOrigin + t1;
      start();
      if (next !== unfilled.length) throw new Error(`the backward pass reported ${order.length} of ${leaves.length} parameter gradients`);
      // After a first step, every rank packs its buckets in the order in which rank 0's gradients became final, and
      // from when they did (ms before the end of the backward pass: f32 keeps them to well under a microsecond).
      const end = gpu ? t1 : t1 - hookMs;
      const learnt = L.learned ? null : Float32Array.from([...order, ...finalAt.map((t) => t - end)]);
      if (learnt) this.comm.broadcast(learnt, 0).catch(() => {}); // completes before the next call (in order)
      // The loss of the global batch, and a count of the ranks as a check that all took part.
      const lossValue = lossRead ? await lossRead : hostValues(loss, 'dataParallel.step')[0]!;
      const global = Float32Array.of(this.gradReduce === 'mean' ? (lossValue * local) / rows : lossValue, 1);
      const summed = this.comm.allReduce(global, 'sum');
      summed.catch(() => {});
      await Promise.all(reductions);
      const t2 = performance.now();
      await summed;
      if (global[1] !== this.worldSize) throw new Error(`the loss all-reduce counted ${global[1]} ranks, expected ${this.worldSize}`);
      if (learnt) this.relayout(leaves, learnt);
      // Everything this rank needs is here. The update waits for the commit, which resolves on every surviving
      // rank or rejects on every rank: no rank updates its parameters unless all of them do.
      await this.comm.commit();
      // The reduced gradients, as new tensors for the optimizer (which consumes them).
      const reduced = new Map(leaves.map((t, j) => [t, fromHost(t, L.gradient(j))]));
      for (const g of distinctLeaves(grads)) g.dispose();
      grads = mapTree(params, (t) => reduced.get(t)!);
      const { lr } = await optimizer.step(params, grads);
      grads = undefined;
      const t3 = performance.now();
      // The buckets' all-reduces were this step's first calls, numbered from firstSeq.
      const bucketTimes = (this.comm.recentCalls?.() ?? []).filter((c) => c.kind === 'allReduce' && c.seq >= firstSeq && c.seq < firstSeq + unfilled.length)
        .map((c) => ({ length: c.length, calledMs: c.calledAt - backwardEndAt, startedMs: c.startedAt - backwardEndAt, endedMs: c.endedAt - backwardEndAt }));
      return {
        loss: global[0]!, lr,
        timing: { computeMs: t1 - t0, waitMs: t2 - t1, applyMs: t3 - t2, totalMs: t3 - t0, buckets: unfilled.length, startedDuringBackward, backwardEndAt, bucketTimes },
      };
    } finally {
      ended = true; // reads that resolve after a failed step pack and start nothing
      loss?.dispose();
      if (grads) for (const g of distinctLeaves(grads)) g.dispose();
      for (const t of made) t.dispose();
    }
  }

  /** The buckets from rank 0's order of finality and its times (broadcast into `learnt`). */
  private relayout(leaves: Tensor[], learnt: Float32Array): void {
    const m = leaves.length, order = learnt.subarray(0, m), finalMs = learnt.subarray(m);
    if (learnt.length !== 2 * m || new Set(order).size !== m || order.some((j) => !(j >= 0 && j < m)) || finalMs.some((t) => !Number.isFinite(t))) {
      throw new Error('rank 0 sent a bucket order that is not a permutation of the parameters with their times of finality');
    }
    this.layout = new Layout(leaves, Array.from(order), this.capacity, true, finalMs, this.blocks);
  }

  /** This rank's slice of each batch Tensor (rank ≥ 1) along axis 0; other arguments as they are. */
  private split(batch: unknown[]): { args: unknown[]; rows: number; local: number; made: Tensor[] } {
    const made: Tensor[] = [];
    let rows = -1;
    for (const i of this.batchArgs ?? []) {
      const a = batch[i];
      if (!(a instanceof Tensor) || a.rank === 0) throw new Error(`batchArgs names argument ${i}, which is ${a instanceof Tensor ? 'a scalar Tensor' : `not a Tensor (${typeof a})`}; only Tensors with a leading batch axis can be split`);
    }
    const split = (a: unknown, i: number): a is Tensor => a instanceof Tensor && a.rank > 0 && (this.batchArgs?.includes(i) ?? true);
    batch.forEach((a, i) => {
      if (!split(a, i)) return;
      if (rows < 0) rows = a.shape[0]!;
      else if (a.shape[0] !== rows) {
        throw new Error(`batch argument ${i} has ${a.shape[0]} rows but an earlier one ${rows}; every batch Tensor is split along axis 0, so they must agree` +
          (this.batchArgs ? '' : ' (a Tensor every rank needs whole is not a batch argument: list the ones to split in the batchArgs option)'));
      }
    });
    if (rows < 0) throw new Error('the batch holds no Tensor with a leading (batch) axis to split across ranks');
    if (rows < this.worldSize) throw new Error(`a batch of ${rows} rows cannot be split across ${this.worldSize} ranks (each needs at least one)`);
    if (this.worldSize === 1) return { args: batch, rows, local: rows, made };
    const [from, to] = this.sliceOf(rows);
    const args = batch.map((a, i) => {
      if (!split(a, i)) return a;
      const s = slice(a, [from, ...a.shape.slice(1).map(() => 0)], [to - from, ...a.shape.slice(1)]);
      made.push(s);
      return s;
    });
    return { args, rows, local: to - from, made };
  }

  /** A collective outside a step: a failure ends the group as a step's does. */
  private async collective(f: () => Promise<void>): Promise<void> {
    try { await f(); } catch (e) {
      this.failed = e instanceof Error ? e : new Error(String(e));
      throw e;
    }
  }

  private usable(what: string): void {
    if (this.failed) {
      throw new Error(`dataParallel.${what}: an earlier step failed (${message(this.failed)}); the group cannot continue: close it and start a new one`, { cause: this.failed });
    }
  }

  async close(): Promise<void> {
    await this.comm.close();
  }
}
