// SPDX-License-Identifier: MIT
// pullback's training toolkit, part 1: layers (parameter trees plus differentiable apply functions),
// initialisers (`init.*`) and losses (`losses.*`, namespaced because the op library already has a per-row
// softmaxCrossEntropy). Re-exported from the package as the `nn` namespace.
export * from './layers.js';
export * as init from './init.js';
export * as losses from './losses.js';
export type { Initializer, FanOptions } from './init.js';
export type { Reduction, LossOptions, CrossEntropyOptions, HuberOptions } from './losses.js';
