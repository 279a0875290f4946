// SPDX-License-Identifier: MIT
// A fork-join pool of worker threads that run kernel exports over one shared WebAssembly.Memory: worker_threads in
// Node, Web Workers in a cross-origin-isolated page (the only kind of page that may share memory between threads).
// The caller stays synchronous: it posts one job per worker, runs its own share, then waits until every worker has
// finished, blocking in Atomics.wait where the thread may block (Node, a Web Worker) and spinning on the done
// counter where it may not (a page's main thread, which is as busy during a synchronous kernel either way).
import { NODE_WORKER_SOURCE, WEB_WORKER_SOURCE, type WorkerInit } from './thread-worker.js';

/** Exports a job may name (index into this list travels in the job slot). */
export const JOB_EXPORTS = ['gemm', 'conv2dForward', 'conv2dBackwardInput', 'conv2dBackwardFilter'] as const;
export type JobExport = (typeof JOB_EXPORTS)[number];
export const MAX_THREADS = 64;
/** Float64 words per job slot: export index, argc, up to 30 arguments. */
export const SLOT_F64 = 32;
/** Bytes of control words the pool needs in linear memory. */
export const CTRL_BYTES = 4 * (1 + 2 * MAX_THREADS);

export interface Job { fn: JobExport; args: number[] }

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/**
 * Why worker threads cannot share a memory here, or null when they can: only a browser page (or worker) that is not
 * cross-origin isolated, or has no Web Workers, is refused.
 */
export function whyNoThreads(): string | null {
  if (isNode) return null;
  const g = globalThis as { crossOriginIsolated?: boolean; Worker?: unknown };
  if (g.crossOriginIsolated !== true || typeof SharedArrayBuffer === 'undefined') {
    return 'this page is not cross-origin isolated, so it cannot share memory between threads (serve it with the headers ' +
      'Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)';
  }
  if (typeof g.Worker !== 'function') return 'this context has no Web Workers';
  return null;
}

/** A started worker, whichever kind. */
interface Thread { terminate(): unknown }

/** Starts one worker running thread-worker.ts's workerMain over `init`; resolves once it has instantiated the kernels. */
async function startThread(init: WorkerInit): Promise<Thread> {
  if (isNode) {
    // Loaded here, not at the top: a browser bundle of pullback must not import Node built-ins to load.
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(NODE_WORKER_SOURCE, { eval: true, workerData: init });
    await new Promise<void>((resolve, reject) => {
      // unref only once ready: an unref'd worker would let Node exit while we await it
      w.once('message', () => { w.unref(); resolve(); });
      w.once('error', reject);
    });
    return w;
  }
  // A Blob URL, so that a bundled page needs no separate worker file (a cross-origin-isolated page may start one).
  const url = URL.createObjectURL(new Blob([WEB_WORKER_SOURCE], { type: 'text/javascript' }));
  const w = new Worker(url, { name: `pullback kernel worker ${init.id}` });
  try {
    await new Promise<void>((resolve, reject) => {
      w.onmessage = () => resolve();
      w.onerror = (e) => reject(new Error(`pullback: kernel worker ${init.id} failed to start: ${e.message}`));
      w.postMessage(init);
    });
  } finally {
    URL.revokeObjectURL(url);
    w.onmessage = null;
    w.onerror = null;
  }
  return w;
}

/** Whether this thread may block in Atomics.wait: false on a browser page's main thread, where it throws. */
function mayBlock(words: Int32Array): boolean {
  try {
    Atomics.wait(words, 0, Atomics.load(words, 0) + 1, 0); // a value that is not there: returns at once where allowed
    return true;
  } catch (e) {
    if (e instanceof TypeError) return false;
    throw e;
  }
}

export class ThreadPool {
  private readonly workers: Thread[] = [];
  private readonly words: Int32Array;
  private readonly slots: Float64Array[] = [];
  private readonly seqs: number[] = [];
  private readonly blocking: boolean;

  private constructor(memory: WebAssembly.Memory, ctrl: number, slots: number[]) {
    this.words = new Int32Array(memory.buffer, ctrl, 1 + 2 * MAX_THREADS);
    for (const s of slots) this.slots.push(new Float64Array(memory.buffer, s, SLOT_F64));
    this.blocking = mayBlock(this.words);
  }

  /** Starts `count` workers over `memory` (which must be shared); resolves once all have instantiated. */
  static async start(module: WebAssembly.Module, memory: WebAssembly.Memory, ctrl: number, slots: number[]): Promise<ThreadPool> {
    if (slots.length > MAX_THREADS) throw new Error(`ThreadPool: at most ${MAX_THREADS} worker threads, asked for ${slots.length}`);
    const why = whyNoThreads();
    if (why) throw new Error(`ThreadPool: ${why}`);
    const pool = new ThreadPool(memory, ctrl, slots);
    const started = await Promise.allSettled(slots.map((slot, id) =>
      startThread({ module, memory, ctrl, slot, id, exports: JOB_EXPORTS, maxThreads: MAX_THREADS, slotF64: SLOT_F64 })));
    for (const r of started) if (r.status === 'fulfilled') { pool.workers.push(r.value); pool.seqs.push(0); }
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) {
      await pool.close();
      throw failed.reason;
    }
    return pool;
  }

  get size(): number { return this.workers.length; }

  /**
   * Runs jobs[i] on worker i (jobs.length <= size) while the caller runs `own`, then waits for all.
   * Throws if any worker's job threw.
   */
  run(jobs: Job[], own: () => void): void {
    const start = Atomics.load(this.words, 0);
    jobs.forEach((job, i) => {
      const slot = this.slots[i]!;
      slot[0] = JOB_EXPORTS.indexOf(job.fn);
      slot[1] = job.args.length;
      slot.set(job.args, 2);
      this.seqs[i]! += 1;
      Atomics.store(this.words, 1 + i, this.seqs[i]!);
      Atomics.notify(this.words, 1 + i);
    });
    let ownError: unknown = null;
    try { own(); } catch (e) { ownError = e; }
    for (;;) {
      const done = Atomics.load(this.words, 0);
      if (done - start >= jobs.length) break;
      if (this.blocking) Atomics.wait(this.words, 0, done);
    }
    if (ownError) throw ownError;
    const failed = jobs.map((_, i) => i).filter((i) => Atomics.load(this.words, 1 + MAX_THREADS + i) !== 0);
    if (failed.length) throw new Error(`kernel worker thread(s) ${failed.join(', ')} failed running ${jobs.map((j) => j.fn).join(', ')} (their errors are on stderr, or in a browser's console)`);
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    this.workers.forEach((_, i) => { Atomics.store(this.words, 1 + i, -1); Atomics.notify(this.words, 1 + i); });
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
