// SPDX-License-Identifier: MIT
// A fork-join pool of worker threads that run kernel exports over one shared WebAssembly.Memory.
// The caller stays synchronous: it posts one job per worker, runs its own share, then blocks on
// Atomics.wait until every worker has finished (allowed on Node's main thread; in a browser this
// needs a cross-origin-isolated page and a worker as the caller, which is not wired up yet).
import type { Worker } from 'node:worker_threads';

/** Exports a job may name (index into this list travels in the job slot). */
export const JOB_EXPORTS = ['gemm', 'conv2dForward', 'conv2dBackwardInput', 'conv2dBackwardFilter'] as const;
export type JobExport = (typeof JOB_EXPORTS)[number];
export const MAX_THREADS = 64;
/** Float64 words per job slot: export index, argc, up to 30 arguments. */
export const SLOT_F64 = 32;
/** Bytes of control words the pool needs in linear memory. */
export const CTRL_BYTES = 4 * (1 + 2 * MAX_THREADS);

export interface Job { fn: JobExport; args: number[] }

export class ThreadPool {
  private readonly workers: Worker[] = [];
  private readonly words: Int32Array;
  private readonly slots: Float64Array[] = [];
  private readonly seqs: number[] = [];

  private constructor(memory: WebAssembly.Memory, ctrl: number, slots: number[]) {
    this.words = new Int32Array(memory.buffer, ctrl, 1 + 2 * MAX_THREADS);
    for (const s of slots) this.slots.push(new Float64Array(memory.buffer, s, SLOT_F64));
  }

  /** Starts `count` workers over `memory` (which must be shared); resolves once all have instantiated. */
  static async start(module: WebAssembly.Module, memory: WebAssembly.Memory, ctrl: number, slots: number[]): Promise<ThreadPool> {
    if (slots.length > MAX_THREADS) throw new Error(`ThreadPool: at most ${MAX_THREADS} worker threads, asked for ${slots.length}`);
    const pool = new ThreadPool(memory, ctrl, slots);
    const url = new URL('./thread-worker.js', import.meta.url);
    // Loaded here, not at the top: a browser bundle of pullback must not import Node built-ins to load.
    const { Worker } = await import('node:worker_threads');
    await Promise.all(slots.map((slot, id) => new Promise<void>((resolve, reject) => {
      const w = new Worker(url, { workerData: { module, memory, ctrl, slot, id } });
      // unref only once ready: an unref'd worker would let Node exit while we await it
      w.once('message', () => { w.unref(); resolve(); });
      w.once('error', reject);
      pool.workers.push(w);
      pool.seqs.push(0);
    })));
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
      Atomics.wait(this.words, 0, done);
    }
    if (ownError) throw ownError;
    const failed = jobs.map((_, i) => i).filter((i) => Atomics.load(this.words, 1 + MAX_THREADS + i) !== 0);
    if (failed.length) throw new Error(`kernel worker thread(s) ${failed.join(', ')} failed running ${jobs.map((j) => j.fn).join(', ')} (see stderr)`);
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    this.workers.forEach((_, i) => { Atomics.store(this.words, 1 + i, -1); Atomics.notify(this.words, 1 + i); });
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
