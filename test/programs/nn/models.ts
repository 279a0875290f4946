// Programs of the kind users write with pullback's nn layers and losses: parameter trees of initX(...),
// marked functions that apply layers and reduce to a loss, a layer applied twice, a Sequential model.
import { nn, type Tensor, sum, mul, add, matmul } from 'pullback';

type Act = 'none' | 'relu' | 'gelu';

// Each probe is ⟨c, layer(...)⟩ for a fixed random c: a scalar whose gradient is the layer's vector-Jacobian
// product with c, so every output element is weighed differently.

/** @differentiable */
export function linearProbe(p: nn.LinearParams, x: Tensor, c: Tensor, activation: Act): Tensor {
  return sum(mul(nn.linear(p, x, { activation }), c));
}

/** @differentiable */
export function conv2dProbe(p: nn.Conv2dParams, x: Tensor, c: Tensor, stride: number, padding: number): Tensor {
  return sum(mul(nn.conv2d(p, x, { stride, padding }), c));
}

/** @differentiable */
export function layerNormProbe(p: nn.LayerNormParams, x: Tensor, c: Tensor): Tensor {
  return sum(mul(nn.layerNorm(p, x), c));
}

/** @differentiable */
export function embeddingProbe(p: nn.EmbeddingParams, tokens: Tensor, c: Tensor): Tensor {
  return sum(mul(nn.embedding(p, tokens), c));
}

/** @differentiable */
export function attentionProbe(p: nn.MultiHeadAttentionParams, x: Tensor, c: Tensor, heads: number, causal: boolean): Tensor {
  return sum(mul(nn.multiHeadAttention(p, x, { heads, causal }), c));
}

/** Cross-attention: keys and values from a context sequence. @differentiable */
export function crossAttentionProbe(p: nn.MultiHeadAttentionParams, x: Tensor, context: Tensor, c: Tensor, heads: number): Tensor {
  return sum(mul(nn.multiHeadAttention(p, x, { heads, context }), c));
}

/** @differentiable */
export function dropoutProbe(x: Tensor, c: Tensor, training: boolean, seed: number): Tensor {
  return sum(mul(nn.dropout(x, { p: 0.5, training, seed }), c));
}

/** @differentiable */
export function sequentialProbe(model: nn.Layer[], x: Tensor, c: Tensor, training: boolean, seed: number): Tensor {
  return sum(mul(nn.sequential(model, x, { training, seed }), c));
}

/** One layer applied twice (shared weights), with a residual. @differentiable */
export function twice(p: nn.LinearParams, x: Tensor, c: Tensor): Tensor {
  const h = nn.linear(p, x, { activation: 'gelu' });
  const y = add(h, nn.linear(p, h));
  return sum(mul(y, c));
}

/** The same computation as twice, with two parameter objects (to compare with the sum of their gradients). @differentiable */
export function twoLayers(p1: nn.LinearParams, p2: nn.LinearParams, x: Tensor, c: Tensor): Tensor {
  const h = nn.linear(p1, x, { activation: 'gelu' });
  const y = add(h, nn.linear(p2, h));
  return sum(mul(y, c));
}

export type LossKind = 'crossEntropy' | 'bce' | 'mse' | 'l1' | 'huber';

/** A linear head followed by one of the losses. @differentiable */
export function headLoss(p: nn.LinearParams, x: Tensor, target: Tensor, kind: LossKind, reduction: nn.losses.Reduction, extra: number): Tensor {
  const y = nn.linear(p, x);
  switch (kind) {
    case 'crossEntropy': return nn.losses.softmaxCrossEntropy(y, target, { reduction, labelSmoothing: extra });
    case 'bce': return nn.losses.binaryCrossEntropyWithLogits(y, target, { reduction });
    case 'mse': return nn.losses.mse(y, target, { reduction });
    case 'l1': return nn.losses.l1(y, target, { reduction });
    case 'huber': return nn.losses.huber(y, target, { reduction, delta: extra });
  }
}

/** A loss straight on predictions (no layer), for forward values and reductions. @differentiable */
export function lossOf(pred: Tensor, target: Tensor, kind: LossKind, reduction: nn.losses.Reduction, extra: number): Tensor {
  switch (kind) {
    case 'crossEntropy': return nn.losses.softmaxCrossEntropy(pred, target, { reduction, labelSmoothing: extra });
    case 'bce': return nn.losses.binaryCrossEntropyWithLogits(pred, target, { reduction });
    case 'mse': return nn.losses.mse(pred, target, { reduction });
    case 'l1': return nn.losses.l1(pred, target, { reduction });
    case 'huber': return nn.losses.huber(pred, target, { reduction, delta: extra });
  }
}

export interface Mlp { fc1: nn.LinearParams; fc2: nn.LinearParams; out: nn.LinearParams }

/** A small MLP classifier. @differentiable */
export function mlpLoss(p: Mlp, x: Tensor, labels: Tensor): Tensor {
  const h1 = nn.linear(p.fc1, x, { activation: 'relu' });
  const h2 = nn.linear(p.fc2, h1, { activation: 'relu' });
  return nn.losses.softmaxCrossEntropy(nn.linear(p.out, h2), labels);
}

/** A tiny transformer-style block: embedding, layer norm, causal self-attention, tied output projection. @differentiable */
export function lmLoss(p: { emb: nn.EmbeddingParams; ln: nn.LayerNormParams; att: nn.MultiHeadAttentionParams }, tokens: Tensor, targets: Tensor): Tensor {
  const e = nn.embedding(p.emb, tokens);
  const h = add(e, nn.multiHeadAttention(p.att, nn.layerNorm(p.ln, e), { heads: 2, causal: true }));
  const logits = matmul(h, p.emb.table, { transB: true });
  return nn.losses.softmaxCrossEntropy(logits, targets, { labelSmoothing: 0.1 });
}

/** Dropout's result is used after the last use of its input (which the memory plan frees there). @differentiable */
export function dropoutThenUse(p: nn.LinearParams, x: Tensor, training: boolean): Tensor {
  const h = nn.linear(p, x);
  const d = nn.dropout(h, { p: 0.5, training, seed: 1 });
  return sum(mul(d, d));
}
