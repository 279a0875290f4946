// SPDX-License-Identifier: MIT
// f16 and bf16 conversions: exhaustive round trips, and rounding from f32 checked against an
// independent reference that picks the nearer of the two neighbouring f16 values (ties to even).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, fromF16Bits, toF16Bits } from '../../runtime-gpu/float16.js';

const bitsOf = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;
const fromBits = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0]!;
const hex = (h: number) => '0x' + h.toString(16).padStart(4, '0');

// Finite non-negative f16 values are increasing in their bit patterns 0x0000..0x7bff.
const F16 = Array.from({ length: 0x7c00 }, (_, h) => decode(h));
function decode(h: number): number {
  const e = h >> 10, m = h & 0x3ff;
  return e === 0 ? m / 2 ** 24 : (1 + m / 1024) * 2 ** (e - 15);
}
function reference(x: number): number {
  x = Math.fround(x);
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65504 + half an ulp (16): the tie goes to the even 0x7c00
  let lo = 0, hi = 0x7bff; // largest h with F16[h] <= a
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (F16[mid]! <= a) lo = mid; else hi = mid - 1; }
  if (lo === 0x7bff) return sign | lo;
  const dl = a - F16[lo]!, du = F16[lo + 1]! - a;
  return sign | (dl < du ? lo : du < dl ? lo + 1 : lo % 2 === 0 ? lo : lo + 1);
}

test('every f16 bit pattern widens and narrows back to itself (NaNs stay NaN)', () => {
  for (let h = 0; h < 0x10000; h++) {
    const x = fromF16Bits(h);
    const back = toF16Bits(x);
    // A JS number NaN carries no sign or payload we can rely on: NaN must only come back as a NaN.
    if (Number.isNaN(x)) assert.ok((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0, hex(h));
    else assert.is(back, h, `${hex(h)} -> ${x} -> ${hex(back)}`);
  }
});

test('f16 values: known constants', () => {
  assert.is(fromF16Bits(0x3c00), 1);
  assert.is(fromF16Bits(0x7bff), 65504);
  assert.is(fromF16Bits(0x0001), 2 ** -24);
  assert.is(fromF16Bits(0x0400), 2 ** -14);
  assert.is(fromF16Bits(0xfc00), -Infinity);
  assert.ok(Object.is(fromF16Bits(0x8000), -0));
  assert.is(toF16Bits(0.1), 0x2e66);
  assert.is(toF16Bits(65519.99), 0x7bff);
  assert.is(toF16Bits(65520), 0x7c00);
  assert.is(toF16Bits(1e10), 0x7c00);
  assert.is(toF16Bits(-1e-10), 0x8000);
  assert.is(toF16Bits(2 ** -25), 0x0000, 'half the smallest subnormal ties to even 0');
  assert.is(toF16Bits(3 * 2 ** -25), 0x0002, '1.5 subnormal ulps ties to even 2');
  assert.is(toF16Bits(Math.fround(2 ** -25 * (1 + 2 ** -23))), 0x0001, 'just above the tie rounds up');
  assert.is(toF16Bits(1 + 2 ** -11), 0x3c00, 'tie between 1 and 1+2^-10 goes to even 1');
  assert.is(toF16Bits(1 + 3 * 2 ** -11), 0x3c02, 'tie between 1+2^-10 and 1+2^-9 goes to even');
  assert.is(toF16Bits(2 ** -14 - 2 ** -25), 0x0400, 'rounding up from the largest subnormal gives the smallest normal');
});

test('f32 -> f16 rounds to nearest even: special values, every tie and neighbour near each exponent, random bits', () => {
  const cases: number[] = [0, -0, Infinity, -Infinity, 2 ** -149, 2 ** -126, 3.4e38];
  for (let h = 0; h < 0x7c00; h += 7) {
    const v = F16[h]!, w = h < 0x7bff ? F16[h + 1]! : 65536;
    const mid = (v + w) / 2;
    cases.push(v, mid, fromBits(bitsOf(mid) - 1), fromBits(bitsOf(mid) + 1), -mid);
  }
  let seed = 12345;
  for (let i = 0; i < 200_000; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const x = fromBits(seed);
    if (!Number.isNaN(x)) cases.push(x);
  }
  const got = f32ToF16(new Float32Array(cases));
  for (let i = 0; i < cases.length; i++) {
    const want = reference(cases[i]!);
    if (got[i] !== want) assert.unreachable(`${cases[i]} (f32 bits 0x${bitsOf(cases[i]!).toString(16)}): got ${hex(got[i]!)}, want ${hex(want)}`);
  }
  const wide = f16ToF32(got);
  for (let i = 0; i < got.length; i++) {
    const h = got[i]!, want = (h & 0x7c00) === 0x7c00 ? Infinity : decode(h & 0x7fff);
    if (!Object.is(wide[i], h & 0x8000 ? -want : want)) assert.unreachable(`f16ToF32(${hex(h)}) = ${wide[i]}`);
  }
});

test('f32 -> f16 keeps NaN', () => {
  const h = f32ToF16([NaN, fromBits(0xff800001)]);
  assert.ok(Number.isNaN(fromF16Bits(h[0]!)) && Number.isNaN(fromF16Bits(h[1]!)));
  assert.is(h[1]! & 0x8000, 0x8000, 'sign kept');
});

test('bf16: exact values survive, ties go to even, NaN stays NaN, overflow gives Infinity', () => {
  const exact = [1, -2.5, 0, 3.140625, 2 ** -133, -Infinity];
  assert.equal([...bf16ToF32(f32ToBf16(exact))], exact);
  assert.is(f32ToBf16([fromBits(0x3f808000)])[0], 0x3f80, 'tie rounds to even (down)');
  assert.is(f32ToBf16([fromBits(0x3f818000)])[0], 0x3f82, 'tie rounds to even (up)');
  assert.is(f32ToBf16([fromBits(0x3f808001)])[0], 0x3f81, 'above the tie rounds up');
  assert.is(f32ToBf16([fromBits(0x7f7fffff)])[0], 0x7f80, 'largest f32 rounds to Infinity');
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16([fromBits(0x7f800001)]))[0]!), 'NaN with a low payload stays NaN');
  for (let b = 0; b < 0x10000; b++) {
    const back = f32ToBf16(bf16ToF32([b]))[0]!;
    if (back !== b && !((b & 0x7f80) === 0x7f80 && (b & 0x7f))) assert.unreachable(`bf16 ${hex(b)} -> ${hex(back)}`);
  }
});

test.run();
