// Models for the training toolkit's tests: an MLP regressor, the same with its activations and output stored in
// f16 (through casts) and a tiny loss, a loss with a spike factor to inject an overflow, and ½‖w‖².
import { type Tensor, matmul, tanh, relu, mean, square, sub, mul, sum, cast } from 'pullback';

export interface Mlp { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor; w3: Tensor; b3: Tensor }

/** A 2-layer tanh MLP with a linear head. @differentiable */
export function mlp(p: Mlp, x: Tensor): Tensor {
  const h1 = tanh(matmul(x, p.w1, { bias: p.b1 }));
  const h2 = tanh(matmul(h1, p.w2, { bias: p.b2 }));
  return matmul(h2, p.w3, { bias: p.b3 });
}

/** Mean squared error of the MLP. @differentiable */
export function mlpLoss(p: Mlp, x: Tensor, y: Tensor): Tensor {
  return mean(square(sub(mlp(p, x), y)));
}

/** The MSE times `spike` (a scalar Tensor): a huge spike makes the scaled gradients overflow. @differentiable */
export function spikedLoss(p: Mlp, x: Tensor, y: Tensor, spike: Tensor): Tensor {
  return mul(mlpLoss(p, x, y), spike);
}

export interface Net { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor }

/**
 * f16 storage: the hidden activations and the output are rounded through f16 (so is every cotangent that flows
 * back through them); the loss is the MSE times `tiny`, so that unscaled cotangents fall below f16's range.
 * @differentiable
 */
export function halfLoss(p: Net, x: Tensor, y: Tensor, tiny: number): Tensor {
  const h = matmul(x, p.w1, { bias: p.b1, activation: 'relu' });
  const h16 = cast(cast(h, 'f16'), 'f32');
  const out = matmul(h16, p.w2, { bias: p.b2 });
  const o16 = cast(cast(out, 'f16'), 'f32');
  return mul(mean(square(sub(o16, y))), tiny);
}

/** The same network in f32, its plain MSE. @differentiable */
export function netLoss(p: Net, x: Tensor, y: Tensor): Tensor {
  const h = relu(matmul(x, p.w1, { bias: p.b1 }));
  return mean(square(sub(matmul(h, p.w2, { bias: p.b2 }), y)));
}

/** ½‖w‖² over a tree: its gradient is w itself. @differentiable */
export function halfNormSq(p: { a: Tensor; b: Tensor[] }): Tensor {
  let s = mul(sum(square(p.a)), 0.5);
  for (const t of p.b) s = s.add(mul(sum(square(t)), 0.5));
  return s;
}
