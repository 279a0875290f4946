// SPDX-License-Identifier: MIT
// The shared memory of a world of ranks on one machine, and the ring algorithms that the ranks'
// progress threads run over it. Nothing here needs Node: a SharedArrayBuffer, Atomics and
// performance.now() are all it uses, so Web Workers can run it as well as worker_threads.
//
// Memory (one SharedArrayBuffer, created by rank 0 and handed to every thread):
//   Int32 words   HEADER_WORDS of world state (magic, size, slot size, abort state, abort rank, abort length,
//                 commit votes),
//                 then RANK_WORDS per rank (128 bytes apart, so ranks do not share a cache line):
//                 doorbell, sent-into, taken, issued, joined, exited, terminating, exit code, and the headers of
//                 the rank's inbox slots (seq, kind, length, extra, count each);
//   bytes         ABORT_BYTES of UTF-8: the message of the failure that aborted the world;
//   Float32       SLOTS_PER_LINK inbox slots of slotFloats per rank.
//
// Links. Rank r writes only into the inbox of its right neighbour (r + 1) mod N and reads only its own
// inbox, filled by its left neighbour. Message m goes into slot m mod SLOTS_PER_LINK; `sent-into` counts
// the messages written into an inbox and `taken` those consumed, so a sender waits until
// sent - taken < SLOTS_PER_LINK and a receiver until sent > taken. Whoever changes a counter bumps the
// doorbell of the rank that may be waiting on it and notifies: every rank sleeps on one word, its own
// doorbell, so an abort wakes everyone by ringing every doorbell. Counters wrap around as Int32; they
// are only ever compared by difference.
//
// All-reduce is the bandwidth-optimal ring (reduce-scatter, then all-gather), run piece by piece over
// pieces of N × slotFloats elements so a slot never holds more than one segment. Each element is summed
// once, at successive ranks, in f32 (x_{j-1} + (... + (x_{j+1} + x_j))), by the rank that ends up owning
// its segment; the all-gather then copies that one result to everyone, so every rank ends with
// bit-identical values. Mean divides the owner's f32 sum by N before the all-gather.
//
// Commit. A ring all-reduce does not end at one instant on every rank: if a rank dies during the last
// messages, some ranks have finished the call and others fail it. A commit is a vote instead, in one word that
// every rank reads the same way: a cumulative count of votes (low 30 bits) and a SEALED bit. A rank's k-th
// commit adds its vote unless the word is sealed, then waits until the count reaches k × N. Whoever gives up
// (an abort, a timeout, a rank that exited) seals the word first and decides with the count as sealed, which
// can no longer change: k × N or more means every rank voted, and the commit succeeds; fewer, and it fails.
// A vote refused by the seal fails too. So every rank that returns decides the same. (A rank votes its
// (k+1)-th time only after it has seen k × N, so the count cannot reach k × N while a rank's k-th vote is
// missing.) fail() seals as it aborts the world.

/** Float32 elements per inbox slot unless the launcher says otherwise (256 KiB). */
export const DEFAULT_SLOT_FLOATS = 1 << 16;
/** Slots per link: a sender may run this many messages ahead of its receiver. */
export const SLOTS_PER_LINK = 2;
/** Bytes of the abort message; longer messages are cut at a character boundary. */
export const ABORT_BYTES = 1024;

const MAGIC = 0x70627231;
const HEADER_WORDS = 16;
const RANK_WORDS = 32;
const SLOT_HEADER_WORDS = 5;
const W_MAGIC = 0, W_SIZE = 1, W_SLOT_FLOATS = 2, W_ABORT_STATE = 3, W_ABORT_RANK = 4, W_ABORT_LEN = 5, W_COMMIT = 6;
/** In W_COMMIT: once set, the vote count below it is frozen. */
const SEALED = 1 << 30;
const VOTES = SEALED - 1;
const R_DOORBELL = 0, R_SENT_INTO = 1, R_TAKEN = 2, R_ISSUED = 3, R_JOINED = 4, R_EXITED = 5, R_TERMINATING = 6, R_EXIT_CODE = 7, R_SLOTS = 8;
const ABORT_NONE = 0, ABORT_WRITING = 1, ABORT_SET = 2;
/** The longest a thread sleeps before it looks again at the abort word and its deadline. */
const WAIT_SLICE_MS = 250;
/** Checks of a condition before a thread goes to sleep on it. */
const SPIN = 1000;

/** The collectives, as they travel in slot headers. */
export const Kind = { allReduce: 1, broadcast: 2, barrier: 3, commit: 4 } as const;
export type Kind = (typeof Kind)[keyof typeof Kind];
const KIND_NAMES: Record<number, string> = { 1: 'allReduce', 2: 'broadcast', 3: 'barrier', 4: 'commit' };

/** The failure that aborted a world: the rank it names, and the whole message. */
export interface AbortInfo { rank: number; message: string }

/** `String(cause)` for errors ("Error: boom"), the text for strings, something printable otherwise. */
export function describe(cause: unknown): string {
  if (cause instanceof Error) return String(cause);
  if (typeof cause === 'string') return cause;
  try { return JSON.stringify(cause) ?? String(cause); } catch { return String(cause); }
}

/** Views of a world's SharedArrayBuffer and the small protocols on its words (join, exit, abort). */
export class CommMemory {
  readonly worldSize: number;
  readonly slotFloats: number;
  readonly words: Int32Array;
  private readonly abortBytes: Uint8Array;
  private readonly data: Float32Array;

  constructor(readonly sab: SharedArrayBuffer) {
    const head = new Int32Array(sab, 0, HEADER_WORDS);
    if (head[W_MAGIC] !== MAGIC) throw new Error('CommMemory: this SharedArrayBuffer was not made by CommMemory.create');
    this.worldSize = head[W_SIZE]!;
    this.slotFloats = head[W_SLOT_FLOATS]!;
    const layout = CommMemory.layout(this.worldSize, this.slotFloats);
    this.words = new Int32Array(sab, 0, layout.words);
    this.abortBytes = new Uint8Array(sab, layout.abortAt, ABORT_BYTES);
    this.data = new Float32Array(sab, layout.dataAt, this.worldSize * SLOTS_PER_LINK * this.slotFloats);
  }

  /** Allocates the memory of a world of `worldSize` ranks with inbox slots of `slotFloats` elements. */
  static create(worldSize: number, slotFloats = DEFAULT_SLOT_FLOATS): CommMemory {
    if (!Number.isInteger(worldSize) || worldSize < 1) throw new RangeError(`CommMemory: worldSize must be an integer >= 1, got ${worldSize}`);
    if (!Number.isInteger(slotFloats) || slotFloats < 1) throw new RangeError(`CommMemory: slotFloats must be an integer >= 1, got ${slotFloats}`);
    const layout = CommMemory.layout(worldSize, slotFloats);
    const sab = new SharedArrayBuffer(layout.bytes);
    const head = new Int32Array(sab, 0, HEADER_WORDS);
    head[W_SIZE] = worldSize;
    head[W_SLOT_FLOATS] = slotFloats;
    head[W_MAGIC] = MAGIC;
    return new CommMemory(sab);
  }

  private static layout(worldSize: number, slotFloats: number) {
    const words = HEADER_WORDS + worldSize * RANK_WORDS;
    const abortAt = words * 4;
    const dataAt = Math.ceil((abortAt + ABORT_BYTES) / 64) * 64;
    return { words, abortAt, dataAt, bytes: dataAt + worldSize * SLOTS_PER_LINK * slotFloats * 4 };
  }

  /** Index of word `field` of rank `rank`. */
  at(rank: number, field: number): number { return HEADER_WORDS + rank * RANK_WORDS + field; }

  /** Slot `slot` of `rank`'s inbox: its data and the index of its first header word. */
  inbox(rank: number, slot: number): { data: Float32Array; header: number } {
    const start = (rank * SLOTS_PER_LINK + slot) * this.slotFloats;
    return { data: this.data.subarray(start, start + this.slotFloats), header: this.at(rank, R_SLOTS + slot * SLOT_HEADER_WORDS) };
  }

  /** Wakes `rank` if it sleeps on its doorbell. */
  ring(rank: number): void {
    const i = this.at(rank, R_DOORBELL);
    Atomics.add(this.words, i, 1);
    Atomics.notify(this.words, i);
  }

  ringAll(): void { for (let r = 0; r < this.worldSize; r++) this.ring(r); }

  join(rank: number): void { Atomics.store(this.words, this.at(rank, R_JOINED), 1); this.ringAll(); }
  /** Ranks that have not joined yet. */
  missing(): number[] {
    const out: number[] = [];
    for (let r = 0; r < this.worldSize; r++) if (Atomics.load(this.words, this.at(r, R_JOINED)) === 0) out.push(r);
    return out;
  }

  /** Records that `rank`'s thread has ended with exit code `code` (waiting for it fails from now on). */
  markExited(rank: number, code: number): void {
    if (Atomics.load(this.words, this.at(rank, R_EXITED)) !== 0) return; // the worker itself and rank 0 both report it
    Atomics.store(this.words, this.at(rank, R_EXIT_CODE), code);
    Atomics.store(this.words, this.at(rank, R_EXITED), 1);
    this.ringAll();
  }
  /** The exit code of `rank`'s thread, or null while it runs. */
  exitCode(rank: number): number | null {
    return Atomics.load(this.words, this.at(rank, R_EXITED)) === 0 ? null : Atomics.load(this.words, this.at(rank, R_EXIT_CODE));
  }
  /** Records that `rank`'s thread is being ended on purpose (its exit code is not a failure). */
  markTerminating(rank: number): void { Atomics.store(this.words, this.at(rank, R_TERMINATING), 1); }
  terminating(rank: number): boolean { return Atomics.load(this.words, this.at(rank, R_TERMINATING)) !== 0; }

  /** Number of the last collective `rank`'s progress thread has started. */
  issued(rank: number): number { return Atomics.load(this.words, this.at(rank, R_ISSUED)); }
  setIssued(rank: number, seq: number): void { Atomics.store(this.words, this.at(rank, R_ISSUED), seq); }

  /**
   * Aborts the world, naming `rank` and `message`, unless it is aborted already (the first failure
   * wins, so every rank reports the same one). Wakes every rank. Returns whether this call set it.
   */
  fail(rank: number, message: string): boolean {
    const won = Atomics.compareExchange(this.words, W_ABORT_STATE, ABORT_NONE, ABORT_WRITING) === ABORT_NONE;
    // After the compare-exchange, so a refused vote always finds the world aborted; by every caller, so the
    // count is frozen when fail() returns, even to a caller that lost the race to abort.
    this.seal();
    if (!won) return false;
    // TextEncoder may not write into shared memory, so encode into private bytes and copy.
    const bytes = new Uint8Array(ABORT_BYTES);
    const { written } = new TextEncoder().encodeInto(message, bytes);
    this.abortBytes.set(bytes.subarray(0, written));
    Atomics.store(this.words, W_ABORT_RANK, rank);
    Atomics.store(this.words, W_ABORT_LEN, written);
    Atomics.store(this.words, W_ABORT_STATE, ABORT_SET);
    Atomics.notify(this.words, W_ABORT_STATE);
    this.ringAll();
    return true;
  }

  aborted(): boolean { return Atomics.load(this.words, W_ABORT_STATE) !== ABORT_NONE; }

  /** Adds one commit vote; false, and nothing added, once the votes are sealed. Wakes every rank. */
  vote(): boolean {
    for (let cur = Atomics.load(this.words, W_COMMIT); ;) {
      if (cur & SEALED) return false;
      const seen = Atomics.compareExchange(this.words, W_COMMIT, cur, (cur + 1) & VOTES);
      if (seen === cur) break;
      cur = seen;
    }
    this.ringAll();
    return true;
  }

  /** Freezes the commit votes; returns their count (mod 2^30), which no longer changes. */
  seal(): number { return Atomics.or(this.words, W_COMMIT, SEALED) & VOTES; }

  /** The commit votes cast so far (mod 2^30). */
  votes(): number { return Atomics.load(this.words, W_COMMIT) & VOTES; }

  /** The failure that aborted the world, or null. */
  abortInfo(): AbortInfo | null {
    let state = Atomics.load(this.words, W_ABORT_STATE);
    if (state === ABORT_NONE) return null;
    // The writer is between its compare-exchange and its last store: a few microseconds.
    for (let spins = 0; state === ABORT_WRITING; spins++) {
      if (spins > 1e8) return { rank: -1, message: 'the world was aborted, but the message never arrived' };
      state = Atomics.load(this.words, W_ABORT_STATE);
    }
    const length = Atomics.load(this.words, W_ABORT_LEN);
    const message = new TextDecoder().decode(this.abortBytes.slice(0, length));
    return { rank: Atomics.load(this.words, W_ABORT_RANK), message };
  }
}

/** One collective as the progress thread runs it: `data` is shared memory, changed in place. */
export interface RingOp {
  /** 1-based number of the call on this rank (the same on every rank for the same call). */
  seq: number;
  kind: Kind;
  data: Float32Array;
  /** allReduce: 1 for mean, 0 for sum; broadcast: the root; barrier and commit: 0. */
  extra: number;
}

/** Thrown by Ring.run once the world is aborted (CommMemory.abortInfo() says why). */
export class RingAborted extends Error {
  constructor() { super('the communicator was aborted'); }
}

/** What a receive does with the incoming segment. */
const COPY = 0, ADD = 1, ADD_DIVIDE = 2;

function mod(a: number, n: number): number { return ((a % n) + n) % n; }

function describeCall(kind: number, length: number, extra: number): string {
  const name = KIND_NAMES[kind] ?? `collective kind ${kind}`;
  if (kind === Kind.allReduce) return `${name}(${length} floats, ${extra === 1 ? 'mean' : 'sum'})`;
  if (kind === Kind.broadcast) return `${name}(${length} floats, root ${extra})`;
  return `${name}()`;
}

/**
 * The ring algorithms of one rank, run synchronously on its progress thread (Atomics.wait blocks, which
 * browsers allow only off the main thread). Every wait is bounded by `timeoutMs`; a timeout, or calls
 * that differ between ranks, abort the world for everyone.
 */
export class Ring {
  private readonly n: number;
  private readonly left: number;
  private readonly right: number;
  /** The ranks a wait watches for an exit: a neighbour's data, or anyone's commit vote. */
  private readonly leftOnly: readonly number[];
  private readonly rightOnly: readonly number[];
  private readonly others: readonly number[];
  /** Messages written into right's inbox, and consumed from ours: mirrors of the shared counters, which only we write. */
  private sent = 0;
  private taken = 0;
  /** The vote count (mod 2^30) that ends our last commit: k × N after our k-th. */
  private commitTarget = 0;

  constructor(private readonly mem: CommMemory, readonly rank: number, readonly timeoutMs: number) {
    this.n = mem.worldSize;
    this.left = mod(rank - 1, this.n);
    this.right = mod(rank + 1, this.n);
    this.leftOnly = [this.left];
    this.rightOnly = [this.right];
    this.others = Array.from({ length: this.n - 1 }, (_, i) => mod(rank + 1 + i, this.n));
    this.sent = Atomics.load(mem.words, mem.at(this.right, R_SENT_INTO));
    this.taken = Atomics.load(mem.words, mem.at(rank, R_TAKEN));
  }

  /** Runs one collective; throws RingAborted if the world is or becomes aborted. */
  run(op: RingOp): void {
    if (this.mem.aborted()) throw new RingAborted();
    this.mem.setIssued(this.rank, op.seq);
    if (this.n === 1) {
      return; // a sum or mean over one rank is the identity, a broadcast from oneself a no-op
    }
    if (op.kind === Kind.broadcast) this.broadcast(op);
    else if (op.kind === Kind.commit) this.commit(op);
    else this.allReduce(op); // a barrier is an all-reduce of nothing: the messages still go round
  }

  private allReduce(op: RingOp): void {
    const { n, rank } = this;
    const data = op.data, total = data.length, piece = n * this.mem.slotFloats;
    let p0 = 0;
    do {
      const size = Math.min(piece, total - p0), seg = Math.ceil(size / n);
      const from = (j: number) => p0 + Math.min(size, mod(j, n) * seg);
      const to = (j: number) => p0 + Math.min(size, (mod(j, n) + 1) * seg);
      // reduce-scatter: after step s, segment r - s - 1 holds the sum of s + 2 ranks
      // (the last step's receive, which completes segment r + 1, also divides it for a mean)
      for (let s = 0; s < n - 1; s++) {
        this.send(op, from(rank - s), to(rank - s));
        this.receive(op, from(rank - s - 1), to(rank - s - 1), s < n - 2 || op.extra !== 1 ? ADD : ADD_DIVIDE);
      }
      // all-gather: the owner of each finished segment passes it round
      for (let s = 0; s < n - 1; s++) {
        this.send(op, from(rank + 1 - s), to(rank + 1 - s));
        this.receive(op, from(rank - s), to(rank - s), COPY);
      }
      p0 += piece;
    } while (p0 < total);
  }

  /** A pipeline from the root round the ring, a slot at a time; the last rank before the root only receives. */
  private broadcast(op: RingOp): void {
    const pos = mod(this.rank - op.extra, this.n), total = op.data.length, chunk = this.mem.slotFloats;
    let c0 = 0;
    do {
      const c1 = Math.min(total, c0 + chunk);
      if (pos !== 0) this.receive(op, c0, c1, COPY);
      if (pos !== this.n - 1) this.send(op, c0, c1);
      c0 += chunk;
    } while (c0 < total);
  }

  /** Votes, and returns once every rank has (see Commit above); throws RingAborted if the commit fails. */
  private commit(op: RingOp): void {
    const { mem } = this, target = this.commitTarget = (this.commitTarget + this.n) & VOTES;
    // The count runs at most N votes ahead of or behind target, so a 30-bit difference tells which side it is on.
    const reached = (count: number) => ((count - target) << 2) >> 2 >= 0;
    // A refused vote means the world is aborted already (fail() seals after it claims the abort).
    if (!mem.vote()) throw new RingAborted();
    try {
      // Any rank's exit, not only a neighbour's: a vote can be missing from each of them.
      this.waitFor(() => reached(mem.votes()), this.others, op, () => this.checkNoCallHere(op));
    } catch (e) {
      // Given up (an abort, an exit, a timeout): the count as sealed decides, the same on every rank.
      if (!(e instanceof RingAborted) || !reached(mem.seal())) throw e;
    }
  }

  /**
   * Aborts the world if our left neighbour has made another call than our commit as call #op.seq: a commit sends
   * nothing, so a message for this call in our inbox is from another kind of call.
   */
  private checkNoCallHere(op: RingOp): void {
    const { mem, rank, left } = this, w = mem.words;
    if (((Atomics.load(w, mem.at(rank, R_SENT_INTO)) - this.taken) | 0) <= 0) return;
    const h = mem.inbox(rank, this.taken & (SLOTS_PER_LINK - 1)).header;
    if (w[h] !== op.seq) return; // a later call: the neighbour has seen every vote and gone on
    mem.fail(left, `call #${op.seq} differs between ranks: rank ${left} called ${describeCall(w[h + 1]!, w[h + 2]!, w[h + 3]!)} where rank ${rank} called commit(); every rank must make the same calls in the same order`);
    throw new RingAborted();
  }

  private send(op: RingOp, a: number, b: number): void {
    const { mem, right } = this, m = this.sent, taken = mem.at(right, R_TAKEN);
    this.waitFor(() => ((m - Atomics.load(mem.words, taken)) | 0) < SLOTS_PER_LINK, this.rightOnly, op);
    const slot = mem.inbox(right, m & (SLOTS_PER_LINK - 1)), w = mem.words, h = slot.header;
    w[h] = op.seq; w[h + 1] = op.kind; w[h + 2] = op.data.length; w[h + 3] = op.extra; w[h + 4] = b - a;
    slot.data.set(op.data.subarray(a, b));
    this.sent = (m + 1) | 0;
    Atomics.store(w, mem.at(right, R_SENT_INTO), this.sent); // publishes the plain writes above
    mem.ring(right);
  }

  private receive(op: RingOp, a: number, b: number, how: typeof COPY | typeof ADD | typeof ADD_DIVIDE): void {
    const { mem, left, rank } = this, m = this.taken, sentInto = mem.at(rank, R_SENT_INTO);
    this.waitFor(() => ((Atomics.load(mem.words, sentInto) - m) | 0) > 0, this.leftOnly, op);
    const slot = mem.inbox(rank, m & (SLOTS_PER_LINK - 1)), w = mem.words, h = slot.header;
    if (w[h] !== op.seq || w[h + 1] !== op.kind || w[h + 2] !== op.data.length || w[h + 3] !== op.extra || w[h + 4] !== b - a) {
      const theirs = w[h] === op.seq ? `called ${describeCall(w[h + 1]!, w[h + 2]!, w[h + 3]!)}` : `was at call #${w[h]}`;
      mem.fail(left, `call #${op.seq} differs between ranks: rank ${left} ${theirs} where rank ${rank} called ${describeCall(op.kind, op.data.length, op.extra)}; every rank must make the same calls in the same order`);
      throw new RingAborted();
    }
    const d = op.data.subarray(a, b), s = slot.data, n = b - a;
    if (how === COPY) d.set(s.subarray(0, n));
    else if (how === ADD) for (let i = 0; i < n; i++) d[i] = d[i]! + s[i]!;
    else for (let i = 0, k = this.n; i < n; i++) d[i] = Math.fround(d[i]! + s[i]!) / k; // round the sum to f32 before dividing
    this.taken = (m + 1) | 0;
    Atomics.store(w, mem.at(rank, R_TAKEN), this.taken);
    mem.ring(left);
  }

  /**
   * Sleeps on our doorbell until `ready()`, the world aborts, one of `peers` ends, `check()` throws, or timeoutMs
   * passes; throws RingAborted in all but the first case.
   */
  private waitFor(ready: () => boolean, peers: readonly number[], op: RingOp, check?: () => void): void {
    // A short spin first: a neighbour is usually microseconds away, and a sleep costs tens of them to wake from.
    for (let i = 0; i < SPIN; i++) if (ready()) return;
    const { mem } = this, bell = mem.at(this.rank, R_DOORBELL), deadline = performance.now() + this.timeoutMs;
    for (;;) {
      // Read the doorbell before the condition: a change after this read also changes the doorbell, so the wait returns at once.
      const seen = Atomics.load(mem.words, bell);
      if (ready()) return;
      if (mem.aborted()) throw new RingAborted();
      check?.();
      for (const peer of peers) {
        const code = mem.exitCode(peer);
        if (code === null) continue;
        mem.fail(peer, `rank ${peer} exited with code ${code} while rank ${this.rank} waited for it in ${KIND_NAMES[op.kind]} #${op.seq}`);
        throw new RingAborted();
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        const culprit = this.laggard(op.seq) ?? peers[0]!;
        mem.fail(culprit, `rank ${this.rank} timed out after ${this.timeoutMs} ms waiting for rank ${culprit} in ${KIND_NAMES[op.kind]} #${op.seq}`);
        throw new RingAborted();
      }
      Atomics.wait(mem.words, bell, seen, Math.min(left, WAIT_SLICE_MS));
    }
  }

  /** The first rank that has not started call #seq: in a ring we wait on a neighbour, but the rank holding everyone up may be further round. */
  private laggard(seq: number): number | null {
    for (let r = 0; r < this.n; r++) if (r !== this.rank && ((this.mem.issued(r) - seq) | 0) < 0) return r;
    return null;
  }
}

/** What a training thread posts to its progress thread. */
export type ProgressRequest =
  | { t: 'init'; sab: SharedArrayBuffer; rank: number; timeoutMs: number }
  /** `buffer`, `offset` and `length` locate the data (shared memory) that the collective changes in place. */
  | { t: 'op'; seq: number; kind: Kind; extra: number; buffer: SharedArrayBuffer; offset: number; length: number };

/**
 * What a progress thread posts back: 'ready' once, then one 'done' or 'failed' per op, in order, with its time in ms;
 * 'done' also says when the op started and ended, in ms on the clock every thread shares (performance.timeOrigin +
 * performance.now(): each thread's performance.now() has its own origin).
 */
export type ProgressReply = { t: 'ready' } | { t: 'done'; seq: number; ms: number; startedAt: number; endedAt: number } | { t: 'failed'; seq: number; ms: number };

/** performance.now() on the clock that every thread of a process shares (ms). */
export function sharedNow(): number { return performance.timeOrigin + performance.now(); }
