// SPDX-License-Identifier: MIT
// Unary ops and their backward helpers, binary ops with broadcasting, axpy and fill.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UNARY_BACKWARD_SAVES, type UnaryOp, type BinaryOp } from '../../runtime-wasm/kernels.js';
import { close, loadBuilds, randn, rng } from './helpers.js';
import { fromF16Bits, toF16Bits } from '../../runtime-gpu/float16.js';

const builds = await loadBuilds();

function erf(x: number): number {
  // Taylor series for |x| < 3, continued fraction tail otherwise: accurate to ~1e-15 (f64 reference)
  const ax = Math.abs(x);
  if (ax < 3) {
    let sum = x, term = x;
    for (let n = 1; n < 80; n++) {
      term *= -x * x / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}
const C = Math.sqrt(2 / Math.PI);
const tanhGelu = (x: number) => 0.5 * x * (1 + Math.tanh(C * (x + 0.044715 * x ** 3)));

// forward f64 reference, derivative f64 reference, input domain
const SPEC: Record<Exclude<UnaryOp, 'copy'>, { f: (x: number) => number; df: (x: number) => number; lo: number; hi: number; atol: number; rtol: number }> = {
  neg: { f: (x) => -x, df: () => -1, lo: -5, hi: 5, atol: 0, rtol: 0 },
  abs: { f: Math.abs, df: Math.sign, lo: -5, hi: 5, atol: 0, rtol: 0 },
  sqrt: { f: Math.sqrt, df: (x) => 0.5 / Math.sqrt(x), lo: 0.01, hi: 100, atol: 0, rtol: 2e-7 },
  square: { f: (x) => x * x, df: (x) => 2 * x, lo: -5, hi: 5, atol: 0, rtol: 2e-7 },
  relu: { f: (x) => Math.max(x, 0), df: (x) => (x > 0 ? 1 : 0), lo: -5, hi: 5, atol: 0, rtol: 0 },
  exp: { f: Math.exp, df: Math.exp, lo: -80, hi: 80, atol: 0, rtol: 1e-6 },
  log: { f: Math.log, df: (x) => 1 / x, lo: 1e-30, hi: 1e30, atol: 1e-6, rtol: 2e-7 },
  tanh: { f: Math.tanh, df: (x) => 1 - Math.tanh(x) ** 2, lo: -10, hi: 10, atol: 1e-7, rtol: 1e-6 },
  sigmoid: { f: (x) => 1 / (1 + Math.exp(-x)), df: (x) => { const s = 1 / (1 + Math.exp(-x)); return s * (1 - s); }, lo: -30, hi: 30, atol: 1e-7, rtol: 1e-6 },
  gelu: { f: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)), df: (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI), lo: -8, hi: 8, atol: 1e-6, rtol: 1e-6 },
  gelu_tanh: {
    f: tanhGelu,
    df: (x) => { const t = Math.tanh(C * (x + 0.044715 * x ** 3)); return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * 0.044715 * x * x); },
    lo: -8, hi: 8, atol: 1e-6, rtol: 1e-6,
  },
};

for (const k of builds) {
  test(`${k.variant}: unary ops and backward helpers match f64 on their domains (n = 1..37)`, () => {
    const r = rng(5);
    for (const [op, s] of Object.entries(SPEC) as [Exclude<UnaryOp, 'copy'>, (typeof SPEC)['neg']][]) {
      for (const n of [1, 3, 4, 5, 8, 37]) {
        // log spans many decades: sample its exponent
        const X = op === 'log' ? Float32Array.from({ length: n }, () => Math.exp(Math.log(s.lo) + (Math.log(s.hi) - Math.log(s.lo)) * r()))
          : randn(r, n, s.lo, s.hi);
        const DY = randn(r, n);
        const x = k.upload(X), y = k.alloc(n), dy = k.upload(DY), dx = k.alloc(n);
        k.unary(op, x, y);
        close(`${op} n=${n}`, k.read(y), Array.from(X, s.f), s.atol, s.rtol);
        const saved = UNARY_BACKWARD_SAVES[op] === 'x' ? x : y;
        k.unaryBackward(op, saved, dy, dx);
        close(`${op} backward n=${n}`, k.read(dx), Array.from(X, (v, i) => DY[i]! * s.df(v)), 3 * s.atol + 1e-7, 4 * s.rtol + 1e-6);
        k.free(x); k.free(y); k.free(dy); k.free(dx);
      }
    }
  });

  test(`${k.variant}: unary special values`, () => {
    const x = k.upload([0, -1, Infinity, -Infinity, NaN, -200, 200]), y = k.alloc(7);
    k.unary('log', x, y);
    const l = k.read(y);
    assert.equal([l[0], l[2], l[3]], [-Infinity, Infinity, NaN]);
    assert.ok(Number.isNaN(l[1]!) && Number.isNaN(l[4]!), 'log of negative and NaN is NaN');
    k.unary('exp', x, y);
    assert.equal(Array.from(k.read(y).subarray(0, 6)), [1, Math.fround(Math.exp(-1)), Infinity, 0, NaN, 0]);
    k.unary('sigmoid', x, y);
    assert.equal(Array.from(k.read(y)).filter((_, i) => i !== 1 && i !== 4), [0.5, 1, 0, 0, 1]);
    k.unary('tanh', x, y);
    assert.equal(Array.from(k.read(y)).filter((_, i) => i !== 1 && i !== 4), [0, 1, -1, -1, 1]);
    k.free(x); k.free(y);
  });

  test(`${k.variant}: binary ops broadcast like NumPy`, () => {
    const r = rng(6);
    const cases: [number[], number[]][] = [
      [[7], [7]], [[1], [13]], [[13], [1]], [[3, 5], [5]], [[3, 5], [3, 1]], [[2, 1, 5], [3, 1]],
      [[4, 3, 2, 5], [4, 1, 2, 1]], [[1, 9, 1], [6, 1, 7]], [[2, 3, 4], [2, 3, 4]], [[0, 3], [3]], [[5, 1, 1, 3], [1, 2, 7, 1]],
    ];
    const fns: Record<BinaryOp, (a: number, b: number) => number> = {
      add: (a, b) => a + b, sub: (a, b) => a - b, mul: (a, b) => a * b, div: (a, b) => a / b, max: Math.max, min: Math.min,
    };
    for (const [as, bs] of cases) {
      const shape = k.broadcastShape('test', as, bs);
      const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
      const A = randn(r, size(as)), B = randn(r, size(bs), 0.5, 2);
      const a = k.upload(A), b = k.upload(B), out = k.alloc(size(shape));
      for (const [op, f] of Object.entries(fns) as [BinaryOp, (a: number, b: number) => number][]) {
        k.binary(op, a, as, b, bs, out);
        const want = new Float64Array(size(shape));
        const idx = (s: number[], coords: number[]) => {
          let off = 0;
          for (let d = 0; d < s.length; d++) off = off * s[d]! + (s[d] === 1 ? 0 : coords[coords.length - s.length + d]!);
          return off;
        };
        for (let i = 0; i < want.length; i++) {
          const coords: number[] = [];
          let t = i;
          for (let d = shape.length - 1; d >= 0; d--) { coords.unshift(t % shape[d]!); t = Math.floor(t / shape[d]!); }
          want[i] = f(A[idx(as, coords)]!, B[idx(bs, coords)]!);
        }
        close(`${op} [${as}] [${bs}]`, k.read(out), want, 0, 1.2e-7);
      }
      k.free(a); k.free(b); k.free(out);
    }
  });

  test(`${k.variant}: axpy and fill`, () => {
    const r = rng(7);
    const X = randn(r, 23), Y = randn(r, 23);
    const x = k.upload(X), y = k.upload(Y);
    k.axpy(-0.5, x, y);
    close('axpy', k.read(y), Array.from(Y, (v, i) => v - 0.5 * X[i]!), 1e-7, 1e-7);
    k.fill(y, 3.5, 22);
    assert.equal(k.read(y)[21], 3.5);
    assert.is(k.read(y)[22], Math.fround(Y[22]! - 0.5 * X[22]!), 'fill stops at n');
    k.free(x); k.free(y);
  });
}

test('SIMD and scalar builds agree on every unary op', () => {
  const r = rng(8);
  const X = randn(r, 1001, -6, 6);
  const results = builds.map((k) => {
    const x = k.upload(X.map(Math.abs).map((v) => v + 1e-3)), y = k.alloc(X.length);
    const xs = k.upload(X);
    const out: Float32Array[] = [];
    for (const op of Object.keys(SPEC) as UnaryOp[]) {
      k.unary(op, op === 'log' || op === 'sqrt' ? x : xs, y);
      out.push(k.read(y));
    }
    k.free(x); k.free(y); k.free(xs);
    return out;
  });
  const ops = Object.keys(SPEC);
  for (let i = 1; i < results.length; i++) {
    results[i]!.forEach((o, j) => close(`${ops[j]}: ${builds[i]!.variant} vs ${builds[0]!.variant}`, o, results[0]![j]!, 1e-6, 2e-6));
  }
});

test('roundF16 rounds to the nearest f16 value like the f16 codec: every f16 value, every halfway point and its neighbours, specials, random values', () => {
  const xs: number[] = [0, -0, Infinity, -Infinity, NaN, 65504, 65519.99, 65520, 65536, 1e9, -1e9, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14, 1e-30, -1e-30];
  const bits = new Uint32Array(1), f = new Float32Array(bits.buffer);
  const around = (v: number) => { f[0] = v; const b = bits[0]!; for (const d of [-1, 0, 1]) { bits[0] = b + d; xs.push(f[0]!); } };
  for (let h = 0; h < 0x7c00; h++) {
    const v = fromF16Bits(h), next = fromF16Bits(h + 1);
    around(v); around(-v);
    if (h + 1 < 0x7c00) { around((v + next) / 2); around(-(v + next) / 2); } // halfway points, exact in f32
  }
  const r = rng(16);
  for (let i = 0; i < 20000; i++) xs.push(Math.fround((r() * 2 - 1) * 2 ** Math.floor(r() * 60 - 30)));
  const X = Float32Array.from(xs);
  const want = X.map((v) => fromF16Bits(toF16Bits(v)));
  for (const k of builds) {
    const x = k.upload(X), y = k.alloc(X.length);
    k.roundF16(x, y);
    const got = k.read(y);
    for (let i = 0; i < X.length; i++) {
      if (!Object.is(got[i], want[i])) assert.unreachable(`${k.variant}: roundF16(${X[i]}) = ${got[i]}, expected ${want[i]}`);
    }
    k.free(x); k.free(y);
  }
});

test('elementwise kernels reject bad arguments', () => {
  const k = builds[0]!;
  const a = k.alloc(6), b = k.alloc(4), o = k.alloc(6);
  assert.throws(() => k.binary('add', a, [2, 3], b, [4], o), /binary\(add\): shapes \[2,3\] and \[4\] do not broadcast \(axis 1: 3 vs 4\)/);
  assert.throws(() => k.binary('mul', a, [2, 3], b, [2, 1], k.sub(o, 0, 5)), /binary\(mul\): out has 5 elements but needs 6 \(a=\[2,3\], b=\[2,1\], out=\[2,3\]\)/);
  assert.throws(() => k.binary('pow' as never, a, [6], a, [6], o), /binary: unknown op 'pow'/);
  assert.throws(() => k.binary('add', a, [2, 3], o, [3], o), /binary\(add\): out overlaps b \(broadcast\)/);
  k.binary('add', a, [2, 3], b, [3], a); // in place over the full-shape operand is fine
  assert.throws(() => k.unary('exp', a, b, 6), /unary\(exp\): y has 4 elements but needs 6/);
  assert.throws(() => k.unaryBackward('tanh', a, a, b, 6), /unaryBackward\(tanh\): dx has 4 elements but needs 6/);
  k.free(a); k.free(b); k.free(o);
});

test.run();
