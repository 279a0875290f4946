// SPDX-License-Identifier: MIT
// Training updates: optimizers over parameter trees, gradient clipping, dynamic loss scaling, learning-rate
// schedules, and the fused in-place kernels they run on.
export { sgd, adam, adamw, clipGradNorm } from './optimizers.js';
export type { Optimizer, OptimizerKind, OptimizerState, OptimizerCommon, SgdOptions, AdamOptions, StepOptions, StepInfo, LearningRate } from './optimizers.js';
export { LossScaler } from './loss-scale.js';
export type { LossScalerOptions, ScaledGradients } from './loss-scale.js';
export { constantLr, stepDecay, exponentialDecay, cosineWithWarmup } from './schedules.js';
export type { Schedule } from './schedules.js';
export { sgdUpdate, adamUpdate, globalNormSq, hasNonFinite } from './fused.js';
export type { SgdHyper, AdamHyper } from './fused.js';
