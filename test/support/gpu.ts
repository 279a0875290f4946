// SPDX-License-Identifier: MIT
// Shared helpers for the WebGPU tests: one SwiftShader runtime per test process, host<->GPU transfers,
// random inputs from an op's domain, and comparisons at f32 tolerance.
import { GpuRuntime, type Tensor } from '../../runtime-gpu/runtime.js';
import { type HostTensor, host, roundTo } from '../../runtime-gpu/host.js';
import { Rng } from '../../runtime-gpu/rng.js';
import type { DType, Shape } from '../../runtime-gpu/shape.js';
import { size } from '../../runtime-gpu/shape.js';

let rtp: Promise<GpuRuntime> | undefined;
/** The tests always use SwiftShader unless PULLBACK_GPU_ADAPTER says otherwise (e.g. 'hardware' on a GPU machine). */
export function runtime(): Promise<GpuRuntime> {
  const adapter = (process.env.PULLBACK_GPU_ADAPTER as 'hardware' | 'swiftshader' | undefined) ?? 'swiftshader';
  return (rtp ??= GpuRuntime.create({ adapter }));
}

export function toGpu(rt: GpuRuntime, h: HostTensor): Tensor {
  return rt.fromArray(h.data, h.shape, h.dtype);
}

export async function toHost(t: Tensor): Promise<HostTensor> {
  return host(await t.data(), t.shape, t.dtype);
}

export type Domain = 'any' | 'positive' | 'awayFromZero' | 'unit' | 'int';
export function rand(rng: Rng, shape: Shape, domain: Domain = 'any', dtype: DType = 'f32', hi = 10): HostTensor {
  const n = size(shape);
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    switch (domain) {
      case 'any': d[i] = rng.normal(); break;
      case 'positive': d[i] = rng.range(0.3, 2.5); break;
      case 'awayFromZero': { const v = rng.range(0.2, 2); d[i] = rng.uniform() < 0.5 ? -v : v; break; }
      case 'unit': d[i] = rng.range(-1, 1); break;
      case 'int': d[i] = rng.int(hi); break;
    }
    if (dtype === 'f32' || dtype === 'f16') d[i] = roundTo(dtype, d[i]!);
  }
  return { shape: [...shape], dtype, data: d };
}

/** Max of |a-b| / (atol + rtol |b|) over elements, and where it was worst; <= 1 means close. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, rtol = 2e-4, atol = 2e-5): { worst: number; at: number } {
  let worst = 0, at = -1;
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!, y = b[i]!;
    let e: number;
    if (Number.isNaN(y) || Number.isNaN(x)) e = Number.isNaN(x) && Number.isNaN(y) ? 0 : Infinity;
    else if (!Number.isFinite(y) || !Number.isFinite(x)) e = x === y ? 0 : Infinity;
    else e = Math.abs(x - y) / (atol + rtol * Math.abs(y));
    if (e > worst) { worst = e; at = i; }
  }
  return { worst, at };
}

export function assertClose(what: string, got: HostTensor, want: HostTensor, rtol = 2e-4, atol = 2e-5): void {
  if (got.shape.join(',') !== want.shape.join(',')) throw new Error(`${what}: shape [${got.shape}] != expected [${want.shape}]`);
  if (got.dtype !== want.dtype) throw new Error(`${what}: dtype ${got.dtype} != expected ${want.dtype}`);
  const { worst, at } = closeness(got.data, want.data, rtol, atol);
  if (worst > 1) throw new Error(`${what}: element ${at} is ${got.data[at]} but the reference says ${want.data[at]} (${worst.toFixed(1)}x tolerance; shape [${want.shape}])`);
}

export function dot(a: HostTensor, b: HostTensor): number {
  if (a.data.length !== b.data.length) throw new Error(`dot: sizes ${a.data.length} and ${b.data.length} differ`);
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += a.data[i]! * b.data[i]!;
  return s;
}

/** Resolves when the promise rejects with a message matching re; fails otherwise. */
export async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try { await fn(); } catch (e) {
    if (!re.test((e as Error).message)) throw new Error(`rejected with '${(e as Error).message}', expected ${re}`);
    return;
  }
  throw new Error(`expected a rejection matching ${re}`);
}

export { Rng, host };
