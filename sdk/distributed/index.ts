// SPDX-License-Identifier: MIT
// Distributed training: a Communicator between ranks (worker threads started by launch, SPMD as torchrun does)
// and data-parallel training over it, with gradient all-reduces overlapped with the backward pass.
export { CommError } from './communicator.js';
export type { Communicator, ReduceOp } from './communicator.js';
export { launch, isLaunchedWorker, launchData } from './launch.js';
export type { LaunchOptions } from './launch.js';
export { dataParallel } from './data-parallel.js';
export type { DataParallel, DataParallelOptions, DataParallelStep, StepTiming } from './data-parallel.js';
