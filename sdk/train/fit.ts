// SPDX-License-Identifier: MIT
// The common training loop: for each batch, valueAndGrad(lossFn)(params, ...batch), one optimizer step (which
// consumes the gradients), and the loss added up on the device. The loss is read back every `logEvery` steps and
// at the end of each epoch only: a read-back waits for the device, and doing it every step stalls a GPU.
// Everything fit makes (uploaded batches, losses, gradients) it frees, so memory stays flat over any number of
// steps without a dispose in user code.
import { Tensor, type TensorBackend, upload } from '../tensor/engine.js';
import { containsTensor, lookupTensor, tensorValueAndGrad, tensorsIn } from '../tensor/ad.js';
import { notTransformed } from '../ad/registry.js';
import { add } from '../tensor/ops.js';
import { Dataset, batchCount, batches } from '../data/dataset.js';
import type { Optimizer } from '../optim/optimizers.js';
import type { LossScaler } from '../optim/loss-scale.js';
import { ProgressBar, type ProgressOutput } from './progress.js';

/**
 * What fit trains on, one item per step: an argument array for lossFn(params, ...item) (Tensors, host arrays
 * { dtype, shape, data } that fit uploads, or anything else lossFn takes), a Batch from batches() (passed as
 * inputs, labels), or a Tensor. Give a Dataset (with batchSize), an array or other re-iterable, an async iterable
 * (e.g. prefetch(...)), or a function from the epoch to an iterable (a new shuffle per epoch).
 */
export type FitData = Dataset | Iterable<unknown> | AsyncIterable<unknown> | ((epoch: number) => Iterable<unknown> | AsyncIterable<unknown>);

/** What fit reports after each step. */
export interface FitStep {
  /** Steps taken so far (1 after the first), skipped ones included. */
  step: number;
  /** The epoch, from 0. */
  epoch: number;
  /** The batch within the epoch, from 0. */
  batch: number;
  /** The mean loss since the previous read-back, when the loss was read back at this step; otherwise undefined. */
  loss: number | undefined;
  /** The learning rate the step used (or would have used, when it was skipped). */
  lr: number;
  /** False when the loss scaler found an inf / NaN gradient and the step was skipped. */
  ok: boolean;
  /** With a loss scaler: the scale for the next step. */
  scale?: number;
}

/** Options of {@link fit}. */
export interface FitOptions {
  optimizer: Optimizer;
  /** Passes over the data. Default 1. */
  epochs?: number;
  /** Dynamic loss scaling: the backward pass is seeded with its scale and overflowing steps are skipped. */
  scaler?: LossScaler;
  /** For a Dataset: samples per batch (required), and batches()'s shuffle, seed (epoch e uses its own order) and dropLast. */
  batchSize?: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
  /** Read the loss back every k steps (and at each epoch's end). Default 10. */
  logEvery?: number;
  /** Called after each step; returning false stops the training. */
  onStep?: (info: FitStep) => void | boolean | Promise<void | boolean>;
  /** No progress display. */
  quiet?: boolean;
  /** Where the progress goes (default process.stderr: a bar on a terminal, a line every few seconds otherwise). */
  output?: ProgressOutput;
  /** Least time between progress updates (default 100 ms on a terminal, 5 s otherwise). */
  progressIntervalMs?: number;
  /** Batches per epoch, for the ETA when the data does not say (an iterator, a function). */
  stepsPerEpoch?: number;
  /** Dispose the Tensors in each batch item after its step (items made for fit alone, e.g. by prefetch's upload). Default false. */
  disposeBatches?: boolean;
}

/** What fit returns. */
export interface FitHistory {
  /** The mean loss over each read-back window (logEvery steps, fewer at an epoch's end). */
  losses: number[];
  /** The step after which each entry of `losses` was read. */
  steps: number[];
  /** The mean loss over every step of each epoch. */
  epochLosses: number[];
  /** Steps taken (skipped ones included). */
  totalSteps: number;
  /** Steps the loss scaler skipped. */
  skippedSteps: number;
  /** Wall time of the run. */
  seconds: number;
}

interface HostArrayLike { dtype: 'f32' | 'i32'; shape: readonly number[]; data: Float32Array | Int32Array }
const isHostArray = (x: unknown): x is HostArrayLike => x !== null && typeof x === 'object' && !(x instanceof Tensor)
  && ((x as HostArrayLike).dtype === 'f32' || (x as HostArrayLike).dtype === 'i32') && Array.isArray((x as HostArrayLike).shape)
  && ((x as HostArrayLike).data instanceof Float32Array || (x as HostArrayLike).data instanceof Int32Array);
const isBatch = (x: unknown): x is { inputs: HostArrayLike; labels: HostArrayLike } =>
  x !== null && typeof x === 'object' && !Array.isArray(x) && isHostArray((x as { inputs: unknown }).inputs) && isHostArray((x as { labels: unknown }).labels);

function what(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  if (typeof x !== 'object') return `a ${typeof x}`;
  return `a ${(x as object).constructor?.name ?? 'object'}`;
}

/** The arguments for lossFn after params, and the tensors fit made for them (to free after the step). */
function argsOf(item: unknown, be: TensorBackend, n: number, disposeBatches: boolean): { args: unknown[]; owned: Tensor[] } {
  const owned: Tensor[] = [];
  const lift = (x: unknown): unknown => {
    if (!isHostArray(x)) return x;
    const t = upload(x.data, x.shape, x.dtype, be);
    owned.push(t);
    return t;
  };
  let args: unknown[];
  if (Array.isArray(item)) args = item.map(lift);
  else if (isBatch(item)) args = [lift(item.inputs), lift(item.labels)];
  else if (item instanceof Tensor) args = [item];
  else throw new TypeError(`fit: batch ${n} is ${what(item)}; expected an array of arguments for lossFn(params, ...batch), a Batch from batches(), or a Tensor`);
  if (disposeBatches) for (const t of tensorsIn(args)) if (!owned.includes(t)) owned.push(t);
  return { args, owned };
}

const isIterable = (x: unknown): x is Iterable<unknown> => x !== null && typeof x === 'object' && typeof (x as Iterable<unknown>)[Symbol.iterator] === 'function';
const isAsyncIterable = (x: unknown): x is AsyncIterable<unknown> => x !== null && typeof x === 'object' && typeof (x as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
/** An iterator is its own iterable (a generator): it can be walked once only. */
const isOneShot = (x: Iterable<unknown> | AsyncIterable<unknown>): boolean => {
  const it: unknown = isAsyncIterable(x) ? x[Symbol.asyncIterator]() : (x as Iterable<unknown>)[Symbol.iterator]();
  return it === x;
};

/**
 * Trains `params` (updated in place) by minimising lossFn(params, ...batch) over the data, with the optimizer's
 * fused steps; prints a one-line progress display unless quiet. Returns the losses read back.
 * @example
 * const opt = adamw({ lr: cosineWithWarmup({ lr: 1e-3, warmupSteps: 50, totalSteps: 1000 }) });
 * const history = await fit(mlpLoss, params, trainSet, { optimizer: opt, epochs: 10, batchSize: 32, shuffle: true });
 * console.log(history.epochLosses);
 */
export async function fit<P>(lossFn: (params: P, ...batch: any[]) => Tensor, params: P, data: FitData, options: FitOptions): Promise<FitHistory> {
  if (typeof lossFn !== 'function') throw new TypeError(`fit: lossFn must be a function (params, ...batch) => scalar Tensor, got ${what(lossFn)}`);
  if (!options || typeof options !== 'object' || !options.optimizer || typeof options.optimizer.step !== 'function') {
    throw new TypeError('fit: options.optimizer is required, e.g. fit(lossFn, params, data, { optimizer: adam({ lr: 1e-3 }) })');
  }
  const { optimizer: opt, scaler, epochs = 1, logEvery = 10, onStep, quiet = false, disposeBatches = false } = options;
  if (!Number.isSafeInteger(epochs) || epochs < 1) throw new RangeError(`fit: epochs must be an integer ≥ 1, got ${epochs}`);
  if (!Number.isSafeInteger(logEvery) || logEvery < 1) throw new RangeError(`fit: logEvery must be an integer ≥ 1, got ${logEvery}`);
  const leaves = tensorsIn(params);
  if (!leaves.length) throw new Error('fit: params holds no Tensor; pass the parameter tree lossFn differentiates');
  if (!lookupTensor(lossFn) && !containsTensor(params)) throw notTransformed(lossFn);
  const be = leaves[0]!.backend;

  // Where each epoch's batches come from, and how many there are (for the ETA).
  let source: (epoch: number) => Iterable<unknown> | AsyncIterable<unknown>;
  let perEpoch: number | undefined = options.stepsPerEpoch;
  if (data instanceof Dataset) {
    const { batchSize, shuffle, seed, dropLast } = options;
    if (batchSize === undefined) throw new Error('fit: training on a Dataset needs options.batchSize');
    const bo = { batchSize, shuffle, seed, dropLast };
    perEpoch ??= batchCount(data, bo);
    source = (epoch) => batches(data, { ...bo, epoch });
  } else if (typeof data === 'function') {
    source = data;
  } else if (isIterable(data) || isAsyncIterable(data)) {
    if (epochs > 1 && isOneShot(data)) throw new Error(`fit: the data is an iterator (a generator?), which can be walked once, but epochs is ${epochs}; pass an array, or a function epoch => iterable`);
    if (Array.isArray(data)) perEpoch ??= data.length;
    source = () => data;
  } else {
    throw new TypeError(`fit: data must be a Dataset, an iterable or async iterable of batches, or a function epoch => iterable; got ${what(data)}`);
  }

  const bar = quiet ? null : new ProgressBar({ total: perEpoch === undefined ? undefined : perEpoch * epochs, epochs, output: options.output, intervalMs: options.progressIntervalMs });
  const history: FitHistory = { losses: [], steps: [], epochLosses: [], totalSteps: 0, skippedSteps: 0, seconds: 0 };
  const started = performance.now();
  let step = 0, lastLoss: number | undefined;
  // The losses since the last read-back, summed on the device.
  let acc: Tensor | null = null, inAcc = 0;
  let epochSum = 0, epochCount = 0;

  const addLoss = (loss: Tensor): void => {
    if (!acc) { acc = loss; inAcc = 1; return; }
    const sum = add(acc, loss);
    acc.dispose(); loss.dispose();
    acc = sum; inAcc++;
  };
  const readBack = async (): Promise<number | undefined> => {
    if (!acc) return undefined;
    const a: Tensor = acc;
    acc = null;
    let total: number;
    try { total = await a.item(); } finally { a.dispose(); }
    const mean = total / inAcc;
    history.losses.push(mean); history.steps.push(step);
    epochSum += total; epochCount += inAcc; inAcc = 0;
    lastLoss = mean;
    return mean;
  };
  const gradOf = scaler ? scaler.valueAndGrad(lossFn) : null;

  try {
    let stop = false;
    for (let epoch = 0; epoch < epochs && !stop; epoch++) {
      let batch = 0;
      epochSum = 0; epochCount = 0;
      for await (const item of source(epoch)) {
        const { args, owned } = argsOf(item, be, batch, disposeBatches);
        let ok = true, lr: number;
        try {
          if (gradOf) {
            const r = await gradOf(params, ...args);
            addLoss(r.loss);
            ok = r.ok;
            if (r.ok) lr = (await opt.step(params, r.grads, { gradScale: r.gradScale })).lr;
            else { lr = opt.lrAt(opt.steps); history.skippedSteps++; }
          } else {
            const { value, grads } = tensorValueAndGrad(lossFn, undefined, [params, ...args], [0]);
            addLoss(value);
            lr = (await opt.step(params, grads[0])).lr;
          }
        } finally {
          for (const t of owned) t.dispose();
        }
        step++;
        const loss = step % logEvery === 0 ? await readBack() : undefined;
        bar?.update({ step, epoch, loss: lastLoss });
        if (onStep) {
          const info: FitStep = { step, epoch, batch, loss, lr, ok };
          if (scaler) info.scale = scaler.scale;
          if ((await onStep(info)) === false) { stop = true; break; }
        }
        batch++;
      }
      await readBack();
      const mean = epochCount ? epochSum / epochCount : undefined;
      if (mean !== undefined) history.epochLosses.push(mean);
      if (bar && epochs > 1) bar.epochDone(epoch, mean, step);
    }
  } catch (e) {
    bar?.interrupt();
    throw e;
  } finally {
    (acc as Tensor | null)?.dispose();
  }
  history.totalSteps = step;
  history.seconds = (performance.now() - started) / 1000;
  bar?.finish({ step, epoch: epochs - 1, loss: lastLoss });
  return history;
}
