// SPDX-License-Identifier: MIT
// One-pass optimizer updates against float64 implementations of the PyTorch formulas.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, loadBuilds, randn, rng } from './helpers.js';

const builds = await loadBuilds();

for (const k of builds) {
  test(`${k.variant}: sgd with and without momentum and weight decay, 3 steps`, () => {
    const r = rng(14);
    for (const n of [1, 5, 67]) {
      for (const [momentum, wd] of [[0, 0], [0.9, 0], [0.8, 0.01], [0, 0.1]] as const) {
        const P = randn(r, n), G = [randn(r, n), randn(r, n), randn(r, n)];
        const p = k.upload(P), g = k.alloc(n), v = k.alloc(n);
        k.fill(v, 0);
        const refP = Float64Array.from(P), refV = new Float64Array(n);
        for (const Gs of G) {
          k.f32(g).set(Gs);
          k.sgd(p, g, { lr: 0.1, momentum, velocity: v, weightDecay: wd });
          for (let i = 0; i < n; i++) {
            let gi = Gs[i]! + wd * refP[i]!;
            if (momentum) { refV[i] = momentum * refV[i]! + gi; gi = refV[i]!; }
            refP[i] -= 0.1 * gi;
          }
        }
        close(`sgd n=${n} momentum=${momentum} wd=${wd}`, k.read(p), refP, 1e-6, 1e-6);
        k.free(p); k.free(g); k.free(v);
      }
    }
  });

  test(`${k.variant}: adam and adamw, 4 steps with bias correction`, () => {
    const r = rng(15);
    for (const n of [1, 3, 4, 41]) {
      for (const decoupled of [false, true]) {
        const wd = decoupled ? 0.05 : 0.02;
        const P = randn(r, n);
        const p = k.upload(P), g = k.alloc(n), m = k.alloc(n), v = k.alloc(n);
        k.fill(m, 0); k.fill(v, 0);
        const rp = Float64Array.from(P), rm = new Float64Array(n), rv = new Float64Array(n);
        const [lr, b1, b2, eps] = [0.01, 0.9, 0.999, 1e-8];
        for (let t = 1; t <= 4; t++) {
          const Gs = randn(r, n);
          k.f32(g).set(Gs);
          if (decoupled) k.adamw(p, g, m, v, { lr, step: t, weightDecay: wd });
          else k.adam(p, g, m, v, { lr, step: t, weightDecay: wd });
          for (let i = 0; i < n; i++) {
            let gi = Gs[i]!;
            if (decoupled) rp[i] *= 1 - lr * wd; else gi += wd * rp[i]!;
            rm[i] = b1 * rm[i]! + (1 - b1) * gi;
            rv[i] = b2 * rv[i]! + (1 - b2) * gi * gi;
            const mh = rm[i]! / (1 - b1 ** t), vh = rv[i]! / (1 - b2 ** t);
            rp[i] -= lr * mh / (Math.sqrt(vh) + eps);
          }
        }
        close(`${decoupled ? 'adamw' : 'adam'} n=${n} param`, k.read(p), rp, 2e-6, 2e-6);
        close(`${decoupled ? 'adamw' : 'adam'} n=${n} m`, k.read(m), rm, 1e-7, 1e-5);
        close(`${decoupled ? 'adamw' : 'adam'} n=${n} v`, k.read(v), rv, 1e-8, 1e-5);
        for (const b of [p, g, m, v]) k.free(b);
      }
    }
  });
}

test('optimizers reject bad arguments', () => {
  const k = builds[0]!;
  const p = k.alloc(8), g = k.alloc(4);
  assert.throws(() => k.sgd(p, g, { lr: 0.1 }), /sgd: grad has 4 elements but needs 8 \(n=8\)/);
  assert.throws(() => k.sgd(p, p, { lr: 0.1, momentum: 0.9 }), /sgd: velocity is not a buffer \(n=8, momentum=0.9\)/);
  assert.throws(() => k.adam(p, p, p, g, { lr: 0.1, step: 1 }), /adam: v has 4 elements but needs 8/);
  assert.throws(() => k.adamw(p, p, p, p, { lr: 0.1, step: 0 }), /adamw: step must be an integer >= 1, got 0/);
  k.free(p); k.free(g);
});

test.run();
