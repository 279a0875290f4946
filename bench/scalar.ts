// SPDX-License-Identifier: MIT
// npm run bench:scalar (node --import pullback/register bench/scalar.ts) — time per evaluation of the primal, the
// hand-written gradient and pullback's generated gradient, on the JS adjoint and on the Wasm adjoint (the same
// programs built with `pullback compile --wasm`), beside TensorFlow.js (tf.grad, cpu backend) and jax-js
// (grad under jit, wasm device) computing the gradient of the same function, in one process.
// Ratios: gradient/primal (target ≤ 3 for JS, ≤ 2 for Wasm), gradient/hand-written (≤ 1.5 for JS, ≤ 1.2 for Wasm),
// Wasm against the peers (≥ 1,000x).
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { explain, grad, hvp, valueAndGrad } from 'pullback';
import type * as TF from '@tensorflow/tfjs';
import type * as JAX from '@jax-js/jax';
import * as m from './programs/scalar.js';
import { report, row, type BenchRow } from './report.js';

/**
 * µs per call: the fastest of `reps` batches of ~20 ms each, in wall-clock time, after a warm-up. Not this
 * process's CPU time: that counts V8's and Wasm's background threads too (concurrent GC, tier-up compiles of the
 * Wasm modules loaded here), which made a plain loop read 2-3x slower than it runs. The fastest batch is the one
 * least disturbed by other processes on a shared machine (they can only add time).
 */
function time(f: () => void, reps = 15): number {
  const now = () => performance.now();
  // Warm up for 100 ms first: a loop-heavy function runs on-stack-replaced code for a while before V8 compiles the
  // whole function (measured: Rosenbrock's primal 31 µs in the first 20 ms, 17 µs after).
  for (const t0 = now(); now() - t0 < 100;) f();
  let n = 1;
  for (;;) { const t0 = now(); for (let i = 0; i < n; i++) f(); if (now() - t0 > 20) break; n *= 2; }
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    for (let i = 0; i < n; i++) f();
    best = Math.min(best, ((now() - t0) * 1000) / n);
  }
  return best;
}

/** The benchmark programs again, built as a user builds them for Wasm: `pullback compile --wasm`. */
async function wasmPrograms(): Promise<typeof m> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const out = join(root, '.cache', 'bench', 'scalar-wasm'); // inside the package, so that `pullback` resolves
  const r = spawnSync(process.execPath, [join(root, 'bin', 'pullback.js'), 'compile', join(root, 'bench', 'programs', 'scalar.ts'), '--wasm', '--outDir', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pullback compile --wasm failed:\n${r.stderr}${r.stdout}`);
  const w = (await import(pathToFileURL(join(out, 'scalar.js')).href)) as typeof m;
  for (const f of [w.rosenbrock, w.lotkaVolterra, w.newtonSqrt, w.heat]) {
    const e = explain(f);
    if (e.backend !== 'wasm') throw new Error(`${f.name} did not lower to Wasm: ${String(e)}`);
  }
  return w;
}

// ---- the peers: the same functions in TensorFlow.js and jax-js, float32 (TF.js's cpu backend has no float64) ----

// They are loaded after pullback's own timings: with TF.js and jax-js in the process, plain JS loops here measured
// up to 2x slower (the primal of Rosenbrock n=10,000: 17 -> 30-57 µs), which would flatter every ratio below.
let tf!: typeof TF, jax!: typeof JAX, np!: typeof JAX.numpy;
async function loadPeers(): Promise<void> {
  tf = await import('@tensorflow/tfjs');
  jax = await import('@jax-js/jax');
  await tf.setBackend('cpu');
  await tf.ready();
  const jaxDevices = await jax.init('wasm');
  if (!jaxDevices.includes('wasm')) throw new Error(`jax-js has no wasm device here (init returned [${jaxDevices.join(', ')}])`);
  jax.defaultDevice('wasm');
  np = jax.numpy;
}
type JA = JAX.Array;

/** A peer's gradient of one case: runs it once and waits for the values. */
interface Peer { tf: () => void; jax: () => void }

function tfPeer(f: (...xs: TF.Tensor[]) => TF.Tensor, args: TF.Tensor[]): () => void {
  const g = tf.grad((x: TF.Tensor) => f(x, ...args.slice(1)));
  return () => tf.tidy(() => g(args[0]!)).dataSync();
}

/** jax-js arrays are consumed by each use: every call takes `.ref`s of the inputs. */
function jaxPeer(f: (...xs: JA[]) => JA, args: JA[]): () => void {
  const g = jax.jit(jax.grad(f));
  return () => { g(...args.map((a) => a.ref)).dataSync(); };
}

function rosenbrockPeers(x: Float64Array): Peer {
  const n = x.length;
  const tfF = (t: TF.Tensor) => {
    const head = t.slice(0, n - 1);
    const a = t.slice(1).sub(head.square()), b = tf.scalar(1).sub(head);
    return a.square().mul(100).add(b.square()).sum();
  };
  const jaxF = (t: JA) => {
    const head = t.ref.slice([0, n - 1]);
    const a = t.slice([1, n]).sub(np.square(head.ref)), b = np.subtract(1, head);
    return np.sum(np.square(a).mul(100).add(np.square(b)));
  };
  return { tf: tfPeer(tfF, [tf.tensor1d(Float32Array.from(x))]), jax: jaxPeer(jaxF, [np.array(Float32Array.from(x))]) };
}

function lotkaVolterraPeers(p: Float64Array, x0: number, y0: number, h: number, steps: number): Peer {
  // Scalar tensors, one op at a time, as the JS program is written.
  const tfF = (q: TF.Tensor) => {
    const [alpha, beta, delta, gamma] = tf.unstack(q);
    let x: TF.Tensor = tf.scalar(x0), y: TF.Tensor = tf.scalar(y0);
    const f = (u: TF.Tensor, v: TF.Tensor) => [alpha!.mul(u).sub(beta!.mul(u).mul(v)), delta!.mul(u).mul(v).sub(gamma!.mul(v))] as const;
    for (let s = 0; s < steps; s++) {
      const [k1x, k1y] = f(x, y);
      const [k2x, k2y] = f(x.add(k1x.mul(0.5 * h)), y.add(k1y.mul(0.5 * h)));
      const [k3x, k3y] = f(x.add(k2x.mul(0.5 * h)), y.add(k2y.mul(0.5 * h)));
      const [k4x, k4y] = f(x.add(k3x.mul(h)), y.add(k3y.mul(h)));
      x = x.add(k1x.add(k2x.mul(2)).add(k3x.mul(2)).add(k4x).mul(h / 6));
      y = y.add(k1y.add(k2y.mul(2)).add(k3y.mul(2)).add(k4y).mul(h / 6));
    }
    return x.sub(1).square().add(y.sub(1).square());
  };
  const jaxF = (q: JA) => {
    const [alpha, beta, delta, gamma] = [0, 1, 2, 3].map((i) => q.ref.slice(i));
    q.dispose();
    let x: JA = np.array(x0), y: JA = np.array(y0);
    const g = (u: JA, v: JA): [JA, JA] => {
      const uv = u.ref.mul(v.ref);
      return [alpha!.ref.mul(u).sub(beta!.ref.mul(uv.ref)), delta!.ref.mul(uv).sub(gamma!.ref.mul(v))];
    };
    for (let s = 0; s < steps; s++) {
      const [k1x, k1y] = g(x.ref, y.ref);
      const [k2x, k2y] = g(x.ref.add(k1x.ref.mul(0.5 * h)), y.ref.add(k1y.ref.mul(0.5 * h)));
      const [k3x, k3y] = g(x.ref.add(k2x.ref.mul(0.5 * h)), y.ref.add(k2y.ref.mul(0.5 * h)));
      const [k4x, k4y] = g(x.ref.add(k3x.ref.mul(h)), y.ref.add(k3y.ref.mul(h)));
      x = x.add(k1x.add(k2x.mul(2)).add(k3x.mul(2)).add(k4x).mul(h / 6));
      y = y.add(k1y.add(k2y.mul(2)).add(k3y.mul(2)).add(k4y).mul(h / 6));
    }
    for (const c of [alpha, beta, delta, gamma]) c!.dispose();
    return np.square(x.sub(1)).add(np.square(y.sub(1)));
  };
  return { tf: tfPeer(tfF, [tf.tensor1d(Float32Array.from(p))]), jax: jaxPeer(jaxF, [np.array(Float32Array.from(p))]) };
}

function newtonSqrtPeers(a: number): Peer {
  const tfF = (t: TF.Tensor) => { let x = t; for (let i = 0; i < 50; i++) x = x.add(t.div(x)).mul(0.5); return x; };
  const jaxF = (t: JA) => { let x = t.ref; for (let i = 0; i < 50; i++) x = x.ref.add(t.ref.div(x)).mul(0.5); t.dispose(); return x; };
  return { tf: tfPeer(tfF, [tf.scalar(a)]), jax: jaxPeer(jaxF, [np.array(a)]) };
}

function heatPeers(u0: Float64Array, n: number, steps: number, k: number): Peer {
  // The 2-D field, neighbours by shifted slices with the edge repeated (insulated edges, as in the JS program).
  const tfF = (t: TF.Tensor) => {
    let u = t.reshape([n, n]);
    for (let s = 0; s < steps; s++) {
      const up = tf.concat([u.slice([0, 0], [1, n]), u.slice([0, 0], [n - 1, n])], 0);
      const down = tf.concat([u.slice([1, 0], [n - 1, n]), u.slice([n - 1, 0], [1, n])], 0);
      const left = tf.concat([u.slice([0, 0], [n, 1]), u.slice([0, 0], [n, n - 1])], 1);
      const right = tf.concat([u.slice([0, 1], [n, n - 1]), u.slice([0, n - 1], [n, 1])], 1);
      u = u.add(up.add(down).add(left).add(right).sub(u.mul(4)).mul(k));
    }
    return u.square().sum();
  };
  const jaxF = (t: JA) => {
    let u = t.reshape([n, n]);
    for (let s = 0; s < steps; s++) {
      const up = np.concatenate([u.ref.slice([0, 1]), u.ref.slice([0, n - 1])], 0);
      const down = np.concatenate([u.ref.slice([1, n]), u.ref.slice([n - 1, n])], 0);
      const left = np.concatenate([u.ref.slice([], [0, 1]), u.ref.slice([], [0, n - 1])], 1);
      const right = np.concatenate([u.ref.slice([], [1, n]), u.ref.slice([], [n - 1, n])], 1);
      u = u.ref.add(up.add(down).add(left).add(right).sub(u.mul(4)).mul(k));
    }
    return np.sum(np.square(u));
  };
  return { tf: tfPeer(tfF, [tf.tensor1d(Float32Array.from(u0))]), jax: jaxPeer(jaxF, [np.array(Float32Array.from(u0))]) };
}

/** A peer's time, or why there is none (jax-js's grad of a 1,000-step loop overflows the stack, for one). */
function peerTime(f: () => void): { us: number | null; failed: string } {
  try {
    return { us: time(f, 3), failed: '' };
  } catch (e) {
    return { us: null, failed: `: failed (${String((e as Error).message).slice(0, 60)})` };
  }
}

// ---- the cases ----

interface Case {
  name: string;
  primal: () => unknown; hand: () => unknown; pullback: () => unknown; wasm: () => unknown;
  /** Worst difference of each gradient from the hand-written one (relative where the values are large). */
  checkJs: () => number;
  checkWasm: () => number;
  peers: () => Peer;
}
const w = await wasmPrograms();
/**
 * Every function timed (primal, hand-written gradient, pullback's) is called through Reflect.apply with its
 * arguments, as grad() calls the sweeps: were a function called directly from the timing loop, V8 would inline it
 * there and fold the constant input array into its loop (measured: the primal of Rosenbrock 35% faster), which
 * no program computing on real data gets.
 */
const call = (f: Function, ...args: unknown[]) => () => Reflect.apply(f, undefined, args);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let d = 0; for (let i = 0; i < b.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!))); return d; };

const n = 10_000;
const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i) * 0.9);
const x100 = x.slice(0, 100);
const p = Float64Array.from([1.1, 0.4, 0.1, 0.4]);
const N = 64;
const u0 = Float64Array.from({ length: N * N }, (_, q) => Math.exp(-(((q / N | 0) - 20) ** 2 + (q % N - 30) ** 2) / 50));
const gRosen = grad(m.rosenbrock), gLV = grad(m.lotkaVolterra), gNewton = grad(m.newtonSqrt), gHeat = grad(m.heat);
const wRosen = grad(w.rosenbrock), wLV = grad(w.lotkaVolterra), wNewton = grad(w.newtonSqrt), wHeat = grad(w.heat);
const cases: Case[] = [
  { name: 'Rosenbrock n=10,000', primal: call(m.rosenbrock, x), hand: call(m.rosenbrockGrad, x), pullback: call(gRosen, x), wasm: call(wRosen, x),
    checkJs: () => maxDiff(gRosen(x), m.rosenbrockGrad(x)), checkWasm: () => maxDiff(wRosen(x), m.rosenbrockGrad(x)), peers: () => rosenbrockPeers(x) },
  { name: 'RK4 Lotka-Volterra 1,000 steps, d/d(4 params)', primal: call(m.lotkaVolterra, p, 1, 1, 0.01, 1000), hand: call(m.lotkaVolterraGrad, p, 1, 1, 0.01, 1000),
    pullback: call(gLV, p, 1, 1, 0.01, 1000), wasm: call(wLV, p, 1, 1, 0.01, 1000),
    checkJs: () => maxDiff(gLV(p, 1, 1, 0.01, 1000), m.lotkaVolterraGrad(p, 1, 1, 0.01, 1000)), checkWasm: () => maxDiff(wLV(p, 1, 1, 0.01, 1000), m.lotkaVolterraGrad(p, 1, 1, 0.01, 1000)),
    peers: () => lotkaVolterraPeers(p, 1, 1, 0.01, 1000) },
  { name: 'Newton sqrt, 50 iterations, d/da', primal: call(m.newtonSqrt, 2.5), hand: call(m.newtonSqrtGrad, 2.5), pullback: call(gNewton, 2.5), wasm: call(wNewton, 2.5),
    checkJs: () => Math.abs(gNewton(2.5) - m.newtonSqrtGrad(2.5)), checkWasm: () => Math.abs(wNewton(2.5) - m.newtonSqrtGrad(2.5)), peers: () => newtonSqrtPeers(2.5) },
  { name: 'Rosenbrock n=100', primal: call(m.rosenbrock, x100), hand: call(m.rosenbrockGrad, x100), pullback: call(gRosen, x100), wasm: call(wRosen, x100),
    checkJs: () => maxDiff(gRosen(x100), m.rosenbrockGrad(x100)), checkWasm: () => maxDiff(wRosen(x100), m.rosenbrockGrad(x100)), peers: () => rosenbrockPeers(x100) },
  { name: 'Heat diffusion 64x64, 100 steps, d/d(initial field)', primal: call(m.heat, u0, N, 100, 0.2), hand: call(m.heatGrad, u0, N, 100, 0.2),
    pullback: call(gHeat, u0, N, 100, 0.2), wasm: call(wHeat, u0, N, 100, 0.2),
    checkJs: () => maxDiff(gHeat(u0, N, 100, 0.2), m.heatGrad(u0, N, 100, 0.2)), checkWasm: () => maxDiff(wHeat(u0, N, 100, 0.2), m.heatGrad(u0, N, 100, 0.2)),
    peers: () => heatPeers(u0, N, 100, 0.2) },
];

const rows: BenchRow[] = [];
const cpu = `CPU (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`;
const adapter = `${cpu}, JS adjoint`, wasmAdapter = `${cpu}, Wasm adjoint`;
// Phase 1, the JS rows, before any Wasm sweep runs: growing a WebAssembly.Memory detaches its old ArrayBuffer,
// and from then on V8 checks every typed-array access in the process for detachment (measured: Rosenbrock's
// primal 17 -> 32 µs after the first Wasm gradient). Phase 2, the Wasm rows; phase 3, the peers.
const timed: { c: Case; primal: number; hand: number; pb: number; wa: number }[] = [];
for (const c of cases) {
  const err = c.checkJs();
  if (!(err < 1e-9)) throw new Error(`${c.name}: pullback's JS adjoint and the hand-written gradient disagree by ${err}`);
  // Interleave them so that drifts in machine load hit all of them.
  const tp: number[] = [], th: number[] = [], tg: number[] = [];
  for (let round = 0; round < 3; round++) { tp.push(time(c.primal)); th.push(time(c.hand)); tg.push(time(c.pullback)); }
  timed.push({ c, primal: Math.min(...tp), hand: Math.min(...th), pb: Math.min(...tg), wa: NaN });
}
// Hessian-vector products (reverse over forward) against one gradient of the same function.
const hRosen = hvp(m.rosenbrock), hLV = hvp(m.lotkaVolterra);
const v = Float64Array.from({ length: n }, (_, i) => Math.cos(i));
const v4 = Float64Array.from([0.3, -0.2, 0.1, 0.5]);
const hvpRows: BenchRow[] = [];
for (const [name, h, g, f] of [
  ['Rosenbrock n=10,000', call(hRosen, x, v), call(gRosen, x), call(m.rosenbrock, x)],
  ['RK4 Lotka-Volterra 1,000 steps', call(hLV, p, 1, 1, 0.01, 1000, v4), call(gLV, p, 1, 1, 0.01, 1000), call(m.lotkaVolterra, p, 1, 1, 0.01, 1000)],
] as const) {
  const th: number[] = [], tg: number[] = [], tf: number[] = [];
  for (let round = 0; round < 3; round++) { th.push(time(h)); tg.push(time(g)); tf.push(time(f)); }
  hvpRows.push(row({ case: `${name}: hvp vs one gradient (target ≤ 4x)`, unit: 'µs', pullback: Math.min(...th), peer: Math.min(...tg), peerName: 'gradient (pullback)', better: 'lower', adapter }));
  hvpRows.push(row({ case: `${name}: hvp vs one primal`, unit: 'µs', pullback: Math.min(...th), peer: Math.min(...tf), peerName: 'primal (JS)', better: 'lower', adapter }));
}
// Into a given array (grad(f, 0, { out })) against the hand-written gradient into one: the call without the
// allocation of its result, which at n = 100 is as much as the rest of it. JS now, Wasm in phase 2.
const into = [x100, x].map((xs) => ({ xs, out: new Float64Array(xs.length), hand: new Float64Array(xs.length), js: NaN, wa: NaN, th: NaN }));
for (const r of into) {
  const gOut = grad(m.rosenbrock, 0, { out: r.out });
  const err = maxDiff(gOut(r.xs), m.rosenbrockGradInto(r.xs, r.hand));
  if (!(err < 1e-9)) throw new Error(`Rosenbrock into a given array: pullback and the hand-written gradient disagree by ${err}`);
  const tj: number[] = [], th: number[] = [];
  for (let round = 0; round < 3; round++) { tj.push(time(call(gOut, r.xs))); th.push(time(call(m.rosenbrockGradInto, r.xs, r.hand))); }
  r.js = Math.min(...tj); r.th = Math.min(...th);
}
// valueAndGrad, the call of a loop that logs its loss, against a hand-written value and gradient from one loop.
const vag = [x100, x].map((xs) => ({ xs, js: NaN, wa: NaN, th: NaN }));
const vagCheck = (f: typeof m.rosenbrockValueAndGrad, xs: Float64Array, what: string) => {
  const [v, g] = f(xs), [hv, hg] = m.rosenbrockValueAndGrad(xs);
  const err = Math.max(maxDiff(g, hg), Math.abs(v - hv) / Math.max(1, Math.abs(hv)));
  if (!(err < 1e-9)) throw new Error(`Rosenbrock valueAndGrad: ${what} and the hand-written value and gradient disagree by ${err}`);
};
for (const r of vag) {
  const vg = valueAndGrad(m.rosenbrock) as typeof m.rosenbrockValueAndGrad;
  vagCheck(vg, r.xs, "pullback's JS adjoint");
  const tj: number[] = [], th: number[] = [];
  for (let round = 0; round < 3; round++) { tj.push(time(call(vg, r.xs))); th.push(time(call(m.rosenbrockValueAndGrad, r.xs))); }
  r.js = Math.min(...tj); r.th = Math.min(...th);
}
for (const r of vag) {
  const vg = valueAndGrad(w.rosenbrock) as typeof m.rosenbrockValueAndGrad;
  vagCheck(vg, r.xs, "pullback's Wasm adjoint");
  const tw: number[] = [];
  for (let round = 0; round < 3; round++) tw.push(time(call(vg, r.xs)));
  r.wa = Math.min(...tw);
}
for (const r of into) {
  const wOut = grad(w.rosenbrock, 0, { out: r.out });
  const err = maxDiff(wOut(r.xs), m.rosenbrockGradInto(r.xs, r.hand));
  if (!(err < 1e-9)) throw new Error(`Rosenbrock into a given array: pullback's Wasm adjoint and the hand-written gradient disagree by ${err}`);
  const tw: number[] = [];
  for (let round = 0; round < 3; round++) tw.push(time(call(wOut, r.xs)));
  r.wa = Math.min(...tw);
}
for (const t of timed) {
  const err = t.c.checkWasm();
  if (!(err < 1e-9)) throw new Error(`${t.c.name}: pullback's Wasm adjoint and the hand-written gradient disagree by ${err}`);
  const tw: number[] = [];
  for (let round = 0; round < 3; round++) tw.push(time(t.c.wasm));
  t.wa = Math.min(...tw);
}

await loadPeers();
for (const { c, primal, hand, pb, wa } of timed) {
  // The peers take milliseconds to seconds per gradient: fewer repetitions.
  const peers = c.peers();
  const tfT = peerTime(peers.tf), jaxT = peerTime(peers.jax);
  rows.push(row({ case: `${c.name}: gradient vs primal`, unit: 'µs', pullback: pb, peer: primal, peerName: 'primal (JS)', better: 'lower', adapter }));
  rows.push(row({ case: `${c.name}: gradient vs hand-written`, unit: 'µs', pullback: pb, peer: hand, peerName: 'hand-written gradient (JS)', better: 'lower', adapter }));
  rows.push(row({ case: `${c.name}: Wasm gradient vs primal`, unit: 'µs', pullback: wa, peer: primal, peerName: 'primal (JS)', better: 'lower', adapter: wasmAdapter }));
  rows.push(row({ case: `${c.name}: Wasm gradient vs hand-written`, unit: 'µs', pullback: wa, peer: hand, peerName: 'hand-written gradient (JS)', better: 'lower', adapter: wasmAdapter }));
  rows.push(row({ case: `${c.name}: Wasm gradient vs JS adjoint`, unit: 'µs', pullback: wa, peer: pb, peerName: 'gradient (pullback, JS adjoint)', better: 'lower', adapter: wasmAdapter }));
  rows.push(row({ case: `${c.name}: Wasm gradient vs TensorFlow.js`, unit: 'µs', pullback: wa, peer: tfT.us, peerName: `tf.grad (TF.js ${tf.version.tfjs}, cpu, float32)${tfT.failed}`, better: 'lower', adapter: wasmAdapter }));
  rows.push(row({ case: `${c.name}: Wasm gradient vs jax-js`, unit: 'µs', pullback: wa, peer: jaxT.us, peerName: `jit(grad) (jax-js, wasm, float32)${jaxT.failed}`, better: 'lower', adapter: wasmAdapter }));
}
for (const r of into) {
  const name = `Rosenbrock n=${r.xs.length.toLocaleString('en-US')}`, peerName = 'hand-written gradient into a given array (JS)';
  rows.push(row({ case: `${name}: gradient into a given array (grad(f, 0, { out })) vs hand-written`, unit: 'µs', pullback: r.js, peer: r.th, peerName, better: 'lower', adapter }));
  rows.push(row({ case: `${name}: Wasm gradient into a given array vs hand-written`, unit: 'µs', pullback: r.wa, peer: r.th, peerName, better: 'lower', adapter: wasmAdapter }));
}
for (const r of vag) {
  const name = `Rosenbrock n=${r.xs.length.toLocaleString('en-US')}`, peerName = 'hand-written value and gradient (JS)';
  rows.push(row({ case: `${name}: valueAndGrad vs hand-written`, unit: 'µs', pullback: r.js, peer: r.th, peerName, better: 'lower', adapter }));
  rows.push(row({ case: `${name}: Wasm valueAndGrad vs hand-written`, unit: 'µs', pullback: r.wa, peer: r.th, peerName, better: 'lower', adapter: wasmAdapter }));
}
rows.push(...hvpRows);
report('scalar', rows);
console.log('\nThe hand-written gradients return new arrays, as grad() does (in Node 20 a fresh 80 KB Float64Array costs tens of µs to fill).');
console.log('ratio = peer time / pullback time; targets: JS gradient ≤ 3x primal (ratio ≥ 0.33), ≤ 1.5x hand-written (≥ 0.67);');
console.log('Wasm gradient ≤ 2x primal (≥ 0.5), ≤ 1.2x hand-written (≥ 0.83), ≥ 1,000x faster than TF.js and jax-js.');
process.exit(0);
