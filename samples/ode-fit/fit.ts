// Sample: recover the four parameters of a Lotka–Volterra model from noisy observations, with gradients
// from pullback's adjoint compiled to WebAssembly. Run: npm run demo:ode
// (or: PULLBACK_WASM=1 node --import pullback/register samples/ode-fit/fit.ts [--quick]; without PULLBACK_WASM the
// same gradients come from the JS adjoint).
import { explain, valueAndGrad } from 'pullback';
import { lossOf, simulate } from './model.js';
import { Canvas, type RGB } from '../common/png.js';
import { mkdirSync } from 'node:fs';

const quick = process.argv.includes('--quick');
const truth = [1.1, 0.4, 0.1, 0.4];
const x0 = 10, y0 = 5, h = 0.02, every = 10, samples = 60;

// Observations: the true trajectory plus 5% multiplicative noise from a seeded generator.
let seed = 42;
const gauss = () => {
  seed = (seed * 1664525 + 1013904223) >>> 0; const u = (seed + 1) / 4294967297;
  seed = (seed * 1664525 + 1013904223) >>> 0; const v = (seed + 1) / 4294967297;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
};
const clean = simulate(truth, x0, y0, h, every, samples);
const obs = clean.map((v) => v * (1 + 0.05 * gauss()));

// Adam on log-parameters (keeps them positive), starting far from the truth.
const logp = Float64Array.from([0.5, 0.2, 0.3, 0.8].map(Math.log));
const f = valueAndGrad(lossOf);
const how = explain(lossOf);
console.log(`gradient backend: ${how.backend}${how.reason ? ` (${how.reason})` : ''}`);
const m = new Float64Array(4), v = new Float64Array(4);
const steps = quick ? 150 : 1500;
const lr = 0.05, b1 = 0.9, b2 = 0.999;
const history: number[] = [];
const t0 = performance.now();
for (let t = 1; t <= steps; t++) {
  const [loss, g] = f(logp, x0, y0, h, every, obs) as [number, Float64Array];
  history.push(loss);
  for (let i = 0; i < 4; i++) {
    m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
    v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
    logp[i]! -= (lr * (m[i]! / (1 - b1 ** t))) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + 1e-8);
  }
  if (t % (steps / 10) === 0 || t === 1) console.log(`step ${String(t).padStart(5)}  loss ${loss.toFixed(5)}  params ${Array.from(logp, (q) => Math.exp(q).toFixed(4)).join(' ')}`);
}
const ms = performance.now() - t0;
const found = Array.from(logp, Math.exp);
console.log(`\n${steps} gradient steps in ${(ms / 1000).toFixed(2)} s (${(ms / steps).toFixed(3)} ms per value+gradient of ${samples * every} RK4 steps)`);
console.log('parameter   true     recovered');
['alpha', 'beta', 'delta', 'gamma'].forEach((name, i) => console.log(`${name.padEnd(10)}  ${truth[i]!.toFixed(3)}    ${found[i]!.toFixed(3)}`));

// Plot: observations (dots) and the fitted trajectories (lines), prey blue, predators red.
const fit = simulate(found, x0, y0, h, every, samples);
const W = 720, H = 360, pad = 30;
const c = new Canvas(W, H);
const ymax = Math.max(...obs, ...fit) * 1.05;
const px = (k: number) => pad + ((W - 2 * pad) * k) / (samples - 1);
const py = (val: number) => H - pad - ((H - 2 * pad) * val) / ymax;
c.line(pad, H - pad, W - pad, H - pad, [0, 0, 0]);
c.line(pad, pad, pad, H - pad, [0, 0, 0]);
const colors: RGB[] = [[40, 90, 200], [200, 50, 40]];
for (const s of [0, 1]) {
  for (let k = 1; k < samples; k++) c.line(px(k - 1), py(fit[2 * (k - 1) + s]!), px(k), py(fit[2 * k + s]!), colors[s]!, 2);
  for (let k = 0; k < samples; k++) c.disc(px(k), py(obs[2 * k + s]!), 2.5, colors[s]!.map((x) => x * 0.6) as RGB);
}
mkdirSync('out', { recursive: true });
c.save('out/ode-fit.png');
console.log('wrote out/ode-fit.png (dots: noisy observations; lines: fitted model; blue prey, red predators)');
if (!(history[history.length - 1]! < history[0]! * 0.5)) { console.error('the loss did not go down'); process.exit(1); }
