// SPDX-License-Identifier: MIT
// Support code of the AssemblyScript that pullback generates from scalar adjoints
// (transformer/passes/assemblyscript.ts). The transformer prepends this file to every generated module, so a
// module is one self-contained asc compilation. The JS glue that calls it is sdk/ad/wasm.ts.
//
// Calling convention. JS owns a numbered set of frames (one per forward sweep in flight, so nested and
// interleaved gradients each keep their own state). A frame holds a tape and the arrays of one call:
// slot 2j is the copy of the j-th array argument, slot 2j+1 its adjoint. JS writes the array arguments,
// one after the other, into the staging buffer, calls `<f>$fwd$w(frame, lengths..., numbers...)`, and
// later `<f>$rev$w(frame, numbers..., seed)`, which leaves the array adjoints (then the adjoints of the
// number parameters, when there are several) in the staging buffer. Slots and the staging buffer are reused
// from call to call; they are reallocated only when a length changes.

/** Past this many values (8 bytes each) a tape refuses to grow: set from JS through `$setLimit`. */
let $limit: i32 = 1 << 26;
/** Length of the tape that hit the limit, for the JS error message. */
let $fullAt: i32 = 0;
const $EMPTY = new Float64Array(0);

/** The tape of one sweep pair: a stack of f64 (overwritten values, branches, trip counts) and one of arrays. */
class Tape {
  f: Float64Array = new Float64Array(1024);
  /** min(f.length, $limit): where `push` must stop and ask `grow` (set per call, the limit may change). */
  end: i32 = 1024;
  sp: i32 = 0;
  refs: Array<Float64Array> = new Array<Float64Array>(0);
  rp: i32 = 0;
  /** Adjoints of a callee's number parameters, when it has more than one (the generated `$rev` writes them). */
  d: Float64Array = new Float64Array(64);

  @inline push(v: f64): void {
    if (this.sp >= this.end) this.grow();
    unchecked(this.f[this.sp++] = v);
  }

  @inline pop(): f64 {
    return unchecked(this.f[--this.sp]);
  }

  @inline popInt(): f64 {
    return unchecked(this.f[--this.sp]);
  }

  pushRef(a: Float64Array): void {
    if (this.rp < this.refs.length) unchecked(this.refs[this.rp] = a);
    else this.refs.push(a);
    this.rp++;
  }

  popRef(): Float64Array {
    return unchecked(this.refs[--this.rp]);
  }

  grow(): void {
    const n = this.f.length;
    if (this.sp >= $limit) {
      $fullAt = this.sp;
      throw new Error('pullback:tape-full');
    }
    if (this.sp < n) {
      this.end = min(n, $limit);
      return;
    }
    const next = new Float64Array(min(n << 1, $limit));
    memory.copy(next.dataStart, this.f.dataStart, <usize>n << 3);
    this.f = next;
    this.end = next.length;
  }
}

class Frame {
  tape: Tape = new Tape();
  slots: Array<Float64Array> = new Array<Float64Array>(0);
}

const $frames = new Array<Frame>(0);
let $stage = new Float64Array(256);

/** The staging buffer's address, after making room for `n` values. */
export function $stagePtr(n: i32): usize {
  if ($stage.length < n) $stage = new Float64Array(max(n, $stage.length << 1));
  return $stage.dataStart;
}

export function $setLimit(n: i32): void {
  $limit = n;
}

export function $fullLength(): i32 {
  return $fullAt;
}

function $frame(id: i32): Frame {
  while ($frames.length <= id) $frames.push(new Frame());
  const fr = unchecked($frames[id]);
  fr.tape.sp = 0;
  fr.tape.rp = 0;
  fr.tape.end = min(fr.tape.f.length, $limit);
  return fr;
}

function $frameAt(id: i32): Frame {
  return $frames[id];
}

function $slot(fr: Frame, k: i32, len: i32): Float64Array {
  while (fr.slots.length <= k) fr.slots.push($EMPTY);
  let a = unchecked(fr.slots[k]);
  if (a.length != len) {
    a = new Float64Array(len);
    unchecked(fr.slots[k] = a);
  }
  return a;
}

/** Slot k, holding `len` values copied from the staging buffer at `off`. */
function $in(fr: Frame, k: i32, len: i32, off: i32): Float64Array {
  const a = $slot(fr, k, len);
  memory.copy(a.dataStart, $stage.dataStart + (<usize>off << 3), <usize>len << 3);
  return a;
}

/** Slot k, zeroed: the adjoint of an array argument. */
function $zero(fr: Frame, k: i32, len: i32): Float64Array {
  const a = $slot(fr, k, len);
  memory.fill(a.dataStart, 0, <usize>len << 3);
  return a;
}

/** Copies `a` into the staging buffer at `off`; returns the offset after it. */
function $out(a: Float64Array, off: i32): i32 {
  memory.copy($stage.dataStart + (<usize>off << 3), a.dataStart, <usize>a.length << 3);
  return off + a.length;
}

function $outD(t: Tape, n: i32, off: i32): void {
  for (let i = 0; i < n; i++) unchecked($stage[off + i] = t.d[i]);
}

/**
 * Element access with one unsigned comparison as the bounds check (AssemblyScript's checked `a[i]` made
 * Rosenbrock's sweeps five times slower). Out of range is an Error here, where JS would read NaN.
 */
@inline function $ld(a: Float64Array, i: i32): f64 {
  if (<u32>i >= <u32>a.length) $outOfRange(i, a.length);
  return unchecked(a[i]);
}

@inline function $st(a: Float64Array, i: i32, v: f64): void {
  if (<u32>i >= <u32>a.length) $outOfRange(i, a.length);
  unchecked(a[i] = v);
}

function $outOfRange(i: i32, n: i32): void {
  throw new RangeError('index ' + i.toString() + ' is out of range for an array of length ' + n.toString());
}

function $addTo(dst: Float64Array, src: Float64Array): void {
  const n = min(dst.length, src.length);
  for (let i = 0; i < n; i++) unchecked(dst[i] += src[i]);
}

function $copy(a: Float64Array): Float64Array {
  const b = new Float64Array(a.length);
  memory.copy(b.dataStart, a.dataStart, <usize>a.length << 3);
  return b;
}

/** Index of the first maximum (ties go to the first argument, as in the JS runtime). */
function $argmax(xs: StaticArray<f64>): f64 {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return <f64>best;
}

function $argmin(xs: StaticArray<f64>): f64 {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] < xs[best]) best = i;
  return <f64>best;
}
