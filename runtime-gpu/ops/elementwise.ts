// SPDX-License-Identifier: MIT
// Elementwise ops: unary functions and their backward, binary arithmetic and comparisons with broadcasting,
// where/select, broadcastTo and cast.
import { OpError, broadcastShapes, describe, expectDtype, fmt, size, type DType, type Meta } from '../shape.js';
import { type HostTensor, hostZeros, roundTo } from '../host.js';
import { MATH, SPECIALS, enableF16, grid as gridOf, loadElement, mapKernel, storageType, wgslType } from '../wgsl.js';
import type { GpuRuntime, Tensor } from '../runtime.js';
import type { ArithFn, BinaryFn, CompareFn, Family, UnaryFn } from './types.js';
import { at, bin, broadcastIndex, scalar, sumTo, un } from './util.js';

const GELU_C = Math.sqrt(2 / Math.PI);
const tanh = (x: number) => Math.tanh(x);
const gelu = (x: number) => 0.5 * x * (1 + tanh(GELU_C * (x + 0.044715 * x ** 3)));
const geluD = (x: number) => {
  const t = tanh(GELU_C * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
};
const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/**
 * Each unary function: f and f' for the reference (f' from x and y = f(x)), and the same in WGSL.
 * gelu is the tanh approximation (as in GPT-2 and jax.nn.gelu's default).
 */
export const UNARY: Record<UnaryFn, { f(x: number): number; d(x: number, y: number): number; wgsl: string; wgslD: string }> = {
  neg: { f: (x) => -x, d: () => -1, wgsl: '-x', wgslD: '-1.0' },
  exp: { f: Math.exp, d: (_, y) => y, wgsl: 'exp(x)', wgslD: 'y' },
  log: { f: Math.log, d: (x) => 1 / x, wgsl: 'log(x)', wgslD: '1.0 / x' },
  sqrt: { f: Math.sqrt, d: (_, y) => 0.5 / y, wgsl: 'sqrt(x)', wgslD: '0.5 / y' },
  rsqrt: { f: (x) => 1 / Math.sqrt(x), d: (_, y) => -0.5 * y * y * y, wgsl: 'inverseSqrt(x)', wgslD: '-0.5 * y * y * y' },
  tanh: { f: tanh, d: (_, y) => 1 - y * y, wgsl: 'tanh_s(x)', wgslD: '1.0 - y * y' },
  sigmoid: { f: sigmoid, d: (_, y) => y * (1 - y), wgsl: 'sigmoid_s(x)', wgslD: 'y * (1.0 - y)' },
  relu: { f: (x) => (x > 0 ? x : 0), d: (x) => (x > 0 ? 1 : 0), wgsl: 'max(x, 0.0)', wgslD: 'select(0.0, 1.0, x > 0.0)' },
  gelu: { f: gelu, d: geluD, wgsl: 'gelu_s(x)', wgslD: 'gelu_d(x)' },
  abs: { f: Math.abs, d: (x) => Math.sign(x), wgsl: 'abs(x)', wgslD: 'sign(x)' },
};

/** What each derivative is computed from: the input x, the output y (relu: y > 0 exactly when x > 0), or nothing. */
export const UNARY_SAVES: Record<UnaryFn, 'x' | 'y' | 'none'> = {
  neg: 'none', exp: 'y', log: 'x', sqrt: 'y', rsqrt: 'y', tanh: 'y', sigmoid: 'y', relu: 'y', gelu: 'x', abs: 'x',
};

const ARITH: Record<ArithFn, { f(a: number, b: number): number; wgsl: string; ints: boolean }> = {
  add: { f: (a, b) => a + b, wgsl: 'a + b', ints: true },
  sub: { f: (a, b) => a - b, wgsl: 'a - b', ints: true },
  mul: { f: (a, b) => a * b, wgsl: 'a * b', ints: true },
  div: { f: (a, b) => a / b, wgsl: 'a / b', ints: false },
  pow: { f: (a, b) => a ** b, wgsl: 'pow_s(a, b)', ints: false },
  max: { f: Math.max, wgsl: 'max(a, b)', ints: true },
  min: { f: Math.min, wgsl: 'min(a, b)', ints: true },
};
const COMPARE: Record<CompareFn, { f(a: number, b: number): boolean; wgsl: string }> = {
  lt: { f: (a, b) => a < b, wgsl: '<' }, le: { f: (a, b) => a <= b, wgsl: '<=' },
  gt: { f: (a, b) => a > b, wgsl: '>' }, ge: { f: (a, b) => a >= b, wgsl: '>=' },
  eq: { f: (a, b) => a === b, wgsl: '==' }, ne: { f: (a, b) => a !== b, wgsl: '!=' },
};
const isCompare = (fn: BinaryFn): fn is CompareFn => fn in COMPARE;

// WGSL's pow is undefined for x < 0; match Math.pow for integral exponents (sign from the exponent's parity).
const POW = `fn pow_s(a: f32, b: f32) -> f32 {
  if (a >= 0.0) { if (a == 0.0 && b == 0.0) { return 1.0; } return pow(a, b); }
  if (b != floor(b)) { return bitcast<f32>(NAN_BITS); }
  let m = pow(-a, b);
  return select(m, -m, (abs(b) % 2.0) == 1.0);
}`;

function mapRef(ins: readonly HostTensor[], outShape: readonly number[], dtype: DType, f: (...v: number[]) => number): HostTensor {
  const out = hostZeros(outShape, dtype);
  const idx = ins.map((t) => broadcastIndex(t.shape, outShape));
  const v = new Array<number>(ins.length);
  for (let i = 0; i < out.data.length; i++) {
    for (let k = 0; k < ins.length; k++) v[k] = at(ins[k]!, idx[k]!, i);
    out.data[i] = f(...v);
  }
  return out;
}

function sameDtype(op: string, a: Meta, b: Meta): void {
  if (a.dtype !== b.dtype) throw new OpError(op, `dtypes differ: ${describe(a)} and ${describe(b)}`);
}

export const elementwiseOps = {
  unary: {
    name: 'unary',
    infer([x], { fn }) {
      if (!(fn in UNARY)) throw new OpError('unary', `unknown function '${fn}'`);
      expectDtype(`unary ${fn}`, 'input', x!, 'f32');
      return [{ shape: x!.shape, dtype: 'f32' }];
    },
    reference: ([x], { fn }) => [mapRef([x!], x!.shape, 'f32', UNARY[fn].f)],
    webgpu: (rt, [x], { fn }) => [mapKernel(rt, `unary ${fn}`, [x!], x!.shape, 'f32', `f_(v0)`, `${MATH}\nfn f_(x: f32) -> f32 { return ${UNARY[fn].wgsl}; }`)],
    saves: 'the input x and the output y (each function uses one of them)',
    // The derivative reads only what UNARY_SAVES names (x or y), passed in both slots; so a tape keeps one value.
    pullback: (x, { inputs, outputs, attrs: { fn }, cot }) => {
      const v = UNARY_SAVES[fn] === 'y' ? outputs[0]! : UNARY_SAVES[fn] === 'x' ? inputs[0]! : cot[0]!;
      return [x.op('unaryBackward', [v, v, cot[0]!], { fn })[0]!];
    },
  },
  unaryBackward: {
    name: 'unaryBackward',
    infer([x, y, dy], { fn }) {
      for (const m of [x!, y!, dy!]) expectDtype(`unaryBackward ${fn}`, 'inputs', m, 'f32');
      if (size(x!.shape) !== size(y!.shape) || fmt(x!.shape) !== fmt(dy!.shape)) {
        throw new OpError(`unaryBackward ${fn}`, `x, y and dy must have one shape, got ${fmt(x!.shape)}, ${fmt(y!.shape)}, ${fmt(dy!.shape)}`);
      }
      return [{ shape: x!.shape, dtype: 'f32' }];
    },
    reference: ([x, y, dy], { fn }) => [mapRef([x!, y!, dy!], x!.shape, 'f32', (a, b, g) => g! * UNARY[fn].d(a!, b!))],
    webgpu: (rt, [x, y, dy], { fn }) => [mapKernel(rt, `unaryBackward ${fn}`, [x!, y!, dy!], x!.shape, 'f32', 'v2 * d_(v0, v1)',
      `${MATH}\nfn d_(x: f32, y: f32) -> f32 { return ${UNARY[fn].wgslD}; }`)],
    saves: '-',
    pullback: null,
  },
  binary: {
    name: 'binary',
    infer([a, b], { fn }) {
      const op = `binary ${fn}`;
      if (!(fn in ARITH) && !(fn in COMPARE)) throw new OpError('binary', `unknown function '${fn}'`);
      sameDtype(op, a!, b!);
      if (isCompare(fn) || ARITH[fn].ints) expectDtype(op, 'inputs', a!, 'f32', 'i32');
      else expectDtype(op, 'inputs', a!, 'f32');
      const shape = broadcastShapes(op, a!.shape, b!.shape);
      return [{ shape, dtype: isCompare(fn) ? 'f32' : a!.dtype }];
    },
    reference([a, b], { fn }) {
      const shape = broadcastShapes('binary', a!.shape, b!.shape);
      if (isCompare(fn)) return [mapRef([a!, b!], shape, 'f32', (x, y) => (COMPARE[fn].f(x!, y!) ? 1 : 0))];
      const dt = a!.dtype;
      return [mapRef([a!, b!], shape, dt, (x, y) => (dt === 'i32' ? roundTo('i32', ARITH[fn].f(x!, y!)) : ARITH[fn].f(x!, y!)))];
    },
    webgpu(rt, [a, b], { fn }, [out]) {
      const expr = isCompare(fn) ? `select(0.0, 1.0, v0 ${COMPARE[fn].wgsl} v1)` : `g_(v0, v1)`;
      const t = wgslType(a!.dtype);
      const prelude = isCompare(fn) ? '' : `${fn === 'pow' ? POW : ''}\nfn g_(a: ${t}, b: ${t}) -> ${t} { return ${ARITH[fn].wgsl}; }`;
      return [mapKernel(rt, `binary ${fn}`, [a!, b!], out!.shape, out!.dtype, expr, prelude)];
    },
    saves: 'the inputs a and b (mul, div, pow, max, min); nothing for add and sub',
    pullback(x, { inputs: [a, b], outputs: [y], attrs: { fn }, cot: [g], needs }) {
      const as = x.meta(a!).shape, bs = x.meta(b!).shape;
      let ga: typeof g = null, gb: typeof g = null;
      switch (fn) {
        case 'add': ga = g!; gb = g!; break;
        case 'sub': ga = g!; gb = needs[1] ? un(x, 'neg', g!) : null; break;
        case 'mul': ga = needs[0] ? bin(x, 'mul', g!, b!) : null; gb = needs[1] ? bin(x, 'mul', g!, a!) : null; break;
        case 'div': {
          ga = bin(x, 'div', g!, b!);
          // d(a/b)/db = -a/b² = -(1/b)(a/b)
          gb = needs[1] ? un(x, 'neg', bin(x, 'mul', ga, y!)) : null;
          if (!needs[0]) ga = null;
          break;
        }
        case 'pow': {
          // d/da = b a^(b-1); d/db = log(a) a^b (a > 0).
          ga = needs[0] ? bin(x, 'mul', g!, bin(x, 'mul', b!, bin(x, 'pow', a!, bin(x, 'sub', b!, scalar(x, 1))))) : null;
          gb = needs[1] ? bin(x, 'mul', g!, bin(x, 'mul', y!, un(x, 'log', a!))) : null;
          break;
        }
        case 'max': case 'min': {
          // The gradient goes to a where a wins (ties go to a), else to b.
          const m = bin(x, fn === 'max' ? 'ge' : 'le', a!, b!);
          const zero = scalar(x, 0);
          ga = needs[0] ? x.op('where', [m, g!, zero], {})[0]! : null;
          gb = needs[1] ? x.op('where', [m, zero, g!], {})[0]! : null;
          break;
        }
        default: return [null, null]; // comparisons: zero almost everywhere
      }
      return [ga && needs[0] ? sumTo(x, ga, as) : null, gb && needs[1] ? sumTo(x, gb, bs) : null];
    },
  },
  where: {
    name: 'where',
    infer([c, a, b]) {
      expectDtype('where', 'condition', c!, 'f32', 'i32');
      sameDtype('where', a!, b!);
      expectDtype('where', 'values', a!, 'f32', 'i32');
      return [{ shape: broadcastShapes('where', c!.shape, a!.shape, b!.shape), dtype: a!.dtype }];
    },
    reference: ([c, a, b]) => [mapRef([c!, a!, b!], broadcastShapes('where', c!.shape, a!.shape, b!.shape), a!.dtype, (cv, av, bv) => (cv !== 0 ? av! : bv!))],
    webgpu: (rt, ins, _, [out]) => [mapKernel(rt, 'where', ins, out!.shape, out!.dtype, `select(v2, v1, v0 != ${ins[0]!.dtype === 'i32' ? '0i' : '0.0'})`)],
    saves: 'the condition',
    pullback(x, { inputs: [c, a, b], cot: [g], needs }) {
      const zero = scalar(x, 0);
      return [null,
        needs[1] ? sumTo(x, x.op('where', [c!, g!, zero], {})[0]!, x.meta(a!).shape) : null,
        needs[2] ? sumTo(x, x.op('where', [c!, zero, g!], {})[0]!, x.meta(b!).shape) : null];
    },
  },
  broadcastTo: {
    name: 'broadcastTo',
    infer([x], { shape }) {
      const s = broadcastShapes('broadcastTo', x!.shape, shape);
      if (fmt(s) !== fmt(shape)) throw new OpError('broadcastTo', `cannot broadcast ${describe(x!)} to ${fmt(shape)}`);
      expectDtype('broadcastTo', 'input', x!, 'f32', 'i32');
      return [{ shape: [...shape], dtype: x!.dtype }];
    },
    reference: ([x], { shape }) => [mapRef([x!], shape, x!.dtype, (v) => v!)],
    webgpu: (rt, [x], { shape }) => [mapKernel(rt, 'broadcastTo', [x!], shape, x!.dtype, 'v0')],
    saves: 'nothing (the input shape)',
    pullback: (x, { inputs: [a], cot: [g] }) => [sumTo(x, g!, x.meta(a!).shape)],
  },
  cast: {
    name: 'cast',
    infer([x], { dtype }) {
      if (!['f32', 'i32', 'f16'].includes(dtype)) throw new OpError('cast', `unknown dtype '${dtype}'`);
      return [{ shape: x!.shape, dtype }];
    },
    reference: ([x], { dtype }) => [{ shape: x!.shape, dtype, data: x!.data.map((v) => roundTo(dtype, dtype === 'i32' ? Math.trunc(v) : v)) }],
    webgpu(rt, [x], { dtype }) {
      const n = x!.size;
      if (x!.dtype === dtype) return [mapKernelCopy(rt, x!)];
      if (dtype === 'f16') {
        // Two elements per 4-byte word, one invocation per word: written as a vec2<f16> with shader-f16, else packed.
        const out = rt.empty(x!.shape, 'f16', 'cast');
        const src = x!.dtype === 'f32' ? 'a[j]' : 'f32(a[j])';
        const native = rt.nativeF16;
        // Conversions (and pack2x16float) are indeterminate outside the finite f16 range: overflow to infinity by
        // hand, as IEEE rounding does (65520 and up round to infinity; below it, to at most 65504).
        const write = native
          ? `var<private> HINF_BITS: u32 = 0x7c007c00u;
fn toH(v: f32) -> f16 {
  if (abs(v) >= 65520.0) { let inf = bitcast<vec2<f16>>(HINF_BITS).x; return select(inf, -inf, v < 0.0); }
  return f16(clamp(v, -65504.0, 65504.0));
}
fn put(w: u32, lo: f32, hi: f32) { out[w] = vec2<f16>(toH(lo), toH(hi)); }`
          : `fn toH(v: f32) -> u32 {
  if (abs(v) >= 65520.0) { return select(0x7c00u, 0xfc00u, v < 0.0); }
  return pack2x16float(vec2f(v, 0.0)) & 0xffffu;
}
fn put(w: u32, lo: f32, hi: f32) { out[w] = toH(lo) | (toH(hi) << 16u); }`;
        const code = `${enableF16(rt, 'f16')}${SPECIALS}
@group(0) @binding(0) var<storage, read> a: array<${x!.dtype}>;
@group(0) @binding(1) var<storage, read_write> out: array<${native ? 'vec2<f16>' : 'u32'}>;
fn ld(j: u32) -> f32 { if (j >= ${n}u) { return 0.0; } return ${src}; }
${write}
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let w = gid.x + gid.y * nwg.x * 256u;
  if (w >= ${Math.ceil(n / 2)}u) { return; }
  put(w, ld(2u * w), ld(2u * w + 1u));
}`;
        const words = Math.ceil(n / 2);
        if (words) rt.dispatch(code, [x!.buf('cast'), out.buf('cast')], gridOf(words));
        return [out];
      }
      if (x!.dtype === 'f16') {
        const out = rt.empty(x!.shape, dtype, 'cast');
        const conv = dtype === 'f32' ? 'v' : 'i32(v)';
        const code = `${enableF16(rt, 'f16')}@group(0) @binding(0) var<storage, read> a: array<${storageType(rt, 'f16')}>;
@group(0) @binding(1) var<storage, read_write> out: array<${dtype}>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= ${n}u) { return; }
  let v = ${loadElement(rt, 'a', 'f16', 'i')};
  out[i] = ${conv};
}`;
        if (n) rt.dispatch(code, [x!.buf('cast'), out.buf('cast')], gridOf(n));
        return [out];
      }
      return [mapKernel(rt, 'cast', [x!], x!.shape, dtype, `${dtype}(v0)`)];
    },
    saves: 'nothing',
    pullback: (x, { inputs: [a], outputs: [y], cot: [g] }) =>
      [x.meta(a!).dtype === 'i32' || x.meta(y!).dtype === 'i32' ? null : x.op('cast', [g!], { dtype: x.meta(a!).dtype })[0]!],
  },
} satisfies Family<'unary' | 'unaryBackward' | 'binary' | 'where' | 'broadcastTo' | 'cast'>;

/** A same-dtype cast: a copy (f16 copies its packed words). */
function mapKernelCopy(rt: GpuRuntime, x: Tensor): Tensor {
  if (x.dtype === 'f16') {
    const out = rt.empty(x.shape, 'f16', 'cast');
    const words = Math.ceil(x.size / 2);
    const code = `@group(0) @binding(0) var<storage, read> a: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < ${words}u) { out[i] = a[i]; }
}`;
    if (words) rt.dispatch(code, [x.buf('cast'), out.buf('cast')], gridOf(words));
    return out;
  }
  return mapKernel(rt, 'cast', [x], x.shape, x.dtype, 'v0');
}
