// SPDX-License-Identifier: MIT
// 2-D convolution, NCHW, weights [Cout, Cin, KH, KW], via im2col into the GEMM kernel.
//   forward:         y_n  [Cout, Ho*Wo]   = W [Cout, Cin*KH*KW] . cols(x_n) [Cin*KH*KW, Ho*Wo]
//   backward-input:  dx_n = col2im(W^T . dy_n)                       (transA, no transpose copy)
//   backward-filter: dW  += dy_n . cols(x_n)^T                        (transB, no transpose copy)
// A 1x1, stride 1, unpadded convolution skips im2col: x_n already is its own column matrix.
// Geometry is passed as an i32 block (see geometry offsets below) to keep signatures short.
import { gemm } from './matmul';

// i32 offsets inside the geometry block written by the TS glue
const G_N = 0, G_C = 1, G_H = 2, G_W = 3, G_CO = 4, G_KH = 5, G_KW = 6;
const G_SH = 7, G_SW = 8, G_PH = 9, G_PW = 10, G_DH = 11, G_DW = 12, G_HO = 13, G_WO = 14;

@inline function g(geo: usize, i: i32): i32 { return load<i32>(geo + (<usize>i << 2)); }

// im2col moves short rows (Wo floats); memory.copy / memory.fill go through a V8 runtime call
// that costs more than the copy at these sizes (measured: 6.5 ms of a 19 ms conv forward).
@inline function copyF32(dst: usize, src: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 8 <= n; i += 8) {
      const q = <usize>i << 2;
      v128.store(dst + q, v128.load(src + q));
      v128.store(dst + q, v128.load(src + q, 16), 16);
    }
    for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
}

@inline function zeroF32(dst: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const z = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), z);
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), 0);
}

/** cols [C*KH*KW, Ho*Wo] from one image x [C, H, W]; out-of-image taps are 0. */
export function im2col(x: usize, cols: usize, geo: usize): void {
  const C = g(geo, G_C), H = g(geo, G_H), W = g(geo, G_W), KH = g(geo, G_KH), KW = g(geo, G_KW);
  const sh = g(geo, G_SH), sw = g(geo, G_SW), ph = g(geo, G_PH), pw = g(geo, G_PW);
  const dh = g(geo, G_DH), dw = g(geo, G_DW), Ho = g(geo, G_HO), Wo = g(geo, G_WO);
  let dst = cols;
  for (let c = 0; c < C; c++) {
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const w0 = kw * dw - pw;
        // wo range whose input column lies inside [0, W)
        let lo = w0 < 0 ? (-w0 + sw - 1) / sw : 0;
        let hi = W - w0 <= 0 ? 0 : (W - w0 + sw - 1) / sw;
        if (hi > Wo) hi = Wo;
        if (lo > hi) lo = hi;
        for (let ho = 0; ho < Ho; ho++) {
          const hi_ = ho * sh - ph + kh * dh;
          if (hi_ < 0 || hi_ >= H) {
            zeroF32(dst, Wo);
          } else {
            const src = x + ((<usize>(c * H + hi_) * <usize>W) << 2);
            if (lo > 0) zeroF32(dst, lo);
            if (sw == 1) {
              if (hi > lo) copyF32(dst + (<usize>lo << 2), src + (<usize>(lo + w0) << 2), hi - lo);
            } else {
              for (let wo = lo; wo < hi; wo++) store<f32>(dst + (<usize>wo << 2), load<f32>(src + (<usize>(wo * sw + w0) << 2)));
            }
            if (hi < Wo) zeroF32(dst + (<usize>hi << 2), Wo - hi);
          }
          dst += <usize>Wo << 2;
        }
      }
    }
  }
}

/** dx [C, H, W] = sum of the cols entries that im2col would have copied from each pixel. */
export function col2im(cols: usize, dx: usize, geo: usize): void {
  const C = g(geo, G_C), H = g(geo, G_H), W = g(geo, G_W), KH = g(geo, G_KH), KW = g(geo, G_KW);
  const sh = g(geo, G_SH), sw = g(geo, G_SW), ph = g(geo, G_PH), pw = g(geo, G_PW);
  const dh = g(geo, G_DH), dw = g(geo, G_DW), Ho = g(geo, G_HO), Wo = g(geo, G_WO);
  memory.fill(dx, 0, <usize>(C * H * W) << 2);
  let src = cols;
  for (let c = 0; c < C; c++) {
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const w0 = kw * dw - pw;
        let lo = w0 < 0 ? (-w0 + sw - 1) / sw : 0;
        let hi = W - w0 <= 0 ? 0 : (W - w0 + sw - 1) / sw;
        if (hi > Wo) hi = Wo;
        if (lo > hi) lo = hi;
        for (let ho = 0; ho < Ho; ho++) {
          const hi_ = ho * sh - ph + kh * dh;
          if (hi_ >= 0 && hi_ < H) {
            const d = dx + ((<usize>(c * H + hi_) * <usize>W) << 2);
            let wo = lo;
            if (ASC_FEATURE_SIMD && sw == 1) {
              const dd = d + (<usize>w0 << 2);
              for (; wo + 4 <= hi; wo += 4) {
                const q = <usize>wo << 2;
                v128.store(dd + q, f32x4.add(v128.load(dd + q), v128.load(src + q)));
              }
            }
            for (; wo < hi; wo++) {
              const p = d + (<usize>(wo * sw + w0) << 2);
              store<f32>(p, load<f32>(p) + load<f32>(src + (<usize>wo << 2)));
            }
          }
          src += <usize>Wo << 2;
        }
      }
    }
  }
}

@inline function isPointwise(geo: usize): bool {
  return g(geo, G_KH) == 1 && g(geo, G_KW) == 1 && g(geo, G_SH) == 1 && g(geo, G_SW) == 1 && g(geo, G_PH) == 0 && g(geo, G_PW) == 0;
}

/** y [N, Cout, Ho, Wo] = conv(x [N, C, H, W], w) (+ bias[Cout] when bias != 0). cols: C*KH*KW*Ho*Wo floats. */
export function conv2dForward(x: usize, w: usize, bias: usize, y: usize, geo: usize, cols: usize, ws: usize): void {
  const N = g(geo, G_N), C = g(geo, G_C), H = g(geo, G_H), W = g(geo, G_W), CO = g(geo, G_CO);
  const K = C * g(geo, G_KH) * g(geo, G_KW);
  const P = g(geo, G_HO) * g(geo, G_WO);
  const pointwise = isPointwise(geo);
  for (let n = 0; n < N; n++) {
    const xn = x + ((<usize>n * <usize>(C * H * W)) << 2);
    const yn = y + ((<usize>n * <usize>(CO * P)) << 2);
    let src = xn;
    if (!pointwise) { im2col(xn, cols, geo); src = cols; }
    gemm(CO, P, K, w, K, 0, src, P, 0, yn, P, 0, bias, bias ? 2 : 0, 0, ws);
  }
}

/** dx [N, C, H, W] from dy [N, Cout, Ho, Wo] and w. cols: C*KH*KW*Ho*Wo floats. */
export function conv2dBackwardInput(dy: usize, w: usize, dx: usize, geo: usize, cols: usize, ws: usize): void {
  const N = g(geo, G_N), C = g(geo, G_C), H = g(geo, G_H), W = g(geo, G_W), CO = g(geo, G_CO);
  const K = C * g(geo, G_KH) * g(geo, G_KW);
  const P = g(geo, G_HO) * g(geo, G_WO);
  const pointwise = isPointwise(geo);
  for (let n = 0; n < N; n++) {
    const dxn = dx + ((<usize>n * <usize>(C * H * W)) << 2);
    const dyn = dy + ((<usize>n * <usize>(CO * P)) << 2);
    if (pointwise) {
      gemm(K, P, CO, w, K, 1, dyn, P, 0, dxn, P, 0, 0, 0, 0, ws);
    } else {
      gemm(K, P, CO, w, K, 1, dyn, P, 0, cols, P, 0, 0, 0, 0, ws);
      col2im(cols, dxn, geo);
    }
  }
}

/** dw [Cout, C, KH, KW] (+= when accumulate) from x and dy. cols: C*KH*KW*Ho*Wo floats. */
export function conv2dBackwardFilter(x: usize, dy: usize, dw: usize, geo: usize, accumulate: i32, cols: usize, ws: usize): void {
  const N = g(geo, G_N), C = g(geo, G_C), H = g(geo, G_H), W = g(geo, G_W), CO = g(geo, G_CO);
  const K = C * g(geo, G_KH) * g(geo, G_KW);
  const P = g(geo, G_HO) * g(geo, G_WO);
  const pointwise = isPointwise(geo);
  if (N == 0 && !accumulate) memory.fill(dw, 0, <usize>(CO * K) << 2);
  for (let n = 0; n < N; n++) {
    const xn = x + ((<usize>n * <usize>(C * H * W)) << 2);
    const dyn = dy + ((<usize>n * <usize>(CO * P)) << 2);
    let src = xn;
    if (!pointwise) { im2col(xn, cols, geo); src = cols; }
    gemm(CO, K, P, dyn, P, 0, src, P, 1, dw, K, (n > 0 || accumulate) ? 1 : 0, 0, 0, 0, ws);
  }
}

/** db [Cout] (+= when accumulate) = sum of dy over batch and space. */
export function conv2dBackwardBias(dy: usize, db: usize, geo: usize, accumulate: i32): void {
  const N = g(geo, G_N), CO = g(geo, G_CO);
  const P = g(geo, G_HO) * g(geo, G_WO);
  for (let co = 0; co < CO; co++) {
    let s: f64 = accumulate ? <f64>load<f32>(db + (<usize>co << 2)) : 0;
    for (let n = 0; n < N; n++) {
      const p = dy + ((<usize>(n * CO + co) * <usize>P) << 2);
      let acc: f32 = 0;
      let i = 0;
      if (ASC_FEATURE_SIMD) {
        let v = f32x4.splat(0);
        for (; i + 4 <= P; i += 4) v = f32x4.add(v, v128.load(p + (<usize>i << 2)));
        acc = (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
      }
      for (; i < P; i++) acc += load<f32>(p + (<usize>i << 2));
      s += <f64>acc;
    }
    store<f32>(db + (<usize>co << 2), <f32>s);
  }
}
