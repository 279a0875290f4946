// Custom derivatives of tensor functions, nested checkpoints, and the documented conventions at kinks.
import { type Tensor, log, exp, add, mul, sigmoid, sum, matmul, relu, checkpoint, tanh, mean } from 'pullback';

/** softplus, whose derivative is given by hand below (the recorded ops are not used). */
export function softplus(x: Tensor): Tensor {
  return log(add(exp(x), 1));
}
/** @derivative softplus */
export function softplusRule(x: Tensor, dy: Tensor): Tensor {
  return mul(dy, sigmoid(x));
}

/** Straight-through: the identity forward, a gradient of 3 backward (to see that the rule is what runs). */
export function straight(x: Tensor): Tensor {
  return add(x, 0);
}
/** @derivative straight */
export function straightRule(_x: Tensor, dy: Tensor): Tensor {
  return mul(dy, 3);
}

/** @differentiable */
export function useRules(w: Tensor, x: Tensor): Tensor {
  return sum(softplus(matmul(x, w)));
}

/** @differentiable */
export function useStraight(x: Tensor): Tensor {
  return sum(straight(x));
}

/** @differentiable */
export function layer(w: Tensor, x: Tensor): Tensor {
  return tanh(matmul(x, w));
}

/** Checkpoints inside a checkpointed function. @differentiable */
export function twoLayers(w: Tensor, x: Tensor): Tensor {
  const h = checkpoint(layer, w, x);
  return checkpoint(layer, w, h);
}

/** @differentiable */
export function nested(w: Tensor, x: Tensor, ck: boolean): Tensor {
  let h = x;
  for (let i = 0; i < 3; i++) h = ck ? checkpoint(twoLayers, w, h) : twoLayers(w, h);
  return mean(h);
}

/** @differentiable */
export function sumRelu(x: Tensor): Tensor {
  return sum(relu(x));
}

/** Identity with a rule that hands the cotangent straight back. */
export function passThrough(x: Tensor): Tensor {
  return mul(x, 1);
}
/** @derivative passThrough */
export function passThroughRule(_x: Tensor, dy: Tensor): Tensor {
  return dy;
}

/** @differentiable */
export function usePassThrough(x: Tensor): Tensor {
  return sum(mul(passThrough(x), x));
}
