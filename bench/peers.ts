// SPDX-License-Identifier: MIT
// The peer libraries of `npm run bench:train` (TensorFlow.js and jax-js) set up in Node, and the training benchmark's
// two models written in each of them, with the weights and batches every library starts from.
//
// Weights and data are made once on the host by one seeded generator, so pullback and every peer start from the same
// bits. The models are the ones of bench/programs/models.ts, op for op: GELU is the tanh approximation, layer norm
// uses the biased variance and eps 1e-5, attention is causal with scale 1/sqrt(head dim), and the MLP's loss is the
// mean softmax cross-entropy (pullback takes i32 labels; the peers multiply log-softmax by one-hot rows of the same
// labels). The optimizer is AdamW (PyTorch semantics: bias correction, eps outside the square root, weight decay
// decoupled and applied to every parameter).
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as jax from '@jax-js/jax';

// ---- the shared starting point -------------------------------------------------------------

/** Normal samples from a seeded generator (mulberry32 + Box-Muller): the same numbers on every run and machine. */
export function normals(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = offset + scale * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}

/** One parameter: its path in pullback's tree (for messages), shape and initial values. */
export interface ParamSpec { name: string; shape: number[]; data: Float32Array }

export interface MlpCase {
  kind: 'mlp';
  sizes: number[];
  batch: number;
  /** [w0, b0, w1, b1, ...], weights stored [in, out]. */
  params: ParamSpec[];
  x: Float32Array;
  labels: Int32Array;
}

export interface TransformerCase {
  kind: 'transformer';
  blocks: number; dModel: number; seq: number; heads: number; batch: number;
  /** Per block, in this order: ln1.g, ln1.b, ln2.g, ln2.b, wq, wk, wv, wo, fc1.w, fc1.b, fc2.w, fc2.b. */
  params: ParamSpec[];
  x: Float32Array;
}

export type ModelCase = MlpCase | TransformerCase;

/** Parameters of a transformer block, in ParamSpec order. */
export const BLOCK_PARAMS = ['ln1.g', 'ln1.b', 'ln2.g', 'ln2.b', 'wq', 'wk', 'wv', 'wo', 'fc1.w', 'fc1.b', 'fc2.w', 'fc2.b'] as const;

export function mlpCase(sizes = [784, 256, 256, 10], batch = 128): MlpCase {
  const params: ParamSpec[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const [n, m] = [sizes[i]!, sizes[i + 1]!];
    params.push({ name: `layers[${i}].w`, shape: [n, m], data: normals(n * m, 100 + i, Math.sqrt(2 / n)) });
    params.push({ name: `layers[${i}].b`, shape: [m], data: normals(m, 200 + i, 0.01) });
  }
  const x = normals(batch * sizes[0]!, 1);
  const labels = Int32Array.from({ length: batch }, (_, i) => (i * 7 + 3) % sizes.at(-1)!);
  return { kind: 'mlp', sizes, batch, params, x, labels };
}

export function transformerCase(blocks = 4, dModel = 128, seq = 128, heads = 4, batch = 4): TransformerCase {
  const d = dModel, params: ParamSpec[] = [];
  for (let i = 0; i < blocks; i++) {
    const seed = 1000 * (i + 1);
    const shapes: Record<(typeof BLOCK_PARAMS)[number], [number[], number, number]> = {
      // shape, scale, offset
      'ln1.g': [[d], 0.1, 1], 'ln1.b': [[d], 0.1, 0], 'ln2.g': [[d], 0.1, 1], 'ln2.b': [[d], 0.1, 0],
      wq: [[d, d], 1 / Math.sqrt(d), 0], wk: [[d, d], 1 / Math.sqrt(d), 0], wv: [[d, d], 1 / Math.sqrt(d), 0], wo: [[d, d], 1 / Math.sqrt(d), 0],
      'fc1.w': [[d, 4 * d], 1 / Math.sqrt(d), 0], 'fc1.b': [[4 * d], 0.01, 0], 'fc2.w': [[4 * d, d], 1 / Math.sqrt(4 * d), 0], 'fc2.b': [[d], 0.01, 0],
    };
    BLOCK_PARAMS.forEach((p, j) => {
      const [shape, scale, offset] = shapes[p];
      params.push({ name: `blocks[${i}].${p}`, shape, data: normals(shape.reduce((a, b) => a * b, 1), seed + j, scale, offset) });
    });
  }
  return { kind: 'transformer', blocks, dModel, seq, heads, batch, params, x: normals(batch * seq * d, 2) };
}

/** Additive causal mask [S, S]: 0 where key j <= query i, -1e9 above the diagonal (exp underflows to exactly 0). */
export function causalBias(seq: number): Float32Array {
  const m = new Float32Array(seq * seq);
  for (let i = 0; i < seq; i++) for (let j = i + 1; j < seq; j++) m[i * seq + j] = -1e9;
  return m;
}

export function oneHot(labels: Int32Array, classes: number): Float32Array {
  const out = new Float32Array(labels.length * classes);
  labels.forEach((l, i) => { out[i * classes + l] = 1; });
  return out;
}

export interface AdamWHyper { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number }
export const ADAMW: AdamWHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

/** One library training one model: step() runs forward, backward and AdamW, waits for all of it, returns the loss. */
export interface Trainer {
  step(): Promise<number>;
  dispose(): void;
}

// ---- WebGPU in Node for the peers ------------------------------------------------------------

/**
 * Node 20 has no navigator: give the peers Dawn's (the `webgpu` package, the same SwiftShader or hardware adapter
 * pullback uses) before tfjs-backend-webgpu is imported, since it decides at import time whether to register.
 */
export async function exposeNavigatorGpu(): Promise<void> {
  const { create, globals } = (await import('webgpu')) as unknown as { create(o: string[]): GPU; globals: object };
  Object.assign(globalThis, globals);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]), userAgent: 'node', hardwareConcurrency: 2 }, configurable: true });
}

// ---- TensorFlow.js ------------------------------------------------------------------------------

export type TfBackend = 'wasm' | 'webgpu';
let tfWasmPathSet = false;

/** Makes `backend` TF.js's current backend (registering it on first use); returns a description. */
export async function useTf(backend: TfBackend): Promise<string> {
  if (backend === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (!tfWasmPathSet) {
      const require = createRequire(import.meta.url);
      wasm.setWasmPaths(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/');
      tfWasmPathSet = true;
    }
  } else {
    if (!('gpu' in ((globalThis as { navigator?: object }).navigator ?? {}))) await exposeNavigatorGpu();
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend '${backend}' failed to initialise`);
  await tf.ready();
  return `TF.js-${backend} ${tf.version.tfjs}`;
}

type TfT = tf.Tensor;

const tfGelu = (x: TfT): TfT => tf.tidy(() =>
  tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(tf.mul(x, x), x))))))));

function tfLayerNorm(x: TfT, g: TfT, b: TfT): TfT {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
}

/** Mean softmax cross-entropy of the MLP. vars: [w0, b0, ...]. */
export function tfMlpLoss(vars: TfT[], x: TfT, onehot: TfT): tf.Scalar {
  let h = x;
  const n = vars.length / 2;
  for (let i = 0; i < n; i++) {
    h = tf.add(tf.matMul(h, vars[2 * i]!), vars[2 * i + 1]!);
    if (i < n - 1) h = tf.relu(h);
  }
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(h), onehot), -1))) as tf.Scalar;
}

/** Mean squared output of the transformer. vars: BLOCK_PARAMS per block; x [B, S, D]; bias [S, S]. */
export function tfTransformerLoss(c: TransformerCase, vars: TfT[], x: TfT, bias: TfT): tf.Scalar {
  const { batch: B, seq: S, dModel: D, heads: H } = c, Dh = D / H;
  const split = (t: TfT) => tf.reshape(tf.transpose(tf.reshape(t, [B, S, H, Dh]), [0, 2, 1, 3]), [B * H, S, Dh]);
  const lin = (t: TfT, w: TfT) => tf.reshape(tf.matMul(tf.reshape(t, [B * S, -1]), w), [B, S, -1]);
  let h = x;
  for (let i = 0; i < c.blocks; i++) {
    const [g1, b1, g2, b2, wq, wk, wv, wo, w1, bb1, w2, bb2] = vars.slice(12 * i, 12 * i + 12) as TfT[] & { length: 12 };
    const n1 = tfLayerNorm(h, g1!, b1!);
    const q = split(lin(n1, wq!)), k = split(lin(n1, wk!)), v = split(lin(n1, wv!));
    const p = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(Dh)), bias));
    const a = tf.reshape(tf.transpose(tf.reshape(tf.matMul(p, v), [B, H, S, Dh]), [0, 2, 1, 3]), [B, S, D]);
    const x1 = tf.add(h, lin(a, wo!));
    const n2 = tfLayerNorm(x1, g2!, b2!);
    const m = tf.add(lin(tfGelu(tf.add(lin(n2, w1!), bb1!)), w2!), bb2!);
    h = tf.add(x1, m);
  }
  return tf.mean(tf.square(h)) as tf.Scalar;
}

let tfTrainers = 0;

/** TF.js: tf.variableGrads for forward and backward, tf.train.adam with the weight decay applied by hand (AdamW). */
export function tfTrainer(c: ModelCase, hyper: AdamWHyper = ADAMW): Trainer {
  const id = ++tfTrainers; // variable names are global in TF.js
  const vars = c.params.map((p, i) => tf.tidy(() => tf.variable(tf.tensor(p.data, p.shape), true, `train${id}_${c.kind}_${i}`)));
  const data: TfT[] = c.kind === 'mlp'
    ? [tf.tensor(c.x, [c.batch, c.sizes[0]!]), tf.tensor(oneHot(c.labels, c.sizes.at(-1)!), [c.batch, c.sizes.at(-1)!])]
    : [tf.tensor(c.x, [c.batch, c.seq, c.dModel]), tf.tensor(causalBias(c.seq), [c.seq, c.seq])];
  const f = c.kind === 'mlp' ? () => tfMlpLoss(vars, data[0]!, data[1]!) : () => tfTransformerLoss(c, vars, data[0]!, data[1]!);
  // TF.js's Adam is PyTorch's (bias-corrected, eps outside the root); it has no decoupled weight decay.
  const opt = tf.train.adam(hyper.lr, hyper.beta1, hyper.beta2, hyper.eps);
  const decay = 1 - hyper.lr * hyper.weightDecay;
  return {
    async step() {
      const { value, grads } = tf.variableGrads(f, vars);
      // AdamW: p ← p·(1 − lr·wd) − lr·m̂/(√v̂ + eps); the gradient is already taken, so the decay may come first.
      tf.tidy(() => { for (const v of vars) v.assign(tf.mul(v, decay)); });
      opt.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
      tf.dispose(grads);
      const loss = (await value.data())[0]!;
      value.dispose();
      return loss;
    },
    dispose() { opt.dispose(); tf.dispose(vars); tf.dispose(data); },
  };
}

// ---- jax-js ---------------------------------------------------------------------------------------

export type JaxDevice = 'wasm' | 'webgpu';
type JA = jax.Array;
const np = jax.numpy;

/** Starts jax-js on `device` and makes it the default for new arrays. */
export async function useJax(device: JaxDevice): Promise<string> {
  if (device === 'webgpu' && !('gpu' in ((globalThis as { navigator?: object }).navigator ?? {}))) await exposeNavigatorGpu();
  const ok = await jax.init(device);
  if (!ok.includes(device)) throw new Error(`jax-js device '${device}' is unavailable (init returned [${ok.join(', ')}])`);
  jax.defaultDevice(device);
  return `jax-js-${device}`;
}

// jax-js arrays are reference-counted and every function consumes its arguments: each use but the last is `.ref`.

function jaxLayerNorm(x: JA, g: JA, b: JA): JA {
  const xc = x.ref.sub(np.mean(x, -1, { keepdims: true }));
  const variance = np.mean(np.square(xc.ref), -1, { keepdims: true });
  return xc.div(np.sqrt(variance.add(1e-5))).mul(g).add(b);
}

export function jaxMlpLoss(p: JA[], x: JA, onehot: JA): JA {
  let h = x;
  const n = p.length / 2;
  for (let i = 0; i < n; i++) {
    h = np.matmul(h, p[2 * i]!).add(p[2 * i + 1]!);
    if (i < n - 1) h = jax.nn.relu(h);
  }
  return jax.nn.logSoftmax(h, -1).mul(onehot).sum().mul(-1 / x.shape[0]!);
}

export function jaxTransformerLoss(c: TransformerCase, p: JA[], x: JA, bias: JA): JA {
  const { batch: B, seq: S, dModel: D, heads: H } = c, Dh = D / H;
  // jax.nn.dotProductAttention needs Iterator helpers (Node 22+), so attention is composed from the same ops as TF.js.
  const split = (t: JA) => np.transpose(t.reshape([B, S, H, Dh]), [0, 2, 1, 3]);
  let h = x;
  for (let i = 0; i < c.blocks; i++) {
    const [g1, b1, g2, b2, wq, wk, wv, wo, w1, bb1, w2, bb2] = p.slice(12 * i, 12 * i + 12) as JA[];
    const n1 = jaxLayerNorm(h.ref, g1!, b1!);
    const q = split(np.matmul(n1.ref, wq!)), k = split(np.matmul(n1.ref, wk!)), v = split(np.matmul(n1, wv!));
    const s = np.matmul(q, np.swapaxes(k, -1, -2)).mul(1 / Math.sqrt(Dh)).add(bias.ref);
    const a = np.transpose(np.matmul(jax.nn.softmax(s, -1), v), [0, 2, 1, 3]).reshape([B, S, D]);
    const x1 = h.add(np.matmul(a, wo!));
    const n2 = jaxLayerNorm(x1.ref, g2!, b2!);
    const m = np.matmul(jax.nn.gelu(np.matmul(n2, w1!).add(bb1!)), w2!).add(bb2!);
    h = x1.add(m);
  }
  bias.dispose();
  return np.mean(np.square(h));
}

/**
 * AdamW on every leaf; consumes p, g, m, v and the two step constants. c1 = lr / (1 − β1^t), c2 = 1 / (1 − β2^t).
 * p ← p·(1 − lr·wd) − c1·m / (√(c2·v) + eps), which is PyTorch's AdamW.
 */
function jaxAdamW(p: JA[], g: JA[], m: JA[], v: JA[], c1: JA, c2: JA, h: AdamWHyper): [JA[], JA[], JA[]] {
  const P: JA[] = [], M: JA[] = [], V: JA[] = [];
  p.forEach((pi, i) => {
    const gi = g[i]!;
    const mi = m[i]!.mul(h.beta1).add(gi.ref.mul(1 - h.beta1));
    const vi = v[i]!.mul(h.beta2).add(gi.ref.mul(gi).mul(1 - h.beta2));
    const upd = mi.ref.mul(c1.ref).div(np.sqrt(vi.ref.mul(c2.ref)).add(h.eps));
    P.push(pi.mul(1 - h.lr * h.weightDecay).sub(upd));
    M.push(mi); V.push(vi);
  });
  c1.dispose(); c2.dispose();
  return [P, M, V];
}

/** jax-js: valueAndGrad and the AdamW update in jax-js ops; with `jit`, the whole step is one jitted function. */
export function jaxTrainer(c: ModelCase, opts: { jit: boolean }, hyper: AdamWHyper = ADAMW): Trainer {
  let params: JA[] = c.params.map((p) => np.array(p.data).reshape(p.shape));
  let m: JA[] = c.params.map((p) => np.zeros(p.shape));
  let v: JA[] = c.params.map((p) => np.zeros(p.shape));
  const data: JA[] = c.kind === 'mlp'
    ? [np.array(c.x).reshape([c.batch, c.sizes[0]!]), np.array(oneHot(c.labels, c.sizes.at(-1)!)).reshape([c.batch, c.sizes.at(-1)!])]
    : [np.array(c.x).reshape([c.batch, c.seq, c.dModel]), np.array(causalBias(c.seq)).reshape([c.seq, c.seq])];
  const loss = c.kind === 'mlp' ? jaxMlpLoss : (p: JA[], x: JA, b: JA) => jaxTransformerLoss(c, p, x, b);
  const step = (p: JA[], m0: JA[], v0: JA[], x: JA, y: JA, c1: JA, c2: JA): [JA, JA[], JA[], JA[]] => {
    const [l, g] = jax.valueAndGrad(loss)(p.map((t) => t.ref), x, y) as [JA, JA[]];
    const [P, M, V] = jaxAdamW(p, g, m0, v0, c1, c2, hyper);
    return [l, P, M, V];
  };
  const jitted = opts.jit ? jax.jit(step) : null;
  const run = jitted ?? step;
  let t = 0;
  return {
    async step() {
      t++;
      const c1 = np.array(hyper.lr / (1 - hyper.beta1 ** t)), c2 = np.array(1 / (1 - hyper.beta2 ** t));
      const [l, P, M, V] = run(params, m, v, data[0]!.ref, data[1]!.ref, c1, c2) as [JA, JA[], JA[], JA[]];
      params = P; m = M; v = V;
      // jax-js is lazy: wait for the updated parameters and moments, not only the loss.
      await jax.blockUntilReady([params, m, v]);
      return (await l.data())[0]!;
    },
    dispose() {
      for (const a of [...params, ...m, ...v, ...data]) a.dispose();
      jitted?.dispose();
    },
  };
}
