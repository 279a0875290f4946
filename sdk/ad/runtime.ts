// SPDX-License-Identifier: MIT
// What generated adjoint code imports (`import * as $pb from 'pullback/runtime'`). Not for users.
export { Tape } from './tape.js';
export { register, registerRule, registerTangent, registerDirectional, tangentOf, fw, adjointOf, ruleOf, addTo, argmax, argmin, EMPTY } from './registry.js';
export type { Adjoint } from './registry.js';
export { wasmModule, ScalarWasmModule } from './wasm.js';
export { frame, primal, registerTensor, registerTensorRule, Frame } from '../tensor/ad.js';
export { Session } from '../tensor/engine.js';
