// SPDX-License-Identifier: MIT
// A tiny decoder-only transformer (GPT-style, pre-norm) as a parameter tree and marked functions: pullback writes
// their adjoints at build time (see them with `npx pullback compile samples/transformer --outDir out/adjoint --emit-adjoint`).
//
// The sequence it reads is `x₁ … xₙ | y₁ … yₙ₋₁` (n digits, the separator, the answer so far) and position n - 1 + k
// predicts yₖ: the usual next-token training with the prompt's own positions left out of the loss.
//
// What is in f16 (see LossScaler): the residual stream at each block boundary, i.e. the embeddings' sum and each
// block's output, the values a checkpointed block keeps for its backward pass. They are stored through
// cast(·, 'f16') and read back once with cast(·, 'f32'), so the forward values there are rounded to f16 and the
// cotangents flowing back through them are rounded to f16 too (and would underflow without the loss scale).
// Everything else (the weights, the optimizer state, every op's arithmetic, the values inside a block) is f32.
import { type Tensor, nn, add, arange, cast, checkpoint, slice } from 'pullback';

/** Tokens 0-9 are the digits; 10 separates the prompt from the answer. */
export const SEP = 10;
export const VOCAB = 11;
/** Attention heads in each block. */
export const HEADS = 4;

/** One pre-norm block: x + attention(ln₁(x)), then h + mlp(ln₂(h)). */
export interface Block {
  ln1: nn.LayerNormParams;
  att: nn.MultiHeadAttentionParams;
  ln2: nn.LayerNormParams;
  up: nn.LinearParams;
  down: nn.LinearParams;
}

/** Token and position embeddings, the blocks, a final LayerNorm and the output projection to the vocabulary. */
export interface Gpt {
  tok: nn.EmbeddingParams;
  pos: nn.EmbeddingParams;
  blocks: Block[];
  lnF: nn.LayerNormParams;
  head: nn.LinearParams;
}

export interface GptConfig {
  /** Positions the model can read (the learned positional table's rows). */
  context: number;
  dModel: number;
  layers: number;
  /** The MLP's hidden width is mlpRatio · dModel. */
  mlpRatio: number;
}

export function initGpt(seed: number, c: GptConfig): Gpt {
  const s = (k: number) => nn.init.split(seed, k);
  // Embeddings N(0, 0.02²) as GPT-2: small next to the LayerNorms' unit scale.
  const small: nn.Initializer = (shape, sd) => nn.init.normal(shape, sd, { std: 0.02 });
  const blocks: Block[] = [];
  for (let i = 0; i < c.layers; i++) {
    const b = (k: number) => nn.init.split(s(10 + i), k);
    blocks.push({
      ln1: nn.initLayerNorm(c.dModel),
      att: nn.initMultiHeadAttention(c.dModel, { seed: b(0) }),
      ln2: nn.initLayerNorm(c.dModel),
      up: nn.initLinear(c.dModel, c.mlpRatio * c.dModel, { seed: b(1) }),
      down: nn.initLinear(c.mlpRatio * c.dModel, c.dModel, { seed: b(2), weightInit: nn.init.xavierUniform }),
    });
  }
  return {
    tok: nn.initEmbedding(VOCAB, c.dModel, { seed: s(0), init: small }),
    pos: nn.initEmbedding(c.context, c.dModel, { seed: s(1), init: small }),
    blocks,
    lnF: nn.initLayerNorm(c.dModel),
    head: nn.initLinear(c.dModel, VOCAB, { seed: s(2), weightInit: nn.init.xavierUniform }),
  };
}

/** The value rounded to f16 storage and read back as f32 (its cotangent takes the same round trip). @differentiable */
export function storeF16(h: Tensor): Tensor {
  return cast(cast(h, 'f16'), 'f32');
}

/** One pre-norm block over x [B, T, D], causal. @differentiable */
export function block(b: Block, x: Tensor): Tensor {
  const a = nn.multiHeadAttention(b.att, nn.layerNorm(b.ln1, x), { heads: HEADS, causal: true });
  const h = add(x, a);
  const m = nn.linear(b.down, nn.linear(b.up, nn.layerNorm(b.ln2, h), { activation: 'gelu' }));
  return add(h, m);
}

/**
 * The final hidden states [B, T, D] of tokens [B, T] (i32). With `useCheckpoint` each block is recomputed in the
 * backward pass instead of keeping its insides; the result and the gradients are the same either way.
 * @differentiable
 */
export function hidden(p: Gpt, tokens: Tensor, useCheckpoint: boolean): Tensor {
  const t = tokens.shape[1]!;
  const positions = arange(0, t, 1, 'i32');
  let h = storeF16(add(nn.embedding(p.tok, tokens), nn.embedding(p.pos, positions)));
  for (const b of p.blocks) {
    const out = useCheckpoint ? checkpoint(block, b, h) : block(b, h);
    h = storeF16(out);
  }
  return nn.layerNorm(p.lnF, h);
}

/** Logits [B, T, VOCAB] at every position of tokens [B, T]. @differentiable */
export function logits(p: Gpt, tokens: Tensor): Tensor {
  return nn.linear(p.head, hidden(p, tokens, false));
}

/**
 * Mean cross-entropy of the answer: tokens [B, 2n] (the prompt of n digits, the separator, the first n - 1 answer
 * digits), answer [B, n] (i32). Only the n positions from the separator on are projected and scored.
 * @differentiable
 */
export function answerLoss(p: Gpt, tokens: Tensor, answer: Tensor, useCheckpoint: boolean): Tensor {
  const h = hidden(p, tokens, useCheckpoint);
  const bsz = answer.shape[0]!, n = answer.shape[1]!;
  const tail = slice(h, [0, n, 0], [bsz, n, h.shape[2]!]);
  return nn.losses.softmaxCrossEntropy(nn.linear(p.head, tail), answer);
}
