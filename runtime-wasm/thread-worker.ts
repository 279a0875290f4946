// SPDX-License-Identifier: MIT
// The body of one kernel worker thread, the same in Node (worker_threads) and in a browser (a Web Worker). It
// instantiates the shared-memory kernel build over the pool's WebAssembly.Memory, then loops: sleep on its sequence
// word, run the export named in its job slot with the job's arguments, count itself done, wake the caller.
// Protocol (Int32 words at `ctrl`, see threads.ts): word 1 + id is worker id's sequence number (negative: exit);
// word 0 counts finished jobs. Job slot (Float64 at `slot`): [exportIndex, argc, args...]. Errors are reported
// through word 1 + maxThreads + id (1 = failed) and logged.
//
// workerMain travels to the worker as source text (Function.prototype.toString), so that a bundled page needs no
// separate worker file: it must not refer to anything outside its own body.

/** What the pool sends each worker. */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctrl: number;
  slot: number;
  id: number;
  /** The kernel exports a job may name, by index (threads.ts JOB_EXPORTS). */
  exports: readonly string[];
  maxThreads: number;
  slotF64: number;
}

/** Runs one worker until the pool tells it to exit; `ready` is called once the kernels are instantiated. */
export function workerMain(init: WorkerInit, ready: () => void): void {
  const { module, memory, ctrl, slot, id, maxThreads, slotF64 } = init;
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const fns = init.exports.map((name) => instance.exports[name] as (...args: number[]) => unknown);
  const words = new Int32Array(memory.buffer, ctrl, 1 + 2 * maxThreads);
  const job = new Float64Array(memory.buffer, slot, slotF64);
  let seq = 0;
  ready();
  for (;;) {
    Atomics.wait(words, 1 + id, seq);
    const next = Atomics.load(words, 1 + id);
    if (next < 0) break;
    if (next === seq) continue;
    seq = next;
    try {
      fns[job[0]!]!.apply(null, Array.from(job.subarray(2, 2 + job[1]!)));
      Atomics.store(words, 1 + maxThreads + id, 0);
    } catch (e) {
      Atomics.store(words, 1 + maxThreads + id, 1);
      console.error(`pullback kernel worker ${id}:`, e);
    }
    Atomics.add(words, 0, 1);
    Atomics.notify(words, 0);
  }
}

/** Source of a Node worker_threads worker (run with `eval: true`, the WorkerInit as its workerData). */
export const NODE_WORKER_SOURCE =
  `const { parentPort, workerData } = require('node:worker_threads');\n(${workerMain.toString()})(workerData, () => parentPort.postMessage('ready'));\n`;

/** Source of a Web Worker (a classic script from a Blob URL); its first message is the WorkerInit. */
export const WEB_WORKER_SOURCE =
  `self.onmessage = (e) => { self.onmessage = null; (${workerMain.toString()})(e.data, () => self.postMessage('ready')); };\n`;
