export const twice = (x: number): number => 2 * x;
