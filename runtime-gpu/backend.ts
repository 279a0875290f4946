// SPDX-License-Identifier: MIT
// Backends (sets of kernels for the op table), running ops with their shape checks, and vector-Jacobian products
// through the ops' pullbacks on any backend. The reference backend is the spec: f64 on the CPU.
import { OpError, type DType, type Meta, type Shape, size } from './shape.js';
import { type HostTensor, roundTo } from './host.js';
import { ops } from './ops/index.js';
import type { Backend, Exec, OpAttrs, OpName, PullbackArgs } from './ops/types.js';
import { type GpuRuntime, Tensor } from './runtime.js';

/** Runs one op on a backend: checks shapes and dtypes (the op's infer), then the backend's kernel. */
export function run<T, K extends OpName>(backend: Backend<T>, name: K, inputs: readonly T[], attrs: OpAttrs[K]): T[] {
  const rule = ops[name];
  if (!rule) throw new OpError(String(name), 'no such op');
  const outs = rule.infer(inputs.map((t) => backend.meta(t)), attrs);
  const kernel = backend.kernels[name];
  if (!kernel) throw new OpError(name, `the ${backend.name} backend has no kernel for this op`);
  return kernel(inputs, attrs, outs);
}

export function execOf<T>(backend: Backend<T>): Exec<T> {
  return {
    backend: backend.name,
    op: (name, inputs, attrs) => run(backend, name, inputs, attrs),
    meta: (t) => backend.meta(t),
    reshape: (t, s) => backend.reshape(t, s),
    full: (s, v, d = 'f32') => backend.full(s, v, d),
  };
}

function reshapeShape(op: string, from: Shape, to: Shape): number[] {
  const s = [...to];
  const n = size(from);
  const unknown = s.indexOf(-1);
  if (unknown >= 0) s[unknown] = n / size(s.filter((_, i) => i !== unknown));
  if (size(s) !== n || s.some((d) => !Number.isInteger(d) || d < 0)) throw new OpError(op, `cannot reshape [${from.join(', ')}] to [${to.join(', ')}]`);
  return s;
}

/** The reference backend: every op's reference implementation, in f64 (values are rounded only where the dtype is integer). */
export const referenceBackend: Backend<HostTensor> = {
  name: 'reference',
  kernels: Object.fromEntries(Object.values(ops).map((r) => [r.name, (ins: readonly HostTensor[], a: never) => (r.reference as (i: readonly HostTensor[], a: never) => HostTensor[])(ins, a)])),
  meta: (t) => ({ shape: t.shape, dtype: t.dtype }),
  reshape: (t, s) => ({ shape: reshapeShape('reshape', t.shape, s), dtype: t.dtype, data: t.data }),
  full: (s, v, d) => ({ shape: [...s], dtype: d, data: new Float64Array(size(s)).fill(roundTo(d, v)) }),
};

/** The WebGPU backend of one runtime: every op's WGSL kernels. */
export function webgpuBackend(rt: GpuRuntime): Backend<Tensor> {
  return {
    name: 'webgpu',
    kernels: Object.fromEntries(Object.values(ops).map((r) => [r.name, (ins: readonly Tensor[], a: never, outs: readonly Meta[]) => {
      for (const t of ins) t.buf(r.name);
      return (r.webgpu as (rt: GpuRuntime, i: readonly Tensor[], a: never, o: readonly Meta[]) => Tensor[])(rt, ins, a, outs);
    }])),
    meta: (t) => t,
    reshape: (t, s) => t.reshape(reshapeShape('reshape', t.shape, s)), // the same check and message on every backend
    full: (s, v, d: DType) => rt.fill(s, v, d),
  };
}

export interface Vjp<T> {
  outputs: T[];
  /** Cotangents of the inputs from cotangents of the outputs (null: zero). Only the differentiable outputs need one. */
  pullback(cot: readonly (T | null)[], needs?: readonly boolean[]): (T | null)[];
}

/**
 * Runs an op forward and returns its pullback, which closes over what the op saves.
 * @example const { outputs: [y], pullback } = vjp(referenceBackend, 'matmul', [a, b], {}); const [da, db] = pullback([dy]);
 */
export function vjp<T, K extends OpName>(backend: Backend<T>, name: K, inputs: readonly T[], attrs: OpAttrs[K]): Vjp<T> {
  const outputs = run(backend, name, inputs, attrs);
  const rule = ops[name];
  const x = execOf(backend);
  return {
    outputs,
    pullback(cot, needs = inputs.map(() => true)) {
      if (!rule.pullback) throw new OpError(name, 'is not differentiable (it is a backward kernel or has only integer outputs)');
      if (cot[0] === null || cot[0] === undefined) return inputs.map(() => null);
      const args: PullbackArgs<T, K> = { inputs, outputs, attrs, cot, needs };
      return (rule.pullback as <U>(x: Exec<U>, a: PullbackArgs<U, K>) => (U | null)[])(x, args);
    },
  };
}

export { Tensor };
