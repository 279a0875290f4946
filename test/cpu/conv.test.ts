// SPDX-License-Identifier: MIT
// conv2d forward and both backwards (plus the bias gradient) against a direct f64 convolution.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, convGeo, loadBuilds, randn, refConv, rng, type ConvGeo } from './helpers.js';

const builds = await loadBuilds();

const CASES: [string, ConvGeo][] = [
  ['3x3 pad 1', convGeo(2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1)],
  ['1x1 pointwise', convGeo(2, 7, 5, 3, 11, 1, 1)],
  ['5x3 stride 2, pad (2, 1)', convGeo(1, 2, 11, 8, 3, 5, 3, 2, 2, 2, 1)],
  ['3x3 stride (1, 3), dilation 2', convGeo(3, 1, 13, 17, 2, 3, 3, 1, 3, 0, 2, 2, 2)],
  ['1x1 image', convGeo(4, 5, 1, 1, 6, 1, 1)],
  ['kernel = image, pad 0', convGeo(2, 4, 3, 3, 13, 3, 3)],
  ['stride 3 > kernel 2', convGeo(1, 3, 10, 10, 4, 2, 2, 3, 3, 1, 1)],
];

for (const k of builds) {
  for (const [name, g] of CASES) {
    test(`${k.variant}: conv2d ${name}: forward, backward-input, backward-filter, bias`, () => {
      const r = rng(name.length * 7919);
      const xs = [g.N, g.C, g.H, g.W], ws = [g.CO, g.C, g.KH, g.KW];
      const opts = { stride: [g.sh, g.sw] as [number, number], padding: [g.ph, g.pw] as [number, number], dilation: [g.dh, g.dw] as [number, number] };
      assert.equal(k.conv2dOutputShape(xs, ws, opts), [g.N, g.CO, g.Ho, g.Wo]);
      const nx = g.N * g.C * g.H * g.W, nw = g.CO * g.C * g.KH * g.KW, ny = g.N * g.CO * g.Ho * g.Wo;
      const X = randn(r, nx), Wt = randn(r, nw), DY = randn(r, ny), B = randn(r, g.CO);
      const ref = refConv(g, X, Wt, DY, B);
      const x = k.upload(X), w = k.upload(Wt), dy = k.upload(DY), bias = k.upload(B);
      const y = k.alloc(ny), dx = k.alloc(nx), dw = k.alloc(nw), db = k.alloc(g.CO);
      k.f32(dx).fill(NaN); k.f32(dw).fill(NaN);
      const taps = g.C * g.KH * g.KW;
      k.conv2d(x, xs, w, ws, y, { ...opts, bias });
      close('y', k.read(y), ref.y, 2e-6 * taps);
      k.conv2dBackwardInput(dy, w, dx, xs, ws, opts);
      close('dx', k.read(dx), ref.dx, 2e-6 * g.CO * g.KH * g.KW);
      k.conv2dBackwardFilter(x, dy, dw, xs, ws, opts);
      close('dw', k.read(dw), ref.dW, 2e-6 * g.N * g.Ho * g.Wo);
      const dw1 = k.read(dw);
      k.conv2dBackwardFilter(x, dy, dw, xs, ws, { ...opts, accumulate: true });
      close('dw accumulate', k.read(dw), Array.from(dw1, (v) => 2 * v), 4e-6 * g.N * g.Ho * g.Wo);
      k.conv2dBackwardBias(dy, db, [g.N, g.CO, g.Ho, g.Wo]);
      const refDb = new Float64Array(g.CO);
      for (let i = 0; i < ny; i++) refDb[Math.floor(i / (g.Ho * g.Wo)) % g.CO] += DY[i]!;
      close('db', k.read(db), refDb, 2e-6 * g.N * g.Ho * g.Wo);
      for (const b of [x, w, dy, bias, y, dx, dw, db]) k.free(b);
    });
  }
}

test('SIMD and scalar builds agree on conv2d [4, 16, 14, 14] -> 8', () => {
  const g = convGeo(4, 16, 14, 14, 8, 3, 3, 1, 1, 1, 1);
  const r = rng(11);
  const X = randn(r, g.N * g.C * g.H * g.W), Wt = randn(r, g.CO * g.C * 9), DY = randn(r, g.N * g.CO * g.Ho * g.Wo);
  const outs = builds.map((k) => {
    const x = k.upload(X), w = k.upload(Wt), dy = k.upload(DY);
    const y = k.alloc(DY.length), dx = k.alloc(X.length), dw = k.alloc(Wt.length);
    const xs = [g.N, g.C, g.H, g.W], ws = [g.CO, g.C, 3, 3];
    k.conv2d(x, xs, w, ws, y, { padding: 1 });
    k.conv2dBackwardInput(dy, w, dx, xs, ws, { padding: 1 });
    k.conv2dBackwardFilter(x, dy, dw, xs, ws, { padding: 1 });
    const out = [k.read(y), k.read(dx), k.read(dw)];
    for (const b of [x, w, dy, y, dx, dw]) k.free(b);
    return out;
  });
  for (let i = 1; i < outs.length; i++) {
    for (let j = 0; j < 3; j++) close(`${builds[i]!.variant} vs ${builds[0]!.variant} output ${j}`, outs[i]![j]!, outs[0]![j]!, 1e-4, 1e-5);
  }
});

test('conv2d rejects bad arguments with the kernel name and shapes', () => {
  const k = builds[0]!;
  const x = k.alloc(2 * 3 * 5 * 5), w = k.alloc(4 * 3 * 3 * 3), y = k.alloc(2 * 4 * 5 * 5);
  assert.throws(() => k.conv2d(x, [2, 3, 5, 5], w, [4, 2, 3, 3], y), /conv2d: w has 2 input channels but x has 3/);
  assert.throws(() => k.conv2d(x, [2, 3, 5, 5], w, [4, 3, 3, 3], y, { padding: 1, stride: 0 }), /conv2d: stride, dilation and kernel size must be >= 1/);
  assert.throws(() => k.conv2d(x, [2, 3, 2, 2], w, [4, 3, 3, 3], y), /conv2d: the 3x3 window does not fit the padded input \(x \[2,3,2,2\]/);
  assert.throws(() => k.conv2d(x, [2, 3, 5, 5], w, [4, 3, 3, 3], k.sub(y, 0, 10), { padding: 1 }), /conv2d: y has 10 elements but needs 200/);
  assert.throws(() => k.conv2dBackwardInput(y, w, x, [2, 3, 5], [4, 3, 3, 3]), /conv2dBackwardInput: x must be \[N, C, H, W\]/);
  assert.throws(() => k.conv2dBackwardFilter(x, y, k.sub(w, 0, 5), [2, 3, 5, 5], [4, 3, 3, 3], { padding: 1 }), /conv2dBackwardFilter: dw has 5 elements but needs 108/);
  for (const b of [x, w, y]) k.free(b);
});

test.run();
