// SPDX-License-Identifier: MIT
// Support code of the AssemblyScript that pullback generates from scalar adjoints
// (transformer/passes/assemblyscript.ts). The transformer prepends this file to every generated module, so a
// module is one self-contained asc compilation. The JS glue that calls it is sdk/ad/wasm.ts.
//
// Calling convention. JS owns a numbered set of frames (one per forward sweep in flight, so nested and
// interleaved gradients each keep their own state). A frame holds a tape and the arrays of one call:
// slot 2j is the copy of the j-th array argument, slot 2j+1 its adjoint. JS asks `$arg(frame, 2j, length)`
// for the address of slot 2j and writes the argument there itself (one copy, no staging buffer), then calls
// `<f>$fwd$w(frame, lengths..., numbers...)`. For the reverse sweep it writes the caller's adjoints of the
// array arguments into slots 2j+1 the same way (the reverse sweep adds to them, as the JS sweep adds to the
// caller's arrays; grad's sweeps `<f>$grev$w` start from zero instead, without that copy) and calls
// `<f>$rev$w(frame, numbers..., seed)`; the array adjoints are then read from those slots, and the adjoints
// of the number parameters, when there are several, from the staging buffer. grad's direct path calls
// `<f>$grad$w(frame, lengths..., numbers...)` instead of the two gradient sweeps' wrappers: both sweeps in one
// call, with the seed 1. Slots are reused from call to call; they are reallocated only when a length changes.

/** Past this many values (8 bytes each) a tape refuses to grow: set from JS through `$setLimit`. */
let $limit: i32 = 1 << 26;
/** Length of the tape that hit the limit, for the JS error message. */
let $fullAt: i32 = 0;
const $EMPTY = new Float64Array(0);
/**
 * Whether anything may have become garbage since the last collection: scratch arrays of the sweeps (they
 * allocate through `$new`, `$copy`, `$view`) and buffers the support code replaced. `$collect` runs the
 * collector only then, so the sweeps of functions that allocate nothing never pay for it.
 */
let $garbage = false;

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
    else { this.refs.push(a); $garbage = true; }
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
    $garbage = true;
    this.f = next;
    this.end = next.length;
  }
}

class Frame {
  tape: Tape = new Tape();
  slots: Array<Float64Array> = new Array<Float64Array>(0);
}

/**
 * The gradients a custom rule of several arguments returns (`return [gx, gy]` in its source), by position:
 * numbers in $ruleD, arrays in $ruleA. The sweep that called the rule copies them out straight after the call.
 */
const $ruleD = new StaticArray<f64>(64);
const $ruleA = new StaticArray<Float64Array | null>(64);

const $frames = new Array<Frame>(0);
let $stage = new Float64Array(256);

/** The staging buffer's address, after making room for `n` values. */
export function $stagePtr(n: i32): usize {
  if ($stage.length < n) { $stage = new Float64Array(max(n, $stage.length << 1)); $garbage = true; }
  return $stage.dataStart;
}

export function $setLimit(n: i32): void {
  $limit = n;
}

export function $fullLength(): i32 {
  return $fullAt;
}

function $frameOf(id: i32): Frame {
  while ($frames.length <= id) $frames.push(new Frame());
  return unchecked($frames[id]);
}

// $frame and $slot run in every wrapper, several times per gradient: inlined, with the allocating part out of
// line. (V8 does not inline calls between Wasm functions; these calls were a fifth of a gradient of 2 values.)

/** The frame of a forward sweep, its tape emptied. */
@inline function $frame(id: i32): Frame {
  const fr = id < $frames.length ? unchecked($frames[id]) : $frameOf(id);
  const t = fr.tape;
  t.sp = 0;
  t.rp = 0;
  t.end = min(t.f.length, $limit);
  return fr;
}

function $frameAt(id: i32): Frame {
  return $frames[id];
}

/** Slot k of frame `fr`, with room for `len` values (a new array when its length changes). */
@inline function $slot(fr: Frame, k: i32, len: i32): Float64Array {
  const slots = fr.slots;
  if (k < slots.length) {
    const a = unchecked(slots[k]);
    if (a.length == len) return a;
  }
  return $resize(fr, k, len);
}

function $resize(fr: Frame, k: i32, len: i32): Float64Array {
  while (fr.slots.length <= k) fr.slots.push($EMPTY);
  let a = unchecked(fr.slots[k]);
  if (a.length != len) {
    a = new Float64Array(len);
    $garbage = true;
    unchecked(fr.slots[k] = a);
  }
  return a;
}

/** The address of slot k of frame `id`, with room for `len` values: JS writes an argument (or an adjoint) there. */
export function $arg(id: i32, k: i32, len: i32): usize {
  return $slot($frameOf(id), k, len).dataStart;
}

/** Zeroes an adjoint slot (grad's reverse sweeps, whose caller's adjoints are known to be zero). */
@inline function $zero(a: Float64Array): void {
  memory.fill(a.dataStart, 0, <usize>a.length << 3);
}

/** Runs the collector when something may have become garbage (JS calls this between gradients). */
export function $collect(): void {
  if (!$garbage) return;
  $garbage = false;
  __collect();
}

/** A scratch array of the sweeps (`new Float64Array(n)` of the source). */
function $new(n: i32): Float64Array {
  $garbage = true;
  return new Float64Array(n);
}

/** A view (`a.subarray(b, e)` of the source). */
function $view(a: Float64Array, b: i32, e: i32): Float64Array {
  $garbage = true;
  return a.subarray(b, e);
}

/**
 * What a sweep writes the adjoint of an array argument into when its caller passed `$pb.EMPTY` (the adjoint of
 * an argument nobody differentiates, inside a nested vjp or a directional derivative). JS drops writes to that
 * empty array; here the sweep's prologue swaps in this scratch array of the argument's length instead, so that
 * the element accesses keep their one bounds check (a check that let an empty array through made Rosenbrock's
 * reverse loop 1.65x slower: the repeated checks of one index no longer folded). What lands in it is never
 * read by anything else: an adjoint array only accumulates into itself.
 */
let $sinkArr: Float64Array = $EMPTY;
function $sinkFor(n: i32): Float64Array {
  if ($sinkArr.length != n) {
    $sinkArr = new Float64Array(n);
    $garbage = true;
  }
  return $sinkArr;
}

/** The adjoints of the number parameters, into the staging buffer. */
function $outD(t: Tape, n: i32): void {
  for (let i = 0; i < n; i++) unchecked($stage[i] = t.d[i]);
}

/**
 * Element access with one unsigned comparison as the bounds check (AssemblyScript's checked `a[i]` made
 * Rosenbrock's sweeps five times slower). Out of range is an Error here, where JS would read NaN. Indices are
 * i64: the integer locals of the sweeps (see passes/assemblyscript.ts) are, and a float index is truncated.
 */
@inline function $ld(a: Float64Array, i: i64): f64 {
  if (<u64>i >= <u64>a.length) { $outOfRange(i, a.length); unreachable(); }
  return load<f64>(a.dataStart + (<usize>i << 3));
}

@inline function $st(a: Float64Array, i: i64, v: f64): void {
  if (<u64>i >= <u64>a.length) { $outOfRange(i, a.length); unreachable(); }
  store<f64>(a.dataStart + (<usize>i << 3), v);
}

// (The `unreachable()` after the throwing call tells the optimizers that a passed check holds afterwards:
// the repeated checks of one index then fold, which halves the time of Rosenbrock's loop.)
//
// The same through an array's data pointer and length, which the sweeps keep in locals (`x$$p`, `x$$n`):
// a store into linear memory could alias the array's header as far as the optimizers know, so reading them
// from the header at every access would reload both after each store.
@inline function $ldc(p: usize, n: i64, i: i64): f64 {
  if (<u64>i >= <u64>n) { $outOfRange(i, <i32>n); unreachable(); }
  return load<f64>(p + (<usize>i << 3));
}

@inline function $stc(p: usize, n: i64, i: i64, v: f64): void {
  if (<u64>i >= <u64>n) { $outOfRange(i, <i32>n); unreachable(); }
  store<f64>(p + (<usize>i << 3), v);
}

/** a[i] += v with one bounds check (v is evaluated before a[i] is read: the printer uses it only where that is the same). */
@inline function $addc(p: usize, n: i64, i: i64, v: f64): void {
  if (<u64>i >= <u64>n) { $outOfRange(i, <i32>n); unreachable(); }
  const q = p + (<usize>i << 3);
  store<f64>(q, load<f64>(q) + v);
}

@inline function $subc(p: usize, n: i64, i: i64, v: f64): void {
  if (<u64>i >= <u64>n) { $outOfRange(i, <i32>n); unreachable(); }
  const q = p + (<usize>i << 3);
  store<f64>(q, load<f64>(q) - v);
}

function $outOfRange(i: i64, n: i32): void {
  throw new RangeError('index ' + i.toString() + ' is out of range for an array of length ' + n.toString());
}

/**
 * Whether a number argument is an integer small enough (|x| < 2^31) that i64 index arithmetic on it gives
 * what JS's doubles give: the wrappers then run the integer version of the sweeps (see IntVersion in the
 * transformer). NaN is not.
 */
@inline function $isInt(x: f64): bool {
  return Math.abs(x) <= 2147483647.0 && Math.floor(x) == x;
}

/** JS truthiness of a number: neither 0 nor NaN. */
@inline function $truthy(x: f64): bool {
  return x != 0 && x == x;
}

/** Grows a tape whose stack pointer a sweep keeps in a local; returns the (possibly moved) data pointer. */
function $grow(t: Tape, sp: i32): usize {
  t.sp = sp;
  t.grow();
  return t.f.dataStart;
}

function $addTo(dst: Float64Array, src: Float64Array): void {
  const n = min(dst.length, src.length);
  for (let i = 0; i < n; i++) unchecked(dst[i] += src[i]);
}

function $copy(a: Float64Array): Float64Array {
  $garbage = true;
  const b = new Float64Array(a.length);
  memory.copy(b.dataStart, a.dataStart, <usize>a.length << 3);
  return b;
}

/** Index of the first maximum (ties go to the first argument, as in the JS runtime). */
function $argmax(xs: StaticArray<f64>): f64 {
  $garbage = true;
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return <f64>best;
}

@inline function $argmax2(a: f64, b: f64): f64 {
  return b > a ? 1.0 : 0.0;
}

@inline function $argmax3(a: f64, b: f64, c: f64): f64 {
  return c > (b > a ? b : a) ? 2.0 : b > a ? 1.0 : 0.0;
}

@inline function $argmin2(a: f64, b: f64): f64 {
  return b < a ? 1.0 : 0.0;
}

@inline function $argmin3(a: f64, b: f64, c: f64): f64 {
  return c < (b < a ? b : a) ? 2.0 : b < a ? 1.0 : 0.0;
}

function $argmin(xs: StaticArray<f64>): f64 {
  $garbage = true;
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] < xs[best]) best = i;
  return <f64>best;
}
