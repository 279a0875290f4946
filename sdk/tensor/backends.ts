// SPDX-License-Identifier: MIT
// The engine's backends (the reference f64 spec, the Wasm SIMD CPU backend, WebGPU) as TensorBackend adapters, and
// choosing one: `await init()` takes a hardware WebGPU adapter when there is one and the CPU backend otherwise.
// SwiftShader (WebGPU on the CPU) is correct but far slower than the Wasm kernels, so it is used only when asked for.
import { referenceBackend, webgpuBackend } from '../../runtime-gpu/backend.js';
import { type AdapterChoice, type DeviceOptions, INSTALL_HINT, requestGpuDevice } from '../../runtime-gpu/device.js';
import { type HostTensor, roundTo } from '../../runtime-gpu/host.js';
import { GpuRuntime, type RuntimeOptions, type Tensor as GpuTensor } from '../../runtime-gpu/runtime.js';
import { OpError } from '../../runtime-gpu/shape.js';
import { type CpuTensor, type WasmBackend, wasmBackend } from '../../runtime-wasm/backend.js';
import {
  type Tensor, type TensorBackend, type TensorMemoryStats,
  currentBackend, hasBackend, resetPeakMemory, setTensorBackend, tensorMemoryStats, upload,
} from './engine.js';

/** Starts the peak of memoryStats() over from the current live bytes. */
export { resetPeakMemory };
export type { TensorBackend };

/** Which backend new tensors are made on, and on what device. */
export interface BackendInfo {
  name: 'reference' | 'cpu' | 'webgpu' | 'none';
  /** A human description: the adapter, or the Wasm build and thread count. */
  description: string;
  /** The WebGPU adapter's description (null off WebGPU). */
  adapter: string | null;
  vendor?: string;
  architecture?: string;
  /** WebGPU on SwiftShader (a CPU implementation of Vulkan): correct but slow. */
  software?: boolean;
  /** CPU backend: threads used by matmul and conv2d. */
  threads?: number;
  /** WebGPU: kernels read and write f16 tensors as WGSL f16 (the adapter has `shader-f16`), not as packed u32 words. */
  shaderF16?: boolean;
}

/** What each adapter knows beyond TensorBackend: its info, its own memory numbers and how to wait for it. */
interface Extras {
  info: BackendInfo;
  memory?: () => Partial<BackendMemoryStats>;
  sync?: () => Promise<void>;
}
const extras = new WeakMap<TensorBackend, Extras>();

function adapt<V>(be: TensorBackend<V>, x: Extras): TensorBackend<V> {
  extras.set(be, x);
  return be;
}

// ---- the adapters ----

/** The reference backend: every op's f64 spec on the CPU. Synchronous to set up, slow; for tests and gradient checks. */
export const referenceTensorBackend: TensorBackend<HostTensor> = adapt({
  name: 'reference',
  kernels: referenceBackend,
  // Values are stored as the dtype would hold them (f32 rounding, i32 truncation), as every other backend does.
  upload: (data, shape, dtype) => ({ shape: [...shape], dtype, data: Float64Array.from(data, (v) => roundTo(dtype, v)) }),
  download: async (v) => (v.dtype === 'i32' ? Int32Array.from(v.data) : Float64Array.from(v.data)), // i32 as an Int32Array, as on the other backends
  free: () => {},
  description: 'reference (f64 on the CPU)',
}, { info: { name: 'reference', description: 'reference (f64 on the CPU)', adapter: null } });

/** The CPU backend over Wasm SIMD kernels (optionally multi-threaded matmul and conv2d). */
export async function cpuTensorBackend(opts: { threads?: number; wasmDir?: string | URL } = {}): Promise<TensorBackend<CpuTensor>> {
  const wb: WasmBackend = await wasmBackend({ threads: opts.threads, wasmDir: opts.wasmDir });
  const k = wb.cpu;
  const description = `cpu (Wasm ${k.variant}, ${k.threads} thread${k.threads === 1 ? '' : 's'})`;
  return adapt<CpuTensor>({
    name: 'cpu',
    kernels: wb,
    upload: (data, shape, dtype) => wb.upload({ shape: [...shape], dtype, data: Float64Array.from(data) }),
    // A copy: views of the Wasm memory go stale when it grows. f16 is held as f32 rounded to f16.
    download: async (v) => (v.dtype === 'i32' ? k.i32(v.buf).slice() : k.f32(v.buf).slice()),
    free: (v) => v.dispose(),
    description,
  }, {
    info: { name: 'cpu', description, adapter: null, threads: k.threads },
    memory: () => { const m = k.memoryStats(); return { heapBytes: m.heapBytes, memoryBytes: m.memoryBytes }; },
  });
}

/** The WebGPU backend over one runtime (one GPUDevice). */
export function webgpuTensorBackend(rt: GpuRuntime): TensorBackend<GpuTensor> {
  const a = rt.adapter;
  const description = `webgpu (${a.description}${a.software ? ', software' : ''})`;
  return adapt<GpuTensor>({
    name: 'webgpu',
    kernels: webgpuBackend(rt),
    upload: (data, shape, dtype) => rt.fromArray(data, shape, dtype),
    download: (v) => rt.read(v),
    free: (v) => v.dispose(),
    description,
  }, {
    info: { name: 'webgpu', description, adapter: a.description, vendor: a.vendor, architecture: a.architecture, software: a.software, shaderF16: rt.nativeF16 },
    memory: () => ({ pooledBytes: rt.memoryStats().pooledBytes }),
    sync: () => rt.sync(),
  });
}

// ---- choosing one ----

/** A backend by name: 'wasm' and 'cpu' both name the CPU backend (Wasm SIMD kernels), whose BackendInfo.name is 'cpu'. */
export type BackendName = 'webgpu' | 'wasm' | 'cpu' | 'reference';
const BACKEND_NAMES: readonly BackendName[] = ['webgpu', 'wasm', 'cpu', 'reference'];

/** What init() chooses. */
export interface InitOptions {
  /**
   * 'auto' (default): WebGPU on a hardware adapter if there is one, else the CPU backend (with one warning).
   * 'webgpu': WebGPU or an Error saying what to install. 'cpu' (or 'wasm'): the Wasm kernels. 'reference': the f64 spec.
   */
  backend?: 'auto' | BackendName;
  /** WebGPU adapter: 'swiftshader' runs WebGPU on the CPU (slow; for tests). Default: PULLBACK_GPU_ADAPTER, else 'auto'. */
  adapter?: AdapterChoice;
  /** CPU backend: threads for matmul and conv2d (default 1). */
  threads?: number;
  /**
   * CPU backend: where the kernel builds (kernels.<variant>.wasm from runtime-wasm/build/) are. In Node the
   * package's own folder is the default; a browser page serves the files and names their URL here.
   */
  wasmDir?: string | URL;
  /** WebGPU runtime options (batch size, GEMM style). */
  runtime?: Omit<RuntimeOptions, keyof DeviceOptions>;
}

// One runtime per adapter choice and one Wasm instance per thread count, so that calling init() again to switch
// back reuses them (tensors made before keep working on theirs).
const gpuBackends = new Map<string, Promise<TensorBackend>>();
const cpuBackends = new Map<number, Promise<TensorBackend>>();
let warnedFallback = false;

const FALLBACK_WARNING =
  'pullback: no hardware WebGPU adapter was found, so tensors run on the CPU backend (Wasm SIMD). ' +
  "To run WebGPU on the CPU through SwiftShader instead (much slower; for testing), call setBackend('webgpu', { adapter: 'swiftshader' }) " +
  'or set PULLBACK_GPU_ADAPTER=swiftshader.';

function cached<K>(map: Map<K, Promise<TensorBackend>>, key: K, make: () => Promise<TensorBackend>): Promise<TensorBackend> {
  let p = map.get(key);
  if (!p) {
    p = make();
    map.set(key, p);
    p.catch(() => map.delete(key)); // a failed start may be retried (e.g. after installing a driver)
  }
  return p;
}

function cpu(threads = 1, wasmDir?: string | URL): Promise<TensorBackend> {
  return cached(cpuBackends, threads, () => cpuTensorBackend({ threads, wasmDir }));
}

/** PULLBACK_GPU_ADAPTER in Node (device.ts reads the same variable). */
function envAdapter(): AdapterChoice | undefined {
  return typeof process !== 'undefined' ? (process.env?.PULLBACK_GPU_ADAPTER as AdapterChoice | undefined) || undefined : undefined;
}

/** `required` names the call that asked for WebGPU (for its error message); null: a failure to find an adapter is no error. */
async function webgpu(opts: InitOptions, required: string | null): Promise<TensorBackend | null> {
  const adapter = opts.adapter ?? envAdapter() ?? 'auto';
  const key = adapter;
  const hit = gpuBackends.get(key);
  if (hit) return hit;
  let gd: Awaited<ReturnType<typeof requestGpuDevice>>;
  try {
    gd = await requestGpuDevice({ adapter });
  } catch (e) {
    if (required) throw new Error(`pullback ${required}: ${(e as Error).message.replace(/^pullback: /, '')}`, { cause: e });
    throw e;
  }
  if (!gd) {
    if (required) throw new Error(`pullback ${required}: ${INSTALL_HINT}`);
    return null;
  }
  return cached(gpuBackends, key, async () => webgpuTensorBackend(new GpuRuntime(gd.device, gd.adapter, opts.runtime)));
}

/**
 * Whether Linux has a Vulkan loader, without which Dawn finds no adapter (and prints a warning while looking).
 * Elsewhere, and in browsers, the answer is left to WebGPU itself.
 */
async function vulkanLoaderMissing(): Promise<boolean> {
  if (typeof process === 'undefined' || process.platform !== 'linux') return false;
  const { existsSync } = await import('node:fs');
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/lib64', '/lib', '/usr/local/lib'];
  return !dirs.some((d) => existsSync(`${d}/libvulkan.so.1`));
}

async function auto(opts: InitOptions): Promise<TensorBackend> {
  let reason = '';
  if (opts.adapter === undefined && envAdapter() === undefined && await vulkanLoaderMissing()) {
    reason = ' (no Vulkan loader, libvulkan.so.1, is installed)';
    if (!warnedFallback) { warnedFallback = true; console.warn(FALLBACK_WARNING + reason); }
    return cpu(opts.threads, opts.wasmDir);
  }
  try {
    const be = await webgpu(opts, null);
    if (be) return be;
  } catch (e) {
    // An adapter the user named explicitly must work; otherwise (e.g. the `webgpu` package is not installed)
    // falling back to the CPU is the documented behaviour, and the warning says why.
    if (opts.adapter !== undefined || envAdapter() !== undefined) throw e;
    reason = ` (${(e as Error).message})`;
  }
  // In a browser the CPU backend cannot load its Wasm kernels yet (they are read from disk), so a software
  // adapter (headless Chromium's SwiftShader) is the better fallback there.
  if (typeof process === 'undefined' && opts.adapter === undefined && opts.wasmDir === undefined) {
    const soft = await webgpu({ ...opts, adapter: 'swiftshader' }, null).catch(() => null);
    if (soft) {
      if (!warnedFallback) { warnedFallback = true; console.warn('pullback: no hardware WebGPU adapter; using the browser\'s software adapter (slow)'); }
      return soft;
    }
  }
  if (!warnedFallback) {
    warnedFallback = true;
    console.warn(FALLBACK_WARNING + reason);
  }
  return cpu(opts.threads, opts.wasmDir);
}

/**
 * Chooses the backend new tensors are made on; may be called again to switch (tensors keep their backend).
 * @example const info = await init(); console.log(info.description); const x = tensor([1, 2, 3]);
 */
export async function init(opts: InitOptions = {}): Promise<BackendInfo> {
  const choice = opts.backend ?? 'auto';
  const be = choice === 'auto' ? await auto(opts) : await named(choice, opts, 'init');
  setTensorBackend(be);
  return infoOf(be);
}

/**
 * Sets the backend every tensor made from now on lives on, for the whole program: the global override of init()'s
 * automatic choice (`withBackend` overrides it for one call site). 'wasm' (also called 'cpu') is the CPU backend
 * over the Wasm SIMD kernels, 'webgpu' a WebGPU adapter (a hardware one unless `adapter` or PULLBACK_GPU_ADAPTER
 * says 'swiftshader'), 'reference' the f64 spec of every op. Throws an Error that says what to do when the name
 * is unknown or the backend cannot be had (no WebGPU adapter: what to install), and then leaves the current
 * backend as it was. Tensors made before keep their backend.
 * @example await setBackend('wasm'); const x = tensor([1, 2, 3]);  // on the CPU backend
 */
export async function setBackend(name: BackendName, opts: Omit<InitOptions, 'backend'> = {}): Promise<BackendInfo> {
  const be = await named(name, opts, 'setBackend');
  setTensorBackend(be);
  return infoOf(be);
}

/** The backend `name` names, started if need be; `fn` is the caller, for error messages. */
async function named(name: BackendName, opts: InitOptions, fn: 'init' | 'setBackend'): Promise<TensorBackend> {
  switch (name) {
    case 'webgpu': return (await webgpu(opts, fn === 'init' ? "init({ backend: 'webgpu' })" : "setBackend('webgpu')"))!;
    case 'wasm': case 'cpu': return cpu(opts.threads, opts.wasmDir);
    case 'reference': return referenceTensorBackend;
    default: {
      const never: never = name;
      const known = fn === 'init' ? `'auto', ${BACKEND_NAMES.map((n) => `'${n}'`).join(', ')}` : BACKEND_NAMES.map((n) => `'${n}'`).join(', ');
      throw new Error(`pullback ${fn}: unknown backend ${describeName(never)}; use one of ${known} ('wasm' and 'cpu' are the same CPU backend)`);
    }
  }
}

function describeName(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : String(v);
}

function infoOf(be: TensorBackend): BackendInfo {
  return extras.get(be)?.info ?? { name: be.name, description: be.description, adapter: null };
}

/** Which backend new tensors are made on ('none' before init()). */
export function backend(): BackendInfo {
  if (!hasBackend()) return { name: 'none', description: 'none: call `await init()` first', adapter: null };
  return infoOf(currentBackend());
}

/** Makes `be` current (synchronously; e.g. `useBackend(referenceTensorBackend)` in tests). */
export function useBackend(be: TensorBackend): void { setTensorBackend(be); }

/**
 * Runs fn (synchronously) with `be` as the current backend, then restores the previous one.
 * @example const g = withBackend(referenceTensorBackend, () => mul(x, x));
 */
export function withBackend<R>(be: TensorBackend, fn: () => R): R {
  const prev = hasBackend() ? currentBackend() : undefined;
  setTensorBackend(be);
  try {
    const r = fn();
    if (r instanceof Promise) throw new Error('pullback withBackend: fn must be synchronous (the backend would stay switched while it awaits); use init() or useBackend() for async code');
    return r;
  } finally {
    setTensorBackend(prev);
  }
}

/** Tensor memory (every backend) plus the current backend's own numbers. */
export interface BackendMemoryStats extends TensorMemoryStats {
  backend: BackendInfo['name'];
  /** WebGPU: bytes of free buffers the pool keeps for reuse. */
  pooledBytes?: number;
  /** CPU: bytes handed out from the Wasm heap (live and cached free blocks). */
  heapBytes?: number;
  /** CPU: size of the Wasm memory. */
  memoryBytes?: number;
}

/** Live and peak tensor bytes, live tensor count, and the current backend's pool. */
export function memoryStats(): BackendMemoryStats {
  const be = hasBackend() ? currentBackend() : undefined;
  return { ...tensorMemoryStats(), backend: be ? be.name : 'none', ...(be ? extras.get(be)?.memory?.() : undefined) };
}

/** Waits until the current backend has finished queued work (the GPU); immediate on the CPU backends. */
export async function sync(): Promise<void> {
  if (!hasBackend()) return;
  await extras.get(currentBackend())?.sync?.();
}

/**
 * A copy of t on another backend (by name: the one init() last made of that kind). The copy is a new leaf: no
 * gradient flows back across backends.
 * @example const onCpu = await toBackend(gpuTensor, 'cpu');
 */
export async function toBackend(t: Tensor, target: TensorBackend | BackendName): Promise<Tensor> {
  const be = typeof target === 'string' ? await byName(target === 'wasm' ? 'cpu' : target) : target;
  return upload(await t.data(), t.shape, t.dtype, be);
}

async function byName(name: 'reference' | 'cpu' | 'webgpu'): Promise<TensorBackend> {
  if (name === 'reference') return referenceTensorBackend;
  if (hasBackend() && currentBackend().name === name) return currentBackend();
  const pool = name === 'cpu' ? cpuBackends : gpuBackends;
  const last = [...pool.values()].at(-1);
  if (!last) throw new OpError('toBackend', `no ${name} backend was started; call setBackend('${name}') first`);
  return last;
}
