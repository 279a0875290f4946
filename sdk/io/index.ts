// SPDX-License-Identifier: MIT
// Files on disk: safetensors checkpoints, and the 16-bit float conversions their F16/BF16 data needs.
export { loadSafetensors, saveSafetensors, SafetensorsError, type LoadedTensor, type SafetensorsArrays, type SafetensorsContents, type SafetensorsDtype, type TensorToSave } from './safetensors.js';
export { f32ToF16, f16ToF32, f32ToBf16, bf16ToF32, toF16Bits, fromF16Bits } from '../../runtime-gpu/float16.js';
