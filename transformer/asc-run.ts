// SPDX-License-Identifier: MIT
// Worker thread of transformer/wasm.ts that runs asc. asc's API is asynchronous and the transformer's entry
// points (the tsc plugin above all) are not, so the transformer posts a job and blocks on `signal` until this
// thread has answered on `port`. One worker serves every file of a build: loading asc and binaryen and warming
// them up took about as long as compiling a file's module (a child process per file paid it every time).
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';

export interface AscJob { input: string; output: string; flags: string[] }
/** `ended`: the worker is gone after this answer (it crashed): the next job needs a new one. */
export interface AscAnswer { ok: boolean; log: string; ended?: boolean }

const { port, signal } = workerData as { port: MessagePort; signal: Int32Array };
const specifier = 'assemblyscript/asc';
type Asc = { main(argv: string[], opts: object): Promise<{ error: Error | null }> };
// A failure to load asc is answered like a failed compilation: the waiting thread must always be woken.
const asc = await import(specifier).then((m: { default: Asc }) => m.default, (e: Error) => e);

/** Answers the waiting thread, once per job (it blocks on `signal` and would otherwise wait out its timeout). */
let answered = true;
function answer(a: AscAnswer): void {
  if (answered) return;
  answered = true;
  port.postMessage(a);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
}
// A crash inside asc or binaryen after the job's promise settled (an error thrown from a callback, a rejected
// promise nobody awaits) ends this thread: it still answers first.
const crash = (e: unknown) => {
  answer({ ok: false, log: `asc crashed: ${(e as Error)?.stack ?? String(e)}`, ended: true });
  process.exit(1);
};
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);
process.on('exit', () => answer({ ok: false, log: 'the asc worker exited during the compilation', ended: true }));

parentPort!.on('message', async (job: AscJob) => {
  answered = false;
  // Fault injection for the test of the above: a crash outside the job's promise chain.
  if (process.env.PULLBACK_ASC_FAULT === 'crash') setTimeout(() => { throw new Error('injected asc fault'); }, 0);
  let log = '';
  const sink = { write: (t: string) => { log += t; return true; } };
  try {
    if (asc instanceof Error) throw asc;
    const { error } = await asc.main([job.input, ...job.flags, '-o', job.output], { stdout: sink, stderr: sink });
    answer({ ok: !error, log: error ? `${log}\n${error.message}` : log });
  } catch (e) {
    answer({ ok: false, log: `${log}\n${(e as Error).stack ?? String(e)}` });
  }
});
