// SPDX-License-Identifier: MIT
// A measured single-core f32 SIMD peak: 12 independent chains of x = x * m + c (a fused madd in
// the relaxed build, a multiply then an add otherwise), all in registers, 96 flops per
// iteration counting a multiply-add as 2 flops as GEMM's 2*M*N*K does. Twelve chains cover the
// multiply-add latency on current x86 cores; the constants arrive as parameters so that V8 keeps
// them in registers instead of rematerialising them inside the loop.

@inline function madd(x: v128, m: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(x, m, c);
  return f32x4.add(f32x4.mul(x, m), c);
}

export function peakFlops(iters: i32, m: f32, c: f32): f32 {
  if (!ASC_FEATURE_SIMD) return 0;
  const vm = f32x4.splat(m), vc = f32x4.splat(c);
  let a0 = f32x4.splat(1), a1 = f32x4.splat(1.1), a2 = f32x4.splat(1.2), a3 = f32x4.splat(1.3), a4 = f32x4.splat(1.4), a5 = f32x4.splat(1.5);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0.1), b2 = f32x4.splat(0.2), b3 = f32x4.splat(0.3), b4 = f32x4.splat(0.4), b5 = f32x4.splat(0.5);
  for (let i = 0; i < iters; i++) {
    a0 = madd(a0, vm, vc); a1 = madd(a1, vm, vc); a2 = madd(a2, vm, vc);
    a3 = madd(a3, vm, vc); a4 = madd(a4, vm, vc); a5 = madd(a5, vm, vc);
    b0 = madd(b0, vm, vc); b1 = madd(b1, vm, vc); b2 = madd(b2, vm, vc);
    b3 = madd(b3, vm, vc); b4 = madd(b4, vm, vc); b5 = madd(b5, vm, vc);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(b0, b1)));
  const t = f32x4.add(f32x4.add(b2, b3), f32x4.add(b4, b5));
  return f32x4.extract_lane(f32x4.add(s, t), 0);
}

/** Flops per iteration of peakFlops in this build (0 without SIMD). */
export function peakFlopsPerIter(): i32 { return ASC_FEATURE_SIMD ? 96 : 0; }
