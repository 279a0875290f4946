// SPDX-License-Identifier: MIT
// Helpers to generate WGSL. Shapes and strides are baked into the source as constants: each distinct
// specialisation is its own pipeline (cached by source text), and kernels need no uniform buffers.
import type { DType, Shape } from './shape.js';
import { broadcastStrides, sameShape, size, strides } from './shape.js';
import type { GpuRuntime, Tensor } from './runtime.js';

export const WG = 256;

/** A WGSL f32 literal. */
export function f32(x: number): string {
  if (Number.isNaN(x)) return 'bitcast<f32>(NAN_BITS)';
  if (x === Infinity) return 'bitcast<f32>(INF_BITS)';
  if (x === -Infinity) return NEG_INF;
  const s = Math.fround(x).toPrecision(9);
  return /[.e]/.test(s) ? `f32(${s})` : `f32(${s}.0)`;
}
export const u32 = (n: number): string => `${n >>> 0}u`;

export function wgslType(d: DType): 'f32' | 'i32' {
  if (d === 'f16') throw new Error('pullback internal: f16 has no WGSL compute type here (storage only)');
  return d;
}

/**
 * f16 tensors in kernels. Storage is the same either way (two halves per 4 bytes, element 2j in the low half);
 * with `rt.nativeF16` a kernel declares the buffer `array<f16>` (its module starting with `enable f16;`),
 * otherwise `array<u32>` and unpacks. Arithmetic is f32 in both: f16 is read into f32 and rounded on store.
 */
export function storageType(rt: GpuRuntime, d: DType): string {
  return d === 'f16' ? (rt.nativeF16 ? 'f16' : 'u32') : d;
}

/** `enable f16;` (which must open a module) when any of the dtypes is f16 and the runtime reads f16 natively. */
export function enableF16(rt: GpuRuntime, ...dtypes: DType[]): string {
  return rt.nativeF16 && dtypes.includes('f16') ? 'enable f16;\n' : '';
}

/** WGSL expression: element `idx` (a u32 expression) of buffer `name` holding dtype d, as f32 (i32 as i32). */
export function loadElement(rt: GpuRuntime, name: string, d: DType, idx: string): string {
  if (d !== 'f16') return `${name}[${idx}]`;
  return rt.nativeF16 ? `f32(${name}[${idx}])` : `unpack2x16float(${name}[(${idx}) >> 1u])[(${idx}) & 1u]`;
}

/** Workgroup counts for n invocations of WG threads, folded into 2D when above the per-dimension limit. */
export function grid(n: number, wg = WG): [number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= 65535) return [Math.max(groups, 0), 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}

/** Entry point header for a flat 1D kernel; `i` is the global index. */
export function flatMain(wg = WG): string {
  return `@compute @workgroup_size(${wg}) fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = (wid.y * nwg.x + wid.x) * ${wg}u + lid.x;`;
}

/**
 * -inf and NaN cannot be WGSL constant expressions; reading them from private variables makes them runtime values.
 * Declared by bindings(), so every kernel has them.
 */
export const SPECIALS = 'var<private> INF_BITS: u32 = 0x7f800000u;\nvar<private> NINF_BITS: u32 = 0xff800000u;\nvar<private> NAN_BITS: u32 = 0x7fc00000u;';
export const NEG_INF = 'bitcast<f32>(NINF_BITS)';

/**
 * WGSL: combines each thread's running row maximum `m` and sum of exp(v - m) `l` across a workgroup of
 * `wg` threads (a tree over the workgroup arrays `sm`, `sl`; `t` is the thread index). Afterwards sm[0] and
 * sl[0] hold the row's maximum and sum, so that logsumexp = sm[0] + log(sl[0]).
 */
export function workgroupMaxSumExp(wg: number): string {
  return `sm[t] = m; sl[t] = l;
  for (var w = ${wg / 2}u; w > 0u; w = w / 2u) {
    workgroupBarrier();
    if (t < w) {
      let m2 = sm[t + w]; let l2 = sl[t + w]; let mm = max(m, m2);
      if (mm != ${NEG_INF}) { l = l * exp(m - mm) + l2 * exp(m2 - mm); m = mm; }
      sm[t] = m; sl[t] = l;
    }
  }
  workgroupBarrier();`;
}

/** Storage binding declarations: inputs read-only, the rest read_write. */
export function bindings(list: { name: string; type: string; write?: boolean }[]): string {
  return SPECIALS + '\n' + list.map((b, k) => `@group(0) @binding(${k}) var<storage, ${b.write ? 'read_write' : 'read'}> ${b.name}: array<${b.type}>;`).join('\n');
}

/**
 * WGSL statements that compute `name` = the offset into a tensor of shape `src` (broadcast to `out`) of the
 * element at flat output index `idx`. Same shape: the index itself; a single element: 0.
 */
export function offsetExpr(name: string, idx: string, src: Shape, out: Shape): string {
  if (sameShape(src, out)) return `let ${name} = ${idx};`;
  if (size(src) === 1) return `let ${name} = 0u;`;
  const bs = broadcastStrides(src, out);
  const os = strides(out);
  const lines = [`var ${name} = 0u;`];
  for (let d = 0; d < out.length; d++) {
    if (bs[d] === 0) continue;
    lines.push(`${name} += ((${idx} / ${u32(os[d]!)}) % ${u32(out[d]!)}) * ${u32(bs[d]!)};`);
  }
  return lines.join(' ');
}

export interface MapInput { t: Tensor; }

/**
 * An elementwise kernel over the broadcast output shape: `expr` is a WGSL expression of v0, v1, ... (the inputs'
 * values at this element, in their own WGSL types). One invocation per output element.
 */
export function mapKernel(rt: GpuRuntime, op: string, ins: readonly Tensor[], outShape: Shape, outDtype: DType, expr: string, prelude = ''): Tensor {
  const out = rt.empty(outShape, outDtype, op);
  const n = size(outShape);
  if (n === 0) return out;
  const decl = bindings([...ins.map((t, k) => ({ name: `in${k}`, type: wgslType(t.dtype) })), { name: 'out', type: wgslType(outDtype), write: true }]);
  const loads = ins.map((t, k) => `${offsetExpr(`o${k}`, 'i', t.shape, outShape)} let v${k} = in${k}[o${k}];`).join('\n  ');
  const code = `${decl}
${prelude}
${flatMain()}
  if (i >= ${u32(n)}) { return; }
  ${loads}
  out[i] = ${expr};
}`;
  rt.dispatch(code, [...ins.map((t) => t.buf(op)), out.buf(op)], grid(n));
  return out;
}

/** Shared WGSL functions for activations; stable forms (tanh via exp(-2|x|), sigmoid split on the sign). */
export const MATH = `
fn tanh_s(x: f32) -> f32 { let t = exp(-2.0 * abs(x)); return sign(x) * (1.0 - t) / (1.0 + t); }
fn sigmoid_s(x: f32) -> f32 { if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); } let e = exp(x); return e / (1.0 + e); }
const GELU_C: f32 = 0.7978845608028654;
fn gelu_s(x: f32) -> f32 { return 0.5 * x * (1.0 + tanh_s(GELU_C * (x + 0.044715 * x * x * x))); }
fn gelu_d(x: f32) -> f32 {
  let u = GELU_C * (x + 0.044715 * x * x * x);
  let t = tanh_s(u);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x);
}
`;
