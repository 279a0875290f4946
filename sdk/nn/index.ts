// SPDX-License-Identifier: MIT
// pullback's training toolkit, part 1: layers (parameter trees plus differentiable apply functions),
// initialisers (`init.*`) and losses (`losses.*`, namespaced because the op library already has a per-row
// softmaxCrossEntropy). Re-exported from the package as the `nn` namespace.
export * from './layers.js';
// Pooling has no parameters: the op itself, here too so that a model's layers come from one place.
export { maxPool2d } from '../tensor/ops.js';
export * as init from './init.js';
export * as losses from './losses.js';
export type { Initializer, FanOptions } from './init.js';
export type { Reduction, LossOptions, CrossEntropyOptions, HuberOptions } from './losses.js';

// The layers are differentiated by generated code only when this folder went through `pullback compile` (npm run
// build does it after tsc). A bare tsc build leaves them on the eager tape, whose intermediates wait for the
// garbage collector — which Wasm and GPU memory do not prompt — so say so once, at load.
import { lookupTensor as registered } from '../tensor/ad.js';
import { linear as probe } from './layers.js';
if (!registered(probe)) {
  console.warn('pullback: the nn layers were built without the transformer (a bare `tsc` build?): they run on the eager tape ' +
    'and free intermediates only when the garbage collector runs. Build with `npm run build`.');
}
