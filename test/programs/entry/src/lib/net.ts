// A tensor function: its generated code must make it through every front end, type checks included.
// @ts-ignore: until the SDK is built, tsc cannot find 'pullback'.
import { type Tensor, matmul, relu, mean, square, sub } from 'pullback';

/** @differentiable */
export function regression(p: { w: Tensor; b: Tensor }, x: Tensor, y: Tensor): Tensor {
  const h = relu(matmul(x, p.w, { bias: p.b }));
  return mean(square(sub(h, y)));
}
