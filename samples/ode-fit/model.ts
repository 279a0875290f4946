// The Lotka–Volterra predator–prey model, integrated with RK4, and the squared error of its trajectory
// against observations. Marked differentiable: pullback writes its adjoint at build time.

/**
 * Simulates from (x0, y0) with parameters exp(logp) = [alpha, beta, delta, gamma] and returns the sum of
 * squared differences from the observations taken every `every` steps (obs = [x_0, y_0, x_1, y_1, ...]).
 * @differentiable
 */
export function lossOf(logp: Float64Array, x0: number, y0: number, h: number, every: number, obs: Float64Array): number {
  const alpha = Math.exp(logp[0]), beta = Math.exp(logp[1]), delta = Math.exp(logp[2]), gamma = Math.exp(logp[3]);
  let x = x0, y = y0;
  let loss = 0;
  const samples = obs.length / 2;
  for (let k = 0; k < samples; k++) {
    const ex = x - obs[2 * k], ey = y - obs[2 * k + 1];
    loss += ex * ex + ey * ey;
    for (let s = 0; s < every; s++) {
      const k1x = alpha * x - beta * x * y, k1y = delta * x * y - gamma * y;
      const x2 = x + 0.5 * h * k1x, y2 = y + 0.5 * h * k1y;
      const k2x = alpha * x2 - beta * x2 * y2, k2y = delta * x2 * y2 - gamma * y2;
      const x3 = x + 0.5 * h * k2x, y3 = y + 0.5 * h * k2y;
      const k3x = alpha * x3 - beta * x3 * y3, k3y = delta * x3 * y3 - gamma * y3;
      const x4 = x + h * k3x, y4 = y + h * k3y;
      const k4x = alpha * x4 - beta * x4 * y4, k4y = delta * x4 * y4 - gamma * y4;
      x = x + (h / 6) * (k1x + 2 * k2x + 2 * k3x + k4x);
      y = y + (h / 6) * (k1y + 2 * k2y + 2 * k3y + k4y);
    }
  }
  return loss / samples;
}

/** The trajectory itself (not differentiated): [x_0, y_0, x_1, y_1, ...] every `every` steps. */
export function simulate(p: ArrayLike<number>, x0: number, y0: number, h: number, every: number, samples: number): Float64Array {
  const out = new Float64Array(2 * samples);
  let x = x0, y = y0;
  const [alpha, beta, delta, gamma] = [p[0]!, p[1]!, p[2]!, p[3]!];
  const f = (x: number, y: number) => [alpha * x - beta * x * y, delta * x * y - gamma * y] as const;
  for (let k = 0; k < samples; k++) {
    out[2 * k] = x; out[2 * k + 1] = y;
    for (let s = 0; s < every; s++) {
      const [k1x, k1y] = f(x, y);
      const [k2x, k2y] = f(x + 0.5 * h * k1x, y + 0.5 * h * k1y);
      const [k3x, k3y] = f(x + 0.5 * h * k2x, y + 0.5 * h * k2y);
      const [k4x, k4y] = f(x + h * k3x, y + h * k3y);
      x += (h / 6) * (k1x + 2 * k2x + 2 * k3x + k4x);
      y += (h / 6) * (k1y + 2 * k2y + 2 * k3y + k4y);
    }
  }
  return out;
}
