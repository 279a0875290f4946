// SPDX-License-Identifier: MIT
// npm run bench:scalar — time per evaluation of the primal, the hand-written gradient and pullback's
// generated gradient, in one process. Ratios: gradient/primal (target ≤ 3) and gradient/hand-written (≤ 1.5).
import { cpus } from 'node:os';
import { grad } from '../sdk/index.js';
import { load } from '../test/support/compile.js';
import { median, report, row, type BenchRow } from './report.js';

const m = await load('bench/programs/scalar.ts');

/** Median µs per call over `reps` batches sized to take ~20 ms each. */
function time(f: () => void, reps = 15): number {
  let n = 1;
  for (;;) { const t0 = performance.now(); for (let i = 0; i < n; i++) f(); if (performance.now() - t0 > 20) break; n *= 2; }
  const xs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) f();
    xs.push(((performance.now() - t0) * 1000) / n);
  }
  return median(xs);
}

interface Case { name: string; primal: () => unknown; hand: () => unknown; pullback: () => unknown; check: () => number }
const n = 10_000;
const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i) * 0.9);
const gx = new Float64Array(n);
const p = Float64Array.from([1.1, 0.4, 0.1, 0.4]);
const g4 = new Float64Array(4), xs = new Float64Array(1000), ys = new Float64Array(1000);
const xs50 = new Float64Array(50);
const gRosen = grad(m.rosenbrock), gLV = grad(m.lotkaVolterra), gNewton = grad(m.newtonSqrt);
const cases: Case[] = [
  { name: 'Rosenbrock n=10,000', primal: () => m.rosenbrock(x), hand: () => m.rosenbrockGrad(x, gx), pullback: () => gRosen(x),
    check: () => { m.rosenbrockGrad(x, gx); const g = gRosen(x) as Float64Array; return Math.max(...g.map((v, i) => Math.abs(v - gx[i]!))); } },
  { name: 'RK4 Lotka-Volterra 1,000 steps, d/d(4 params)', primal: () => m.lotkaVolterra(p, 1, 1, 0.01, 1000), hand: () => m.lotkaVolterraGrad(p, 1, 1, 0.01, 1000, g4, xs, ys),
    pullback: () => gLV(p, 1, 1, 0.01, 1000),
    check: () => { m.lotkaVolterraGrad(p, 1, 1, 0.01, 1000, g4, xs, ys); const g = gLV(p, 1, 1, 0.01, 1000) as Float64Array; return Math.max(...g.map((v, i) => Math.abs(v - g4[i]!) / Math.max(1, Math.abs(g4[i]!)))); } },
  { name: 'Newton sqrt, 50 iterations, d/da', primal: () => m.newtonSqrt(2.5), hand: () => m.newtonSqrtGrad(2.5, xs50), pullback: () => gNewton(2.5),
    check: () => Math.abs((gNewton(2.5) as unknown as number) - m.newtonSqrtGrad(2.5, xs50)) },
];

const rows: BenchRow[] = [];
const adapter = `CPU (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}, JS adjoint`;
for (const c of cases) {
  const err = c.check();
  if (!(err < 1e-9)) throw new Error(`${c.name}: pullback and the hand-written gradient disagree by ${err}`);
  // Interleave the three so that drifts in machine load hit all of them.
  const tp: number[] = [], th: number[] = [], tg: number[] = [];
  for (let round = 0; round < 3; round++) { tp.push(time(c.primal)); th.push(time(c.hand)); tg.push(time(c.pullback)); }
  const primal = median(tp), hand = median(th), pb = median(tg);
  rows.push(row({ case: `${c.name}: gradient vs primal`, unit: 'µs', pullback: pb, peer: primal, peerName: 'primal (JS)', better: 'lower', adapter }));
  rows.push(row({ case: `${c.name}: gradient vs hand-written`, unit: 'µs', pullback: pb, peer: hand, peerName: 'hand-written gradient (JS)', better: 'lower', adapter }));
}
report('scalar', rows);
console.log('\nratio = peer time / pullback time; targets: gradient ≤ 3x primal (ratio ≥ 0.33), ≤ 1.5x hand-written (ratio ≥ 0.67)');
process.exit(0);
