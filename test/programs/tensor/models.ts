// Tensor programs of the kind users write: parameter trees, layers in loops, shared weights, branches.
import { type Tensor, matmul, relu, tanh, add, mul, mean, sum, softmaxCrossEntropy, layerNorm, attention, embedding,
  reshape, conv2d, maxPool2d, stopGradient, checkpoint, square, sub } from 'pullback';

export interface Mlp { layers: { w: Tensor; b: Tensor }[] }

/** @differentiable */
export function mlpLoss(p: Mlp, x: Tensor, labels: Tensor): Tensor {
  let h = x;
  for (let i = 0; i < p.layers.length; i++) {
    const l = p.layers[i]!;
    const z = matmul(h, l.w, { bias: l.b });
    h = i < p.layers.length - 1 ? relu(z) : z;
  }
  return mean(softmaxCrossEntropy(h, labels));
}

/** @differentiable */
export function block(p: { w: Tensor; g: Tensor; b: Tensor }, x: Tensor): Tensor {
  const y = layerNorm(x, p.g, p.b);
  return add(x, relu(matmul(y, p.w)));
}

/** The same block applied twice (shared parameters), each call checkpointed or not. @differentiable */
export function twice(p: { w: Tensor; g: Tensor; b: Tensor }, x: Tensor, useCheckpoint: boolean): Tensor {
  const h = useCheckpoint ? checkpoint(block, p, x) : block(p, x);
  const h2 = useCheckpoint ? checkpoint(block, p, h) : block(p, h);
  return mean(square(h2));
}

/** An RNN over steps with one weight matrix. @differentiable */
export function rnn(p: { wx: Tensor; wh: Tensor }, xs: Tensor[], h0: Tensor): Tensor {
  let h = h0;
  for (const x of xs) h = tanh(add(matmul(x, p.wx), matmul(h, p.wh)));
  return sum(h);
}

/** Tied embeddings: the table embeds the tokens and projects back. @differentiable */
export function tied(p: { table: Tensor }, tokens: Tensor, targets: Tensor): Tensor {
  const e = embedding(p.table, tokens);
  const logits = matmul(e, p.table, { transB: true });
  return mean(softmaxCrossEntropy(logits, targets));
}

/** A target network: gradients flow only through the online parameters. @differentiable */
export function td(online: { w: Tensor }, target: { w: Tensor }, x: Tensor, r: Tensor): Tensor {
  const q = matmul(x, online.w);
  const t = add(r, stopGradient(matmul(x, target.w)));
  return mean(square(sub(q, t)));
}

/** Method calls on tensors. @differentiable */
export function methods(w: Tensor, x: Tensor): Tensor {
  return x.matmul(w).relu().mul(2).sum();
}

/** A small CNN. @differentiable */
export function cnn(p: { k: Tensor; w: Tensor }, x: Tensor, labels: Tensor): Tensor {
  const c = relu(conv2d(x, p.k, { padding: 1 }));
  const m = maxPool2d(c, { kernel: 2 });
  const flat = reshape(m, [x.shape[0]!, -1]);
  return mean(softmaxCrossEntropy(matmul(flat, p.w), labels));
}

/** Attention with a residual and layer norm. @differentiable */
export function attn(p: { wq: Tensor; wk: Tensor; wv: Tensor; g: Tensor; b: Tensor }, x: Tensor): Tensor {
  const n = layerNorm(x, p.g, p.b);
  const o = attention(matmul(n, p.wq), matmul(n, p.wk), matmul(n, p.wv), { causal: true });
  return mean(mul(add(x, o), add(x, o)));
}
