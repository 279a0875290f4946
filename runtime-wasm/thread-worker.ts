// SPDX-License-Identifier: MIT
// Entry point of one kernel worker thread (Node worker_threads). It instantiates the shared-memory
// kernel build over the pool's WebAssembly.Memory, then loops: sleep on its sequence word, run
// the export named in its job slot with the job's arguments, count itself done, wake the caller.
// Protocol (Int32 words at `ctrl`, see threads.ts): word 1 + id is worker id's sequence number
// (negative: exit); word 0 counts finished jobs. Job slot (Float64 at `slot`): [exportIndex,
// argc, args...]. Errors are reported through word 1 + MAX_THREADS + id (1 = failed) and logged.
import { parentPort, workerData } from 'node:worker_threads';
import { JOB_EXPORTS, MAX_THREADS, SLOT_F64 } from './threads.js';

interface Init { module: WebAssembly.Module; memory: WebAssembly.Memory; ctrl: number; slot: number; id: number }

const { module, memory, ctrl, slot, id } = workerData as Init;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const exports = instance.exports as unknown as Record<string, (...args: number[]) => unknown>;
const words = new Int32Array(memory.buffer, ctrl, 1 + 2 * MAX_THREADS);
const job = new Float64Array(memory.buffer, slot, SLOT_F64);
let seq = 0;
parentPort?.postMessage('ready');
for (;;) {
  Atomics.wait(words, 1 + id, seq);
  const next = Atomics.load(words, 1 + id);
  if (next < 0) break;
  if (next === seq) continue;
  seq = next;
  try {
    const fn = exports[JOB_EXPORTS[job[0]!]!]!;
    fn(...Array.from(job.subarray(2, 2 + job[1]!)));
    Atomics.store(words, 1 + MAX_THREADS + id, 0);
  } catch (e) {
    Atomics.store(words, 1 + MAX_THREADS + id, 1);
    console.error(`pullback kernel worker ${id}:`, e);
  }
  Atomics.add(words, 0, 1);
  Atomics.notify(words, 0);
}
