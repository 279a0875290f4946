// SPDX-License-Identifier: MIT
// The WebGPU runtime: tensors in pooled GPUBuffers, one shared command encoder whose dispatches are submitted in
// batches, a pipeline cache keyed by the generated WGSL, and memory accounting. Only reads wait for the GPU.
import { type AdapterDescription, type DeviceOptions, INSTALL_HINT, requestGpuDevice } from './device.js';
import { type DType, type Shape, OpError, fmt, size, checkShape, bytesPerElement } from './shape.js';
import { fromF16Bits, toF16Bits } from './float16.js';

export interface MemoryStats {
  /** Bytes of GPU buffers held by live tensors. */
  liveBytes: number;
  /** Highest liveBytes seen since start (or since resetPeak()). */
  peakBytes: number;
  /** Tensors created and not yet disposed. */
  liveTensors: number;
  /** Bytes kept in the pool for reuse (free, but still allocated on the device). */
  pooledBytes: number;
}

/** A GPUBuffer shared by a tensor and its free reshapes. */
class Storage {
  refs = 1;
  constructor(readonly buffer: GPUBuffer, readonly bytes: number) {}
}

const USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

/** Size class: powers of two below 1 MiB, then multiples of 1/8 of the power of two (waste under 12.5%). */
function sizeClass(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (b <= 1 << 20) return 2 ** Math.ceil(Math.log2(b));
  const p = 2 ** (Math.ceil(Math.log2(b)) - 3);
  return Math.ceil(b / p) * p;
}

export class Tensor {
  /** @internal */ storage: Storage | null;
  readonly size: number;
  constructor(readonly rt: GpuRuntime, storage: Storage, readonly shape: Shape, readonly dtype: DType) {
    this.storage = storage;
    this.size = size(shape);
    rt.track(this);
  }
  get rank(): number { return this.shape.length; }
  get disposed(): boolean { return this.storage === null; }
  /** @internal The buffer, or an Error naming the op if the tensor was disposed. */
  buf(op = 'tensor'): GPUBuffer {
    if (!this.storage) throw new OpError(op, `tensor ${this.dtype}${fmt(this.shape)} was used after dispose()`);
    return this.storage.buffer;
  }
  /** Free: shares the buffer. One dimension may be -1. */
  reshape(shape: Shape): Tensor {
    const s = [...shape];
    const unknown = s.indexOf(-1);
    if (unknown >= 0) s[unknown] = this.size / size(s.filter((_, i) => i !== unknown));
    checkShape('reshape', s);
    if (size(s) !== this.size) throw new OpError('reshape', `cannot reshape ${this.dtype}${fmt(this.shape)} to ${fmt(shape)}`);
    const st = this.storage;
    if (!st) throw new OpError('reshape', `tensor ${fmt(this.shape)} was used after dispose()`);
    st.refs++;
    return new Tensor(this.rt, st, s, this.dtype);
  }
  /** Reads back (waits for the GPU). f16 and i32 come back as numbers in a Float32Array / Int32Array. */
  async data(): Promise<Float32Array | Int32Array> {
    return this.rt.read(this);
  }
  async item(): Promise<number> {
    if (this.size !== 1) throw new OpError('item', `tensor ${fmt(this.shape)} has ${this.size} elements, not 1`);
    return (await this.data())[0]!;
  }
  /** Nested-array-free helper for tests: the values as a plain array. */
  async array(): Promise<number[]> {
    return Array.from(await this.data());
  }
  dispose(): void {
    if (!this.storage) return;
    this.rt.release(this);
  }
  toString(): string { return `Tensor(${this.dtype}${fmt(this.shape)})`; }
}

export interface RuntimeOptions extends DeviceOptions {
  /** Submit after this many dispatches even without a read (default 256). */
  batchSize?: number;
  /** Default: true on hardware adapters, false on SwiftShader. */
  tiledGemm?: boolean;
  /** Default: true on SwiftShader, false on hardware adapters. */
  rowPerInvocation?: boolean;
  /** Read and write f16 tensors as WGSL f16 (`shader-f16`). Default: whether the device has the feature. */
  nativeF16?: boolean;
}

export class GpuRuntime {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  private pendingDestroy: GPUBuffer[] = [];
  private pipelines = new Map<string, GPUComputePipeline>();
  private pool = new Map<number, GPUBuffer[]>();
  private live = new Set<Tensor>();
  private scopes: Set<Tensor>[] = [];
  private liveBytes = 0;
  private peakBytes = 0;
  private pooledBytes = 0;
  batchSize: number;
  /**
   * GEMM style for convolutions and unaligned matmuls: workgroup-memory tiles (real GPUs) or register blocking
   * without barriers (SwiftShader, where barriers are costly and caches do the tiling). Aligned matmuls are register
   * blocked on both, 8 rows per invocation with it on and 16 with it off. Tests switch it to cover both.
   */
  tiledGemm: boolean;
  /**
   * Row-wise kernels (layerNorm, softmaxes and softmax-cross-entropy, reductions such as bias gradients): one
   * invocation per row with no barriers (SwiftShader, where a workgroup is a CPU thread and each barrier-separated
   * step of a tree reduction costs a pass over the workgroup) or one workgroup per row with a reduction in workgroup
   * memory (real GPUs). Also the fused optimizer updates: 16 elements per invocation (fewer, longer workgroups) on
   * SwiftShader, one on real GPUs. Tests switch it.
   */
  rowPerInvocation: boolean;
  /**
   * f16 tensors are read and written as WGSL `f16` values (`enable f16;`, the `shader-f16` feature) when true, and
   * as two halves of a u32 word (pack2x16float / unpack2x16float, which every adapter has) when false. The layout
   * in memory is the same either way. Default: whether the device was created with `shader-f16`; tests switch it.
   */
  nativeF16: boolean;
  /** Aligned matmuls through the register-blocked vec4 kernel (default true); false sends them to the GEMM above. Tests switch it. */
  vec4Matmul = true;
  /** Attention on short sequences through materialised per-head score matrices and GEMMs (default true). Tests switch it. */
  shortAttention = true;
  /** Counters for tests and tuning. */
  readonly counters = { submits: 0, dispatches: 0, pipelinesCompiled: 0, buffersCreated: 0 };

  constructor(readonly device: GPUDevice, readonly adapter: AdapterDescription, opts: RuntimeOptions = {}) {
    this.batchSize = opts.batchSize ?? 256;
    this.tiledGemm = opts.tiledGemm ?? !adapter.software;
    this.rowPerInvocation = opts.rowPerInvocation ?? adapter.software;
    const hasF16 = adapter.features.includes('shader-f16');
    if (opts.nativeF16 && !hasF16) throw new Error(`pullback: nativeF16 needs the 'shader-f16' feature, which ${adapter.description || 'this adapter'} does not have`);
    this.nativeF16 = opts.nativeF16 ?? hasF16;
    device.addEventListener?.('uncapturederror', (ev: Event) => {
      // A validation error is a bug in a kernel: remember it and throw at the next read rather than return garbage.
      this.deviceError ??= new Error(`pullback internal WebGPU error: ${(ev as GPUUncapturedErrorEvent).error?.message}`);
    });
  }
  private deviceError: Error | undefined;
  private checkError(): void {
    if (this.deviceError) { const e = this.deviceError; this.deviceError = undefined; throw e; }
  }

  static async create(opts: RuntimeOptions = {}): Promise<GpuRuntime> {
    const gd = await requestGpuDevice(opts);
    if (!gd) throw new Error(INSTALL_HINT);
    return new GpuRuntime(gd.device, gd.adapter, opts);
  }

  get limits(): GPUSupportedLimits { return this.device.limits; }

  // ---- memory ----
  /** @internal */ track(t: Tensor): void {
    this.live.add(t);
    this.scopes[this.scopes.length - 1]?.add(t);
  }

  private allocStorage(bytes: number): Storage {
    const cls = sizeClass(bytes);
    const free = this.pool.get(cls);
    let buffer = free?.pop();
    if (buffer) this.pooledBytes -= cls;
    else {
      buffer = this.device.createBuffer({ size: cls, usage: USAGE });
      this.counters.buffersCreated++;
    }
    this.liveBytes += cls;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    return new Storage(buffer, cls);
  }

  /** @internal */ release(t: Tensor): void {
    const st = t.storage!;
    t.storage = null;
    this.live.delete(t);
    for (const s of this.scopes) s.delete(t);
    if (--st.refs > 0) return;
    this.liveBytes -= st.bytes;
    // Safe to reuse before the queued work runs: later commands on the one queue run after earlier ones.
    let list = this.pool.get(st.bytes);
    if (!list) this.pool.set(st.bytes, (list = []));
    list.push(st.buffer);
    this.pooledBytes += st.bytes;
  }

  memoryStats(): MemoryStats {
    return { liveBytes: this.liveBytes, peakBytes: this.peakBytes, liveTensors: this.live.size, pooledBytes: this.pooledBytes };
  }
  resetPeak(): void { this.peakBytes = this.liveBytes; }

  /** Frees the pool's buffers (live tensors are untouched). */
  emptyPool(): void {
    this.flush();
    for (const list of this.pool.values()) for (const b of list) this.pendingDestroy.push(b);
    this.pool.clear();
    this.pooledBytes = 0;
  }

  /** Runs fn; every tensor created inside and not returned (or kept) is disposed when it ends. */
  tidy<R>(fn: () => R): R {
    const scope = new Set<Tensor>();
    this.scopes.push(scope);
    let result: R;
    try {
      result = fn();
    } finally {
      this.scopes.pop();
    }
    const keep = new Set<Tensor>();
    collectTensors(result, keep);
    for (const t of scope) if (!keep.has(t)) t.dispose();
    const outer = this.scopes[this.scopes.length - 1];
    if (outer) for (const t of keep) if (!t.disposed) outer.add(t);
    return result;
  }

  /** Removes t from the enclosing tidy scopes so that it outlives them. */
  keep<T extends Tensor>(t: T): T {
    for (const s of this.scopes) s.delete(t);
    return t;
  }

  // ---- tensors ----
  empty(shape: Shape, dtype: DType, op = 'empty'): Tensor {
    checkShape(op, shape);
    const n = size(shape);
    const bytes = dtype === 'f16' ? Math.ceil(n / 2) * 4 : n * bytesPerElement(dtype);
    return new Tensor(this, this.allocStorage(bytes), [...shape], dtype);
  }

  /** Uploads through a mapped staging buffer copied inside the encoder, so it stays in order with queued work. */
  fromArray(data: ArrayLike<number>, shape: Shape, dtype: DType = 'f32'): Tensor {
    checkShape('tensor', shape);
    const n = size(shape);
    if (data.length !== n) throw new OpError('tensor', `${data.length} values do not fill shape ${fmt(shape)} (${n} elements)`);
    const t = this.empty(shape, dtype, 'tensor');
    if (n === 0) return t;
    const bytes = dtype === 'f16' ? Math.ceil(n / 2) * 4 : n * 4;
    const staging = this.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: 0x04 /* COPY_SRC */, mappedAtCreation: true });
    const range = staging.getMappedRange();
    if (dtype === 'f32') new Float32Array(range).set(data);
    else if (dtype === 'i32') {
      const dst = new Int32Array(range);
      for (let i = 0; i < n; i++) {
        const v = data[i]!;
        if (!Number.isInteger(v)) throw new OpError('tensor', `i32 tensor ${fmt(shape)} given non-integer value ${v} at ${i}`);
        dst[i] = v;
      }
    } else {
      const dst = new Uint16Array(range);
      for (let i = 0; i < n; i++) dst[i] = toF16Bits(data[i]!);
    }
    staging.unmap();
    this.copy(staging, t.buf(), bytes);
    this.pendingDestroy.push(staging);
    return t;
  }

  fill(shape: Shape, value: number, dtype: DType = 'f32'): Tensor {
    const n = size(shape);
    const a = new Array<number>(n).fill(value);
    return this.fromArray(a, shape, dtype);
  }

  // ---- encoding ----
  private enc(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private copy(src: GPUBuffer, dst: GPUBuffer, bytes: number): void {
    this.endPass();
    this.enc().copyBufferToBuffer(src, 0, dst, 0, Math.ceil(bytes / 4) * 4);
  }

  private endPass(): void {
    if (this.pass) { this.pass.end(); this.pass = null; }
  }

  pipeline(code: string): GPUComputePipeline {
    let p = this.pipelines.get(code);
    if (!p) {
      const module = this.device.createShaderModule({ code });
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(code, p);
      this.counters.pipelinesCompiled++;
    }
    return p;
  }

  /**
   * Records one dispatch of `code` (WGSL with entry point main; binding i of group 0 is buffers[i]).
   * Every binding must be used by the shader (layout 'auto' drops unused ones).
   */
  dispatch(code: string, buffers: readonly GPUBuffer[], groups: readonly [number, number?, number?]): void {
    const [x, y = 1, z = 1] = groups;
    if (x === 0 || y === 0 || z === 0) return;
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) throw new Error(`pullback internal: dispatch [${x}, ${y}, ${z}] exceeds ${max} workgroups per dimension`);
    const pipeline = this.pipeline(code);
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    if (!this.pass) this.pass = this.enc().beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(x, y, z);
    this.counters.dispatches++;
    if (++this.pendingDispatches >= this.batchSize) this.flush();
  }

  /** Submits what was recorded. Does not wait. */
  flush(): void {
    this.endPass();
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      this.counters.submits++;
    }
    this.pendingDispatches = 0;
    if (this.pendingDestroy.length) {
      const list = this.pendingDestroy;
      this.pendingDestroy = [];
      // Destroying after submit is allowed: WebGPU defers it until the queued work that uses them is done.
      for (const b of list) b.destroy();
    }
  }

  /** Waits until all submitted work is done. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkError();
  }

  async read(t: Tensor): Promise<Float32Array | Int32Array> {
    const src = t.buf('data');
    const n = t.size;
    if (n === 0) return t.dtype === 'i32' ? new Int32Array(0) : new Float32Array(0);
    const bytes = t.dtype === 'f16' ? Math.ceil(n / 2) * 4 : n * 4;
    const dst = this.device.createBuffer({ size: bytes, usage: 0x01 /* MAP_READ */ | 0x08 /* COPY_DST */ });
    this.copy(src, dst, bytes);
    this.flush();
    await dst.mapAsync(0x01 /* READ */);
    this.checkError();
    const range = dst.getMappedRange();
    let out: Float32Array | Int32Array;
    if (t.dtype === 'f32') out = new Float32Array(range.slice(0));
    else if (t.dtype === 'i32') out = new Int32Array(range.slice(0));
    else {
      const h = new Uint16Array(range);
      out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = fromF16Bits(h[i]!);
    }
    dst.unmap();
    dst.destroy();
    return out;
  }
}

function collectTensors(x: unknown, into: Set<Tensor>): void {
  if (x instanceof Tensor) into.add(x);
  else if (Array.isArray(x)) for (const y of x) collectTensors(y, into);
  else if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) for (const y of Object.values(x)) collectTensors(y, into);
}
