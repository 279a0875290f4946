// SPDX-License-Identifier: MIT
// pullback's public API.
export { grad, valueAndGrad, vjp, jvp, jacfwd, jacobian, hvp, hessian, stopGradient, differentiable, adjointSource, gradcheck } from './ad/api.js';
export type { Gradient, Pullback, GradcheckOptions, GradcheckResult } from './ad/api.js';
export { loadSafetensors, saveSafetensors, SafetensorsError, f32ToF16, f16ToF32, f32ToBf16, bf16ToF32, toF16Bits, fromF16Bits } from './io/index.js';
export type { LoadedTensor, SafetensorsArrays, SafetensorsContents, SafetensorsDtype, TensorToSave } from './io/index.js';
export { Dataset, batches, batchCount, sampleOrder, prefetch, SeededRandom, shuffle, permutation } from './data/index.js';
export type { Batch, BatchOptions, DatasetInit, HostArray, LabelArray, Labels, PrefetchOptions, Shufflable } from './data/index.js';
export { constantLr, stepDecay, exponentialDecay, cosineWithWarmup } from './optim/schedules.js';
export type { Schedule } from './optim/schedules.js';
// Tensors on WebGPU (Dawn in Node, navigator.gpu in browsers): the op library with its reference backend.
// `vjp` above is the scalar operator; the tensor op-level vjp stays in runtime-gpu as `vjpOn`.
export * from '../runtime-gpu/api.js';
export { Tensor, type MemoryStats, type RuntimeOptions, type GpuRuntime } from '../runtime-gpu/runtime.js';
export { referenceBackend, webgpuBackend, run as runOp, vjp as vjpOn, type Vjp } from '../runtime-gpu/backend.js';
export { OpError, type DType, type Shape } from '../runtime-gpu/shape.js';
// The CPU backend: the op table on the Wasm SIMD kernels, tensors in Wasm linear memory.
export { wasmBackend, CpuTensor } from '../runtime-wasm/backend.js';
export type { WasmBackend, WasmBackendOptions } from '../runtime-wasm/backend.js';
