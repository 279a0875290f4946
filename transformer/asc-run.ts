// SPDX-License-Identifier: MIT
// Worker thread of transformer/wasm.ts that runs asc. asc's API is asynchronous and the transformer's entry
// points (the tsc plugin above all) are not, so the transformer posts a job and blocks on `signal` until this
// thread has answered on `port`. One worker serves every file of a build: loading asc and binaryen and warming
// them up took about as long as compiling a file's module (a child process per file paid it every time).
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';

export interface AscJob { input: string; output: string; flags: string[] }
export interface AscAnswer { ok: boolean; log: string }

const { port, signal } = workerData as { port: MessagePort; signal: Int32Array };
const specifier = 'assemblyscript/asc';
type Asc = { main(argv: string[], opts: object): Promise<{ error: Error | null }> };
// A failure to load asc is answered like a failed compilation: the waiting thread must always be woken.
const asc = await import(specifier).then((m: { default: Asc }) => m.default, (e: Error) => e);

parentPort!.on('message', async (job: AscJob) => {
  let log = '';
  const sink = { write: (t: string) => { log += t; return true; } };
  let answer: AscAnswer;
  try {
    if (asc instanceof Error) throw asc;
    const { error } = await asc.main([job.input, ...job.flags, '-o', job.output], { stdout: sink, stderr: sink });
    answer = { ok: !error, log: error ? `${log}\n${error.message}` : log };
  } catch (e) {
    answer = { ok: false, log: `${log}\n${(e as Error).stack ?? String(e)}` };
  }
  port.postMessage(answer);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
});
