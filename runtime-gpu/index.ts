// SPDX-License-Identifier: MIT
// The WebGPU runtime and tensor kernel library: devices, tensors, the op table (reference + WGSL + pullback
// per op), backends and the tensor API.
export * from './api.js';
export { GpuRuntime, Tensor, type MemoryStats, type RuntimeOptions } from './runtime.js';
export { requestGpuDevice, type AdapterChoice, type AdapterDescription, type DeviceOptions, type GpuDevice, INSTALL_HINT, SWIFTSHADER_ICD } from './device.js';
export { ops, opNames } from './ops/index.js';
export type { Backend, Exec, Kernel, OpAttrs, OpName, OpRule, OpTable, Pullback, PullbackArgs, UnaryFn, BinaryFn, Activation } from './ops/types.js';
export { run, vjp as vjpOn, execOf, referenceBackend, webgpuBackend, type Vjp } from './backend.js';
export { type HostTensor, host, hostZeros } from './host.js';
export { OpError, type DType, type Meta, type Shape } from './shape.js';
export { Rng } from './rng.js';
