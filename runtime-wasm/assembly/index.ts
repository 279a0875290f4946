// SPDX-License-Identifier: MIT
// Entry point of the CPU kernel module. Compiled three times by runtime-wasm/build.mjs:
// scalar (no SIMD), simd (Wasm SIMD 128) and relaxed (SIMD + relaxed SIMD fused madd).
// The module imports its memory (env.memory) and allocates nothing itself: every buffer,
// including gemm's packing workspace, is owned by the TypeScript glue (runtime-wasm/kernels.ts).
export { gemm, gemmBatched, gemmWorkspaceBytes, setBlocking } from './matmul';
export { im2col, col2im, conv2dForward, conv2dBackwardInput, conv2dBackwardFilter, conv2dBackwardBias } from './conv';
export { unary, unaryBackward, binary, axpy, fill, roundF16 } from './elementwise';
export { reduce, logsumexpRows, softmaxRows, softmaxBackwardRows, softmaxCrossEntropy } from './reduce';
export { sgd, sgdScaled, adam, adamScaled, sumSquares, nonFinite } from './optim';
export { peakFlops, peakFlopsPerIter } from './peak';

/** First byte above the module's static data; the glue's allocator starts above it. */
export function heapBase(): usize { return __heap_base; }

/** 2 in the relaxed build, 1 in the SIMD build, 0 in the scalar build. */
export function simdLevel(): i32 { return ASC_FEATURE_RELAXED_SIMD ? 2 : ASC_FEATURE_SIMD ? 1 : 0; }
