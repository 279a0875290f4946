// Realistic programs: logistic regression, a damped pendulum, heat diffusion with swapped buffers.
/** @differentiable */
export function logistic(w: Float64Array, X: Float64Array, y: Float64Array, lambda: number): number {
  const n = y.length, d = w.length;
  let loss = 0;
  for (let i = 0; i < n; i++) {
    let z = 0;
    for (let j = 0; j < d; j++) z += X[i * d + j] * w[j];
    const p = 1 / (1 + Math.exp(-z));
    loss -= y[i] * Math.log(p) + (1 - y[i]) * Math.log(1 - p);
  }
  let reg = 0;
  for (let j = 0; j < d; j++) reg += w[j] * w[j];
  return loss / n + 0.5 * lambda * reg;
}

/** @differentiable */
export function pendulum(theta0: number, damping: number): number {
  let th = theta0, om = 0;
  const h = 0.01;
  for (let s = 0; s < 200; s++) {
    const a = -9.81 * Math.sin(th) - damping * om;
    om = om + h * a;
    th = th + h * om;
  }
  return th * th + 0.1 * om * om;
}

/** @differentiable */
export function heat(u0: Float64Array, kappa: number): number {
  const n = u0.length;
  let u = Float64Array.from(u0);
  let next = new Float64Array(n);
  for (let step = 0; step < 20; step++) {
    for (let i = 0; i < n; i++) {
      const left = i > 0 ? u[i - 1] : 0;
      const right = i < n - 1 ? u[i + 1] : 0;
      next[i] = u[i] + kappa * (left - 2 * u[i] + right);
    }
    const tmp = u; u = next; next = tmp;
  }
  let s = 0;
  for (let i = 0; i < n; i++) s += u[i] * u[i] * (i + 1);
  return s;
}
