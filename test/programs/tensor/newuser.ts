// Written the way a new user writes tensor code: arrows, namespace imports, methods with numbers,
// destructuring, early returns, unmarked helpers, trees returned from marked functions.
import * as pb from 'pullback';
import { type Tensor, relu, tanh, sigmoid, matmul, mean, sum, mul, add, sub, exp, log, softmax, concat, slice, where, gt, clip, maximum } from 'pullback';

export type Params = { enc: { w: Tensor; b: Tensor }; dec: { w: Tensor; b: Tensor }; scale: Tensor };

/** @differentiable */
export const autoencoder = (p: Params, x: Tensor): Tensor => {
  const { enc, dec } = p;
  const code = tanh(pb.matmul(x, enc.w, { bias: enc.b }));
  const back = matmul(code, dec.w).add(dec.b).mul(p.scale);
  return mean(back.sub(x).square());
};

/** A helper without the mark: its ops are recorded at run time. */
function gate(a: Tensor, b: Tensor): Tensor {
  return mul(sigmoid(a), b);
}

/** @differentiable */
export function gated(w: Tensor, x: Tensor): Tensor {
  const h = matmul(x, w);
  return sum(gate(h, h));
}

/** Returns a tree of tensors. @differentiable */
export function cell(p: { wh: Tensor; wc: Tensor }, state: { h: Tensor; c: Tensor }): { h: Tensor; c: Tensor } {
  const c = add(state.c, tanh(matmul(state.h, p.wc)));
  const h = mul(tanh(c), sigmoid(matmul(state.h, p.wh)));
  return { h, c };
}

/** Uses the tree-returning cell in a loop. @differentiable */
export function unroll(p: { wh: Tensor; wc: Tensor }, h0: Tensor, steps: number): Tensor {
  let state = { h: h0, c: mul(h0, 0) };
  for (let t = 0; t < steps; t++) state = cell(p, state);
  return add(mean(state.h), mean(state.c));
}

/** Early return on a host value, else-if chains. @differentiable */
export function branchy(w: Tensor, x: Tensor, mode: number): Tensor {
  const y = matmul(x, w);
  if (mode === 0) return sum(relu(y));
  else if (mode === 1) {
    const z = exp(y.mul(0.1));
    return sum(log(z.add(1)));
  }
  return sum(softmax(y).mul(y));
}

/** Slicing, concatenation, where, clip, maximum. @differentiable */
export function plumbing(a: Tensor, b: Tensor): Tensor {
  const top = slice(a, [0, 0], [2, 3]);
  const both = concat([top, b], 0);
  const masked = where(gt(both, 0), both, both.mul(0.01));
  return sum(mul(clip(masked, -0.5, 0.5), maximum(both, 0.2)));
}

/** Marked, takes an array of tensors. @differentiable */
export function ensemble(ws: Tensor[], x: Tensor): Tensor {
  let total = mul(sum(x), 0);
  for (const w of ws) total = add(total, mean(matmul(x, w)));
  return total.div(ws.length);
}

/** Subtracting a number from a tensor and the reverse. @differentiable */
export function numbers(x: Tensor): Tensor {
  return sum(sub(1, x).mul(x).add(2).div(3));
}

/** Returns its argument unchanged. @differentiable */
export function ident(x: Tensor): Tensor {
  return x;
}

/** The value ident hands back outlives the variable it came from (freed after its last use). @differentiable */
export function useIdent(w: Tensor, x: Tensor): Tensor {
  const h = relu(matmul(x, w));
  const y = ident(h);
  return sum(mul(y, y));
}

/** Outputs collected in an array with push, then concatenated (an RNN's outputs). @differentiable */
export function collect(w: Tensor, xs: Tensor[]): Tensor {
  const outs: Tensor[] = [];
  let h = mul(xs[0]!, 0);
  for (const x of xs) {
    const next = tanh(add(matmul(h, w), x));
    outs.push(next);
    h = next;
  }
  return mean(concat(outs, 0));
}
