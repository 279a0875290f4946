// SPDX-License-Identifier: MIT
// The CPU kernel layer: loads the AssemblyScript kernels (runtime-wasm/assembly/, compiled by
// runtime-wasm/build.mjs), owns their WebAssembly.Memory with a size-class allocator for f32 and
// i32 buffers, and exposes typed, argument-checked functions that a tensor backend calls.
//
// Every kernel works on buffers that live in the module's linear memory (no copies between
// ops). Sizes are element counts; all tensors are dense and row-major (conv: NCHW).
// Optionally (loadCpuKernels({ threads })) matmul and conv2d split their work across worker
// threads over a shared memory; results are the same as single-threaded up to f32 summation order
// in conv2dBackwardFilter (per-thread partial sums).
//
// Example:
//   const k = await loadCpuKernels();
//   const a = k.upload(new Float32Array([1, 2, 3, 4]));   // 2 x 2
//   const b = k.upload(new Float32Array([5, 6, 7, 8]));   // 2 x 2
//   const c = k.alloc(4);
//   k.matmul(2, 2, 2, a, b, c, { transB: true, activation: 'relu' });
//   k.read(c); // Float32Array [17, 23, 39, 53]
//   k.free(a); k.free(b); k.free(c);

import { CTRL_BYTES, MAX_THREADS, SLOT_F64, ThreadPool, whyNoThreads, type Job } from './threads.js';

/** Which compiled build runs: relaxed SIMD (fused madd), plain Wasm SIMD, or no SIMD at all. */
export type Variant = 'relaxed' | 'simd' | 'scalar';
export const VARIANTS: readonly Variant[] = ['relaxed', 'simd', 'scalar'];

/** A buffer in linear memory: byte address and element count (f32 or i32, 4 bytes each). */
export interface BufferRef {
  readonly ptr: number;
  readonly length: number;
}

export const UNARY_OPS = {
  copy: 0, neg: 1, abs: 2, sqrt: 3, square: 4, relu: 5, exp: 6, log: 7, tanh: 8, sigmoid: 9,
  /** exact GELU, 0.5 x (1 + erf(x / sqrt 2)) */
  gelu: 10,
  /** tanh-approximated GELU (GPT-2; jax.nn.gelu's default) */
  gelu_tanh: 11,
} as const;
export type UnaryOp = keyof typeof UNARY_OPS;
export type Activation = 'none' | Exclude<UnaryOp, 'copy'>;

/**
 * Which forward value unaryBackward needs as `saved`: the input x or the output y.
 * ('neg' needs neither; pass any buffer of the right length.)
 */
export const UNARY_BACKWARD_SAVES: Record<UnaryOp, 'x' | 'y'> = {
  copy: 'x', neg: 'x', abs: 'x', sqrt: 'y', square: 'x', relu: 'x', exp: 'y', log: 'x',
  tanh: 'y', sigmoid: 'y', gelu: 'x', gelu_tanh: 'x',
};

export const BINARY_OPS = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5 } as const;
export type BinaryOp = keyof typeof BINARY_OPS;

export const REDUCE_OPS = { sum: 0, max: 1, min: 2, mean: 3 } as const;
export type ReduceOp = keyof typeof REDUCE_OPS;

export interface MatmulOptions {
  /** A is stored K x M (its transpose is used); default false (A is M x K). */
  transA?: boolean;
  /** B is stored N x K (its transpose is used); default false (B is K x N). */
  transB?: boolean;
  /** A length-N vector added to every row of C. */
  bias?: BufferRef | null;
  /** Applied to C after bias; 'relu' is fused into the micro-kernel, others run per cache block. */
  activation?: Activation;
  /** C += op(A) op(B) instead of C = op(A) op(B). */
  accumulate?: boolean;
}

export interface Conv2dOptions {
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
  dilation?: number | readonly [number, number];
}

export interface MemoryStats {
  /** Bytes held by live buffers (rounded up to their size class). */
  liveBytes: number;
  /** Highest liveBytes seen since load (or since resetPeak). */
  peakBytes: number;
  liveBuffers: number;
  /** Bytes handed out from the heap so far (live + cached free blocks). */
  heapBytes: number;
  /** Size of the WebAssembly.Memory. */
  memoryBytes: number;
}

export interface LoadOptions {
  /** Force one build (tests); default: the best one that WebAssembly.validate accepts. */
  variant?: Variant;
  /** Compiled module bytes per variant, for hosts without a file system (browsers, bundlers). */
  wasm?: Partial<Record<Variant, BufferSource>>;
  /** Directory holding kernels.<variant>.wasm; default: runtime-wasm/build next to this package. */
  wasmDir?: string | URL;
  /**
   * Threads for matmul and conv2d (the caller plus threads - 1 workers over a shared memory:
   * worker_threads in Node, Web Workers in a cross-origin-isolated page; a page that is not isolated
   * runs single-threaded and says so). Default 1. Needs the simd-mt build; other kernels stay
   * single-threaded.
   */
  threads?: number;
}

/** Thrown for bad arguments; the message names the kernel and the sizes involved. */
export class KernelError extends Error {
  constructor(kernel: string, detail: string) {
    super(`${kernel}: ${detail}`);
    this.name = 'KernelError';
  }
}

/** The raw exports of the kernel module (pointers are byte addresses in `memory`). */
export interface KernelExports {
  heapBase(): number;
  simdLevel(): number;
  gemmWorkspaceBytes(): number;
  /** Tuning hook for benchmarks: cache blocking MC, KC, NC (clamped to the workspace maxima 240, 512, 2048). */
  setBlocking(mc: number, kc: number, nc: number): void;
  gemm(M: number, N: number, K: number, a: number, lda: number, transA: number, b: number, ldb: number, transB: number,
    c: number, ldc: number, accumulate: number, bias: number, biasMode: number, act: number, ws: number): void;
  gemmBatched(batch: number, M: number, N: number, K: number, a: number, lda: number, strideA: number, transA: number,
    b: number, ldb: number, strideB: number, transB: number, c: number, ldc: number, strideC: number, accumulate: number,
    bias: number, biasMode: number, act: number, ws: number): void;
  im2col(x: number, cols: number, geo: number): void;
  col2im(cols: number, dx: number, geo: number): void;
  conv2dForward(x: number, w: number, bias: number, y: number, geo: number, cols: number, ws: number): void;
  conv2dBackwardInput(dy: number, w: number, dx: number, geo: number, cols: number, ws: number): void;
  conv2dBackwardFilter(x: number, dy: number, dw: number, geo: number, accumulate: number, cols: number, ws: number): void;
  conv2dBackwardBias(dy: number, db: number, geo: number, accumulate: number): void;
  unary(op: number, x: number, y: number, n: number): void;
  unaryBackward(op: number, saved: number, dy: number, dx: number, n: number): void;
  binary(op: number, a: number, b: number, out: number, meta: number): void;
  axpy(n: number, alpha: number, x: number, y: number): void;
  fill(x: number, n: number, value: number): void;
  roundF16(x: number, y: number, n: number): void;
  reduce(op: number, x: number, out: number, outer: number, size: number, inner: number): void;
  logsumexpRows(x: number, out: number, rows: number, cols: number): void;
  softmaxRows(x: number, y: number, rows: number, cols: number, log: number): void;
  softmaxBackwardRows(y: number, dy: number, dx: number, rows: number, cols: number, log: number): void;
  softmaxCrossEntropy(x: number, labels: number, loss: number, grad: number, rows: number, cols: number, scale: number): number;
  sgd(p: number, g: number, v: number, n: number, lr: number, momentum: number, wd: number): void;
  sgdScaled(p: number, g: number, v: number, n: number, lr: number, momentum: number, wd: number, nesterov: number, gradScale: number): void;
  adam(p: number, g: number, m: number, v: number, n: number, lr: number, b1: number, b2: number, eps: number, wd: number,
    decoupled: number, bc1: number, bc2: number): void;
  adamScaled(p: number, g: number, m: number, v: number, n: number, b1: number, c1: number, b2: number, c2: number, eps: number,
    l2: number, shrink: number, stepSize: number, invSqrtBc2: number, gradScale: number): void;
  sumSquares(x: number, n: number): number;
  nonFinite(x: number, n: number): number;
  peakFlops(iters: number, m: number, c: number): number;
  peakFlopsPerIter(): number;
}

const PAGE = 65536;
const ALIGN = 64;
const MAX_RANK = 8;
const META_BYTES = 4 * (1 + 4 * MAX_RANK);

/** Size classes: multiples of 64 bytes up to 1 KiB, then four classes per power of two. */
export function sizeClass(bytes: number): number {
  if (bytes <= 1024) return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  const p = 2 ** Math.floor(Math.log2(bytes - 1));
  const step = p / 4;
  return p + Math.ceil((bytes - p) / step) * step;
}

function isCount(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0x7fffffff;
}

function pair(v: number | readonly [number, number] | undefined, dflt: number): [number, number] {
  if (v === undefined) return [dflt, dflt];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** Loads a kernel build and returns the kernel API bound to a fresh memory. */
export async function loadCpuKernels(opts: LoadOptions = {}): Promise<CpuKernels> {
  let threads = opts.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS + 1) {
    throw new Error(`loadCpuKernels: threads must be an integer from 1 to ${MAX_THREADS + 1}, got ${threads}`);
  }
  const noThreads = threads > 1 ? whyNoThreads() : null;
  if (noThreads) {
    console.warn(`pullback: the CPU backend runs single-threaded: ${threads} threads were asked for, but ${noThreads}`);
    threads = 1;
  }
  if (threads > 1) {
    if (opts.variant && opts.variant !== 'simd') throw new Error(`loadCpuKernels: the multi-threaded mode runs the simd build only, not '${opts.variant}'`);
    const bytes = await readVariant('simd-mt', opts);
    if (!bytes || !WebAssembly.validate(bytes)) {
      throw new Error(`loadCpuKernels: the multi-threaded build (kernels.simd-mt.wasm) is ${bytes ? 'not supported by this engine' : 'missing; run `node runtime-wasm/build.mjs`'}`);
    }
    const module = await WebAssembly.compile(bytes);
    const k = new CpuKernels('simd', module, threads);
    await k.startThreads(module);
    return k;
  }
  const order: Variant[] = opts.variant ? [opts.variant] : [...VARIANTS];
  const tried: string[] = [];
  for (const variant of order) {
    const bytes = await readVariant(variant, opts);
    if (!bytes) { tried.push(`${variant} (not found)`); continue; }
    if (!WebAssembly.validate(bytes)) { tried.push(`${variant} (does not validate on this engine)`); continue; }
    const module = await WebAssembly.compile(bytes);
    return new CpuKernels(variant, module);
  }
  throw new Error(`loadCpuKernels: no usable kernel build; tried ${tried.join(', ')}. Run \`node runtime-wasm/build.mjs\` to compile them.`);
}

async function readVariant(variant: Variant | 'simd-mt', opts: LoadOptions): Promise<BufferSource | null> {
  const given = variant === 'simd-mt' ? undefined : opts.wasm?.[variant];
  if (given) return given;
  if (typeof process === 'undefined' || !process.versions?.node) {
    // A browser: fetch the build from wasmDir (where the page serves the .wasm files), or from beside this module.
    const dir = opts.wasmDir ? new URL(String(opts.wasmDir).replace(/\/?$/, '/'), globalThis.location?.href) : new URL('./build/', import.meta.url);
    const res = await fetch(new URL(`kernels.${variant}.wasm`, dir)).catch(() => null);
    return res?.ok ? new Uint8Array(await res.arrayBuffer()) : null;
  }
  const { readFile } = await import('node:fs/promises');
  const { existsSync } = await import('node:fs');
  const dirs = opts.wasmDir
    ? [new URL(String(opts.wasmDir).replace(/\/?$/, '/'), opts.wasmDir instanceof URL ? undefined : 'file:///')]
    : [new URL('../../runtime-wasm/build/', import.meta.url), new URL('./build/', import.meta.url)];
  for (const dir of dirs) {
    const url = new URL(`kernels.${variant}.wasm`, dir);
    if (existsSync(url)) return new Uint8Array(await readFile(url));
  }
  return null;
}

/** The kernel API over one instance and its memory. Create with loadCpuKernels(). */
export class CpuKernels {
  readonly variant: Variant;
  readonly memory: WebAssembly.Memory;
  private readonly x: KernelExports;
  private top: number;
  private readonly freeLists = new Map<number, number[]>();
  private readonly live = new Map<number, number>();
  private liveBytes = 0;
  private peakBytes = 0;
  private readonly ws: number;
  private readonly meta: number;
  /** Threads used by matmul and conv2d (1: no worker threads). */
  readonly threads: number;
  private pool: ThreadPool | null = null;
  /** Per-thread scratch for the threaded mode: workspace and conv geometry (index 0 = caller). */
  private readonly threadWs: number[] = [];
  private readonly threadGeo: number[] = [];
  private ctrl = 0;
  private readonly slots: number[] = [];

  constructor(variant: Variant, module: WebAssembly.Module, threads = 1) {
    this.variant = variant;
    this.threads = threads;
    this.memory = new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: threads > 1 });
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.x = instance.exports as unknown as KernelExports;
    this.top = Math.ceil(this.x.heapBase() / ALIGN) * ALIGN;
    // Scratch that kernels reuse on every call; not counted as live user memory.
    this.ws = this.reserve(this.x.gemmWorkspaceBytes());
    this.meta = this.reserve(META_BYTES);
    if (threads > 1) {
      this.threadWs.push(this.ws);
      this.threadGeo.push(this.meta);
      for (let t = 1; t < threads; t++) {
        this.threadWs.push(this.reserve(this.x.gemmWorkspaceBytes()));
        this.threadGeo.push(this.reserve(META_BYTES));
        this.slots.push(this.reserve(SLOT_F64 * 8));
      }
      this.ctrl = this.reserve(CTRL_BYTES);
      new Int32Array(this.memory.buffer, this.ctrl, CTRL_BYTES / 4).fill(0);
    }
  }

  /** @internal Starts the worker threads (called by loadCpuKernels). */
  async startThreads(module: WebAssembly.Module): Promise<void> {
    this.pool = await ThreadPool.start(module, this.memory, this.ctrl, this.slots);
  }

  /** Stops the worker threads of the multi-threaded mode (the instance stays usable single-threaded). */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    if (pool) await pool.close();
  }

  /** Runs one job per thread: jobs[0] on the caller, the rest on the workers. */
  private fork(jobs: Job[]): void {
    const [own, ...rest] = jobs;
    if (!own) return;
    const call = () => (this.x as unknown as Record<string, (...a: number[]) => unknown>)[own.fn]!(...own.args);
    if (!this.pool || rest.length === 0) { call(); return; }
    this.pool.run(rest, call);
  }

  /** gemm on raw pointers, split over N (or over M when M is the larger side) across the threads. */
  private gemm(M: number, N: number, K: number, a: number, lda: number, tA: boolean, b: number, ldb: number, tB: boolean,
    c: number, ldc: number, acc: boolean, bias: number, biasMode: number, act: number): void {
    const T = this.pool ? this.threads : 1;
    const args = (m: number, n: number, a_: number, b_: number, c_: number, bias_: number, t: number) =>
      [m, n, K, a_, lda, tA ? 1 : 0, b_, ldb, tB ? 1 : 0, c_, ldc, acc ? 1 : 0, bias_, biasMode, act, this.threadWs[t] ?? this.ws];
    if (T === 1 || 2 * M * N * K < 4e6) {
      this.x.gemm(...(args(M, N, a, b, c, bias, 0) as Parameters<KernelExports['gemm']>));
      return;
    }
    const jobs: Job[] = [];
    if (N >= M) {
      const chunk = Math.ceil(N / T / 8) * 8;
      for (let t = 0, j0 = 0; j0 < N; t++, j0 += chunk) {
        const n = Math.min(chunk, N - j0);
        jobs.push({ fn: 'gemm', args: args(M, n, a, tB ? b + j0 * ldb * 4 : b + j0 * 4, c + j0 * 4, biasMode === 1 ? bias + j0 * 4 : bias, t) });
      }
    } else {
      const chunk = Math.ceil(M / T / 5) * 5;
      for (let t = 0, i0 = 0; i0 < M; t++, i0 += chunk) {
        const m = Math.min(chunk, M - i0);
        jobs.push({ fn: 'gemm', args: args(m, N, tA ? a + i0 * 4 : a + i0 * lda * 4, b, c + i0 * ldc * 4, biasMode === 2 ? bias + i0 * 4 : bias, t) });
      }
    }
    this.fork(jobs);
  }

  // ---- memory --------------------------------------------------------------------------

  private reserve(bytes: number): number {
    const ptr = this.top;
    const end = ptr + Math.ceil(bytes / ALIGN) * ALIGN;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      try {
        this.memory.grow(Math.max(pages, Math.min(have / PAGE, 65536 - have / PAGE)));
      } catch {
        try { this.memory.grow(pages); } catch {
          throw new KernelError('alloc', `cannot grow Wasm memory to ${end} bytes (have ${have})`);
        }
      }
    }
    this.top = end;
    return ptr;
  }

  /** A buffer of `length` f32 (or i32) elements, 64-byte aligned, contents unspecified. */
  alloc(length: number): BufferRef {
    if (!isCount(length)) throw new KernelError('alloc', `length must be a non-negative integer, got ${length}`);
    const cls = sizeClass(Math.max(1, length) * 4);
    const list = this.freeLists.get(cls);
    const ptr = list && list.length ? list.pop()! : this.reserve(cls);
    this.live.set(ptr, cls);
    this.liveBytes += cls;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    return { ptr, length };
  }

  /** Returns a buffer to its size class's free list. Freeing twice, or a sub-view, throws. */
  free(buf: BufferRef): void {
    const cls = this.live.get(buf.ptr);
    if (cls === undefined) throw new KernelError('free', `no live buffer at address ${buf.ptr} (double free, or not from alloc)`);
    this.live.delete(buf.ptr);
    this.liveBytes -= cls;
    let list = this.freeLists.get(cls);
    if (!list) this.freeLists.set(cls, (list = []));
    list.push(buf.ptr);
  }

  /** A view of elements [offset, offset + length) of buf, for kernels only (not for free). */
  sub(buf: BufferRef, offset: number, length: number): BufferRef {
    if (!isCount(offset) || !isCount(length) || offset + length > buf.length) {
      throw new KernelError('sub', `range [${offset}, ${offset + length}) is outside a buffer of ${buf.length} elements`);
    }
    return { ptr: buf.ptr + offset * 4, length };
  }

  memoryStats(): MemoryStats {
    return {
      liveBytes: this.liveBytes, peakBytes: this.peakBytes, liveBuffers: this.live.size,
      heapBytes: this.top, memoryBytes: this.memory.buffer.byteLength,
    };
  }

  resetPeak(): void { this.peakBytes = this.liveBytes; }

  /** A live Float32Array over the buffer; invalid after the memory grows (any later alloc). */
  f32(buf: BufferRef): Float32Array { return new Float32Array(this.memory.buffer, buf.ptr, buf.length); }
  /** A live Int32Array over the buffer; same caveat as f32(). */
  i32(buf: BufferRef): Int32Array { return new Int32Array(this.memory.buffer, buf.ptr, buf.length); }

  /** A new buffer holding a copy of `data`. */
  upload(data: ArrayLike<number>): BufferRef {
    const buf = this.alloc(data.length);
    this.f32(buf).set(data);
    return buf;
  }

  /** A new i32 buffer holding a copy of `data` (labels, indices). */
  uploadI32(data: ArrayLike<number>): BufferRef {
    const buf = this.alloc(data.length);
    this.i32(buf).set(data);
    return buf;
  }

  /** A copy of the buffer's contents. */
  read(buf: BufferRef): Float32Array { return this.f32(buf).slice(); }

  // ---- argument checks -----------------------------------------------------------------

  private counts(kernel: string, sizes: Record<string, number>): void {
    for (const [name, n] of Object.entries(sizes)) {
      if (!isCount(n)) throw new KernelError(kernel, `${name} must be a non-negative integer, got ${n} (${describe(sizes)})`);
    }
  }

  private need(kernel: string, name: string, buf: BufferRef | null | undefined, n: number, sizes: Record<string, number | string | boolean>): void {
    if (!buf || typeof buf.ptr !== 'number' || typeof buf.length !== 'number') {
      throw new KernelError(kernel, `${name} is not a buffer (${describe(sizes)})`);
    }
    if (buf.length < n) {
      throw new KernelError(kernel, `${name} has ${buf.length} elements but needs ${n} (${describe(sizes)})`);
    }
    if (buf.ptr < this.ws || buf.ptr % 4 !== 0 || buf.ptr + n * 4 > this.top) {
      throw new KernelError(kernel, `${name} at address ${buf.ptr} is not inside this kernel memory (${describe(sizes)})`);
    }
  }

  private noOverlap(kernel: string, out: string, o: BufferRef, n: number, inName: string, i: BufferRef, m: number): void {
    if (o.ptr < i.ptr + m * 4 && i.ptr < o.ptr + n * 4) {
      throw new KernelError(kernel, `${out} overlaps ${inName}; the output must be a separate buffer`);
    }
  }

  private activation(kernel: string, act: Activation | undefined): number {
    if (act === undefined || act === 'none') return 0;
    const code = (UNARY_OPS as Record<string, number>)[act];
    if (code === undefined || (act as string) === 'copy') throw new KernelError(kernel, `unknown activation '${act}'`);
    return code;
  }

  // ---- matmul --------------------------------------------------------------------------

  /**
   * C[M x N] = op(A) op(B) (+ C) (+ bias) then activation, where op(A) is M x K and op(B) is K x N.
   * Example: `k.matmul(batch, out, inp, x, w, y, { transB: true, bias: b, activation: 'relu' })`
   * computes relu(x w^T + b) for a linear layer with weights stored [out, inp].
   */
  matmul(M: number, N: number, K: number, a: BufferRef, b: BufferRef, c: BufferRef, opts: MatmulOptions = {}): void {
    this.batchedMatmul(1, M, N, K, a, b, c, opts);
  }

  /**
   * `batch` independent matmuls over stacked operands: A is [batch, M, K] (or [batch, K, M] with
   * transA), B is [batch, K, N] (or [batch, N, K]), C is [batch, M, N]. broadcastA / broadcastB
   * reuse a single A or B for every batch entry. The bias (length N) is shared.
   */
  batchedMatmul(batch: number, M: number, N: number, K: number, a: BufferRef, b: BufferRef, c: BufferRef,
    opts: MatmulOptions & { broadcastA?: boolean; broadcastB?: boolean } = {}): void {
    const name = batch === 1 && !opts.broadcastA && !opts.broadcastB ? 'matmul' : 'batchedMatmul';
    const transA = !!opts.transA, transB = !!opts.transB;
    const sizes = { batch, M, N, K, transA, transB };
    this.counts(name, { batch, M, N, K });
    const sa = opts.broadcastA ? 0 : M * K, sb = opts.broadcastB ? 0 : K * N;
    this.need(name, 'A', a, opts.broadcastA ? M * K : batch * M * K, sizes);
    this.need(name, 'B', b, opts.broadcastB ? K * N : batch * K * N, sizes);
    this.need(name, 'C', c, batch * M * N, sizes);
    this.noOverlap(name, 'C', c, batch * M * N, 'A', a, opts.broadcastA ? M * K : batch * M * K);
    this.noOverlap(name, 'C', c, batch * M * N, 'B', b, opts.broadcastB ? K * N : batch * K * N);
    if (opts.bias) this.need(name, 'bias', opts.bias, N, sizes);
    const act = this.activation(name, opts.activation);
    if (this.pool) {
      for (let i = 0; i < batch; i++) {
        this.gemm(M, N, K, a.ptr + i * sa * 4, transA ? M : K, transA, b.ptr + i * sb * 4, transB ? K : N, transB,
          c.ptr + i * M * N * 4, N, !!opts.accumulate, opts.bias ? opts.bias.ptr : 0, opts.bias ? 1 : 0, act);
      }
      return;
    }
    this.x.gemmBatched(batch, M, N, K,
      a.ptr, transA ? M : K, sa, transA ? 1 : 0,
      b.ptr, transB ? K : N, sb, transB ? 1 : 0,
      c.ptr, N, M * N, opts.accumulate ? 1 : 0,
      opts.bias ? opts.bias.ptr : 0, opts.bias ? 1 : 0, act, this.ws);
  }

  // ---- conv2d --------------------------------------------------------------------------

  /** Output shape [N, Cout, Ho, Wo] of conv2d; throws when the window does not fit. */
  conv2dOutputShape(xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}): [number, number, number, number] {
    return this.convGeometry('conv2d', xShape, wShape, opts).yShape;
  }

  private convGeometry(kernel: string, xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions) {
    if (xShape.length !== 4 || wShape.length !== 4) {
      throw new KernelError(kernel, `x must be [N, C, H, W] and w [Cout, C, KH, KW], got x [${xShape}] and w [${wShape}]`);
    }
    const [N, C, H, W] = xShape as [number, number, number, number];
    const [CO, CI, KH, KW] = wShape as [number, number, number, number];
    const [sh, sw] = pair(opts.stride, 1), [ph, pw] = pair(opts.padding, 0), [dh, dw] = pair(opts.dilation, 1);
    const sizes = { N, C, H, W, Cout: CO, KH, KW, strideH: sh, strideW: sw, padH: ph, padW: pw, dilationH: dh, dilationW: dw };
    this.counts(kernel, sizes);
    const where = `x [${xShape}], w [${wShape}], stride [${sh}, ${sw}], padding [${ph}, ${pw}], dilation [${dh}, ${dw}]`;
    if (CI !== C) throw new KernelError(kernel, `w has ${CI} input channels but x has ${C} (${where})`);
    if (sh < 1 || sw < 1 || dh < 1 || dw < 1 || KH < 1 || KW < 1) throw new KernelError(kernel, `stride, dilation and kernel size must be >= 1 (${where})`);
    const Ho = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
    const Wo = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
    if (Ho < 1 || Wo < 1) throw new KernelError(kernel, `the ${KH}x${KW} window does not fit the padded input (${where})`);
    const geo = [N, C, H, W, CO, KH, KW, sh, sw, ph, pw, dh, dw, Ho, Wo];
    new Int32Array(this.memory.buffer, this.meta, geo.length).set(geo);
    return { N, C, H, W, CO, KH, KW, Ho, Wo, geo, yShape: [N, CO, Ho, Wo] as [number, number, number, number], where };
  }

  private withCols<T>(g: { C: number; KH: number; KW: number; Ho: number; Wo: number }, f: (cols: number) => T): T {
    const cols = this.alloc(g.C * g.KH * g.KW * g.Ho * g.Wo);
    try { return f(cols.ptr); } finally { this.free(cols); }
  }

  /**
   * Runs a conv export over the batch: in one call, or split into contiguous image ranges across
   * the threads, each with its own geometry block (holding its image count), cols buffer and
   * workspace. `job(t, n0, count, cols, geo, ws)` returns the export's arguments for one range.
   */
  private convBatches(g: { N: number; C: number; KH: number; KW: number; Ho: number; Wo: number; geo: number[] },
    fn: 'conv2dForward' | 'conv2dBackwardInput' | 'conv2dBackwardFilter',
    job: (t: number, n0: number, count: number, cols: number, geo: number, ws: number) => number[]): void {
    const T = this.pool ? Math.min(this.threads, g.N) : 1;
    const colsLen = g.C * g.KH * g.KW * g.Ho * g.Wo;
    const bufs = Array.from({ length: Math.max(1, T) }, () => this.alloc(colsLen));
    try {
      const chunk = Math.ceil(g.N / Math.max(1, T));
      const jobs: Job[] = [];
      for (let t = 0, n0 = 0; t === 0 || n0 < g.N; t++, n0 += chunk) {
        const count = Math.max(0, Math.min(chunk, g.N - n0));
        const geoPtr = T > 1 ? this.threadGeo[t]! : this.meta;
        const geo = g.geo.slice();
        geo[0] = count;
        new Int32Array(this.memory.buffer, geoPtr, geo.length).set(geo);
        jobs.push({ fn, args: job(t, n0, count, bufs[t]!.ptr, geoPtr, T > 1 ? this.threadWs[t]! : this.ws) });
        if (count === 0) break;
      }
      this.fork(jobs);
    } finally {
      for (const b of bufs) this.free(b);
    }
  }

  /** y [N, Cout, Ho, Wo] = conv2d(x [N, C, H, W], w [Cout, C, KH, KW]) + bias[Cout] (cross-correlation, like PyTorch). */
  conv2d(x: BufferRef, xShape: readonly number[], w: BufferRef, wShape: readonly number[], y: BufferRef,
    opts: Conv2dOptions & { bias?: BufferRef | null } = {}): void {
    const k = 'conv2d';
    const g = this.convGeometry(k, xShape, wShape, opts);
    this.need(k, 'x', x, g.N * g.C * g.H * g.W, { shape: g.where });
    this.need(k, 'w', w, g.CO * g.C * g.KH * g.KW, { shape: g.where });
    this.need(k, 'y', y, g.N * g.CO * g.Ho * g.Wo, { shape: g.where });
    this.noOverlap(k, 'y', y, g.N * g.CO * g.Ho * g.Wo, 'x', x, g.N * g.C * g.H * g.W);
    if (opts.bias) this.need(k, 'bias', opts.bias, g.CO, { shape: g.where });
    const xStride = g.C * g.H * g.W * 4, yStride = g.CO * g.Ho * g.Wo * 4;
    this.convBatches(g, 'conv2dForward', (_t, n0, _n, cols, geo, ws) =>
      [x.ptr + n0 * xStride, w.ptr, opts.bias ? opts.bias.ptr : 0, y.ptr + n0 * yStride, geo, cols, ws]);
  }

  /** dx [N, C, H, W] = gradient of conv2d with respect to x, from dy [N, Cout, Ho, Wo] and w. */
  conv2dBackwardInput(dy: BufferRef, w: BufferRef, dx: BufferRef, xShape: readonly number[], wShape: readonly number[],
    opts: Conv2dOptions = {}): void {
    const k = 'conv2dBackwardInput';
    const g = this.convGeometry(k, xShape, wShape, opts);
    this.need(k, 'dy', dy, g.N * g.CO * g.Ho * g.Wo, { shape: g.where });
    this.need(k, 'w', w, g.CO * g.C * g.KH * g.KW, { shape: g.where });
    this.need(k, 'dx', dx, g.N * g.C * g.H * g.W, { shape: g.where });
    this.noOverlap(k, 'dx', dx, g.N * g.C * g.H * g.W, 'dy', dy, g.N * g.CO * g.Ho * g.Wo);
    const xStride = g.C * g.H * g.W * 4, yStride = g.CO * g.Ho * g.Wo * 4;
    this.convBatches(g, 'conv2dBackwardInput', (_t, n0, _n, cols, geo, ws) =>
      [dy.ptr + n0 * yStride, w.ptr, dx.ptr + n0 * xStride, geo, cols, ws]);
  }

  /** dw [Cout, C, KH, KW] (+= with accumulate) = gradient of conv2d with respect to w. */
  conv2dBackwardFilter(x: BufferRef, dy: BufferRef, dw: BufferRef, xShape: readonly number[], wShape: readonly number[],
    opts: Conv2dOptions & { accumulate?: boolean } = {}): void {
    const k = 'conv2dBackwardFilter';
    const g = this.convGeometry(k, xShape, wShape, opts);
    this.need(k, 'x', x, g.N * g.C * g.H * g.W, { shape: g.where });
    this.need(k, 'dy', dy, g.N * g.CO * g.Ho * g.Wo, { shape: g.where });
    this.need(k, 'dw', dw, g.CO * g.C * g.KH * g.KW, { shape: g.where });
    const xStride = g.C * g.H * g.W * 4, yStride = g.CO * g.Ho * g.Wo * 4;
    const nw = g.CO * g.C * g.KH * g.KW;
    // Threads other than the caller sum their images into private buffers, added to dw at the end.
    const partial: BufferRef[] = [];
    try {
      this.convBatches(g, 'conv2dBackwardFilter', (t, n0, _n, cols, geo, ws) => {
        let out = dw.ptr, acc = opts.accumulate ? 1 : 0;
        if (t > 0) { const p = this.alloc(nw); partial.push(p); out = p.ptr; acc = 0; }
        return [x.ptr + n0 * xStride, dy.ptr + n0 * yStride, out, geo, acc, cols, ws];
      });
      for (const p of partial) this.x.axpy(nw, 1, p.ptr, dw.ptr);
    } finally {
      for (const p of partial) this.free(p);
    }
  }

  /** db [Cout] (+= with accumulate) = sum of dy [N, Cout, Ho, Wo] over N, Ho, Wo. */
  conv2dBackwardBias(dy: BufferRef, db: BufferRef, yShape: readonly number[], accumulate = false): void {
    const k = 'conv2dBackwardBias';
    if (yShape.length !== 4) throw new KernelError(k, `dy must be [N, Cout, Ho, Wo], got [${yShape}]`);
    const [N, CO, Ho, Wo] = yShape as [number, number, number, number];
    this.counts(k, { N, Cout: CO, Ho, Wo });
    this.need(k, 'dy', dy, N * CO * Ho * Wo, { dy: `[${yShape}]` });
    this.need(k, 'db', db, CO, { dy: `[${yShape}]` });
    new Int32Array(this.memory.buffer, this.meta, 15).set([N, 0, 0, 0, CO, 0, 0, 0, 0, 0, 0, 0, 0, Ho, Wo]);
    this.x.conv2dBackwardBias(dy.ptr, db.ptr, this.meta, accumulate ? 1 : 0);
  }

  // ---- elementwise ---------------------------------------------------------------------

  /** y = op(x) elementwise over n elements; y may be x (in place). */
  unary(op: UnaryOp, x: BufferRef, y: BufferRef, n = x.length): void {
    const code = UNARY_OPS[op];
    if (code === undefined) throw new KernelError('unary', `unknown op '${String(op)}'`);
    this.counts(`unary(${op})`, { n });
    this.need(`unary(${op})`, 'x', x, n, { n });
    this.need(`unary(${op})`, 'y', y, n, { n });
    this.x.unary(code, x.ptr, y.ptr, n);
  }

  /**
   * dx = dy * op'(.) elementwise; `saved` is the forward input x or output y as listed in
   * UNARY_BACKWARD_SAVES (e.g. x for relu and gelu, y for exp, tanh and sigmoid).
   */
  unaryBackward(op: UnaryOp, saved: BufferRef, dy: BufferRef, dx: BufferRef, n = dy.length): void {
    const code = UNARY_OPS[op];
    const k = `unaryBackward(${op})`;
    if (code === undefined) throw new KernelError('unaryBackward', `unknown op '${String(op)}'`);
    this.counts(k, { n });
    this.need(k, 'saved', saved, n, { n });
    this.need(k, 'dy', dy, n, { n });
    this.need(k, 'dx', dx, n, { n });
    this.x.unaryBackward(code, saved.ptr, dy.ptr, dx.ptr, n);
  }

  /** Shape of a (op) b under NumPy broadcasting; throws naming both shapes when incompatible. */
  broadcastShape(kernel: string, aShape: readonly number[], bShape: readonly number[]): number[] {
    const rank = Math.max(aShape.length, bShape.length);
    const out: number[] = [];
    for (let i = 0; i < rank; i++) {
      const da = aShape[aShape.length - rank + i] ?? 1, db = bShape[bShape.length - rank + i] ?? 1;
      if (!isCount(da) || !isCount(db)) throw new KernelError(kernel, `bad shapes [${aShape}] and [${bShape}]`);
      if (da !== db && da !== 1 && db !== 1) throw new KernelError(kernel, `shapes [${aShape}] and [${bShape}] do not broadcast (axis ${i}: ${da} vs ${db})`);
      out.push(da === 1 ? db : da);
    }
    return out;
  }

  /** out = a (op) b with NumPy broadcasting; out has the broadcast shape and may alias a or b when it has their shape. */
  binary(op: BinaryOp, a: BufferRef, aShape: readonly number[], b: BufferRef, bShape: readonly number[], out: BufferRef): void {
    const code = BINARY_OPS[op];
    const k = `binary(${op})`;
    if (code === undefined) throw new KernelError('binary', `unknown op '${String(op)}'`);
    const shape = this.broadcastShape(k, aShape, bShape);
    const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
    const total = size(shape);
    const sizes = { a: `[${aShape}]`, b: `[${bShape}]`, out: `[${shape}]` };
    this.need(k, 'a', a, size(aShape), sizes);
    this.need(k, 'b', b, size(bShape), sizes);
    this.need(k, 'out', out, total, sizes);
    if (size(aShape) !== total) this.noOverlap(k, 'out', out, total, 'a (broadcast)', a, size(aShape));
    if (size(bShape) !== total) this.noOverlap(k, 'out', out, total, 'b (broadcast)', b, size(bShape));
    if (total === 0) return;
    // strides of a and b over the output's axes (0 where broadcast), then merge contiguous axes
    const rank = shape.length;
    const strides = (s: readonly number[]) => {
      const st = new Array<number>(rank).fill(0);
      let acc = 1;
      for (let i = rank - 1; i >= 0; i--) {
        const d = s[s.length - rank + i] ?? 1;
        st[i] = d === 1 ? 0 : acc;
        acc *= d;
      }
      return st;
    };
    const sa = strides(aShape), sb = strides(bShape);
    const dims: number[] = [], da: number[] = [], db: number[] = [];
    for (let i = 0; i < rank; i++) {
      if (shape[i] === 1) continue;
      const last = dims.length - 1;
      if (last >= 0 && da[last] === sa[i]! * shape[i]! && db[last] === sb[i]! * shape[i]!) {
        dims[last]! *= shape[i]!;
        da[last] = sa[i]!;
        db[last] = sb[i]!;
      } else {
        dims.push(shape[i]!); da.push(sa[i]!); db.push(sb[i]!);
      }
    }
    if (dims.length === 0) { dims.push(1); da.push(0); db.push(0); }
    if (dims.length > MAX_RANK) throw new KernelError(k, `more than ${MAX_RANK} non-mergeable axes (${describe(sizes)})`);
    const r = dims.length;
    const meta = new Int32Array(this.memory.buffer, this.meta, 1 + 3 * r);
    meta[0] = r;
    meta.set(dims, 1); meta.set(da, 1 + r); meta.set(db, 1 + 2 * r);
    this.x.binary(code, a.ptr, b.ptr, out.ptr, this.meta);
  }

  /** y += alpha * x over n elements (gradient accumulation). */
  axpy(alpha: number, x: BufferRef, y: BufferRef, n = x.length): void {
    this.counts('axpy', { n });
    this.need('axpy', 'x', x, n, { n });
    this.need('axpy', 'y', y, n, { n });
    this.x.axpy(n, alpha, x.ptr, y.ptr);
  }

  /** x[i] = value for i < n. */
  fill(x: BufferRef, value: number, n = x.length): void {
    this.counts('fill', { n });
    this.need('fill', 'x', x, n, { n });
    this.x.fill(x.ptr, n, value);
  }

  /** y[i] = x[i] rounded to the nearest f16 value, kept as f32 (how f16 tensors are stored); x and y may be one buffer. */
  roundF16(x: BufferRef, y: BufferRef, n = x.length): void {
    this.counts('roundF16', { n });
    this.need('roundF16', 'x', x, n, { n });
    this.need('roundF16', 'y', y, n, { n });
    this.x.roundF16(x.ptr, y.ptr, n);
  }

  // ---- reductions and softmax ----------------------------------------------------------

  /**
   * Reduces x (viewed as [outer, size, inner]) over its middle axis into out [outer, inner].
   * For a tensor of shape s reduced over axis a: outer = prod(s[:a]), size = s[a], inner = prod(s[a+1:]).
   */
  reduce(op: ReduceOp, x: BufferRef, out: BufferRef, outer: number, size: number, inner = 1): void {
    const code = REDUCE_OPS[op];
    const k = `reduce(${op})`;
    if (code === undefined) throw new KernelError('reduce', `unknown op '${String(op)}'`);
    const sizes = { outer, size, inner };
    this.counts(k, sizes);
    if ((op === 'max' || op === 'min') && size === 0 && outer * inner > 0) throw new KernelError(k, `cannot reduce an empty axis (${describe(sizes)})`);
    this.need(k, 'x', x, outer * size * inner, sizes);
    this.need(k, 'out', out, outer * inner, sizes);
    this.noOverlap(k, 'out', out, outer * inner, 'x', x, outer * size * inner);
    this.x.reduce(code, x.ptr, out.ptr, outer, size, inner);
  }

  /** Reduces a tensor of shape `shape` over `axis` (negative counts from the end). */
  reduceAxis(op: ReduceOp, x: BufferRef, shape: readonly number[], axis: number, out: BufferRef): void {
    const a = axis < 0 ? axis + shape.length : axis;
    if (!Number.isInteger(a) || a < 0 || a >= shape.length) throw new KernelError(`reduce(${op})`, `axis ${axis} is out of range for shape [${shape}]`);
    const outer = shape.slice(0, a).reduce((p, d) => p * d, 1);
    const inner = shape.slice(a + 1).reduce((p, d) => p * d, 1);
    this.reduce(op, x, out, outer, shape[a]!, inner);
  }

  private rows(k: string, x: BufferRef, y: BufferRef, rows: number, cols: number, xName = 'x', yName = 'y'): void {
    this.counts(k, { rows, cols });
    this.need(k, xName, x, rows * cols, { rows, cols });
    this.need(k, yName, y, rows * cols, { rows, cols });
  }

  /** out[r] = log(sum_j exp(x[r, j])), computed stably. */
  logsumexp(x: BufferRef, out: BufferRef, rows: number, cols: number): void {
    const k = 'logsumexp';
    this.counts(k, { rows, cols });
    if (cols === 0 && rows > 0) throw new KernelError(k, `cannot reduce an empty row (rows=${rows}, cols=0)`);
    this.need(k, 'x', x, rows * cols, { rows, cols });
    this.need(k, 'out', out, rows, { rows, cols });
    this.x.logsumexpRows(x.ptr, out.ptr, rows, cols);
  }

  /** y = softmax over each row of x [rows, cols]; y may be x. */
  softmax(x: BufferRef, y: BufferRef, rows: number, cols: number): void {
    this.rows('softmax', x, y, rows, cols);
    this.x.softmaxRows(x.ptr, y.ptr, rows, cols, 0);
  }

  /** y = log-softmax over each row of x [rows, cols]; y may be x. */
  logSoftmax(x: BufferRef, y: BufferRef, rows: number, cols: number): void {
    this.rows('logSoftmax', x, y, rows, cols);
    this.x.softmaxRows(x.ptr, y.ptr, rows, cols, 1);
  }

  /** dx = y * (dy - sum(dy * y)) per row, from softmax's output y. */
  softmaxBackward(y: BufferRef, dy: BufferRef, dx: BufferRef, rows: number, cols: number): void {
    this.rows('softmaxBackward', y, dy, rows, cols, 'y', 'dy');
    this.need('softmaxBackward', 'dx', dx, rows * cols, { rows, cols });
    this.x.softmaxBackwardRows(y.ptr, dy.ptr, dx.ptr, rows, cols, 0);
  }

  /** dx = dy - exp(y) * sum(dy) per row, from logSoftmax's output y. */
  logSoftmaxBackward(y: BufferRef, dy: BufferRef, dx: BufferRef, rows: number, cols: number): void {
    this.rows('logSoftmaxBackward', y, dy, rows, cols, 'y', 'dy');
    this.need('logSoftmaxBackward', 'dx', dx, rows * cols, { rows, cols });
    this.x.softmaxBackwardRows(y.ptr, dy.ptr, dx.ptr, rows, cols, 1);
  }

  /**
   * Fused softmax cross-entropy over logits [rows, cols] with i32 labels [rows]. Writes the
   * per-row losses into `loss` and, when `grad` is given, grad = (softmax - onehot) * gradScale
   * (default 1 / rows, the gradient of the mean loss); grad may be the logits buffer itself.
   * Returns the mean loss.
   */
  softmaxCrossEntropy(logits: BufferRef, labels: BufferRef, rows: number, cols: number,
    opts: { loss: BufferRef; grad?: BufferRef | null; gradScale?: number }): number {
    const k = 'softmaxCrossEntropy';
    const sizes = { rows, cols };
    this.counts(k, sizes);
    if (cols === 0 && rows > 0) throw new KernelError(k, `cannot take softmax over 0 classes (rows=${rows})`);
    this.need(k, 'logits', logits, rows * cols, sizes);
    this.need(k, 'labels', labels, rows, sizes);
    this.need(k, 'loss', opts.loss, rows, sizes);
    if (opts.grad) {
      this.need(k, 'grad', opts.grad, rows * cols, sizes);
      this.noOverlap(k, 'grad', opts.grad, rows * cols, 'labels', labels, rows);
    }
    const scale = opts.gradScale ?? (rows > 0 ? 1 / rows : 0);
    const bad = this.x.softmaxCrossEntropy(logits.ptr, labels.ptr, opts.loss.ptr, opts.grad ? opts.grad.ptr : 0, rows, cols, scale);
    if (bad >= 0) {
      const label = this.i32(labels)[bad];
      throw new KernelError(k, `label ${label} at row ${bad} is outside [0, ${cols}) (rows=${rows}, cols=${cols})`);
    }
    if (rows === 0) return NaN;
    const l = this.f32(opts.loss);
    let s = 0;
    for (let i = 0; i < rows; i++) s += l[i]!;
    return s / rows;
  }

  // ---- optimizers ----------------------------------------------------------------------

  /**
   * In-place SGD step on n parameters (PyTorch, dampening 0): g' = gradScale * g + weightDecay * p; with momentum
   * v = momentum * v + g' and d = nesterov ? g' + momentum * v : v, else d = g'; then p -= lr * d.
   * gradScale (default 1) unscales a mixed-precision gradient in the same pass.
   */
  sgd(p: BufferRef, g: BufferRef, opts: { lr: number; momentum?: number; velocity?: BufferRef | null; weightDecay?: number; nesterov?: boolean; gradScale?: number },
    n = p.length): void {
    const k = 'sgd';
    this.counts(k, { n });
    this.need(k, 'param', p, n, { n });
    this.need(k, 'grad', g, n, { n });
    const momentum = opts.momentum ?? 0;
    if (momentum !== 0) this.need(k, 'velocity', opts.velocity, n, { n, momentum });
    if (opts.nesterov && momentum === 0) throw new KernelError(k, `nesterov needs a momentum other than 0 (n=${n})`);
    this.x.sgdScaled(p.ptr, g.ptr, opts.velocity ? opts.velocity.ptr : 0, n, opts.lr, momentum, opts.weightDecay ?? 0,
      opts.nesterov ? 1 : 0, opts.gradScale ?? 1);
  }

  /**
   * In-place Adam step (AdamW when decoupled) with bias correction; `step` counts from 1. The gradient is
   * multiplied by gradScale (default 1) first. Defaults: beta1 0.9, beta2 0.999, eps 1e-8, weightDecay 0 (Adam) / 0.01 (AdamW).
   */
  adam(p: BufferRef, g: BufferRef, m: BufferRef, v: BufferRef,
    opts: { lr: number; step: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number; decoupled?: boolean; gradScale?: number },
    n = p.length): void {
    const k = opts.decoupled ? 'adamw' : 'adam';
    this.counts(k, { n });
    if (!Number.isInteger(opts.step) || opts.step < 1) throw new KernelError(k, `step must be an integer >= 1, got ${opts.step} (n=${n})`);
    for (const [name, buf] of [['param', p], ['grad', g], ['m', m], ['v', v]] as const) this.need(k, name, buf, n, { n });
    const b1 = opts.beta1 ?? 0.9, b2 = opts.beta2 ?? 0.999;
    const wd = opts.weightDecay ?? (opts.decoupled ? 0.01 : 0);
    // The step's coefficients in f64 (1 - b2 rounds badly in f32).
    this.x.adamScaled(p.ptr, g.ptr, m.ptr, v.ptr, n, b1, 1 - b1, b2, 1 - b2, opts.eps ?? 1e-8,
      opts.decoupled ? 0 : wd, opts.decoupled ? 1 - opts.lr * wd : 1, opts.lr / (1 - b1 ** opts.step), 1 / Math.sqrt(1 - b2 ** opts.step), opts.gradScale ?? 1);
  }

  /** AdamW: adam() with decoupled weight decay. */
  adamw(p: BufferRef, g: BufferRef, m: BufferRef, v: BufferRef,
    opts: { lr: number; step: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number; gradScale?: number }, n = p.length): void {
    this.adam(p, g, m, v, { ...opts, decoupled: true }, n);
  }

  /** Σ x[i]² over n elements, accumulated in f64 (for clipping gradients by their global norm). */
  sumSquares(x: BufferRef, n = x.length): number {
    this.counts('sumSquares', { n });
    this.need('sumSquares', 'x', x, n, { n });
    return this.x.sumSquares(x.ptr, n);
  }

  /** Whether any of the first n elements of x is inf or NaN (decided on the bits; for dynamic loss scaling). */
  nonFinite(x: BufferRef, n = x.length): boolean {
    this.counts('nonFinite', { n });
    this.need('nonFinite', 'x', x, n, { n });
    return this.x.nonFinite(x.ptr, n) !== 0;
  }

  // ---- diagnostics ---------------------------------------------------------------------

  /**
   * Runs the f32 SIMD peak loop (12 independent multiply / add chains, or fused madd chains in the
   * relaxed build, all in registers) for `iters` iterations and returns GFLOP/s counting a
   * multiply-add as 2 flops; 0 for the scalar build. Best of `repeats` runs.
   */
  measurePeakGflops(iters = 10_000_000, repeats = 5): number {
    const perIter = this.x.peakFlopsPerIter();
    if (perIter === 0) return 0;
    this.x.peakFlops(100_000, 0.9999999, 1e-7);
    let best = 0;
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      this.x.peakFlops(iters, 0.9999999, 1e-7);
      const secs = (performance.now() - t0) / 1000;
      best = Math.max(best, (iters * perIter) / secs / 1e9);
    }
    return best;
  }

  /** Raw exports, for benchmarks and tests of layouts the typed API does not cover. */
  get raw(): Readonly<KernelExports> { return this.x; }
  /** Address of the shared gemm workspace (gemmWorkspaceBytes bytes), for raw calls. */
  get workspace(): number { return this.ws; }
}

function describe(sizes: Record<string, number | string | boolean>): string {
  return Object.entries(sizes).map(([k, v]) => `${k}=${v}`).join(', ');
}
