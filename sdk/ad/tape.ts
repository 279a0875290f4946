// SPDX-License-Identifier: MIT
// The tape shared by a forward sweep and its reverse sweep: a stack of numbers (overwritten values, branch
// choices, trip counts) in a growable Float64Array, and a stack of references (overwritten arrays).
// The reverse sweep only moves the stack pointers down; it never erases, so a pullback can run again.

/** Past this many numbers (8 GiB of f64) the tape refuses to grow rather than exhausting memory. */
export const TAPE_LIMIT = 1 << 30;

export class Tape {
  f = new Float64Array(4096);
  sp = 0;
  refs: unknown[] = [];
  rp = 0;
  /** Adjoints of a callee's number parameters, when it has more than one (see the generated `$rev`). */
  d: number[] = [];
  limit = TAPE_LIMIT;

  push(v: number): void {
    if (this.sp === this.f.length) this.grow();
    this.f[this.sp++] = v;
  }

  /** Makes room for `n` more values (a loop's records, counted before it runs): `put` then needs no check. */
  reserve(n: number): void {
    while (this.sp + n > this.f.length) this.grow();
  }

  /** Records a value in room made by `reserve`. */
  put(v: number): void {
    this.f[this.sp++] = v;
  }

  pop(): number {
    return this.f[--this.sp]!;
  }

  /**
   * Pops a value recorded from an integer (a loop counter, a trip count) as a small integer when it is one,
   * so that V8 keeps indexing with it on its fast path instead of converting a double at every access.
   */
  popInt(): number {
    const v = this.f[--this.sp]!;
    const i = v | 0;
    return i === v ? i : v;
  }

  pushRef(o: unknown): void {
    this.refs[this.rp++] = o;
  }

  popRef<T>(): T {
    return this.refs[--this.rp] as T;
  }

  private grow(): void {
    const n = this.f.length * 2;
    if (n > this.limit) {
      throw new Error(`pullback: the tape is full (${this.f.length} values recorded, limit ${this.limit}). ` +
        'The forward sweep records one value per overwritten variable per iteration: reduce the trip count, ' +
        'or split the computation and chain the pullbacks with vjp.');
    }
    const next = new Float64Array(n);
    next.set(this.f);
    this.f = next;
  }

  reset(): void {
    this.sp = 0;
    if (this.rp !== 0 || this.refs.length !== 0) {
      this.rp = 0;
      this.refs.length = 0; // let recorded arrays be collected
    }
  }
}

const pool: Tape[] = [];

/** A tape for one gradient evaluation; re-entrant (a gradient inside a custom derivative gets its own). */
export function acquireTape(): Tape {
  return pool.pop() ?? new Tape();
}

export function releaseTape(t: Tape): void {
  t.reset();
  if (pool.length < 8) pool.push(t);
}
