// SPDX-License-Identifier: MIT
// Starting a world of ranks on one machine, SPMD like torchrun: every rank runs the same program, which
// calls launch() and learns its rank from the Communicator it gets. The first thread to call launch() is
// rank 0; it starts ranks 1..n-1 as threads running the same entry module (Node worker_threads, or module
// Web Workers in a cross-origin isolated page) and watches them: a worker that throws, or exits with a
// non-zero code, aborts the world, so every rank's pending and later calls reject with a CommError that
// names it. The workers also report their own end (Node: process 'uncaughtExceptionMonitor' and 'exit';
// browser: 'error' and 'unhandledrejection'), from their own thread, so the abort reaches the others even
// while rank 0's thread is busy. Each rank, rank 0 included, starts its own progress thread
// (progress-worker.ts), and every thread shares one SharedArrayBuffer (ring.ts).
//
// Node built-ins are looked up at run time, never imported at the top: a browser bundle must load without them.
import type { Worker as NodeWorker, WorkerOptions } from 'node:worker_threads';
import { CommError, SharedCommunicator, type Communicator, type ProgressLink } from './communicator.js';
import { CommMemory, DEFAULT_SLOT_FLOATS, describe, type ProgressReply } from './ring.js';

export interface LaunchOptions {
  /** World size, >= 1. */
  workers: number;
  /** Module every worker runs; default: the main script (process.argv[1]). In a browser, pass it (e.g. `import.meta.url`). */
  entry?: string | URL;
  /** Node options of the workers; default: process.execArgv (so `--import pullback/register` carries over). */
  execArgv?: string[];
  /** Any wait longer than this fails with a CommError naming whom it waited for (default 60_000). */
  timeoutMs?: number;
  /** Passed to workers, readable via launchData(). */
  workerData?: unknown;
  /** In rank 0: receives what a worker posts to its parent (`parentPort.postMessage`, `self.postMessage`), with its rank. */
  onMessage?: (rank: number, message: unknown) => void;
  /** Bytes of each shared slot (default 256 KiB); a buffer longer than worldSize slots goes round in pieces. */
  slotBytes?: number;
}

type WorkerThreads = typeof import('node:worker_threads');

/** A rank's place in the world, as launch() hands it to the worker (Node: in workerData; browser: the first message). */
const KEY = '__pullbackLaunch';
interface WorkerContext { sab: SharedArrayBuffer; rank: number; timeoutMs: number; data: unknown }
/** Web Workers started by launch() carry this name (followed by the rank), so they know what they are before any message. */
const NAME = 'pullback rank ';
/** What a Web Worker rank posts last, when it closes its communicator: its exit event. */
const CLOSED = 'closed';

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
/** node:worker_threads, when it can be had synchronously (Node >= 20.16), else once the import below resolves. */
let threadsModule: WorkerThreads | null = isNode && process.getBuiltinModule ? process.getBuiltinModule('node:worker_threads') : null;
if (isNode && !threadsModule) void import('node:worker_threads').then((m) => { threadsModule = m; });

interface WebScope {
  name?: string;
  addEventListener(type: string, listener: (e: { data?: unknown; error?: unknown; message?: string; reason?: unknown }) => void): void;
  removeEventListener(type: string, listener: (e: { data?: unknown }) => void): void;
}
const web = globalThis as unknown as WebScope & { WorkerGlobalScope?: unknown; crossOriginIsolated?: boolean };
/** In a Web Worker that launch() started: its context, from the first message (listened for as this module loads, before anyone can miss it). */
const isWebRank = !isNode && web.WorkerGlobalScope !== undefined && /^pullback rank \d+$/.test(web.name ?? '');
let webContext: WorkerContext | null = null;
const webContextReady: Promise<WorkerContext> | null = isWebRank ? new Promise((resolve) => {
  const listener = (e: { data?: unknown }) => {
    const context = (e.data as Record<string, unknown> | null)?.[KEY] as WorkerContext | undefined;
    if (!context) return;
    web.removeEventListener('message', listener);
    resolve(webContext = context);
  };
  web.addEventListener('message', listener);
}) : null;

function nodeContext(wt: WorkerThreads | null): WorkerContext | null {
  if (!wt || wt.isMainThread) return null;
  const data = wt.workerData as Record<string, unknown> | null;
  return data && typeof data === 'object' && KEY in data ? data[KEY] as WorkerContext : null;
}

let mainData: unknown;
let joined: Promise<Communicator> | null = null;

/** Whether this thread is a rank that launch() started (so not rank 0). */
export function isLaunchedWorker(): boolean { return isWebRank || nodeContext(threadsModule) !== null; }

/**
 * The `workerData` given to launch(), in every rank: in rank 0 once it has called launch(); in a Web Worker
 * once its context has arrived (after launch() resolves, to be sure).
 */
export function launchData(): unknown {
  const context = nodeContext(threadsModule) ?? webContext;
  return context ? context.data : mainData;
}

/**
 * SPMD like torchrun: in the main thread, starts workers-1 worker threads running `entry` (rank 1..n-1)
 * and resolves to rank 0's Communicator once all have joined; in a thread started by launch, resolves to
 * that worker's Communicator.
 *
 * ```ts
 * const comm = await launch({ workers: 2 });
 * const grads = computeGradients(shardFor(comm.rank, comm.worldSize));
 * await comm.allReduce(grads, 'mean');
 * await comm.close(); // rank 0: waits for the workers to end
 * ```
 */
export async function launch(options: LaunchOptions): Promise<Communicator> {
  const { workers } = options;
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`launch: workers must be an integer >= 1, got ${workers}`);
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!(timeoutMs > 0)) throw new RangeError(`launch: timeoutMs must be > 0, got ${timeoutMs}`);
  const wt = isNode ? threadsModule ??= await import('node:worker_threads') : null;
  const context = wt ? nodeContext(wt) : webContextReady ? await webContextReady : null;
  if (!context) return startWorld(wt, options, timeoutMs);
  if (joined) throw new Error(`launch: rank ${context.rank} has called launch already; a launched worker belongs to one world`);
  return joined = joinWorld(wt, context, options);
}

async function startWorld(wt: WorkerThreads | null, options: LaunchOptions, timeoutMs: number): Promise<Communicator> {
  mainData = options.workerData;
  const n = options.workers;
  if (n === 1) return new SharedCommunicator(CommMemory.create(1, 1), 0, null);
  if (!wt && (typeof SharedArrayBuffer === 'undefined' || web.crossOriginIsolated === false)) {
    throw new Error('launch: ranks share memory, which a page has only when cross-origin isolated: serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp');
  }
  const slotBytes = options.slotBytes ?? DEFAULT_SLOT_FLOATS * 4;
  if (!Number.isInteger(slotBytes) || slotBytes < 4) throw new RangeError(`launch: slotBytes must be an integer >= 4, got ${slotBytes}`);
  const mem = CommMemory.create(n, slotBytes >> 2);
  const entry = await entryUrl(options.entry);
  const workers: Thread[] = [];
  const exits: Promise<void>[] = [];
  for (let rank = 1; rank < n; rank++) {
    const context: WorkerContext = { sab: mem.sab, rank, timeoutMs, data: options.workerData };
    let exited!: () => void;
    exits.push(new Promise((resolve) => { exited = resolve; }));
    workers.push(spawn(wt, entry, `${NAME}${rank}`, { execArgv: options.execArgv, workerData: { [KEY]: context } }, {
      message: (m) => options.onMessage?.(rank, m),
      error: (e) => {
        // The worker's own uncaught error: it would have been printed had it been ours, so print it (a CommError is an echo of another failure).
        if ((e as Error | undefined)?.name !== 'CommError') console.error(`pullback: rank ${rank} failed:`, e);
        mem.fail(rank, `rank ${rank} failed: ${describe(e)}`);
      },
      exit: (code) => {
        if (code !== 0 && !mem.terminating(rank)) mem.fail(rank, `rank ${rank} exited with code ${code}`);
        mem.markExited(rank, code);
        exited();
      },
    }));
    if (!wt) workers[rank - 1]!.post({ [KEY]: context });
  }
  const end = async () => {
    workers.forEach((_, i) => mem.markTerminating(i + 1));
    await Promise.all(workers.map((w) => w.terminate()));
  };
  let progress: ProgressLink | null = null;
  try {
    progress = await startProgress(wt, mem, 0, timeoutMs);
    mem.join(0);
    await waitForJoin(mem, 0, timeoutMs);
  } catch (e) {
    await progress?.terminate();
    await end();
    throw e;
  }
  return new SharedCommunicator(mem, 0, progress, {
    // After a failure, workers that linger must not keep the process alive once rank 0's program is done.
    onFailure: () => workers.forEach((w) => w.unref()),
    onClose: async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([Promise.all(exits), new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs); })]);
      clearTimeout(timer);
      await end();
    },
  });
}

async function joinWorld(wt: WorkerThreads | null, context: WorkerContext, options: LaunchOptions): Promise<Communicator> {
  const mem = new CommMemory(context.sab), { rank } = context;
  if (options.workers !== mem.worldSize) {
    throw new Error(`launch: rank ${rank} asks for ${options.workers} workers but was started in a world of ${mem.worldSize}; every rank must pass the same options`);
  }
  // These run on this thread as it fails, whatever rank 0's thread is doing.
  const failed = (cause: unknown) => mem.fail(rank, `rank ${rank} failed: ${describe(cause)}`);
  if (isNode) {
    process.on('uncaughtExceptionMonitor', failed);
    process.on('exit', (code) => {
      if (code !== 0) mem.fail(rank, `rank ${rank} exited with code ${code}`);
      mem.markExited(rank, code);
    });
  } else {
    web.addEventListener('error', (e) => failed(e.error ?? e.message));
    web.addEventListener('unhandledrejection', (e) => failed(e.reason));
  }
  const progress = await startProgress(wt, mem, rank, context.timeoutMs);
  mem.join(rank);
  try {
    await waitForJoin(mem, rank, context.timeoutMs);
  } catch (e) {
    await progress.terminate();
    throw e;
  }
  // A Web Worker has no exit event: it tells its parent itself, after everything else it posted.
  return new SharedCommunicator(mem, rank, progress, isNode ? {} : {
    onClose: async () => {
      mem.markExited(rank, 0);
      (globalThis as unknown as { postMessage(m: unknown): void }).postMessage({ [KEY]: CLOSED });
    },
  });
}

/** Waits until every rank has joined. */
async function waitForJoin(mem: CommMemory, rank: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  await poll(() => {
    // Joined first: a rank may join and fail at once, and that failure belongs to the first call, not to launch.
    const missing = mem.missing();
    if (missing.length === 0) return true;
    const gone = missing.find((r) => mem.exitCode(r) !== null);
    if (gone !== undefined) mem.fail(gone, `rank ${gone} exited with code ${mem.exitCode(gone)} before it joined (does the entry module call launch()?)`);
    if (performance.now() > deadline) mem.fail(missing[0]!, `rank ${rank} timed out after ${timeoutMs} ms waiting for rank ${missing[0]} to join`);
    const info = mem.abortInfo();
    if (info) throw new CommError(info.rank, info.message);
    return false;
  });
}

/** Resolves once `done()` is true, looking every few milliseconds: for things that happen once per world. */
async function poll(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Starts `rank`'s progress thread and resolves once it has taken the world's memory. */
async function startProgress(wt: WorkerThreads | null, mem: CommMemory, rank: number, timeoutMs: number): Promise<ProgressLink> {
  let onReply: ((reply: ProgressReply) => void) | null = null;
  let onDeath: ((description: string) => void) | null = null;
  let ending = false, dead = false;
  let ready!: () => void, failed!: (e: Error) => void;
  const started = new Promise<void>((resolve, reject) => { ready = resolve; failed = reject; });
  const die = (description: string) => {
    if (dead || ending) return;
    dead = true;
    failed(new Error(`launch: rank ${rank}'s progress thread ${description}`));
    onDeath?.(description);
  };
  // No execArgv: the progress thread is plain JavaScript and needs no loader hooks.
  const thread = spawn(wt, new URL('./progress-worker.js', import.meta.url), `${NAME}${rank} progress`, { execArgv: [] }, {
    message: (m) => ((m as ProgressReply).t === 'ready' ? ready() : onReply?.(m as ProgressReply)),
    error: (e) => die(`failed: ${describe(e)}`),
    exit: (code) => die(`exited with code ${code}`),
  });
  thread.post({ t: 'init', sab: mem.sab, rank, timeoutMs });
  await started;
  thread.unref();
  return {
    post: (request) => thread.post(request),
    listen: (reply, death) => { onReply = reply; onDeath = death; },
    ref: () => thread.ref(),
    unref: () => thread.unref(),
    terminate: async () => { ending = true; await thread.terminate(); },
  };
}

/** A thread as launch() handles it: a worker_threads Worker or a module Web Worker. */
interface Thread { post(message: unknown): void; ref(): void; unref(): void; terminate(): Promise<void> }
/** What a thread tells its parent. Web Workers have no exit event. */
interface ThreadEvents { message(m: unknown): void; error(cause: unknown): void; exit(code: number): void }

function spawn(wt: WorkerThreads | null, url: URL, name: string, node: { execArgv?: string[]; workerData?: unknown }, on: ThreadEvents): Thread {
  if (wt) {
    const w = newWorker(wt, url, node.execArgv, { name, workerData: node.workerData, argv: process.argv.slice(2) });
    w.on('message', on.message);
    w.on('error', on.error);
    w.on('exit', on.exit);
    return { post: (m) => w.postMessage(m), ref: () => w.ref(), unref: () => w.unref(), terminate: async () => { await w.terminate(); } };
  }
  const w = new Worker(url, { type: 'module', name });
  w.addEventListener('message', (e) => {
    if ((e.data as Record<string, unknown> | null)?.[KEY] === CLOSED) on.exit(0);
    else on.message(e.data);
  });
  w.addEventListener('error', (e) => {
    e.preventDefault();
    // The page sees "Uncaught Error: boom" (or nothing, when the module could not load); the worker reports the error itself too.
    on.error(e.message ? e.message.replace(/^Uncaught /, '') : `could not start ${url.href}`);
    on.exit(1); // it may live on, but it is out of the world
  });
  return { post: (m) => w.postMessage(m), ref: () => {}, unref: () => {}, terminate: async () => w.terminate() };
}

/**
 * A Worker with `execArgv`, or by default this process's options minus those Node refuses in a worker
 * (process-wide ones such as --expose-gc, which are in force in every thread already).
 */
function newWorker(wt: WorkerThreads, entry: URL, execArgv: string[] | undefined, options: WorkerOptions): NodeWorker {
  if (execArgv) return new wt.Worker(entry, { ...options, execArgv });
  let args = process.execArgv;
  for (;;) {
    try {
      return new wt.Worker(entry, { ...options, execArgv: args });
    } catch (e) {
      const m = /invalid execArgv flags: (.*)$/.exec((e as Error).message);
      if ((e as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV' || !m) throw e;
      const refused = new Set(m[1]!.split(', '));
      const kept = args.filter((a) => !refused.has(a.split('=')[0]!));
      if (kept.length === args.length) throw e;
      args = kept;
    }
  }
}

async function entryUrl(entry: string | URL | undefined): Promise<URL> {
  if (entry instanceof URL) return entry;
  if (!isNode) {
    if (entry === undefined) throw new Error('launch: in a browser, pass options.entry, the module every rank runs (e.g. import.meta.url)');
    return new URL(entry, (globalThis as { location?: { href: string } }).location?.href);
  }
  const e = entry ?? process.argv[1];
  if (e === undefined || e === '') throw new Error('launch: no entry module to start the workers with; pass options.entry (process.argv[1] is empty, as in a REPL)');
  if (e.startsWith('file:')) return new URL(e);
  const { pathToFileURL } = await import('node:url');
  const { resolve } = await import('node:path');
  return pathToFileURL(resolve(e));
}
