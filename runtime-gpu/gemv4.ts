// SPDX-License-Identifier: MIT
// Register-blocked matmul for aligned shapes: each invocation computes an 8x4 block of C (16x4 on SwiftShader) with
// vec4 loads and no workgroup memory or barriers. On SwiftShader (invocations are SIMD lanes of CPU threads,
// barriers are costly and every load is a gather) this beats the shared-memory tiled kernel; on real GPUs it relies
// on the caches.
// Three layouts: NN (A [M,K], B [K,N]; K, N multiples of 4), NT (B [N,K]; K a multiple of 4) and
// TN (A [K,M]; M, N multiples of 4). Rows past M are clamped on load and skipped on store.
import type { GpuRuntime } from './runtime.js';
import type { DType } from './shape.js';
import { MATH, enableF16, u32 } from './wgsl.js';

/**
 * Binding `k` named `name` read as vec4f, four consecutive elements at a time (index i counts fours): f32 as
 * vec4f; f16 as vec4<f16> with shader-f16, else as two u32 words of two halves each.
 */
function vec4Operand(rt: GpuRuntime, k: number, name: string, d: DType): string {
  const f16 = d === 'f16', native = f16 && rt.nativeF16;
  const type = !f16 ? 'vec4f' : native ? 'vec4<f16>' : 'vec2u';
  const value = !f16 ? `${name}[i]` : native ? `vec4f(${name}[i])` : `vec4f(unpack2x16float(${name}[i].x), unpack2x16float(${name}[i].y))`;
  return `@group(0) @binding(${k}) var<storage, read> ${name}: array<${type}>;
fn ld${name}(i: u32) -> vec4f { return ${value}; }`;
}

export type Layout = 'NN' | 'NT' | 'TN';

export function vec4Layout(M: number, N: number, K: number, transA: boolean, transB: boolean): Layout | null {
  if (!transA && !transB && K % 4 === 0 && N % 4 === 0) return 'NN';
  if (!transA && transB && K % 4 === 0) return 'NT';
  if (transA && !transB && M % 4 === 0 && N % 4 === 0) return 'TN';
  return null;
}

export interface Vec4Spec {
  layout: Layout; M: number; N: number; K: number; batch: number; aBatched: boolean; bBatched: boolean;
  bias: GPUBuffer | null; activation: 'none' | 'relu' | 'gelu';
  /** Storage of A and B (default f32): f16 is read four at a time, 8 bytes, into a vec4f. */
  aDtype?: DType; bDtype?: DType;
  a: GPUBuffer; b: GPUBuffer; c: GPUBuffer; pre: GPUBuffer | null;
}

export function matmulVec4(rt: GpuRuntime, s: Vec4Spec): void {
  const { layout, M, N, K } = s;
  if (M === 0 || N === 0 || s.batch === 0) return;
  // Rows per invocation: 8 on real GPUs; 16 on SwiftShader (register-blocked GEMMs, tiledGemm off), where every
  // load is a per-lane gather and a taller block amortises each B load over more FMAs (MLP step GEMMs 15-25% faster).
  const R = rt.tiledGemm ? 8 : 16;
  const rows = [...Array(R).keys()];
  const N4 = Math.ceil(N / 4);
  const aOff = s.aBatched ? `bt * ${u32(M * K)}` : '0u';
  const bOff = s.bBatched ? `bt * ${u32(K * N)}` : '0u';
  const aDtype = s.aDtype ?? 'f32', bDtype = s.bDtype ?? 'f32';
  const decls = [
    enableF16(rt, aDtype, bDtype) + vec4Operand(rt, 0, 'A', aDtype),
    vec4Operand(rt, 1, 'B', bDtype),
    `@group(0) @binding(2) var<storage, read_write> C: array<${layout === 'NT' && N % 4 !== 0 ? 'f32' : 'vec4f'}>;`,
    ...(s.bias ? [`@group(0) @binding(3) var<storage, read> bias: array<f32>;`] : []),
    ...(s.pre ? [`@group(0) @binding(${s.bias ? 4 : 3}) var<storage, read_write> pre: array<${layout === 'NT' && N % 4 !== 0 ? 'f32' : 'vec4f'}>;`] : []),
  ].join('\n');
  let body: string;
  if (layout === 'NN') {
    body = `
  ${rows.map((r) => `let a${r} = (${aOff} + min(m + ${r}u, ${u32(M - 1)}) * ${u32(K)}) / 4u;`).join(' ')}
  let bb = ${bOff} / 4u + n4;
  for (var k = 0u; k < ${u32(K)}; k += 4u) {
    let b0 = ldB(bb + (k * ${u32(N)}) / 4u); let b1 = ldB(bb + ((k + 1u) * ${u32(N)}) / 4u);
    let b2 = ldB(bb + ((k + 2u) * ${u32(N)}) / 4u); let b3 = ldB(bb + ((k + 3u) * ${u32(N)}) / 4u);
    let k4 = k / 4u;
    ${rows.map((r) => `{ let a = ldA(a${r} + k4); c${r} += a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3; }`).join('\n    ')}
  }`;
  } else if (layout === 'NT') {
    body = `
  ${rows.map((r) => `let a${r} = (${aOff} + min(m + ${r}u, ${u32(M - 1)}) * ${u32(K)}) / 4u;`).join(' ')}
  ${[0, 1, 2, 3].map((j) => `let bj${j} = (${bOff} + min(n4 * 4u + ${j}u, ${u32(N - 1)}) * ${u32(K)}) / 4u;`).join(' ')}
  for (var k4 = 0u; k4 < ${u32(K / 4)}; k4++) {
    let b0 = ldB(bj0 + k4); let b1 = ldB(bj1 + k4); let b2 = ldB(bj2 + k4); let b3 = ldB(bj3 + k4);
    ${rows.map((r) => `{ let a = ldA(a${r} + k4); c${r} += vec4f(dot(a, b0), dot(a, b1), dot(a, b2), dot(a, b3)); }`).join('\n    ')}
  }`;
  } else {
    // TN: A is [K, M]; a row k holds M/4 vec4s, R/4 of them per invocation.
    const quads = [...Array(R / 4).keys()];
    body = `
  ${quads.map((q) => `let q${q} = min(m / 4u + ${q}u, ${u32(M / 4 - 1)});`).join(' ')}
  let ab = ${aOff} / 4u;
  let bb = ${bOff} / 4u + n4;
  for (var k = 0u; k < ${u32(K)}; k++) {
    let b = ldB(bb + k * ${u32(N / 4)});
    let ak = ab + k * ${u32(M / 4)};
    ${quads.map((q) => `{ let a = ldA(ak + q${q}); c${4 * q} += a.x * b; c${4 * q + 1} += a.y * b; c${4 * q + 2} += a.z * b; c${4 * q + 3} += a.w * b; }`).join('\n    ')}
  }`;
  }
  const act = s.activation === 'relu' ? 'max(r, vec4f(0.0))' : s.activation === 'gelu' ? 'vec4f(gelu_s(r.x), gelu_s(r.y), gelu_s(r.z), gelu_s(r.w))' : 'r';
  const scalarStore = layout === 'NT' && N % 4 !== 0;
  const biasExpr = s.bias ? (scalarStore
    ? ` + vec4f(bias[min(n4 * 4u, ${u32(N - 1)})], bias[min(n4 * 4u + 1u, ${u32(N - 1)})], bias[min(n4 * 4u + 2u, ${u32(N - 1)})], bias[min(n4 * 4u + 3u, ${u32(N - 1)})])`
    : ' + vec4f(bias[n4 * 4u], bias[n4 * 4u + 1u], bias[n4 * 4u + 2u], bias[n4 * 4u + 3u])') : '';
  const store = rows.map((r) => {
    const row = `(bt * ${u32(M)} + m + ${r}u)`;
    const write = scalarStore
      ? `for (var j = 0u; j < 4u; j++) { if (n4 * 4u + j < ${u32(N)}) { let o = ${row} * ${u32(N)} + n4 * 4u + j; C[o] = v[j];${s.pre ? ' pre[o] = r[j];' : ''} } }`
      : `let o = ${row} * ${u32(N4)} + n4; C[o] = v;${s.pre ? ' pre[o] = r;' : ''}`;
    return `if (m + ${r}u < ${u32(M)}) { let r = c${r}${biasExpr}; let v = ${act}; ${write} }`;
  }).join('\n  ');
  const code = `${decls}
${s.activation === 'gelu' ? MATH : ''}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let n4 = gid.x;
  if (n4 >= ${u32(N4)}) { return; }
  let m = wid.y * ${R}u;
  let bt = wid.z;
  ${rows.map((r) => `var c${r} = vec4f(0.0);`).join(' ')}
  ${body}
  ${store}
}`;
  const buffers = [s.a, s.b, s.c, ...(s.bias ? [s.bias] : []), ...(s.pre ? [s.pre] : [])];
  rt.dispatch(code, buffers, [Math.ceil(N4 / 64), Math.ceil(M / R), s.batch]);
}
