// SPDX-License-Identifier: MIT
// The two models of the MNIST sample as parameter trees and marked functions: pullback writes their adjoints at
// build time (see them with `npx pullback compile samples/mnist --outDir out/adjoint --emit-adjoint`).
import { type Tensor, nn, reshape, relu, maxPool2d } from 'pullback';

/** A small CNN: two 3×3 convolutions (8 and 16 channels), each followed by ReLU and 2×2 max pooling, then a linear layer. */
export interface Cnn { c1: nn.Conv2dParams; c2: nn.Conv2dParams; out: nn.LinearParams }

/** A multi-layer perceptron: 784 → hidden → 10 (ReLU). */
export interface Mlp { h: nn.LinearParams; out: nn.LinearParams }

export function initCnn(seed: number): Cnn {
  return {
    c1: nn.initConv2d(1, 8, 3, { seed: nn.init.split(seed, 0) }),
    c2: nn.initConv2d(8, 16, 3, { seed: nn.init.split(seed, 1) }),
    out: nn.initLinear(16 * 7 * 7, 10, { seed: nn.init.split(seed, 2), weightInit: nn.init.xavierUniform }),
  };
}

export function initMlp(seed: number, hidden = 256): Mlp {
  return {
    h: nn.initLinear(784, hidden, { seed: nn.init.split(seed, 0) }),
    out: nn.initLinear(hidden, 10, { seed: nn.init.split(seed, 1), weightInit: nn.init.xavierUniform }),
  };
}

/** Logits [N, 10] of images [N, 1, 28, 28]. @differentiable */
export function cnn(p: Cnn, x: Tensor): Tensor {
  const a = maxPool2d(relu(nn.conv2d(p.c1, x, { padding: 1 })), { kernel: 2 });
  const b = maxPool2d(relu(nn.conv2d(p.c2, a, { padding: 1 })), { kernel: 2 });
  return nn.linear(p.out, reshape(b, [x.shape[0]!, -1]));
}

/** Logits [N, 10] of images [N, 1, 28, 28] (flattened to 784 values). @differentiable */
export function mlp(p: Mlp, x: Tensor): Tensor {
  const flat = reshape(x, [x.shape[0]!, -1]);
  return nn.linear(p.out, nn.linear(p.h, flat, { activation: 'relu' }));
}

/** Mean cross-entropy of the CNN's logits against the labels. @differentiable */
export function cnnLoss(p: Cnn, x: Tensor, labels: Tensor): Tensor {
  return nn.losses.softmaxCrossEntropy(cnn(p, x), labels);
}

/** Mean cross-entropy of the MLP's logits against the labels. @differentiable */
export function mlpLoss(p: Mlp, x: Tensor, labels: Tensor): Tensor {
  return nn.losses.softmaxCrossEntropy(mlp(p, x), labels);
}
