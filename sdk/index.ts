// SPDX-License-Identifier: MIT
// pullback's public API.
export { grad, valueAndGrad, vjp, jvp, jacfwd, jacobian, hvp, hessian, stopGradient, differentiable, adjointSource, gradcheck, explain } from './ad/api.js';
export type { Explanation } from './ad/api.js';
export { setWasmTapeLimit } from './ad/wasm.js';
export { checkpoint, tensorsIn, mapTree } from './tensor/ad.js';
export type { Gradient, GradOptions, Pullback, GradcheckOptions, GradcheckResult } from './ad/api.js';
export { loadSafetensors, saveSafetensors, SafetensorsError, f32ToF16, f16ToF32, f32ToBf16, bf16ToF32, toF16Bits, fromF16Bits } from './io/index.js';
export type { LoadedTensor, SafetensorsArrays, SafetensorsContents, SafetensorsDtype, TensorToSave } from './io/index.js';
export { Dataset, batches, batchCount, sampleOrder, prefetch, SeededRandom, shuffle, permutation } from './data/index.js';
export type { Batch, BatchOptions, DatasetInit, HostArray, LabelArray, Labels, PrefetchOptions, Shufflable } from './data/index.js';
// Tensors: one Tensor type on every backend (WebGPU, CPU/Wasm SIMD, and the f64 reference), the op library.
export { Tensor } from './tensor/engine.js';
export * from './tensor/ops.js';
export * from './tensor/backends.js';
// The lower layers, for kernel work and tests: the op table, the WebGPU runtime and its own tensors.
export { GpuRuntime, Tensor as GpuTensor, type MemoryStats, type RuntimeOptions } from '../runtime-gpu/runtime.js';
export { referenceBackend, webgpuBackend, run as runOp, vjp as vjpOn, type Vjp } from '../runtime-gpu/backend.js';
export { OpError, type DType, type Shape } from '../runtime-gpu/shape.js';
// The CPU backend: the op table on the Wasm SIMD kernels, tensors in Wasm linear memory.
export { wasmBackend, CpuTensor } from '../runtime-wasm/backend.js';
export type { WasmBackend, WasmBackendOptions } from '../runtime-wasm/backend.js';
// Layers (parameter trees + marked apply functions), initialisers and losses, differentiated by the transformer.
export * as nn from './nn/index.js';
// Training: optimizers over parameter trees, clipping, loss scaling, schedules, fused updates; fit, progress, parameter files.
export { sgd, adam, adamw, clipGradNorm, LossScaler, constantLr, stepDecay, exponentialDecay, cosineWithWarmup, sgdUpdate, adamUpdate, globalNormSq, hasNonFinite } from './optim/index.js';
export type { Optimizer, OptimizerKind, OptimizerState, OptimizerCommon, SgdOptions, AdamOptions, StepOptions, StepInfo, LearningRate, LossScalerOptions, ScaledGradients, Schedule, SgdHyper, AdamHyper } from './optim/index.js';
export { fit, ProgressBar, formatDuration, saveParams, loadParams, namedTensors } from './train/index.js';
export type { FitData, FitHistory, FitOptions, FitStep, ProgressOptions, ProgressOutput, ProgressState, LoadParamsOptions } from './train/index.js';
export { dataParallel, launch, isLaunchedWorker, launchData, CommError, type Communicator, type ReduceOp, type LaunchOptions, type DataParallel, type DataParallelOptions, type DataParallelStep, type StepTiming } from './distributed/index.js';
