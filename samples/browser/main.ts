// SPDX-License-Identifier: MIT
// The browser sample: trains the MNIST MLP of ../mnist/model.ts on WebGPU in the page, charting the loss and the test
// accuracy as it goes, then classifies the digits drawn on the canvas. Bundled by Rollup with the pullback plugin
// (build.ts); served by serve.ts (npm run serve).
//
// Query parameters: ?steps=N trains N steps on load (default 300; 0: wait for the Train button or the test hook).
// The MLP, not the CNN: on SwiftShader (WebGPU on the CPU, what a machine without a GPU gets) a CNN step takes
// several times longer, and the MLP reaches about 90% on the held-out digits within a few hundred steps.
import { type Batch, type Tensor, Dataset, adam, batches, init, softmax, tensor, valueAndGrad } from 'pullback';
import { type Mlp, initMlp, mlp, mlpLoss } from '../mnist/model.js';

const HIDDEN = 128, BATCH = 64, LR = 2e-3, EVAL_EVERY = 25;

/** What the page exposes for tests and the console (window.pullbackSample). */
export interface SampleHook {
  /** Resolves once the backend is up and the digits are loaded; rejects with the reason the page shows. */
  ready: Promise<{ backend: string; train: number; test: number }>;
  /** Trains `steps` more steps (after any training in progress) and resolves with the losses of all steps so far. */
  train(steps: number): Promise<number[]>;
  /** Stops training after the current step. */
  stop(): void;
  /** The loss of every training step so far. */
  losses: number[];
  /** Test-set accuracy (%) after the given step numbers. */
  accuracy: { steps: number[]; values: number[] };
  /** The latest prediction for the drawing, or null when the canvas is blank. */
  prediction: { label: number; probabilities: number[] } | null;
  /** Classifies what is on the drawing canvas now. */
  classify(): Promise<SampleHook['prediction']>;
}

declare global {
  interface Window { pullbackSample: SampleHook }
}

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el as T;
};
const status = (text: string, error = false): void => {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', error);
};

// ---------------------------------------------------------------------------------------------------------------
// Data: dist/digits.bin, written by build.ts (two uint32 counts, the images as bytes, then the labels).

interface Digits { train: Dataset<Int32Array>; testImages: Float32Array; testLabels: Int32Array }

async function readDigits(): Promise<Digits> {
  const res = await fetch('dist/digits.bin');
  if (!res.ok) throw new Error(`dist/digits.bin: HTTP ${res.status} (run the build: npm run serve)`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const view = new DataView(bytes.buffer);
  const nTrain = view.getUint32(0, true), nTest = view.getUint32(4, true), n = nTrain + nTest;
  if (bytes.length !== 8 + n * 785) throw new Error(`dist/digits.bin: ${bytes.length} bytes, expected ${8 + n * 785} for ${n} digits`);
  const images = Float32Array.from(bytes.subarray(8, 8 + n * 784), (v) => v / 255);
  const labels = Int32Array.from(bytes.subarray(8 + n * 784));
  return {
    train: new Dataset({ inputs: images.subarray(0, nTrain * 784), sampleShape: [1, 28, 28], labels: labels.subarray(0, nTrain) }),
    testImages: images.subarray(nTrain * 784), testLabels: labels.subarray(nTrain),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Backend: WebGPU by default: init() takes a hardware adapter if there is one, else, in a browser, the software one
// (SwiftShader in headless Chromium). ?backend=cpu runs the CPU backend instead, on the Wasm SIMD kernels the build
// copied to dist/kernels/.

async function startBackend(): Promise<string> {
  if (new URLSearchParams(location.search).get('backend') === 'cpu') {
    return (await init({ backend: 'cpu', wasmDir: new URL('./dist/kernels/', location.href) })).description;
  }
  if (!('gpu' in navigator)) throw new Error('this browser has no WebGPU (navigator.gpu); try a recent Chrome or Edge, or Firefox Nightly; or open this page with ?backend=cpu');
  const info = await init();
  if (info.name !== 'webgpu') throw new Error(`this page needs WebGPU; pullback chose ${info.description}`);
  return info.description;
}

// ---------------------------------------------------------------------------------------------------------------
// Training. Steps and classifications take turns through one queue, so that a prediction never sees the parameters
// half-way through an optimizer step.

let queue: Promise<unknown> = Promise.resolve();
function exclusive<T>(f: () => Promise<T>): Promise<T> {
  const r = queue.then(f);
  queue = r.catch(() => undefined);
  return r;
}

const losses: number[] = [];
const accuracy = { steps: [] as number[], values: [] as number[] };
let params: Mlp, stopRequested = false, digits: Digits, xTest: Tensor;
const opt = adam({ lr: LR });
const lossAndGrad = valueAndGrad(mlpLoss);
let stream: Iterator<Batch<Int32Array>>;

function* epochs(ds: Dataset<Int32Array>): Generator<Batch<Int32Array>> {
  for (let epoch = 0; ; epoch++) yield* batches(ds, { batchSize: BATCH, shuffle: true, seed: 0, epoch, dropLast: true });
}

async function step(): Promise<void> {
  const b = stream.next().value!;
  const x = tensor(b.inputs.data, b.inputs.shape), y = tensor(b.labels.data, b.labels.shape, 'i32');
  const [loss, grads] = lossAndGrad(params, x, y);
  await opt.step(params, grads);
  x.dispose(); y.dispose();
  losses.push(await loss.item());
  loss.dispose();
}

async function evaluate(): Promise<void> {
  const logits = mlp(params, xTest);
  const scores = await logits.data();
  logits.dispose();
  let right = 0;
  for (let i = 0; i < digits.testLabels.length; i++) {
    let best = 0;
    for (let c = 1; c < 10; c++) if (scores[i * 10 + c]! > scores[i * 10 + best]!) best = c;
    if (best === digits.testLabels[i]) right++;
  }
  accuracy.steps.push(losses.length);
  accuracy.values.push((100 * right) / digits.testLabels.length);
}

let training: Promise<number[]> = Promise.resolve([]);
function train(steps: number): Promise<number[]> {
  training = training.then(async () => {
    stopRequested = false;
    const started = performance.now(), first = losses.length;
    $<HTMLButtonElement>('stop').disabled = false;
    for (let i = 0; i < steps && !stopRequested; i++) {
      await exclusive(step);
      if (losses.length % EVAL_EVERY === 0) await exclusive(evaluate);
      const done = losses.length - first, ms = (performance.now() - started) / done;
      status(`${backend} · step ${losses.length} · loss ${losses.at(-1)!.toFixed(3)} · ${ms.toFixed(0)} ms/step`);
      drawChart();
    }
    if (accuracy.steps.at(-1) !== losses.length && losses.length > 0) await exclusive(evaluate);
    drawChart();
    $<HTMLButtonElement>('stop').disabled = true;
    const acc = accuracy.values.at(-1);
    status(`${backend} · ${losses.length} steps · loss ${losses.at(-1)?.toFixed(3) ?? '-'}` +
      (acc === undefined ? '' : ` · ${acc.toFixed(1)}% right on ${digits.testLabels.length} held-out digits`) + ' · draw a digit');
    if (hook.prediction) await classify();
    return losses;
  });
  return training;
}

// ---------------------------------------------------------------------------------------------------------------
// The chart: loss per step (blue, left axis) and test accuracy (orange, right axis, 0-100%).

function drawChart(): void {
  const canvas = $<HTMLCanvasElement>('chart'), ctx = canvas.getContext('2d')!;
  const w = canvas.width, h = canvas.height, left = 40, right = 40, top = 14, bottom = 24;
  const pw = w - left - right, ph = h - top - bottom;
  ctx.clearRect(0, 0, w, h);
  ctx.font = '11px system-ui, sans-serif';
  const n = Math.max(losses.length, 10);
  const maxLoss = Math.max(2.5, ...losses.slice(0, 5));
  const xOf = (s: number) => left + (pw * s) / n;
  ctx.strokeStyle = '#ddd'; ctx.fillStyle = '#555'; ctx.lineWidth = 1;
  for (let k = 0; k <= 4; k++) {
    const y = top + (ph * k) / 4;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(w - right, y); ctx.stroke();
    ctx.textAlign = 'right'; ctx.fillText((maxLoss * (1 - k / 4)).toFixed(1), left - 4, y + 4);
    ctx.textAlign = 'left'; ctx.fillText(`${100 - 25 * k}%`, w - right + 4, y + 4);
  }
  ctx.textAlign = 'center';
  ctx.fillText(`step ${losses.length}`, left + pw / 2, h - 6);
  // A running mean makes the trend readable through the batch-to-batch noise.
  const plot = (xs: number[], ys: number[], color: string, scale: (v: number) => number, width: number) => {
    ctx.strokeStyle = color; ctx.lineWidth = width; ctx.beginPath();
    ys.forEach((v, i) => (i === 0 ? ctx.moveTo(xOf(xs[i]!), scale(v)) : ctx.lineTo(xOf(xs[i]!), scale(v))));
    ctx.stroke();
  };
  const lossY = (v: number) => top + ph * (1 - Math.min(v, maxLoss) / maxLoss);
  const steps = losses.map((_, i) => i + 1);
  plot(steps, losses, '#9ec5e8', lossY, 1);
  const smooth = losses.map((_, i) => { const a = losses.slice(Math.max(0, i - 9), i + 1); return a.reduce((s, v) => s + v, 0) / a.length; });
  plot(steps, smooth, '#1f6fb4', lossY, 2);
  const accY = (v: number) => top + ph * (1 - v / 100);
  plot(accuracy.steps, accuracy.values, '#e07b1a', accY, 2);
  ctx.fillStyle = '#e07b1a';
  accuracy.steps.forEach((s, i) => { ctx.beginPath(); ctx.arc(xOf(s), accY(accuracy.values[i]!), 3, 0, 2 * Math.PI); ctx.fill(); });
  if (accuracy.values.length > 0) { ctx.textAlign = 'right'; ctx.fillText(`${accuracy.values.at(-1)!.toFixed(1)}%`, xOf(accuracy.steps.at(-1)!) - 6, accY(accuracy.values.at(-1)!) + 16); }
  ctx.fillStyle = '#1f6fb4'; ctx.textAlign = 'left'; ctx.fillText('loss', left + 6, top + 12);
  ctx.fillStyle = '#e07b1a'; ctx.textAlign = 'right'; ctx.fillText('test accuracy', w - right - 6, top + 12);
}

// ---------------------------------------------------------------------------------------------------------------
// Drawing and classifying. The drawing is turned into an MNIST-like input: the ink's bounding box scaled to fit
// 20×20 pixels, then placed in a 28×28 image so that its centre of mass is at the centre (how MNIST was made).

function setupDrawing(): void {
  const canvas = $<HTMLCanvasElement>('pad'), ctx = canvas.getContext('2d', { willReadFrequently: true })!; // mnistInput() reads it back
  const clear = () => { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height); };
  clear();
  let last: { x: number; y: number } | null = null;
  const at = (e: PointerEvent) => {
    const r = canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * canvas.width) / r.width, y: ((e.clientY - r.top) * canvas.height) / r.height };
  };
  let pending = false;
  const classifySoon = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; void classify(); });
  };
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    ctx.fillStyle = '#fff'; ctx.beginPath(); ctx.arc(last.x, last.y, 11, 0, 2 * Math.PI); ctx.fill();
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    ctx.strokeStyle = '#fff'; ctx.lineWidth = 22; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
    ctx.beginPath(); ctx.moveTo(last.x, last.y); ctx.lineTo(p.x, p.y); ctx.stroke();
    last = p;
    classifySoon();
  });
  const end = () => { if (last) { last = null; classifySoon(); } };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  $('clear').addEventListener('click', () => { clear(); void classify(); });
}

/** The drawing as 784 values in [0, 1], MNIST-style, or null when it is blank. */
function mnistInput(): Float32Array | null {
  const pad = $<HTMLCanvasElement>('pad');
  const { width: w, height: h } = pad;
  const px = pad.getContext('2d')!.getImageData(0, 0, w, h).data;
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    if (px[(y * w + x) * 4]! > 20) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1, s = 20 / Math.max(bw, bh);
  // Each 28×28 cell is the mean of the drawing's pixels that fall in it (a box filter: smooth, no ringing).
  const ox = (28 - bw * s) / 2, oy = (28 - bh * s) / 2;
  const sum = new Float32Array(784), count = new Float32Array(784), box = new Float32Array(784);
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) {
    const cx = Math.min(27, Math.floor(ox + (x - x0 + 0.5) * s)), cy = Math.min(27, Math.floor(oy + (y - y0 + 0.5) * s));
    sum[cy * 28 + cx]! += px[(y * w + x) * 4]! / 255;
    count[cy * 28 + cx]!++;
  }
  for (let i = 0; i < 784; i++) box[i] = count[i]! > 0 ? sum[i]! / count[i]! : 0;
  let mass = 0, mx = 0, my = 0;
  for (let i = 0; i < 784; i++) { const v = box[i]!; mass += v; mx += v * (i % 28); my += v * Math.floor(i / 28); }
  const dx = Math.round(13.5 - mx / mass), dy = Math.round(13.5 - my / mass);
  const out = new Float32Array(784);
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
    const sx = x - dx, sy = y - dy;
    if (sx >= 0 && sx < 28 && sy >= 0 && sy < 28) out[y * 28 + x] = box[sy * 28 + sx]!;
  }
  return out;
}

function showInput(pixels: Float32Array | null): void {
  const view = $<HTMLCanvasElement>('seen'), ctx = view.getContext('2d')!;
  const img = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = Math.round(255 * (pixels?.[i] ?? 0));
    img.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
}

async function classify(): Promise<SampleHook['prediction']> {
  await hook.ready;
  const pixels = mnistInput();
  showInput(pixels);
  if (!pixels) { hook.prediction = null; showPrediction(); return null; }
  const probabilities = await exclusive(async () => {
    const x = tensor(pixels, [1, 1, 28, 28]);
    const logits = mlp(params, x), p = softmax(logits);
    const data = Array.from(await p.data());
    x.dispose(); logits.dispose(); p.dispose();
    return data;
  });
  const label = probabilities.indexOf(Math.max(...probabilities));
  hook.prediction = { label, probabilities };
  showPrediction();
  return hook.prediction;
}

function showPrediction(): void {
  const p = hook.prediction;
  $('label').textContent = p ? String(p.label) : '–';
  $('bars').replaceChildren(...Array.from({ length: 10 }, (_, d) => {
    const row = document.createElement('div');
    row.className = p?.label === d ? 'bar best' : 'bar';
    const v = p?.probabilities[d] ?? 0;
    row.innerHTML = `<span>${d}</span><span class="track"><span class="fill" style="width:${(100 * v).toFixed(1)}%"></span></span><span>${(100 * v).toFixed(1)}%</span>`;
    return row;
  }));
}

// ---------------------------------------------------------------------------------------------------------------

let backend = '';
const hook: SampleHook = {
  ready: (async () => {
    status('starting WebGPU…');
    backend = await startBackend();
    status(`${backend} · loading digits…`);
    digits = await readDigits();
    xTest = tensor(digits.testImages, [digits.testLabels.length, 1, 28, 28]);
    params = initMlp(0, HIDDEN);
    stream = epochs(digits.train);
    await exclusive(evaluate); // the accuracy before training: about 10%
    drawChart();
    status(`${backend} · ${digits.train.length} training digits, ${digits.testLabels.length} held out · MLP 784→${HIDDEN}→10, Adam, batch ${BATCH}`);
    return { backend, train: digits.train.length, test: digits.testLabels.length };
  })(),
  train: (steps) => hook.ready.then(() => train(steps)),
  stop: () => { stopRequested = true; },
  losses, accuracy, prediction: null, classify,
};
window.pullbackSample = hook;
hook.ready.catch((e: Error) => { status(`could not start: ${e.message}`, true); console.error(e); });

setupDrawing();
showInput(null);
showPrediction();
drawChart();
$('train').addEventListener('click', () => void hook.train(100));
$('stop').addEventListener('click', () => hook.stop());
const autoSteps = Number(new URLSearchParams(location.search).get('steps') ?? 300);
if (autoSteps > 0) void hook.train(autoSteps);
