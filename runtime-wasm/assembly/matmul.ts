// SPDX-License-Identifier: MIT
// GEMM: C (M x N) = op(A) (M x K) * op(B) (K x N) [+ C] [+ bias], then an optional activation.
//
// Goto/BLIS structure: the N dimension is cut into NC-wide blocks, K into KC-deep slices and M
// into MC-tall blocks. For each (NC, KC) pair a KC x NC slice of op(B) is packed into NR-wide
// column panels (k-major, so the micro-kernel reads 2 vectors per k), and for each MC block a
// MC x KC slice of op(A) into MR-tall row panels (k-major, one splat load per row and k).
// Transposes are absorbed by the packing routines, so transA/transB cost nothing extra in the
// inner loop. The MR x NR = 5 x 8 micro-kernel keeps 10 v128 accumulators: on x86 V8 reserves
// xmm15 as a scratch register, which leaves 15 for the 10 accumulators, 2 B vectors, the A
// splat and the product (6 x 8 spills; measured 4x8 33, 5x8 40, 6x8 25 GFLOP/s in L1 on Zen 3).
// Each k of an A panel is padded to 8 floats so that A and B advance by the same 32 bytes and
// the loop needs a single index register (V8 does not fold splat-load offsets into addresses).
import { fma4 } from './vmath';
import { unaryRows, U_RELU } from './elementwise';

export const MR = 5;
/** Floats per k in a packed A panel (MR rounded up to 8, see above). */
export const AP = 8;
export const NR = 8;
export const MC_MAX = 240;
export const KC_MAX = 512;
export const NC_MAX = 2048;
let MC = 120;
let KC = 384;
let NC = 2048;

/** Tuning hook: sets the cache blocking (clamped to the workspace maxima). */
export function setBlocking(mc: i32, kc: i32, nc: i32): void {
  MC = max(MR, min(MC_MAX, mc / MR * MR));
  KC = max(1, min(KC_MAX, kc));
  NC = max(NR, min(NC_MAX, nc / NR * NR));
}

/** Bytes of scratch a gemm call needs: packed A block, packed B block and one MR x NR tile. */
export function gemmWorkspaceBytes(): i32 {
  return (MC_MAX / MR * AP * KC_MAX + KC_MAX * NC_MAX + MR * NR) * 4 + 64;
}

// ---- packing -----------------------------------------------------------------------------

/**
 * Packs op(A)[i0 : i0+mc, p0 : p0+kc] into ceil(mc/MR) panels of kc*AP floats: element (r, k)
 * of a panel at k*AP + r; rows past mc and the AP - MR pad lanes are 0.
 */
function packA(a: usize, lda: i32, transA: i32, i0: i32, mc: i32, p0: i32, kc: i32, dst: usize): void {
  for (let ip = 0; ip < mc; ip += MR) {
    const mr = min(MR, mc - ip);
    const d = dst + (<usize>((ip / MR) * kc * AP) << 2);
    if (transA) {
      // A is stored K x M: the MR values of one k are contiguous.
      let src = a + ((<usize>p0 * <usize>lda + <usize>(i0 + ip)) << 2);
      const step = <usize>lda << 2;
      if (ASC_FEATURE_SIMD && mr == MR) {
        const z = f32x4.splat(0);
        for (let k = 0; k < kc; k++) {
          const o = d + (<usize>k << 5);
          v128.store(o, v128.load(src));
          v128.store(o, f32x4.replace_lane(z, 0, load<f32>(src, 16)), 16);
          src += step;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let r = 0; r < AP; r++) store<f32>(d + (<usize>(k * AP + r) << 2), r < mr ? load<f32>(src + (<usize>r << 2)) : 0);
          src += step;
        }
      }
    } else {
      // A is stored M x K: transpose 4 x 4 blocks of rows 0-3 on the fly, row 4 by lanes.
      const src = a + ((<usize>(i0 + ip) * <usize>lda + <usize>p0) << 2);
      const ld = <usize>lda << 2;
      let k = 0;
      if (ASC_FEATURE_SIMD && mr == MR) {
        const z = f32x4.splat(0);
        for (; k + 4 <= kc; k += 4) {
          const s = src + (<usize>k << 2);
          const r0 = v128.load(s);
          const r1 = v128.load(s + ld);
          const r2 = v128.load(s + 2 * ld);
          const r3 = v128.load(s + 3 * ld);
          const r4 = v128.load(s + 4 * ld);
          const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
          const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
          const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
          const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
          const o = d + (<usize>k << 5);
          v128.store(o, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
          v128.store(o, v128.shuffle<f32>(r4, z, 0, 4, 4, 4), 16);
          v128.store(o, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 32);
          v128.store(o, v128.shuffle<f32>(r4, z, 1, 4, 4, 4), 48);
          v128.store(o, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 64);
          v128.store(o, v128.shuffle<f32>(r4, z, 2, 4, 4, 4), 80);
          v128.store(o, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 96);
          v128.store(o, v128.shuffle<f32>(r4, z, 3, 4, 4, 4), 112);
        }
      }
      for (; k < kc; k++) {
        for (let r = 0; r < AP; r++) {
          store<f32>(d + (<usize>(k * AP + r) << 2), r < mr ? load<f32>(src + <usize>r * ld + (<usize>k << 2)) : 0);
        }
      }
    }
  }
}

/** Packs op(B)[p0 : p0+kc, j0 : j0+nc] into ceil(nc/NR) panels of kc*NR floats, zero padded. */
function packB(b: usize, ldb: i32, transB: i32, p0: i32, kc: i32, j0: i32, nc: i32, dst: usize): void {
  for (let jp = 0; jp < nc; jp += NR) {
    const nr = min(NR, nc - jp);
    const d = dst + (<usize>(jp * kc) << 2);
    if (!transB) {
      // B is stored K x N: a k-row of NR values is contiguous.
      let src = b + ((<usize>p0 * <usize>ldb + <usize>(j0 + jp)) << 2);
      const step = <usize>ldb << 2;
      if (ASC_FEATURE_SIMD && nr == NR) {
        for (let k = 0; k < kc; k++) {
          const o = d + (<usize>k << 5);
          v128.store(o, v128.load(src));
          v128.store(o, v128.load(src, 16), 16);
          src += step;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let c = 0; c < NR; c++) store<f32>(d + (<usize>(k * NR + c) << 2), c < nr ? load<f32>(src + (<usize>c << 2)) : 0);
          src += step;
        }
      }
    } else {
      // B is stored N x K: transpose two 4 x 4 blocks per 4 values of k.
      const src = b + ((<usize>(j0 + jp) * <usize>ldb + <usize>p0) << 2);
      const ld = <usize>ldb << 2;
      let k = 0;
      if (ASC_FEATURE_SIMD && nr == NR) {
        for (; k + 4 <= kc; k += 4) {
          const o = d + (<usize>k << 5);
          for (let h = 0; h < 2; h++) {
            const s = src + (<usize>k << 2) + <usize>(4 * h) * ld;
            const r0 = v128.load(s);
            const r1 = v128.load(s + ld);
            const r2 = v128.load(s + 2 * ld);
            const r3 = v128.load(s + 3 * ld);
            const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
            const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
            const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
            const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
            const oh = o + (<usize>h << 4);
            v128.store(oh, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
            v128.store(oh, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 32);
            v128.store(oh, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 64);
            v128.store(oh, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 96);
          }
        }
      }
      for (; k < kc; k++) {
        for (let c = 0; c < NR; c++) {
          store<f32>(d + (<usize>(k * NR + c) << 2), c < nr ? load<f32>(src + <usize>c * ld + (<usize>k << 2)) : 0);
        }
      }
    }
  }
}

// ---- micro-kernels -----------------------------------------------------------------------

// Epilogue flags
const F_LOAD = 1; // add the existing C (accumulate or a later K slice)
const F_BIAS_COL = 2; // add bias[j]
const F_BIAS_ROW = 4; // add bias[i]
const F_RELU = 8;

/**
 * Full 5 x 8 tile product: dst[0:5, 0:8] (row stride ld floats) = sum_k a[k] (x) b[k].
 * Kept free of epilogue code on purpose: with the epilogue in the same function TurboFan hoists
 * all splat loads to the top of the loop body and spills accumulators (measured 19 vs 40 GFLOP/s).
 */
function kernel5x8(kc: i32, a: usize, b: usize, dst: usize, ld: i32): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let c40 = f32x4.splat(0), c41 = f32x4.splat(0);
  const end = <usize>kc << 5;
  for (let i: usize = 0; i < end; i += 32) {
    const pb = b + i, pa = a + i;
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a0 = v128.load32_splat(pa);
    c00 = fma4(a0, b0, c00); c01 = fma4(a0, b1, c01);
    a0 = v128.load32_splat(pa, 4);
    c10 = fma4(a0, b0, c10); c11 = fma4(a0, b1, c11);
    a0 = v128.load32_splat(pa, 8);
    c20 = fma4(a0, b0, c20); c21 = fma4(a0, b1, c21);
    a0 = v128.load32_splat(pa, 12);
    c30 = fma4(a0, b0, c30); c31 = fma4(a0, b1, c31);
    a0 = v128.load32_splat(pa, 16);
    c40 = fma4(a0, b0, c40); c41 = fma4(a0, b1, c41);
  }
  const s = <usize>ld << 2;
  v128.store(dst, c00); v128.store(dst, c01, 16); dst += s;
  v128.store(dst, c10); v128.store(dst, c11, 16); dst += s;
  v128.store(dst, c20); v128.store(dst, c21, 16); dst += s;
  v128.store(dst, c30); v128.store(dst, c31, 16); dst += s;
  v128.store(dst, c40); v128.store(dst, c41, 16);
}

/** C[0:5, 0:8] = epilogue(tile) for a full tile: + C (F_LOAD), + bias, relu. */
function epilogue5x8(tile: usize, c: usize, ldc: i32, flags: i32, bias: usize): void {
  const ld = <usize>ldc << 2;
  const z = f32x4.splat(0);
  let bc0 = z, bc1 = z;
  if (flags & F_BIAS_COL) { bc0 = v128.load(bias); bc1 = v128.load(bias, 16); }
  for (let r = 0; r < MR; r++) {
    const t = tile + (<usize>r << 5);
    const cr = c + <usize>r * ld;
    let v0 = v128.load(t), v1 = v128.load(t, 16);
    if (flags & F_LOAD) { v0 = f32x4.add(v0, v128.load(cr)); v1 = f32x4.add(v1, v128.load(cr, 16)); }
    if (flags & F_BIAS_COL) { v0 = f32x4.add(v0, bc0); v1 = f32x4.add(v1, bc1); }
    if (flags & F_BIAS_ROW) { const br = v128.load32_splat(bias + (<usize>r << 2)); v0 = f32x4.add(v0, br); v1 = f32x4.add(v1, br); }
    if (flags & F_RELU) { v0 = f32x4.max(v0, z); v1 = f32x4.max(v1, z); }
    v128.store(cr, v0); v128.store(cr, v1, 16);
  }
}

/** Any tile: the MR x NR product goes to `tile` (row stride NR), then mr x nr of it is merged into C. */
function edgeTile(kc: i32, a: usize, b: usize, tile: usize, c: usize, ldc: i32, mr: i32, nr: i32, flags: i32, bias: usize): void {
  if (ASC_FEATURE_SIMD) {
    kernel5x8(kc, a, b, tile, NR);
  } else {
    for (let i = 0; i < MR * NR; i++) store<f32>(tile + (<usize>i << 2), 0);
    for (let k = 0; k < kc; k++) {
      const bk = b + (<usize>(k * NR) << 2);
      for (let r = 0; r < MR; r++) {
        const ar = load<f32>(a + (<usize>(k * AP + r) << 2));
        const t = tile + (<usize>(r * NR) << 2);
        for (let j = 0; j < NR; j++) {
          const q = <usize>j << 2;
          store<f32>(t + q, load<f32>(t + q) + ar * load<f32>(bk + q));
        }
      }
    }
  }
  for (let r = 0; r < mr; r++) {
    const cr = c + ((<usize>r * <usize>ldc) << 2);
    const tr = tile + (<usize>(r * NR) << 2);
    for (let j = 0; j < nr; j++) {
      const q = <usize>j << 2;
      let v = load<f32>(tr + q);
      if (flags & F_LOAD) v += load<f32>(cr + q);
      if (flags & F_BIAS_COL) v += load<f32>(bias + q);
      if (flags & F_BIAS_ROW) v += load<f32>(bias + (<usize>r << 2));
      if ((flags & F_RELU) && !(v > 0)) v = v != v ? v : 0;
      store<f32>(cr + q, v);
    }
  }
}

/** Splits n into ceil(n / block) near-equal chunks, rounded up to a multiple of `multiple`. */
function balanced(n: i32, block: i32, multiple: i32): i32 {
  if (n <= block) return n;
  const parts = (n + block - 1) / block;
  const size = (n + parts - 1) / parts;
  return (size + multiple - 1) / multiple * multiple;
}

/**
 * C = op(A) op(B) (+ C when accumulate) (+ bias) then act, all f32, row-major.
 * transA: A is stored K x M (lda >= M) instead of M x K (lda >= K); transB likewise for B.
 * biasMode: 0 none, 1 bias[N] added to every row, 2 bias[M] added to every column.
 * act: a unary op code (elementwise.ts), 0 for none; relu is fused into the micro-kernel.
 * ws: gemmWorkspaceBytes() bytes of scratch.
 */
export function gemm(
  M: i32, N: i32, K: i32,
  a: usize, lda: i32, transA: i32,
  b: usize, ldb: i32, transB: i32,
  c: usize, ldc: i32, accumulate: i32,
  bias: usize, biasMode: i32, act: i32, ws: usize,
): void {
  if (M <= 0 || N <= 0) return;
  const pa = (ws + 63) & ~(<usize>63);
  const pb = pa + (<usize>(MC_MAX / MR * AP * KC_MAX) << 2);
  const tile = pb + (<usize>(KC_MAX * NC_MAX) << 2);
  const baseFlags = (biasMode == 1 ? F_BIAS_COL : biasMode == 2 ? F_BIAS_ROW : 0) | (act == U_RELU ? F_RELU : 0);
  if (K <= 0) {
    // empty sum: C = (accumulate ? C : 0) + bias, then act
    for (let i = 0; i < M; i++) {
      const cr = c + ((<usize>i * <usize>ldc) << 2);
      for (let j = 0; j < N; j++) {
        let v: f32 = accumulate ? load<f32>(cr + (<usize>j << 2)) : 0;
        if (biasMode == 1) v += load<f32>(bias + (<usize>j << 2));
        else if (biasMode == 2) v += load<f32>(bias + (<usize>i << 2));
        store<f32>(cr + (<usize>j << 2), v);
      }
    }
    if (act != 0) unaryRows(act, c, ldc, M, N);
    return;
  }
  const ncB = balanced(N, NC, NR);
  const kcB = balanced(K, KC, 1);
  const mcB = balanced(M, MC, MR);
  for (let jc = 0; jc < N; jc += ncB) {
    const nc = min(ncB, N - jc);
    for (let pc = 0; pc < K; pc += kcB) {
      const kc = min(kcB, K - pc);
      packB(b, ldb, transB, pc, kc, jc, nc, pb);
      const last = pc + kc == K;
      let flags = (pc > 0 || accumulate) ? F_LOAD : 0;
      if (last) flags |= baseFlags;
      for (let ic = 0; ic < M; ic += mcB) {
        const mc = min(mcB, M - ic);
        packA(a, lda, transA, ic, mc, pc, kc, pa);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const bp = pb + (<usize>(jr * kc) << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const ap = pa + (<usize>((ir / MR) * kc * AP) << 2);
            const cp = c + ((<usize>(ic + ir) * <usize>ldc + <usize>(jc + jr)) << 2);
            const bb = (flags & F_BIAS_COL) ? bias + (<usize>(jc + jr) << 2) : (flags & F_BIAS_ROW) ? bias + (<usize>(ic + ir) << 2) : 0;
            if (ASC_FEATURE_SIMD && mr == MR && nr == NR) {
              if (flags == 0) kernel5x8(kc, ap, bp, cp, ldc);
              else { kernel5x8(kc, ap, bp, tile, NR); epilogue5x8(tile, cp, ldc, flags, bb); }
            } else edgeTile(kc, ap, bp, tile, cp, ldc, mr, nr, flags, bb);
          }
        }
        if (last && act != 0 && act != U_RELU) {
          unaryRows(act, c + ((<usize>ic * <usize>ldc + <usize>jc) << 2), ldc, mc, nc);
        }
      }
    }
  }
}

/**
 * `batch` independent gemms; operand i starts at a + i*strideA (floats), likewise b and c.
 * A stride of 0 broadcasts that operand over the batch.
 */
export function gemmBatched(
  batch: i32, M: i32, N: i32, K: i32,
  a: usize, lda: i32, strideA: i32, transA: i32,
  b: usize, ldb: i32, strideB: i32, transB: i32,
  c: usize, ldc: i32, strideC: i32, accumulate: i32,
  bias: usize, biasMode: i32, act: i32, ws: usize,
): void {
  for (let i = 0; i < batch; i++) {
    gemm(M, N, K,
      a + ((<usize>i * <usize>strideA) << 2), lda, transA,
      b + ((<usize>i * <usize>strideB) << 2), ldb, transB,
      c + ((<usize>i * <usize>strideC) << 2), ldc, accumulate,
      bias, biasMode, act, ws);
  }
}
