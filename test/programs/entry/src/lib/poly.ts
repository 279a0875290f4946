// A marked function imported by another module.

/** @differentiable */
export function horner(x: number, c0: number, c1: number, c2: number): number {
  return c0 + x * (c1 + x * c2);
}
