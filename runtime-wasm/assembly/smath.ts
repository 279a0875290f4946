// SPDX-License-Identifier: MIT
// Scalar math for the non-SIMD build and for loop tails. Uses AssemblyScript's Mathf (musl ports).

export function erf1(x: f32): f32 {
  const ax = Mathf.abs(x);
  const t: f32 = 1 / (1 + 0.3275911 * ax);
  const p: f32 = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  const y: f32 = 1 - p * Mathf.exp(-ax * ax);
  return x < 0 ? -y : y;
}
