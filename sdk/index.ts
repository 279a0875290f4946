// SPDX-License-Identifier: MIT
// pullback's public API.
export { grad, valueAndGrad, vjp, jvp, jacfwd, jacobian, hvp, hessian, stopGradient, differentiable, adjointSource, gradcheck } from './ad/api.js';
export type { Gradient, Pullback, GradcheckOptions, GradcheckResult } from './ad/api.js';
