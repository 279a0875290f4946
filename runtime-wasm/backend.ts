// SPDX-License-Identifier: MIT
// The CPU backend of the op table (issue 6, first slice): tensors live in the Wasm kernels' linear memory
// (runtime-wasm/kernels.ts) and the op table's ops run as the AssemblyScript SIMD kernels where one fits
// (unary and binary f32 arithmetic with broadcasting, matmul with its flags / bias / activation, sums,
// logsumexp, softmax, log-softmax, softmax cross-entropy, conv2d and both backwards, attention as GEMMs over
// materialised scores). Data movement and what the kernels do not cover (i32 arithmetic, pow, comparisons,
// where, max with argmax, casts, layerNorm, maxPool2d, layout ops, gather / scatterAdd) run as plain loops
// over the same linear memory: no copies to the host. Every op of the table has a kernel today; an op
// without one must be absent from `kernels`, so that `run` fails naming the op and the backend.
// f16 tensors (only cast makes or reads them) hold f32 values rounded to f16, 4 bytes each.
//
// Memory: every op output owns a pooled buffer (CpuKernels' size-class allocator); reshape shares it
// (reference counted). Free with `t.dispose()`, or run code under `backend.tidy(fn)`, which frees every tensor
// made inside fn except those reachable from its result.
//
// Example:
//   const be = await wasmBackend();
//   const a = be.upload(host([1, 2, 3, 4], [2, 2]));
//   const [c] = run(be, 'matmul', [a, a], { transB: true });
//   be.download(c!); // HostTensor [2, 2]
import { OpError, broadcastStrides, normAxes, size, strides, type DType, type Meta, type Shape } from '../runtime-gpu/shape.js';
import { type HostTensor, roundTo } from '../runtime-gpu/host.js';
import type { Backend, BinaryFn, Kernel, OpName, Pair, UnaryFn } from '../runtime-gpu/ops/types.js';
import { pair } from '../runtime-gpu/ops/util.js';
import { type BufferRef, type CpuKernels, type LoadOptions, type MemoryStats, type UnaryOp, UNARY_BACKWARD_SAVES, loadCpuKernels } from './kernels.js';

interface Storage { buf: BufferRef | null; refs: number }

/** A dense row-major tensor in the Wasm linear memory of one backend. f16 values are held as f32 rounded to f16. */
export class CpuTensor implements Meta {
  readonly size: number;
  /** @internal */
  constructor(private readonly owner: CpuKernels, readonly shape: readonly number[], readonly dtype: DType, private readonly storage: Storage) {
    this.size = size(shape);
  }
  /** The buffer (throws once disposed). */
  get buf(): BufferRef {
    const b = this.storage.buf;
    if (!b || this.dead) throw new Error(`wasm backend: tensor ${this.dtype}[${this.shape.join(', ')}] was used after dispose()`);
    return b;
  }
  private dead = false;
  get disposed(): boolean { return this.dead; }
  /** Frees the buffer once no reshaped view of it is left; disposing twice does nothing. */
  dispose(): void {
    if (this.dead) return;
    this.dead = true;
    if (--this.storage.refs === 0 && this.storage.buf) { this.owner.free(this.storage.buf); this.storage.buf = null; }
  }
  /** @internal */
  view(shape: readonly number[]): CpuTensor {
    this.storage.refs++;
    return new CpuTensor(this.owner, [...shape], this.dtype, this.storage);
  }
}

export interface WasmBackend extends Backend<CpuTensor> {
  /** The kernel layer (allocator, memoryStats, raw kernels). */
  readonly cpu: CpuKernels;
  /** A new tensor holding the host tensor's values (rounded to its dtype). */
  upload(h: HostTensor): CpuTensor;
  /** A host copy of the tensor's values. */
  download(t: CpuTensor): HostTensor;
  /** Runs fn, then disposes every tensor created inside it that its result (arrays and objects searched) does not hold. */
  tidy<R>(fn: () => R): R;
  memoryStats(): MemoryStats;
}

export interface WasmBackendOptions extends LoadOptions {
  /** An already loaded kernel instance to use instead of loading one. */
  kernels?: CpuKernels;
}

const UNARY_MAP: Record<Exclude<UnaryFn, 'rsqrt'>, UnaryOp> = {
  neg: 'neg', exp: 'exp', log: 'log', sqrt: 'sqrt', tanh: 'tanh', sigmoid: 'sigmoid', relu: 'relu', gelu: 'gelu_tanh', abs: 'abs',
};
const KERNEL_BINARY = new Set<BinaryFn>(['add', 'sub', 'mul', 'div', 'max', 'min']);
const JS_BINARY: Record<BinaryFn, (a: number, b: number) => number> = {
  add: (a, b) => a + b, sub: (a, b) => a - b, mul: (a, b) => a * b, div: (a, b) => a / b, pow: (a, b) => a ** b,
  max: Math.max, min: Math.min,
  lt: (a, b) => (a < b ? 1 : 0), le: (a, b) => (a <= b ? 1 : 0), gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0), eq: (a, b) => (a === b ? 1 : 0), ne: (a, b) => (a !== b ? 1 : 0),
};

function reshapeShape(from: Shape, to: Shape): number[] {
  const s = [...to];
  const n = size(from);
  const unknown = s.indexOf(-1);
  if (unknown >= 0) s[unknown] = n / size(s.filter((_, i) => i !== unknown));
  if (size(s) !== n || s.some((d) => !Number.isInteger(d) || d < 0)) throw new OpError('reshape', `cannot reshape [${from.join(', ')}] to [${to.join(', ')}]`);
  return s;
}

/**
 * dst[dOff + Σ c_k dSt_k] = src[sOff + Σ c_k sSt_k] for every index c of `shape` (strided copy; strides may be 0
 * on the source side for broadcasting).
 */
function stridedCopy(src: ArrayLike<number>, sOff: number, sSt0: readonly number[], dst: { [i: number]: number }, dOff: number, dSt0: readonly number[], shape0: readonly number[]): void {
  const n = size(shape0);
  if (n === 0) return;
  // Merge axes that are contiguous on both sides (a slice of whole rows, concat along axis 0: one run), so that
  // the inner loop is as long as it can be; a long run between typed arrays of one kind is a native copy.
  const shape: number[] = [], sSt: number[] = [], dSt: number[] = [];
  shape0.forEach((d, k) => {
    if (d === 1) return;
    const m = shape.length - 1;
    if (m >= 0 && sSt[m] === sSt0[k]! * d && dSt[m] === dSt0[k]! * d) { shape[m]! *= d; sSt[m] = sSt0[k]!; dSt[m] = dSt0[k]!; return; }
    shape.push(d); sSt.push(sSt0[k]!); dSt.push(dSt0[k]!);
  });
  const r = shape.length;
  if (r === 0) { dst[dOff] = src[sOff]!; return; }
  const idx = new Array<number>(r).fill(0);
  const last = r - 1, L = shape[last]!, ss = sSt[last]!, ds = dSt[last]!;
  const runs = ss === 1 && ds === 1 && L >= 16 && ArrayBuffer.isView(src) && ArrayBuffer.isView(dst) && src.constructor === dst.constructor;
  const S = src as unknown as Float32Array, D = dst as unknown as Float32Array;
  let so = sOff, d = dOff;
  for (let i = 0; i < n; i += L) {
    if (runs) D.set(S.subarray(so, so + L), d);
    else for (let j = 0; j < L; j++) dst[d + j * ds] = src[so + j * ss]!;
    for (let k = last - 1; k >= 0; k--) {
      idx[k]!++; so += sSt[k]!; d += dSt[k]!;
      if (idx[k]! < shape[k]!) break;
      so -= sSt[k]! * shape[k]!; d -= dSt[k]! * shape[k]!; idx[k] = 0;
    }
  }
}

/** For each flat index of `out`, the flat offset into a tensor of shape `src` broadcast to it (null: same shape). */
function broadcastOffsets(src: Shape, out: Shape): Int32Array | null {
  if (src.length === out.length && src.every((d, i) => d === out[i])) return null;
  const idx = new Int32Array(size(out));
  const st = broadcastStrides(src, out);
  // offsets by a strided walk: idx[i] = Σ c_k st_k
  const n = idx.length, r = out.length;
  if (n === 0) return idx;
  const c = new Array<number>(r).fill(0);
  let o = 0;
  for (let i = 0; i < n; i++) {
    idx[i] = o;
    for (let k = r - 1; k >= 0; k--) {
      c[k]!++; o += st[k]!;
      if (c[k]! < out[k]!) break;
      o -= st[k]! * out[k]!; c[k] = 0;
    }
  }
  return idx;
}

/** maxPool2d geometry (stride defaults to the kernel); the op's infer has checked it. */
function poolGeo(x: readonly number[], a: { kernel: Pair; stride?: Pair; padding?: Pair }) {
  const [kh, kw] = pair(a.kernel, 1);
  const [sh, sw] = a.stride === undefined ? [kh, kw] : pair(a.stride, 1);
  const [ph, pw] = pair(a.padding, 0);
  const [N, C, H, W] = x as [number, number, number, number];
  const OH = Math.floor((H + 2 * ph - kh) / sh) + 1, OW = Math.floor((W + 2 * pw - kw) / sw) + 1;
  return { N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW };
}

/** Loads the kernels (or uses `opts.kernels`) and returns the backend. */
export async function wasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  const k = opts.kernels ?? await loadCpuKernels(opts);
  const scopes: CpuTensor[][] = [];

  const track = (t: CpuTensor): CpuTensor => { scopes[scopes.length - 1]?.push(t); return t; };
  const empty = (shape: readonly number[], dtype: DType): CpuTensor =>
    track(new CpuTensor(k, [...shape], dtype, { buf: k.alloc(size(shape)), refs: 1 }));
  /** A typed view of the tensor's values; valid until the next allocation. */
  const vals = (t: CpuTensor): Float32Array | Int32Array => (t.dtype === 'i32' ? k.i32(t.buf) : k.f32(t.buf));
  const f32 = (t: CpuTensor): Float32Array => k.f32(t.buf);

  /** Elementwise map with broadcasting in JS (i32 arithmetic, pow, comparisons, where). */
  function mapJs(ins: readonly CpuTensor[], outShape: readonly number[], dtype: DType, f: (v: number[]) => number): CpuTensor {
    const out = empty(outShape, dtype);
    const idx = ins.map((t) => broadcastOffsets(t.shape, outShape));
    const src = ins.map(vals), dst = vals(out);
    const v = new Array<number>(ins.length);
    for (let i = 0; i < dst.length; i++) {
      for (let j = 0; j < ins.length; j++) v[j] = src[j]![idx[j] ? idx[j]![i]! : i]!;
      dst[i] = f(v);
    }
    return out;
  }

  /** Copies x into a new tensor of `outShape`, reading x at offset off + Σ c_k st_k. */
  function gatherStrided(x: CpuTensor, outShape: readonly number[], st: readonly number[], off: number): CpuTensor {
    const out = empty(outShape, x.dtype);
    stridedCopy(vals(x), off, st, vals(out), 0, strides(outShape), outShape);
    return out;
  }

  function permuted(x: CpuTensor, perm: readonly number[]): CpuTensor {
    const st = strides(x.shape);
    return gatherStrided(x, perm.map((p) => x.shape[p]!), perm.map((p) => st[p]!), 0);
  }

  /** Moves the axes `ax` (sorted) to the end, in order; returns x itself when they already are trailing. */
  function reducedLast(x: CpuTensor, ax: readonly number[]): { t: CpuTensor; rows: number; cols: number; copy: boolean } {
    const r = x.shape.length;
    const kept = x.shape.map((_, i) => i).filter((i) => !ax.includes(i));
    const cols = size(ax.map((a) => x.shape[a]!)), rows = size(kept.map((a) => x.shape[a]!));
    const trailing = ax.every((a, i) => a === r - ax.length + i);
    if (trailing) return { t: x, rows, cols, copy: false };
    const t = permuted(x, [...kept, ...ax]);
    return { t, rows, cols, copy: true };
  }

  function fill(t: CpuTensor, v: number): void {
    if (t.dtype === 'f32') k.fill(t.buf, v, t.size);
    else vals(t).fill(roundTo(t.dtype, v));
  }

  function unaryInto(fn: UnaryFn, x: CpuTensor, out: CpuTensor): void {
    if (fn === 'rsqrt') {
      k.unary('sqrt', x.buf, out.buf, x.size);
      const one = k.upload([1]);
      try { k.binary('div', one, [], out.buf, [out.size], out.buf); } finally { k.free(one); }
      return;
    }
    k.unary(UNARY_MAP[fn], x.buf, out.buf, x.size);
  }

  interface AttnDims { B: number; Sq: number; Sk: number; D: number; Dv: number }
  function attnDims(q: CpuTensor, kk: CpuTensor, v: CpuTensor): AttnDims {
    const r = q.shape.length;
    return { B: size(q.shape.slice(0, -2)), Sq: q.shape[r - 2]!, Sk: kk.shape[r - 2]!, D: q.shape[r - 1]!, Dv: v.shape[r - 1]! };
  }
  /** The attention weights [B, Sq, Sk] (a new buffer) and their row logsumexp into `lse`: scores materialised. */
  function attnProbs(q: CpuTensor, kk: CpuTensor, d: AttnDims, causal: boolean, scale: number, lse: BufferRef): BufferRef {
    const rows = d.B * d.Sq;
    const S = k.alloc(rows * d.Sk);
    try {
      k.batchedMatmul(d.B, d.Sq, d.Sk, d.D, q.buf, kk.buf, S, { transB: true });
      const s1 = k.upload([scale]);
      try { k.binary('mul', S, [rows, d.Sk], s1, [], S); } finally { k.free(s1); }
      const mask = (v: number) => {
        if (!causal) return;
        const A = k.f32(S);
        for (let b = 0; b < d.B; b++) for (let i = 0; i < d.Sq; i++) A.fill(v, (b * d.Sq + i) * d.Sk + Math.min(i + 1, d.Sk), (b * d.Sq + i + 1) * d.Sk);
      };
      mask(-Infinity);
      k.logsumexp(S, lse, rows, d.Sk);
      k.softmax(S, S, rows, d.Sk);
      mask(0); // exactly zero where masked (the kernels' exp clamps its input)
      return S;
    } catch (e) { k.free(S); throw e; }
  }

  type KernelMap = { [K in OpName]?: Kernel<CpuTensor, K> };
  const kernels: KernelMap = {
    unary([x], { fn }, [o]) {
      const out = empty(o!.shape, 'f32');
      unaryInto(fn, x!, out);
      return [out];
    },
    unaryBackward([x, y, dy], { fn }, [o]) {
      const out = empty(o!.shape, 'f32');
      if (fn === 'rsqrt') {
        const Y = f32(y!), G = f32(dy!), D = f32(out);
        for (let i = 0; i < D.length; i++) { const v = Y[i]!; D[i] = G[i]! * (-0.5 * v * v * v); }
        return [out];
      }
      const op = UNARY_MAP[fn];
      const saved = UNARY_BACKWARD_SAVES[op] === 'x' ? x! : y!;
      k.unaryBackward(op, saved.buf, dy!.buf, out.buf, out.size);
      return [out];
    },
    binary([a, b], { fn }, [o]) {
      if (a!.dtype === 'f32' && KERNEL_BINARY.has(fn) && o!.shape.length <= 8) { // (the kernel takes up to 8 unmerged axes)
        const out = empty(o!.shape, 'f32');
        k.binary(fn as 'add', a!.buf, a!.shape, b!.buf, b!.shape, out.buf);
        return [out];
      }
      const f = JS_BINARY[fn];
      return [mapJs([a!, b!], o!.shape, o!.dtype, (v) => f(v[0]!, v[1]!))];
    },
    where: ([c, a, b], _, [o]) => [mapJs([c!, a!, b!], o!.shape, o!.dtype, (v) => (v[0] !== 0 ? v[1]! : v[2]!))],
    broadcastTo: ([x], _, [o]) => [gatherStrided(x!, o!.shape, broadcastStrides(x!.shape, o!.shape), 0)],
    cast([x], { dtype }, [o]) {
      const out = empty(o!.shape, dtype);
      if (dtype === 'f16' && x!.dtype !== 'i32') { k.roundF16(x!.buf, out.buf, size(out.shape)); return [out]; }
      const src = vals(x!), dst = vals(out);
      for (let i = 0; i < dst.length; i++) dst[i] = roundTo(dtype, dtype === 'i32' ? Math.trunc(src[i]!) : src[i]!);
      return [out];
    },
    sum([x], { axes, scale = 1 }, [o]) {
      const ax = normAxes('sum', axes, x!.shape.length);
      const shape = [...x!.shape];
      const red = shape.map((_, i) => ax.includes(i));
      let cur: BufferRef = x!.buf, tmp: BufferRef | null = null;
      // Each run of adjacent reduced axes is one kernel call over [outer, run, inner], from the last run to the first.
      for (let i = shape.length - 1; i >= 0;) {
        if (!red[i]) { i--; continue; }
        let j = i;
        while (j > 0 && red[j - 1]) j--;
        const outer = size(shape.slice(0, j)), n = size(shape.slice(j, i + 1)), inner = size(shape.slice(i + 1));
        const next = k.alloc(outer * inner);
        try { k.reduce('sum', cur, next, outer, n, inner); } catch (e) { k.free(next); if (tmp) k.free(tmp); throw e; }
        if (tmp) k.free(tmp);
        cur = tmp = next;
        shape.splice(j, i - j + 1); red.splice(j, i - j + 1);
        i = j - 1;
      }
      const out = empty(o!.shape, 'f32');
      const D = f32(out), S = k.f32(cur);
      if (scale === 1) D.set(S.subarray(0, D.length));
      else for (let i = 0; i < D.length; i++) D[i] = S[i]! * scale;
      if (tmp) k.free(tmp);
      return [out];
    },
    max([x], { axes }, [o, oa]) {
      const ax = normAxes('max', axes, x!.shape.length);
      const { t, rows, cols, copy } = reducedLast(x!, ax);
      const out = empty(o!.shape, 'f32'), arg = empty(oa!.shape, 'i32');
      const X = f32(t), Y = f32(out), A = k.i32(arg.buf);
      for (let r = 0; r < rows; r++) {
        let best = -Infinity, bi = 0;
        const base = r * cols;
        for (let c = 0; c < cols; c++) { const v = X[base + c]!; if (v > best) { best = v; bi = c; } }
        Y[r] = best; A[r] = bi;
      }
      if (copy) t.dispose();
      return [out, arg];
    },
    logsumexp([x], { axes }, [o]) {
      const ax = normAxes('logsumexp', axes, x!.shape.length);
      const { t, rows, cols, copy } = reducedLast(x!, ax);
      const out = empty(o!.shape, 'f32');
      if (cols === 0) fill(out, -Infinity);
      else k.logsumexp(t.buf, out.buf, rows, cols);
      if (copy) t.dispose();
      return [out];
    },
    matmul(ins, { transA = false, transB = false, activation = 'none' }, outs) {
      const [a, b, bias] = ins;
      const ra = a!.shape.length, rb = b!.shape.length;
      const M = transA ? a!.shape[ra - 1]! : a!.shape[ra - 2]!;
      const K = transA ? a!.shape[ra - 2]! : a!.shape[ra - 1]!;
      const N = transB ? b!.shape[rb - 2]! : b!.shape[rb - 1]!;
      const ba = a!.shape.slice(0, -2), bb = b!.shape.slice(0, -2);
      const batch = size(outs[0]!.shape.slice(0, -2));
      const out = empty(outs[0]!.shape, 'f32');
      const pre = activation === 'gelu' ? empty(outs[0]!.shape, 'f32') : null;
      const target = pre ?? out;
      if (batch * M * N > 0) {
        if (K === 0) {
          k.fill(target.buf, 0, target.size);
          if (bias) k.binary('add', target.buf, [batch * M, N], bias.buf, [N], target.buf);
          if (activation === 'relu') k.unary('relu', target.buf, target.buf, target.size);
        } else {
          k.batchedMatmul(batch, M, N, K, a!.buf, b!.buf, target.buf, {
            transA, transB, bias: bias ? bias.buf : null, activation: activation === 'relu' ? 'relu' : 'none',
            broadcastA: ba.length === 0 && batch !== 1, broadcastB: bb.length === 0 && batch !== 1,
          });
        }
        if (pre) k.unary('gelu_tanh', pre.buf, out.buf, out.size);
      }
      return pre ? [out, pre] : [out];
    },
    softmax([x], _, [o]) {
      const out = empty(o!.shape, 'f32');
      const C = x!.shape[x!.shape.length - 1]!;
      if (C > 0) k.softmax(x!.buf, out.buf, x!.size / C, C);
      return [out];
    },
    logSoftmax([x], _, [o]) {
      const out = empty(o!.shape, 'f32');
      const C = x!.shape[x!.shape.length - 1]!;
      if (C > 0) k.logSoftmax(x!.buf, out.buf, x!.size / C, C);
      return [out];
    },
    softmaxCrossEntropy([logits, labels], _, [ol, oz]) {
      const [N, C] = logits!.shape as [number, number];
      const L = k.i32(labels!.buf);
      for (let r = 0; r < N; r++) {
        const l = L[r]!;
        if (!(l >= 0 && l < C)) throw new OpError('softmaxCrossEntropy', `label ${l} at row ${r} is outside [0, ${C})`);
      }
      const loss = empty(ol!.shape, 'f32'), lse = empty(oz!.shape, 'f32');
      if (N > 0) {
        k.softmaxCrossEntropy(logits!.buf, labels!.buf, N, C, { loss: loss.buf });
        k.logsumexp(logits!.buf, lse.buf, N, C);
      }
      return [loss, lse];
    },
    softmaxCrossEntropyBackward([logits, labels, lse, g], _, [o]) {
      // (exp(logits - lse) - onehot) * dloss, exactly as the op defines it (from the given lse).
      const [N, C] = logits!.shape as [number, number];
      const out = empty(o!.shape, 'f32');
      if (N * C === 0) return [out];
      k.binary('sub', logits!.buf, [N, C], lse!.buf, [N, 1], out.buf);
      k.unary('exp', out.buf, out.buf, N * C);
      const D = f32(out), L = k.i32(labels!.buf);
      for (let r = 0; r < N; r++) { const l = L[r]!; if (l >= 0 && l < C) D[r * C + l] = D[r * C + l]! - 1; }
      k.binary('mul', out.buf, [N, C], g!.buf, [N, 1], out.buf);
      return [out];
    },
    conv2d([x, w], { stride, padding }, [o]) {
      const out = empty(o!.shape, 'f32');
      if (out.size > 0) k.conv2d(x!.buf, x!.shape, w!.buf, w!.shape, out.buf, { stride: pair(stride, 1), padding: pair(padding, 0) });
      return [out];
    },
    conv2dBackwardInput([dy, w], { stride, padding }, [o]) {
      const out = empty(o!.shape, 'f32');
      if (out.size === 0) return [out];
      if (dy!.size === 0 || w!.size === 0) { fill(out, 0); return [out]; }
      k.conv2dBackwardInput(dy!.buf, w!.buf, out.buf, o!.shape, w!.shape, { stride: pair(stride, 1), padding: pair(padding, 0) });
      return [out];
    },
    conv2dBackwardFilter([dy, x], { stride, padding }, [o]) {
      const out = empty(o!.shape, 'f32');
      if (out.size === 0) return [out];
      if (dy!.size === 0 || x!.size === 0) { fill(out, 0); return [out]; }
      k.conv2dBackwardFilter(x!.buf, dy!.buf, out.buf, x!.shape, o!.shape, { stride: pair(stride, 1), padding: pair(padding, 0) });
      return [out];
    },
    layerNorm([x, gamma, beta], { eps = 1e-5 }, [oy, om, or]) {
      const D = x!.shape[x!.shape.length - 1]!, R = D === 0 ? 0 : x!.size / D;
      const y = empty(oy!.shape, 'f32'), mean = empty(om!.shape, 'f32'), rstd = empty(or!.shape, 'f32');
      const X = f32(x!), G = f32(gamma!), B = f32(beta!), Y = f32(y), Mn = f32(mean), Rs = f32(rstd);
      for (let r = 0; r < R; r++) {
        const o = r * D;
        let m = 0;
        for (let d = 0; d < D; d++) m += X[o + d]!;
        m /= D;
        let v = 0;
        for (let d = 0; d < D; d++) { const e = X[o + d]! - m; v += e * e; }
        const rs = 1 / Math.sqrt(v / D + eps);
        Mn[r] = m; Rs[r] = rs;
        for (let d = 0; d < D; d++) Y[o + d] = (X[o + d]! - m) * rs * G[d]! + B[d]!;
      }
      return [y, mean, rstd];
    },
    layerNormBackward([x, gamma, mean, rstd, dy], _, [ox, og, ob]) {
      const D = x!.shape[x!.shape.length - 1]!, R = D === 0 ? 0 : x!.size / D;
      const dx = empty(ox!.shape, 'f32'), dg = empty(og!.shape, 'f32'), db = empty(ob!.shape, 'f32');
      const X = f32(x!), G = f32(gamma!), Mn = f32(mean!), Rs = f32(rstd!), Dy = f32(dy!), DX = f32(dx);
      const sgA = new Float64Array(D), sbA = new Float64Array(D);
      for (let r = 0; r < R; r++) {
        const o = r * D, m = Mn[r]!, rs = Rs[r]!;
        let sg = 0, sgx = 0;
        for (let d = 0; d < D; d++) {
          const xh = (X[o + d]! - m) * rs, gy = Dy[o + d]!, gd = gy * G[d]!;
          sg += gd; sgx += gd * xh;
          sgA[d] += gy * xh; sbA[d] += gy;
        }
        for (let d = 0; d < D; d++) {
          const xh = (X[o + d]! - m) * rs;
          DX[o + d] = rs * (Dy[o + d]! * G[d]! - sg / D - xh * sgx / D);
        }
      }
      f32(dg).set(sgA); f32(db).set(sbA);
      return [dx, dg, db];
    },
    maxPool2d([x], a, [oy, oa]) {
      const p = poolGeo(x!.shape, a);
      const y = empty(oy!.shape, 'f32'), arg = empty(oa!.shape, 'i32');
      const X = f32(x!), Y = f32(y), A = k.i32(arg.buf);
      for (let pl = 0; pl < p.N * p.C; pl++) for (let oh = 0; oh < p.OH; oh++) for (let ow = 0; ow < p.OW; ow++) {
        let best = -Infinity, bi = -1;
        for (let kh = 0; kh < p.kh; kh++) {
          const ih = oh * p.sh + kh - p.ph;
          if (ih < 0 || ih >= p.H) continue;
          for (let kw = 0; kw < p.kw; kw++) {
            const iw = ow * p.sw + kw - p.pw;
            if (iw < 0 || iw >= p.W) continue;
            const v = X[(pl * p.H + ih) * p.W + iw]!;
            if (v > best || bi < 0) { best = v; bi = ih * p.W + iw; }
          }
        }
        const o = (pl * p.OH + oh) * p.OW + ow;
        Y[o] = best; A[o] = bi;
      }
      return [y, arg];
    },
    maxPool2dBackward([arg, dy], a, [o]) {
      const p = poolGeo([dy!.shape[0]!, dy!.shape[1]!, a.inputHW[0], a.inputHW[1]], a);
      const dx = empty(o!.shape, 'f32');
      const A = k.i32(arg!.buf), G = f32(dy!);
      const acc = new Float64Array(dx.size);
      for (let pl = 0; pl < p.N * p.C; pl++) for (let q = 0; q < p.OH * p.OW; q++) {
        const i = pl * p.OH * p.OW + q, t = A[i]!;
        if (t >= 0 && t < p.H * p.W) acc[pl * p.H * p.W + t] += G[i]!;
      }
      f32(dx).set(acc);
      return [dx];
    },
    attention([q, kk, v], { causal = false, scale }, [oo, ol]) {
      const d = attnDims(q!, kk!, v!);
      const out = empty(oo!.shape, 'f32'), lse = empty(ol!.shape, 'f32');
      if (d.B * d.Sq === 0) return [out, lse];
      const P = attnProbs(q!, kk!, d, causal, scale ?? 1 / Math.sqrt(d.D), lse.buf);
      try { k.batchedMatmul(d.B, d.Sq, d.Dv, d.Sk, P, v!.buf, out.buf); } finally { k.free(P); }
      return [out, lse];
    },
    attentionBackward([q, kk, v, o, , g], { causal = false, scale }, [oq, ok, ov]) {
      const d = attnDims(q!, kk!, v!);
      const dq = empty(oq!.shape, 'f32'), dk = empty(ok!.shape, 'f32'), dv = empty(ov!.shape, 'f32');
      if (d.B * d.Sq === 0) { fill(dq, 0); fill(dk, 0); fill(dv, 0); return [dq, dk, dv]; }
      const sc = scale ?? 1 / Math.sqrt(d.D);
      const rows = d.B * d.Sq;
      const tmp: BufferRef[] = [];
      const alloc = (n: number) => { const b = k.alloc(n); tmp.push(b); return b; };
      try {
        const lse = alloc(rows);
        const P = attnProbs(q!, kk!, d, causal, sc, lse);
        tmp.push(P);
        // dv = Pᵀ g; dP = g vᵀ; dS = P (dP - rowsum(g o)) scale; dq = dS k; dk = dSᵀ q.
        k.batchedMatmul(d.B, d.Sk, d.Dv, d.Sq, P, g!.buf, dv.buf, { transA: true });
        const dP = alloc(rows * d.Sk);
        k.batchedMatmul(d.B, d.Sq, d.Sk, d.Dv, g!.buf, v!.buf, dP, { transB: true });
        const go = alloc(rows * d.Dv), Di = alloc(rows);
        k.binary('mul', g!.buf, [rows, d.Dv], o!.buf, [rows, d.Dv], go);
        k.reduce('sum', go, Di, rows, d.Dv, 1);
        k.binary('sub', dP, [rows, d.Sk], Di, [rows, 1], dP);
        k.binary('mul', dP, [rows, d.Sk], P, [rows, d.Sk], dP);
        const s1 = alloc(1);
        k.fill(s1, sc);
        k.binary('mul', dP, [rows, d.Sk], s1, [], dP);
        k.batchedMatmul(d.B, d.Sq, d.D, d.Sk, dP, kk!.buf, dq.buf);
        k.batchedMatmul(d.B, d.Sk, d.D, d.Sq, dP, q!.buf, dk.buf, { transA: true });
      } finally {
        for (const b of tmp) k.free(b);
      }
      return [dq, dk, dv];
    },
    permute: ([x], { perm }) => [permuted(x!, perm)],
    slice([x], { begin, size: sz }) {
      const st = strides(x!.shape);
      return [gatherStrided(x!, sz, st, begin.reduce((s, b, i) => s + b * st[i]!, 0))];
    },
    pad([x], { before, shape }) {
      const out = empty(shape, x!.dtype);
      const D = vals(out);
      D.fill(0);
      const st = strides(shape);
      stridedCopy(vals(x!), 0, strides(x!.shape), D, before.reduce((s, b, i) => s + b * st[i]!, 0), st, x!.shape);
      return [out];
    },
    concat(ins, { axis }, [o]) {
      const r = o!.shape.length, ax = axis < 0 ? axis + r : axis;
      const out = empty(o!.shape, o!.dtype);
      const D = vals(out), st = strides(o!.shape);
      let off = 0;
      for (const t of ins) {
        stridedCopy(vals(t), 0, strides(t.shape), D, off * st[ax]!, st, t.shape);
        off += t.shape[ax]!;
      }
      return [out];
    },
    gather([table, idx], _, [o]) {
      const [V, Dm] = table!.shape as [number, number];
      const I = k.i32(idx!.buf);
      for (let i = 0; i < I.length; i++) {
        const r = I[i]!;
        if (!(r >= 0 && r < V)) throw new OpError('gather', `index ${r} at ${i} is outside [0, ${V})`);
      }
      const out = empty(o!.shape, 'f32');
      const T = f32(table!), O = f32(out), I2 = k.i32(idx!.buf);
      for (let i = 0; i < I2.length; i++) O.set(T.subarray(I2[i]! * Dm, (I2[i]! + 1) * Dm), i * Dm);
      return [out];
    },
    scatterAdd([idx, vs], { rows }, [o]) {
      const Dm = o!.shape[1]!;
      const acc = new Float64Array(rows * Dm);
      const I = k.i32(idx!.buf), Vv = f32(vs!);
      for (let i = 0; i < I.length; i++) {
        const r = I[i]!;
        if (r >= 0 && r < rows) for (let d = 0; d < Dm; d++) acc[r * Dm + d] += Vv[i * Dm + d]!;
      }
      const out = empty(o!.shape, 'f32');
      f32(out).set(acc);
      return [out];
    },
  };

  const backend: WasmBackend = {
    name: 'wasm',
    cpu: k,
    kernels: kernels as WasmBackend['kernels'],
    meta: (t) => ({ shape: t.shape, dtype: t.dtype }),
    reshape(t, s) {
      const shape = reshapeShape(t.shape, s);
      void t.buf; // throws when disposed
      return track(t.view(shape));
    },
    full(shape, value, dtype) {
      const t = empty(shape, dtype);
      fill(t, value);
      return t;
    },
    upload(h) {
      const t = empty(h.shape, h.dtype);
      const v = vals(t);
      if (h.dtype === 'f16') for (let i = 0; i < v.length; i++) v[i] = roundTo('f16', h.data[i]!);
      else v.set(h.data);
      return t;
    },
    download(t) {
      return { shape: [...t.shape], dtype: t.dtype, data: Float64Array.from(vals(t)) };
    },
    tidy<R>(fn: () => R): R {
      const mine: CpuTensor[] = [];
      scopes.push(mine);
      let result: R;
      try { result = fn(); } catch (e) {
        scopes.pop();
        for (const t of mine) t.dispose();
        throw e;
      }
      scopes.pop();
      const keep = new Set<CpuTensor>();
      const seen = new Set<unknown>();
      const walk = (v: unknown): void => {
        if (v === null || typeof v !== 'object' || seen.has(v)) return;
        seen.add(v);
        if (v instanceof CpuTensor) { keep.add(v); return; }
        for (const x of Array.isArray(v) ? v : Object.values(v)) walk(x);
      };
      walk(result);
      const parent = scopes[scopes.length - 1];
      for (const t of mine) {
        if (keep.has(t)) parent?.push(t);
        else t.dispose();
      }
      return result;
    },
    memoryStats: () => k.memoryStats(),
  };
  return backend;
}

