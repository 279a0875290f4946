// SPDX-License-Identifier: MIT
// The Communicator: collectives between the ranks of a data-parallel job, numbered like
// torch.distributed (rank 0..worldSize-1). Training code sees only this interface; how the ranks reach
// each other is the implementation's business. Here: threads of one machine over shared memory
// (SharedCommunicator, started by launch.ts); an implementation between machines (WebSocket, WebRTC)
// would implement the same interface.
import { CommMemory, Kind, describe, type ProgressReply, type ProgressRequest } from './ring.js';

export type ReduceOp = 'sum' | 'mean';

/** What a communicator has done so far on this rank. */
export interface CommStats {
  allReduces: number;
  broadcasts: number;
  barriers: number;
  commits: number;
  /** Bytes of the buffers passed to allReduce and broadcast. */
  bytes: number;
  /** Time the progress thread spent inside collectives, waiting for peers included (ms). */
  busyMs: number;
  /** Time the calling thread spent copying buffers into and out of shared memory (ms). */
  copyMs: number;
}

/**
 * When one collective ran on this rank (for profiling: what overlapped with what). Times are ms on the clock that
 * every thread of the process shares, performance.timeOrigin + performance.now().
 */
export interface CallTime {
  /** 1-based number of the call on this rank: the first call is 1, and so on in the order made. */
  seq: number;
  kind: 'allReduce' | 'broadcast' | 'barrier' | 'commit';
  /** Elements of the buffer. */
  length: number;
  /** When the caller made the call, when the progress thread started working on it, when it was done there. */
  calledAt: number;
  startedAt: number;
  endedAt: number;
}

/**
 * Collectives across the ranks of one job. Every rank makes the same calls in the same order.
 *
 * ```ts
 * const comm = await launch({ workers: 4 });   // this program runs on 4 threads; comm.rank tells which
 * await comm.broadcast(weights, 0);            // everyone starts from rank 0's weights
 * await comm.allReduce(grads, 'mean');         // after each backward pass
 * await comm.close();
 * ```
 */
export interface Communicator {
  readonly rank: number;
  readonly worldSize: number;
  /**
   * In-place all-reduce of `buf` across ranks (default 'sum'). Every rank calls it with the same length,
   * in the same order. Several may be outstanding; they complete in the order issued. The reduction
   * proceeds on a progress thread, so the caller may keep its own thread busy (e.g. with a synchronous
   * backward pass) while it runs. Sums are f32; 'mean' divides the f32 sum by worldSize. Every rank
   * ends with bit-identical values.
   */
  allReduce(buf: Float32Array, op?: ReduceOp): Promise<void>;
  /** Copies root's `buf` (default rank 0) into every rank's `buf`. */
  broadcast(buf: Float32Array, root?: number): Promise<void>;
  /** Resolves once every rank has called it. */
  barrier(): Promise<void>;
  /**
   * An agreement that survives failures: resolves on every rank that is still running, or rejects (with the
   * same CommError) on every rank, even when a rank dies or times out in the middle of it; it resolves only once
   * every rank has called it. Call it when this rank's part of a step is ready and apply the step once it
   * resolves: the step then takes effect on every surviving rank or on none. The other calls do not promise
   * this: a rank may finish an all-reduce that fails on another. A world of one rank resolves at once.
   *
   * ```ts
   * await comm.allReduce(grads, 'mean');
   * await comm.commit();       // every surviving rank gets here, or none does
   * applyUpdate(params, grads);
   * ```
   */
  commit(): Promise<void>;
  /**
   * Ends every pending and future call on every rank with a CommError that names this rank and `cause`
   * (except a commit that every rank has entered already: that one resolves everywhere).
   */
  abort(cause: unknown): void;
  /** Stops the progress thread; in rank 0, also waits for/ends the workers it started. */
  close(): Promise<void>;
  /** Counts and times since the start. */
  stats(): CommStats;
  /**
   * When the most recent calls that succeeded ran (up to the last 256, oldest first); optional, for profiling. A
   * world of one rank records none.
   */
  recentCalls?(): readonly CallTime[];
}

/**
 * A collective failed: a rank threw, exited, timed out, or made a different call from the others.
 * `rank` is the rank held responsible; the message says what happened, e.g. "rank 2 failed: Error: boom"
 * or "rank 0 timed out after 60000 ms waiting for rank 1 in allReduce #12".
 */
export class CommError extends Error {
  override readonly name = 'CommError';
  constructor(readonly rank: number, message: string) { super(message); }
}

/** A rank's progress thread, as its training thread sees it (a worker_threads Worker or a Web Worker). */
export interface ProgressLink {
  post(request: ProgressRequest): void;
  /** `onReply` gets every reply; `onDeath` a description, once, if the thread throws or exits. */
  listen(onReply: (reply: ProgressReply) => void, onDeath: (description: string) => void): void;
  /** While calls are pending the thread must keep this one alive; between calls it must not. */
  ref(): void;
  unref(): void;
  terminate(): Promise<void>;
}

/** What the launcher adds to a communicator: rank 0 ends its workers on close and lets go of them on failure. */
export interface CommHooks {
  onClose?: () => Promise<void>;
  /** Called once, when this rank first sees the world aborted. */
  onFailure?: () => void;
}

interface Pending {
  kind: Kind;
  calledAt: number;
  user: Float32Array;
  staging: Float32Array;
  copyBack: boolean;
  resolve(): void;
  reject(e: unknown): void;
  settled: Promise<unknown>;
}

const KIND_OF = { [Kind.allReduce]: 'allReduce', [Kind.broadcast]: 'broadcast', [Kind.barrier]: 'barrier', [Kind.commit]: 'commit' } as const satisfies Record<Kind, CallTime['kind']>;

/** Shared staging buffers, kept by length so a training loop reuses the same few each step. */
class StagingPool {
  private readonly free = new Map<number, Float32Array[]>();
  take(length: number): Float32Array {
    return this.free.get(length)?.pop() ?? new Float32Array(new SharedArrayBuffer(length * 4));
  }
  give(a: Float32Array): void {
    const list = this.free.get(a.length) ?? [];
    if (list.length < 4) list.push(a);
    this.free.set(a.length, list);
  }
}

/**
 * The Communicator of one rank of a world that lives in one SharedArrayBuffer (CommMemory). Calls copy
 * the caller's buffer into shared staging memory, hand it to the progress thread, and copy the result back
 * when it is done. A buffer that already is shared memory (a view of a SharedArrayBuffer) is worked on in
 * place, with no copies: leave it alone until the call resolves.
 */
export class SharedCommunicator implements Communicator {
  readonly worldSize: number;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly pool = new StagingPool();
  private readonly counts: CommStats = { allReduces: 0, broadcasts: 0, barriers: 0, commits: 0, bytes: 0, busyMs: 0, copyMs: 0 };
  private readonly times: CallTime[] = [];
  private closing: Promise<void> | null = null;
  /** A call (or abort() itself) has told this rank's caller about the failure, so close() need not. */
  private reported = false;
  private failureSeen = false;

  /** `link` is null only for a world of one rank. */
  constructor(private readonly mem: CommMemory, readonly rank: number, private readonly link: ProgressLink | null, private readonly hooks: CommHooks = {}) {
    this.worldSize = mem.worldSize;
    if (!link && this.worldSize !== 1) throw new Error('SharedCommunicator: a world of several ranks needs a progress thread');
    link?.listen((reply) => this.onReply(reply), (description) => {
      this.mem.fail(this.rank, `rank ${this.rank}'s progress thread ${description}`);
      this.failAll(true);
    });
  }

  allReduce(buf: Float32Array, op: ReduceOp = 'sum'): Promise<void> {
    if (op !== 'sum' && op !== 'mean') return Promise.reject(new TypeError(`allReduce: op must be 'sum' or 'mean', got ${String(op)}`));
    return this.submit('allReduce', Kind.allReduce, buf, op === 'mean' ? 1 : 0);
  }

  broadcast(buf: Float32Array, root = 0): Promise<void> {
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      return Promise.reject(new RangeError(`broadcast: root must be a rank in 0..${this.worldSize - 1}, got ${root}`));
    }
    return this.submit('broadcast', Kind.broadcast, buf, root);
  }

  barrier(): Promise<void> { return this.submit('barrier', Kind.barrier, new Float32Array(0), 0); }

  /** The vote runs on the progress thread (Ring's commit), after every call issued before it. */
  commit(): Promise<void> { return this.submit('commit', Kind.commit, new Float32Array(0), 0); }

  abort(cause: unknown): void {
    this.reported = true;
    this.mem.fail(this.rank, `rank ${this.rank} failed: ${describe(cause)}`);
    this.failAll();
  }

  stats(): CommStats { return { ...this.counts }; }

  recentCalls(): readonly CallTime[] { return this.times.slice(); }

  /** The failure that aborted the world, as a CommError, or null. */
  failure(): CommError | null {
    const info = this.mem.abortInfo();
    return info ? new CommError(info.rank, info.message) : null;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.pending.values()].map((p) => p.settled));
      await this.link?.terminate();
      await this.hooks.onClose?.();
      const failure = this.failure();
      if (failure) this.noticeFailure();
      if (failure && !this.reported) throw failure; // a failure no call reported must not pass silently
    })();
    return this.closing;
  }

  private submit(name: string, kind: Kind, buf: Float32Array, extra: number): Promise<void> {
    if (!(buf instanceof Float32Array)) return Promise.reject(new TypeError(`${name}: expected a Float32Array, got ${describe(buf)}`));
    if (this.closing) return Promise.reject(new Error(`${name}: the communicator of rank ${this.rank} is closed`));
    const failure = this.failure();
    if (failure) { this.reported = true; this.noticeFailure(); return Promise.reject(failure); }
    const seq = ++this.seq;
    if (kind === Kind.allReduce) this.counts.allReduces++;
    else if (kind === Kind.broadcast) this.counts.broadcasts++;
    else if (kind === Kind.commit) this.counts.commits++;
    else this.counts.barriers++;
    this.counts.bytes += buf.byteLength;
    if (!this.link) return Promise.resolve(); // one rank: sum, mean and broadcast leave buf as it is
    const started = performance.now();
    const shared = buf.buffer instanceof SharedArrayBuffer;
    const staging = shared ? buf : this.pool.take(buf.length);
    const receives = !(kind === Kind.broadcast && extra === this.rank);
    if (!shared && !(kind === Kind.broadcast && receives)) staging.set(buf);
    this.counts.copyMs += performance.now() - started;
    let resolve!: () => void, reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    const settled = promise.then(() => undefined, () => undefined);
    this.pending.set(seq, { kind, calledAt: performance.timeOrigin + started, user: buf, staging, copyBack: !shared && receives && kind !== Kind.barrier && kind !== Kind.commit, resolve, reject, settled });
    if (this.pending.size === 1) this.link.ref();
    this.link.post({ t: 'op', seq, kind, extra, buffer: staging.buffer as SharedArrayBuffer, offset: staging.byteOffset, length: staging.length });
    return promise;
  }

  private onReply(reply: ProgressReply): void {
    if (reply.t === 'ready') return;
    const p = this.pending.get(reply.seq);
    this.counts.busyMs += reply.ms;
    if (!p) return; // already rejected by failAll
    this.pending.delete(reply.seq);
    if (this.pending.size === 0) this.link?.unref();
    if (reply.t === 'failed') {
      this.rejectCall(p);
      this.failAll();
      return;
    }
    if (this.times.length === 256) this.times.shift();
    this.times.push({ seq: reply.seq, kind: KIND_OF[p.kind], length: p.user.length, calledAt: p.calledAt, startedAt: reply.startedAt, endedAt: reply.endedAt });
    if (p.copyBack) {
      const started = performance.now();
      p.user.set(p.staging);
      this.counts.copyMs += performance.now() - started;
    }
    if (p.staging !== p.user) this.pool.give(p.staging);
    p.resolve();
  }

  /**
   * Rejects every pending call with the world's failure. Their staging buffers are dropped: the progress thread may
   * still be in them. Commits are left to the progress thread's answer (one every rank voted for succeeds, also in an
   * aborted world, and must do so here too), unless that thread itself has died (`progressDied`).
   */
  private failAll(progressDied = false): void {
    const calls = [...this.pending].filter(([, p]) => progressDied || p.kind !== Kind.commit);
    for (const [seq] of calls) this.pending.delete(seq);
    if (this.pending.size === 0) this.link?.unref();
    for (const [, p] of calls) this.rejectCall(p);
  }

  private rejectCall(p: Pending): void {
    this.reported = true;
    this.noticeFailure();
    p.reject(this.failure() ?? new CommError(this.rank, `rank ${this.rank}: a collective failed without a recorded cause`));
  }

  private noticeFailure(): void {
    if (this.failureSeen) return;
    this.failureSeen = true;
    this.hooks.onFailure?.();
  }
}
