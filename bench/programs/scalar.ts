// Programs of the scalar benchmark, written as a user would, with their hand-written gradients beside them.

/** @differentiable */
export function rosenbrock(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length - 1; i++) {
    const a = x[i + 1] - x[i] * x[i];
    const b = 1 - x[i];
    s += 100 * a * a + b * b;
  }
  return s;
}

/** Hand-written gradient, a function returning a new array as grad() does. */
export function rosenbrockGrad(x: Float64Array): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length - 1; i++) {
    const a = x[i + 1] - x[i] * x[i];
    g[i] += -400 * a * x[i] - 2 * (1 - x[i]);
    g[i + 1] += 200 * a;
  }
  return g;
}

/** The hand-written gradient written into a given array, as grad(rosenbrock, 0, { out }) does. */
export function rosenbrockGradInto(x: Float64Array, g: Float64Array): Float64Array {
  g.fill(0);
  for (let i = 0; i < x.length - 1; i++) {
    const a = x[i + 1] - x[i] * x[i];
    g[i] += -400 * a * x[i] - 2 * (1 - x[i]);
    g[i + 1] += 200 * a;
  }
  return g;
}

/** Hand-written value and gradient from one loop, as valueAndGrad(rosenbrock) returns them. */
export function rosenbrockValueAndGrad(x: Float64Array): [number, Float64Array] {
  const g = new Float64Array(x.length);
  let s = 0;
  for (let i = 0; i < x.length - 1; i++) {
    const a = x[i + 1] - x[i] * x[i];
    const b = 1 - x[i];
    s += 100 * a * a + b * b;
    g[i] += -400 * a * x[i] - 2 * b;
    g[i + 1] += 200 * a;
  }
  return [s, g];
}

/**
 * Lotka–Volterra prey/predator model integrated with classical RK4; the loss is the squared distance of the
 * final state from a target. Differentiated with respect to the 4 parameters p = [alpha, beta, delta, gamma].
 * @differentiable
 */
export function lotkaVolterra(p: Float64Array, x0: number, y0: number, h: number, steps: number): number {
  const alpha = p[0], beta = p[1], delta = p[2], gamma = p[3];
  let x = x0, y = y0;
  for (let s = 0; s < steps; s++) {
    const k1x = alpha * x - beta * x * y;
    const k1y = delta * x * y - gamma * y;
    const x2 = x + 0.5 * h * k1x, y2 = y + 0.5 * h * k1y;
    const k2x = alpha * x2 - beta * x2 * y2;
    const k2y = delta * x2 * y2 - gamma * y2;
    const x3 = x + 0.5 * h * k2x, y3 = y + 0.5 * h * k2y;
    const k3x = alpha * x3 - beta * x3 * y3;
    const k3y = delta * x3 * y3 - gamma * y3;
    const x4 = x + h * k3x, y4 = y + h * k3y;
    const k4x = alpha * x4 - beta * x4 * y4;
    const k4y = delta * x4 * y4 - gamma * y4;
    x = x + (h / 6) * (k1x + 2 * k2x + 2 * k3x + k4x);
    y = y + (h / 6) * (k1y + 2 * k2y + 2 * k3y + k4y);
  }
  return (x - 1) * (x - 1) + (y - 1) * (y - 1);
}

/** Hand-written reverse mode of lotkaVolterra: stores the states, then walks back. */
export function lotkaVolterraGrad(p: Float64Array, x0: number, y0: number, h: number, steps: number): Float64Array {
  const g = new Float64Array(4), xs = new Float64Array(steps), ys = new Float64Array(steps);
  const alpha = p[0]!, beta = p[1]!, delta = p[2]!, gamma = p[3]!;
  let x = x0, y = y0;
  for (let s = 0; s < steps; s++) {
    xs[s] = x; ys[s] = y;
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
  let xb = 2 * (x - 1), yb = 2 * (y - 1);
  let ga = 0, gb = 0, gd = 0, gg = 0;
  for (let s = steps - 1; s >= 0; s--) {
    x = xs[s]!; y = ys[s]!;
    const k1x = alpha * x - beta * x * y, k1y = delta * x * y - gamma * y;
    const x2 = x + 0.5 * h * k1x, y2 = y + 0.5 * h * k1y;
    const k2x = alpha * x2 - beta * x2 * y2, k2y = delta * x2 * y2 - gamma * y2;
    const x3 = x + 0.5 * h * k2x, y3 = y + 0.5 * h * k2y;
    const k3x = alpha * x3 - beta * x3 * y3, k3y = delta * x3 * y3 - gamma * y3;
    const x4 = x + h * k3x, y4 = y + h * k3y;
    const c = h / 6;
    const k1xb = c * xb, k2xb = 2 * c * xb, k3xb = 2 * c * xb, k4xb = c * xb;
    const k1yb = c * yb, k2yb = 2 * c * yb, k3yb = 2 * c * yb, k4yb = c * yb;
    // k4 = f(x4, y4)
    ga += k4xb * x4; gb -= k4xb * x4 * y4; gd += k4yb * x4 * y4; gg -= k4yb * y4;
    const x4b = k4xb * (alpha - beta * y4) + k4yb * delta * y4;
    const y4b = -k4xb * beta * x4 + k4yb * (delta * x4 - gamma);
    let xnb = xb + x4b, ynb = yb + y4b;
    const k3xb2 = k3xb + h * x4b, k3yb2 = k3yb + h * y4b;
    ga += k3xb2 * x3; gb -= k3xb2 * x3 * y3; gd += k3yb2 * x3 * y3; gg -= k3yb2 * y3;
    const x3b = k3xb2 * (alpha - beta * y3) + k3yb2 * delta * y3;
    const y3b = -k3xb2 * beta * x3 + k3yb2 * (delta * x3 - gamma);
    xnb += x3b; ynb += y3b;
    const k2xb2 = k2xb + 0.5 * h * x3b, k2yb2 = k2yb + 0.5 * h * y3b;
    ga += k2xb2 * x2; gb -= k2xb2 * x2 * y2; gd += k2yb2 * x2 * y2; gg -= k2yb2 * y2;
    const x2b = k2xb2 * (alpha - beta * y2) + k2yb2 * delta * y2;
    const y2b = -k2xb2 * beta * x2 + k2yb2 * (delta * x2 - gamma);
    xnb += x2b; ynb += y2b;
    const k1xb2 = k1xb + 0.5 * h * x2b, k1yb2 = k1yb + 0.5 * h * y2b;
    ga += k1xb2 * x; gb -= k1xb2 * x * y; gd += k1yb2 * x * y; gg -= k1yb2 * y;
    xnb += k1xb2 * (alpha - beta * y) + k1yb2 * delta * y;
    ynb += -k1xb2 * beta * x + k1yb2 * (delta * x - gamma);
    xb = xnb; yb = ynb;
  }
  g[0] = ga; g[1] = gb; g[2] = gd; g[3] = gg;
  return g;
}

/** 50 Newton iterations for sqrt(a), differentiated with respect to a. @differentiable */
export function newtonSqrt(a: number): number {
  let x = a;
  for (let i = 0; i < 50; i++) x = 0.5 * (x + a / x);
  return x;
}

/** Hand-written: the reverse of x ← (x + a/x)/2, storing the iterates. */
export function newtonSqrtGrad(a: number): number {
  const xs = new Float64Array(50);
  let x = a;
  for (let i = 0; i < 50; i++) { xs[i] = x; x = 0.5 * (x + a / x); }
  let xb = 1, ab = 0;
  for (let i = 49; i >= 0; i--) {
    const xi = xs[i]!;
    ab += xb * 0.5 / xi;
    xb = xb * 0.5 * (1 - a / (xi * xi));
  }
  return ab + xb;
}

/**
 * Explicit heat diffusion on an n×n grid (row-major, insulated edges: a missing neighbour reads the cell
 * itself), `steps` steps of u ← u + k·Δu; the loss is the sum of squares of the final field, differentiated
 * with respect to the initial field.
 * @differentiable
 */
export function heat(u0: Float64Array, n: number, steps: number, k: number): number {
  let u = Float64Array.from(u0);
  let v = new Float64Array(u0.length);
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < n; i++) {
      const up = i > 0 ? i - 1 : i, down = i < n - 1 ? i + 1 : i;
      for (let j = 0; j < n; j++) {
        const left = j > 0 ? j - 1 : j, right = j < n - 1 ? j + 1 : j;
        const c = u[i * n + j];
        v[i * n + j] = c + k * (u[up * n + j] + u[down * n + j] + u[i * n + left] + u[i * n + right] - 4 * c);
      }
    }
    const t = u;
    u = v;
    v = t;
  }
  let e = 0;
  for (let p = 0; p < u.length; p++) e += u[p] * u[p];
  return e;
}

/** Hand-written: the step is linear, so its reverse applies the transposed stencil `steps` times to 2·u. */
export function heatGrad(u0: Float64Array, n: number, steps: number, k: number): Float64Array {
  let u = Float64Array.from(u0), v = new Float64Array(u0.length);
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < n; i++) {
      const up = i > 0 ? i - 1 : i, down = i < n - 1 ? i + 1 : i;
      for (let j = 0; j < n; j++) {
        const left = j > 0 ? j - 1 : j, right = j < n - 1 ? j + 1 : j;
        const c = u[i * n + j]!;
        v[i * n + j] = c + k * (u[up * n + j]! + u[down * n + j]! + u[i * n + left]! + u[i * n + right]! - 4 * c);
      }
    }
    const t = u; u = v; v = t;
  }
  let g = new Float64Array(u.length), h = new Float64Array(u.length);
  for (let p = 0; p < u.length; p++) g[p] = 2 * u[p]!;
  for (let s = 0; s < steps; s++) {
    h.fill(0);
    for (let i = 0; i < n; i++) {
      const up = i > 0 ? i - 1 : i, down = i < n - 1 ? i + 1 : i;
      for (let j = 0; j < n; j++) {
        const left = j > 0 ? j - 1 : j, right = j < n - 1 ? j + 1 : j;
        const gv = g[i * n + j]!, kg = k * gv;
        h[i * n + j]! += gv - 4 * kg;
        h[up * n + j]! += kg; h[down * n + j]! += kg; h[i * n + left]! += kg; h[i * n + right]! += kg;
      }
    }
    const t = g; g = h; h = t;
  }
  return g;
}
