// SPDX-License-Identifier: MIT
// The data pipeline: in-memory datasets, seeded shuffling, batching, double-buffered uploads.
export { SeededRandom, shuffle, permutation, type Shufflable } from './random.js';
export { Dataset, batches, batchCount, sampleOrder, type Batch, type BatchOptions, type DatasetInit, type HostArray, type LabelArray, type Labels } from './dataset.js';
export { prefetch, type PrefetchOptions } from './prefetch.js';
