// SPDX-License-Identifier: MIT
// Training: the fit loop, its progress display, and parameter trees saved as safetensors.
export { fit } from './fit.js';
export type { FitData, FitHistory, FitOptions, FitStep } from './fit.js';
export { ProgressBar, formatDuration } from './progress.js';
export type { ProgressOptions, ProgressOutput, ProgressState } from './progress.js';
export { saveParams, loadParams, namedTensors } from './params.js';
export type { LoadParamsOptions } from './params.js';
