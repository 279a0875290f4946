// SPDX-License-Identifier: MIT
// The JS side of the Wasm scalar adjoints: instantiates the module a transformed file embeds, and wraps
// each function's exported sweeps as `fwd($t, ...args, ...shadows)` / `rev($t, ...args, ...shadows, seed)`,
// the signatures of the JS sweeps, so that grad, valueAndGrad, gradcheck and JS callers in other modules use
// them unchanged. The calling convention is described in runtime-wasm/scalar/support.as.ts.
//
// Each forward sweep takes a frame (its own tape and argument copies in linear memory) and pushes the
// frame's number on the JS tape; the matching reverse sweep pops it, so nested and interleaved gradients
// (a gradient inside a custom derivative, a JS caller running two Wasm callees) never share state.
import type { DirectGradient } from './registry.js';
import type { Tape } from './tape.js';

type Exports = Record<string, any> & { memory: WebAssembly.Memory };

/** A Wasm tape holds at most this many values (8 bytes each) unless `setWasmTapeLimit` says otherwise. */
export const WASM_TAPE_LIMIT = 1 << 26;
let tapeLimit = WASM_TAPE_LIMIT;
const live: ScalarWasmModule[] = [];
const byBytes = new Map<string, ScalarWasmModule>();

/** Thrown by the module's `abort` import; turned into a sentence that names the function by the glue. */
class WasmAbort extends Error {}

/** The message of a lowered `throw` statement (THROWN in transformer/passes/assemblyscript.ts). */
const THROWN = 'pullback:throw';

export class ScalarWasmModule {
  readonly exports?: Exports;
  /** Why the module could not be instantiated here (the functions then stay on JS). */
  readonly error?: string;
  private stageView = new Float64Array(0);
  private stageCap = 0;
  private free: number[] = [];
  private next = 0;
  private inUse = 0;
  private calls = 0;

  constructor(readonly file: string, base64: string) {
    try {
      const bytes = decode(base64);
      const memory = () => this.exports!.memory;
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
        env: {
          abort(msg: number, file: number, line: number, col: number) {
            throw new WasmAbort(`${readString(memory(), msg)} (${readString(memory(), file)}:${line}:${col})`);
          },
        },
      });
      this.exports = instance.exports as Exports;
      this.exports.$setLimit(tapeLimit);
      live.push(this);
    } catch (e) {
      this.error = `its Wasm module could not be instantiated here (${(e as Error).message})`;
    }
  }

  /**
   * The staging buffer, with room for n values (at least one). A view of a memory that has grown since is
   * detached and has length 0, so the length test alone notices both.
   */
  stage(n: number): Float64Array {
    if (this.stageView.length >= n && this.stageView.length > 0) return this.stageView;
    const mem = this.exports!.memory;
    const cap = Math.max(n, this.stageCap, 1);
    const ptr = this.exports!.$stagePtr(cap) as number;
    this.stageCap = cap;
    this.stageView = new Float64Array(mem.buffer, ptr, cap);
    return this.stageView;
  }

  /**
   * A view of slot k of frame `id`, with room for n values, to write an argument or adjoint into or read one
   * from. Kept between calls, and used without asking the module again while its length is n: a slot moves only
   * when its length changes, and every slot is sized here before a sweep runs (`stage` sizes both slots of each
   * array, so the forward wrapper's own sizing never moves one), so a view of the asked length is the slot's.
   * A view of a memory that has grown since is detached and has length 0, which the length test notices too;
   * a slot of length 0 is asked for every time.
   */
  slot(id: number, k: number, n: number): Float64Array {
    const views = (this.slotViews[id] ??= []);
    const v = views[k];
    if (v !== undefined && v.length === n && n !== 0) return v;
    const ptr = this.exports!.$arg(id, k, n) as number;
    return (views[k] = new Float64Array(this.exports!.memory.buffer, ptr, n));
  }

  private slotViews: Float64Array[][] = [];

  take(): number {
    this.inUse++;
    return this.free.pop() ?? this.next++;
  }

  release(id: number): void {
    this.inUse--;
    this.free.push(id);
    // The minimal AssemblyScript runtime collects only when asked, and only between calls; $collect does
    // nothing when no sweep allocated since the last time.
    if (this.inUse === 0 && (++this.calls & 63) === 0) this.exports!.$collect();
  }

  failure(e: unknown, name: string, rerun?: () => unknown): unknown {
    if (e instanceof WasmAbort && e.message.startsWith(THROWN)) {
      // A lowered throw: the JS primal on the same arguments throws the user's own error.
      if (rerun) {
        try { rerun(); } catch (user) { return user; }
        return new Error(`pullback: the Wasm sweeps of ${name} reached a throw statement that its JS primal does not reach with these arguments ` +
          '(a throw in a custom derivative?); build with wasm: false to see its message');
      }
      return new Error(`pullback: the Wasm reverse sweep of ${name} reached a throw statement (in a custom derivative); its message is ` +
        'only available on the JS adjoint: build with wasm: false to see it');
    }
    if (e instanceof WasmAbort) {
      if (e.message.startsWith('pullback:tape-full')) {
        return new Error(`pullback: the Wasm tape of ${name} is full (${this.exports!.$fullLength()} values recorded, limit ${tapeLimit}). ` +
          'The forward sweep records one value per overwritten variable per iteration: reduce the trip count, raise the limit ' +
          'with setWasmTapeLimit, or split the computation and chain the pullbacks with vjp.');
      }
      return new Error(`pullback: the Wasm adjoint of ${name} stopped: ${e.message}. The JS adjoint reads such an element as NaN; ` +
        'fix the index, or build with wasm: false to compare.');
    }
    if (e instanceof WebAssembly.RuntimeError) return new Error(`pullback: the Wasm adjoint of ${name} failed: ${e.message} (linear memory exhausted?)`);
    return e;
  }
}

/** The module of a transformed file (generated code calls this once per file). */
export function wasmModule(file: string, base64: string): ScalarWasmModule {
  let m = byBytes.get(base64);
  if (!m) byBytes.set(base64, (m = new ScalarWasmModule(file, base64)));
  return m;
}

/** Sets the number of values a Wasm tape may hold (all modules, present and future). */
export function setWasmTapeLimit(values: number): void {
  if (!Number.isInteger(values) || values < 1024 || values > 1 << 26) throw new Error(`pullback: the Wasm tape limit must be an integer between 1024 and 2^26 values (512 MiB), got ${values}`);
  tapeLimit = values;
  for (const m of live) m.exports!.$setLimit(values);
}

type Sweep = (this: unknown, t: Tape, ...args: any[]) => any;
type Export = (...xs: number[]) => number;

/** f(...a) without `apply` for the usual argument counts. */
function callWith(f: Export, a: number[]): number {
  switch (a.length) {
    case 1: return f(a[0]!);
    case 2: return f(a[0]!, a[1]!);
    case 3: return f(a[0]!, a[1]!, a[2]!);
    case 4: return f(a[0]!, a[1]!, a[2]!, a[3]!);
    case 5: return f(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!);
    case 6: return f(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!);
    default: return f.apply(null, a);
  }
}

/** Below this length a JS loop copies faster than `set`, a call into the engine. */
const SMALL = 32;

/** dst[0, n) = src[0, n). */
function copy(dst: Float64Array, src: Float64Array | number[], n: number): void {
  if (n < SMALL) for (let k = 0; k < n; k++) dst[k] = src[k]!;
  else if (n === src.length) dst.set(src);
  else dst.set(src instanceof Float64Array ? src.subarray(0, n) : src.slice(0, n));
}

/**
 * A new array with the values of `src`, the gradient grad returns. Up to 8 values (64 bytes) V8 keeps the
 * array on its heap and a loop fills it fastest; past that, `slice` is one call into the engine, where `new`
 * then `set` are two and zero the buffer first (100 values, best of six runs: 0.32 against 0.35 µs; the
 * allocation is a third of a gradient of that size, and varies with the collector's state).
 */
function copyOut(src: Float64Array): Float64Array {
  const n = src.length;
  if (n > 8) return src.slice();
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) out[k] = src[k]!;
  return out;
}

/** A gradient read from its slot: copied into `out` when given, else into a new array. */
function deliver(g: Float64Array, out: Float64Array | undefined): Float64Array {
  if (!out) return copyOut(g);
  copy(out, g, g.length);
  return out;
}

/**
 * fwd/rev over module `m`'s exports for the function generated with `prefix`; for the gradient sweeps also
 * `direct`, which runs both at once (see DirectGradient).
 */
export function wasmSweeps(m: ScalarWasmModule, prefix: string, name: string, params: readonly ('num' | 'arr')[], gradient = false, primal?: Function): { fwd: Sweep; rev: Sweep; direct?: DirectGradient; valueOne?: (x: Float64Array | number[]) => [number, Float64Array] } {
  // gradient: the sweeps grad runs ($gfwd$w/$grev$w), which return the arrays' adjoints only, and whose
  // adjoints start from zero (grad hands them new arrays): the caller's are not copied in.
  const F = m.exports![`${prefix}$${gradient ? 'g' : ''}fwd$w`] as Export;
  const R = m.exports![`${prefix}$${gradient ? 'g' : ''}rev$w`] as Export;
  if (typeof F !== 'function' || typeof R !== 'function') throw new Error(`pullback internal error: the Wasm module of ${m.file} has no sweeps for ${name}`);
  // Both gradient sweeps in one call, with the seed 1 (modules built before it had $grad$w run F, then R).
  const G = gradient ? (m.exports![`${prefix}$grad$w`] as Export | undefined) : undefined;
  const arr: number[] = [], num: number[] = [];
  params.forEach((k, i) => (k === 'arr' ? arr : num).push(i));
  const nA = arr.length, nN = num.length, nP = params.length, nOut = gradient ? 0 : nN;
  /** Array parameter i's position among the array parameters (its slots are 2j and 2j + 1). */
  const arrayIndex = params.map((_, i) => arr.indexOf(i));
  const fa = new Array<number>(1 + nA + nN).fill(0);
  const ra = new Array<number>(2 + nN).fill(0);
  /** Copies the arguments `args[at + i]` into frame `id`, and sets the forward sweep's export arguments in `fa`. */
  function stage(id: number, args: ArrayLike<unknown>, at: number): void {
    fa[0] = id;
    for (let j = 0; j < nA; j++) {
      const x = args[at + arr[j]!] as Float64Array | number[];
      const n = x.length;
      // Written at once: sizing the next slot may grow the memory and detach this view.
      copy(m.slot(id, 2 * j, n), x, n);
      m.slot(id, 2 * j + 1, n); // the adjoint's slot, sized here so that the cached views stay right (see slot)
      fa[1 + j] = n;
    }
    for (let j = 0; j < nN; j++) fa[1 + nA + j] = args[at + num[j]!] as number;
  }
  function fwd(this: unknown, t: Tape): number {
    const id = m.take();
    let v: number;
    try {
      stage(id, arguments, 1);
      v = callWith(F, fa);
    } catch (e) {
      m.release(id);
      const self = this, args = Array.prototype.slice.call(arguments, 1, 1 + nP);
      throw m.failure(e, name, primal && (() => primal.apply(self, args)));
    }
    t.push(id);
    return v;
  }
  function rev(this: unknown, t: Tape): number | undefined {
    const id = t.pop();
    ra[0] = id;
    for (let j = 0; j < nN; j++) ra[1 + j] = arguments[1 + num[j]!];
    ra[1 + nN] = arguments[1 + nP + nA];
    // The reverse sweep adds to the adjoints of the array arguments, and only adds (a function that writes into
    // an argument stays on JS): it starts from zero in the slots the forward sweep sized, and what it added is
    // added to the caller's arrays after. Copying the caller's adjoints in and back out instead loses additions
    // when two arguments are views of one array (f(y.subarray(1, 3), y.subarray(0, 2))): the second copy out
    // overwrites the first.
    if (!gradient) for (let j = 0; j < nA; j++) m.slot(id, 2 * j + 1, (arguments[1 + arr[j]!] as ArrayLike<number>).length).fill(0);
    let r: number;
    try {
      r = callWith(R, ra);
    } catch (e) {
      m.release(id);
      throw m.failure(e, name);
    }
    // (the sweep may have grown the memory: m.slot sees that). A shorter sink ($pb.EMPTY) drops what falls past its end.
    for (let j = 0; j < nA; j++) {
      const len = (arguments[1 + arr[j]!] as ArrayLike<number>).length;
      const s = arguments[1 + nP + j] as Float64Array;
      const n = Math.min(len, s.length);
      if (!n) continue;
      if (gradient) copy(s, m.slot(id, 2 * j + 1, len), n);
      else {
        const v = m.slot(id, 2 * j + 1, len);
        for (let k = 0; k < n; k++) s[k]! += v[k]!;
      }
    }
    if (nOut > 1) {
      const stage = m.stage(nOut);
      for (let j = 0; j < nOut; j++) t.d[j] = stage[j]!;
    }
    m.release(id);
    return nOut === 1 ? r : undefined;
  }
  /** Both gradient sweeps in one frame; the adjoint of array parameter `which` comes out as a new array. */
  function direct(args: ArrayLike<unknown>, which: number, out?: Float64Array): Float64Array {
    const id = m.take();
    try {
      stage(id, args, 0);
      if (G) callWith(G, fa);
      else {
        callWith(F, fa);
        ra[0] = id;
        for (let j = 0; j < nN; j++) ra[1 + j] = fa[1 + nA + j]!;
        ra[1 + nN] = 1;
        callWith(R, ra);
      }
      const j = arrayIndex[which]!;
      return deliver(m.slot(id, 2 * j + 1, fa[1 + j]!), out);
    } catch (e) {
      throw m.failure(e, name, primal && (() => primal(...Array.prototype.slice.call(args, 0, nP))));
    } finally {
      m.release(id);
    }
  }
  // f(x) of one array: the argument list, the export's and the frame's bookkeeping without loops or `arguments`
  // (Rosenbrock n = 100, grad into a given array: a fifth of the call). `body` runs the sweeps in a frame whose
  // slot 0 holds x and slot 1 is sized for its adjoint.
  const oneArray = <T, O>(x: Float64Array | number[], body: (id: number, n: number, o: O) => T, o: O): T => {
    const id = m.take();
    try {
      const n = x.length;
      copy(m.slot(id, 0, n), x, n);
      m.slot(id, 1, n);
      return body(id, n, o);
    } catch (e) {
      throw m.failure(e, name, primal && (() => primal(x)));
    } finally {
      m.release(id);
    }
  };
  if (gradient && G && nA === 1 && nN === 0) {
    const both = (id: number, n: number, out: Float64Array | undefined) => {
      G(id, n);
      return deliver(m.slot(id, 1, n), out);
    };
    (direct as DirectGradient).one = (x, out) => oneArray(x, both, out);
  }
  if (!gradient && nA === 1 && nN === 0) {
    // valueAndGrad of f(x): both general sweeps in one frame, without the JS tape or the copies of the
    // caller's adjoints in and out (Rosenbrock n = 10,000: 94 against 55 us for grad before it).
    const valueAndAdjoint = (id: number, n: number): [number, Float64Array] => {
      const v = F(id, n);
      m.slot(id, 1, n).fill(0); // the forward sweep may have grown the memory: m.slot sees that
      R(id, 1);
      return [v, copyOut(m.slot(id, 1, n))];
    };
    return { fwd, rev, valueOne: (x) => oneArray(x, valueAndAdjoint, undefined) };
  }
  return gradient ? { fwd, rev, direct } : { fwd, rev };
}

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const B = (globalThis as { Buffer?: { from(s: string, enc: string): Uint8Array<ArrayBuffer> } }).Buffer;
  if (B) return B.from(base64, 'base64');
  const s = atob(base64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** An AssemblyScript string (UTF-16, byte length in the header word before it). */
function readString(memory: WebAssembly.Memory, ptr: number): string {
  if (!ptr) return '';
  const len = new Uint32Array(memory.buffer, ptr - 4, 1)[0]! >>> 1;
  let s = '';
  const u = new Uint16Array(memory.buffer, ptr, len);
  for (let i = 0; i < len; i++) s += String.fromCharCode(u[i]!);
  return s;
}
