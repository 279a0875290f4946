// SPDX-License-Identifier: MIT
// The models of the memory and training benchmarks, written as users write them: marked functions over
// parameter trees, differentiated by the transformer.
import { type Tensor, matmul, mean, square, layerNorm, attention, reshape, permute, add, softmaxCrossEntropy, checkpoint, cast } from 'pullback';

export interface Dense { w: Tensor; b: Tensor }

/** Layers [from, to) of a ReLU MLP. @differentiable */
export function mlpSegment(layers: Dense[], x: Tensor, from: number, to: number): Tensor {
  let h = x;
  for (let i = from; i < to; i++) h = matmul(h, layers[i]!.w, { bias: layers[i]!.b, activation: 'relu' });
  return h;
}

/** Mean squared output of a deep ReLU MLP; `every` > 0 checkpoints each run of that many layers. @differentiable */
export function mlpLoss(layers: Dense[], x: Tensor, every: number): Tensor {
  let h = x;
  if (every > 0) {
    for (let i = 0; i < layers.length; i += every) h = checkpoint(mlpSegment, layers, h, i, Math.min(i + every, layers.length));
  } else {
    h = mlpSegment(layers, h, 0, layers.length);
  }
  return mean(square(h));
}

/** Softmax cross-entropy of an MLP classifier (the training benchmark's model). @differentiable */
export function classifierLoss(layers: Dense[], x: Tensor, labels: Tensor): Tensor {
  let h = x;
  for (let i = 0; i < layers.length; i++) {
    h = matmul(h, layers[i]!.w, { bias: layers[i]!.b, activation: i < layers.length - 1 ? 'relu' : 'none' });
  }
  return mean(softmaxCrossEntropy(h, labels));
}

export interface Block {
  ln1: { g: Tensor; b: Tensor }; ln2: { g: Tensor; b: Tensor };
  wq: Tensor; wk: Tensor; wv: Tensor; wo: Tensor;
  fc1: Dense; fc2: Dense;
}

/** [B, S, D] -> [B, H, S, D/H]. @differentiable */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [b, s, d] = x.shape as [number, number, number];
  return permute(reshape(x, [b, s, heads, d / heads]), [0, 2, 1, 3]);
}

/** [B, H, S, Dh] -> [B, S, H * Dh]. @differentiable */
export function mergeHeads(x: Tensor): Tensor {
  const [b, h, s, dh] = x.shape as [number, number, number, number];
  return reshape(permute(x, [0, 2, 1, 3]), [b, s, h * dh]);
}

/** A pre-norm transformer block: causal multi-head attention and a GELU MLP, each with a residual. @differentiable */
export function block(p: Block, x: Tensor, heads: number): Tensor {
  const h = layerNorm(x, p.ln1.g, p.ln1.b);
  const q = splitHeads(matmul(h, p.wq), heads);
  const k = splitHeads(matmul(h, p.wk), heads);
  const v = splitHeads(matmul(h, p.wv), heads);
  const a = mergeHeads(attention(q, k, v, { causal: true }));
  const x1 = add(x, matmul(a, p.wo));
  const h2 = layerNorm(x1, p.ln2.g, p.ln2.b);
  const m = matmul(matmul(h2, p.fc1.w, { bias: p.fc1.b, activation: 'gelu' }), p.fc2.w, { bias: p.fc2.b });
  return add(x1, m);
}

/**
 * The same block in mixed precision: every matmul reads an activation stored in f16 (the normalised inputs, the
 * attention output, the GELU output), so those are what the backward pass keeps, at half the bytes; weights,
 * residual stream and arithmetic stay f32. @differentiable
 */
export function blockF16(p: Block, x: Tensor, heads: number): Tensor {
  const h = cast(layerNorm(x, p.ln1.g, p.ln1.b), 'f16');
  const q = splitHeads(matmul(h, p.wq), heads);
  const k = splitHeads(matmul(h, p.wk), heads);
  const v = splitHeads(matmul(h, p.wv), heads);
  const a = cast(mergeHeads(attention(q, k, v, { causal: true })), 'f16');
  const x1 = add(x, matmul(a, p.wo));
  const h2 = cast(layerNorm(x1, p.ln2.g, p.ln2.b), 'f16');
  const m = matmul(cast(matmul(h2, p.fc1.w, { bias: p.fc1.b, activation: 'gelu' }), 'f16'), p.fc2.w, { bias: p.fc2.b });
  return add(x1, m);
}

/** transformerLoss with blockF16. @differentiable */
export function transformerLossF16(blocks: Block[], x: Tensor, heads: number): Tensor {
  let h = x;
  for (const p of blocks) h = blockF16(p, h, heads);
  return mean(square(h));
}

/** Blocks in sequence, each checkpointed or not; mean squared output. @differentiable */
export function transformerLoss(blocks: Block[], x: Tensor, heads: number, useCheckpoint: boolean): Tensor {
  let h = x;
  for (const p of blocks) h = useCheckpoint ? checkpoint(block, p, h, heads) : block(p, h, heads);
  return mean(square(h));
}
