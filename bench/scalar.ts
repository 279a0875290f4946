// SPDX-License-Identifier: MIT
// npm run bench:scalar (node --import pullback/register bench/scalar.ts) — time per evaluation of the primal, the hand-written gradient and pullback's
// generated gradient, in one process. Ratios: gradient/primal (target ≤ 3) and gradient/hand-written (≤ 1.5).
import { cpus } from 'node:os';
import { grad, hvp } from 'pullback';
import * as m from './programs/scalar.js';
import { median, report, row, type BenchRow } from './report.js';

/**
 * Median µs of CPU time (user + system of this process) per call, over `reps` batches of ~20 ms each.
 * CPU time rather than wall time: on a shared 2-core machine other processes stretch wall time.
 */
function time(f: () => void, reps = 15): number {
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  let n = 1;
  for (;;) { const t0 = cpu(); for (let i = 0; i < n; i++) f(); if (cpu() - t0 > 20) break; n *= 2; }
  const xs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = cpu();
    for (let i = 0; i < n; i++) f();
    xs.push(((cpu() - t0) * 1000) / n);
  }
  return median(xs);
}

interface Case { name: string; primal: () => unknown; hand: () => unknown; pullback: () => unknown; check: () => number }
const n = 10_000;
const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i) * 0.9);
const p = Float64Array.from([1.1, 0.4, 0.1, 0.4]);
const gRosen = grad(m.rosenbrock), gLV = grad(m.lotkaVolterra), gNewton = grad(m.newtonSqrt);
const cases: Case[] = [
  { name: 'Rosenbrock n=10,000', primal: () => m.rosenbrock(x), hand: () => m.rosenbrockGrad(x), pullback: () => gRosen(x),
    check: () => { const gx = m.rosenbrockGrad(x); const g = gRosen(x) as Float64Array; return Math.max(...g.map((v, i) => Math.abs(v - gx[i]!))); } },
  { name: 'RK4 Lotka-Volterra 1,000 steps, d/d(4 params)', primal: () => m.lotkaVolterra(p, 1, 1, 0.01, 1000), hand: () => m.lotkaVolterraGrad(p, 1, 1, 0.01, 1000),
    pullback: () => gLV(p, 1, 1, 0.01, 1000),
    check: () => { const g4 = m.lotkaVolterraGrad(p, 1, 1, 0.01, 1000); const g = gLV(p, 1, 1, 0.01, 1000) as Float64Array; return Math.max(...g.map((v, i) => Math.abs(v - g4[i]!) / Math.max(1, Math.abs(g4[i]!)))); } },
  { name: 'Newton sqrt, 50 iterations, d/da', primal: () => m.newtonSqrt(2.5), hand: () => m.newtonSqrtGrad(2.5), pullback: () => gNewton(2.5),
    check: () => Math.abs((gNewton(2.5) as unknown as number) - m.newtonSqrtGrad(2.5)) },
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
// Hessian-vector products (reverse over forward) against one gradient of the same function.
const hRosen = hvp(m.rosenbrock), hLV = hvp(m.lotkaVolterra);
const v = Float64Array.from({ length: n }, (_, i) => Math.cos(i));
const v4 = Float64Array.from([0.3, -0.2, 0.1, 0.5]);
for (const [name, h, g, f] of [
  ['Rosenbrock n=10,000', () => hRosen(x, v), () => gRosen(x), () => m.rosenbrock(x)],
  ['RK4 Lotka-Volterra 1,000 steps', () => hLV(p, 1, 1, 0.01, 1000, v4), () => gLV(p, 1, 1, 0.01, 1000), () => m.lotkaVolterra(p, 1, 1, 0.01, 1000)],
] as const) {
  const th: number[] = [], tg: number[] = [], tf: number[] = [];
  for (let round = 0; round < 3; round++) { th.push(time(h)); tg.push(time(g)); tf.push(time(f)); }
  rows.push(row({ case: `${name}: hvp vs one gradient (target ≤ 4x)`, unit: 'µs', pullback: median(th), peer: median(tg), peerName: 'gradient (pullback)', better: 'lower', adapter }));
  rows.push(row({ case: `${name}: hvp vs one primal`, unit: 'µs', pullback: median(th), peer: median(tf), peerName: 'primal (JS)', better: 'lower', adapter }));
}
report('scalar', rows);
console.log('\nThe hand-written gradients return new arrays, as grad() does (in Node 20 a fresh 80 KB Float64Array costs tens of µs to fill).');
console.log('ratio = peer time / pullback time; targets: gradient ≤ 3x primal (ratio ≥ 0.33), ≤ 1.5x hand-written (ratio ≥ 0.67)');
process.exit(0);
