// Second order: reverse mode over the transformer's directional derivatives. Hessians against closed forms,
// hvp against finite differences of the gradient, and grad(grad(f)).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { grad, hvp, hessian } from '../../sdk/index.js';
import { createCompiler, transpileToJs } from '../../transformer/compiler.js';
import { load, root, transformProgram } from '../support/compile.js';

const m = await load('test/programs/scalar/second.ts');
const models = await load('test/programs/scalar/models.ts');
const nu5 = await load('test/programs/scalar/newuser5.ts');
const close = (a: number, b: number, tol = 1e-10) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(a), Math.abs(b));

test('Hessian of Rosenbrock matches the closed form', () => {
  const x = Float64Array.from([0.3, -0.7, 1.2, 0.5]);
  const H = hessian(m.rosenbrock)(x);
  const n = x.length;
  const E = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n - 1; i++) {
    E[i]![i]! += 1200 * x[i]! ** 2 - 400 * x[i + 1]! + 2;
    E[i]![i + 1]! += -400 * x[i]!;
    E[i + 1]![i]! += -400 * x[i]!;
    E[i + 1]![i + 1]! += 200;
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) assert.ok(close(H[i]![j]!, E[i]![j]!), `H[${i}][${j}] = ${H[i]![j]} expected ${E[i]![j]}`);
});

test('Hessian of softplus of a quadratic matches σ(q)(1-σ(q))·ggᵀ + σ(q)·A', () => {
  const n = 3;
  const A = Float64Array.from([2, 0.5, -0.3, 0.5, 1, 0.2, -0.3, 0.2, 1.5]);
  const b = Float64Array.from([0.1, -0.2, 0.3]);
  const x = Float64Array.from([0.4, -0.1, 0.7]);
  const Ax = Array.from({ length: n }, (_, i) => A[i * n]! * x[0]! + A[i * n + 1]! * x[1]! + A[i * n + 2]! * x[2]!);
  const q = 0.5 * Ax.reduce((s, v, i) => s + v * x[i]!, 0) + b.reduce((s, v, i) => s + v * x[i]!, 0);
  const sig = 1 / (1 + Math.exp(-q));
  const gq = Ax.map((v, i) => v + b[i]!);
  const H = hessian(m.softplusQuadratic)(x, A, b);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    const expect = sig * (1 - sig) * gq[i]! * gq[j]! + sig * A[i * n + j]!;
    assert.ok(close(H[i]![j]!, expect), `H[${i}][${j}] = ${H[i]![j]} expected ${expect}`);
  }
});

test('Hessian of a function with loops and branches matches the closed form', () => {
  const x = Float64Array.from([0.5, -0.4, 1.1, -1.3]);
  const n = x.length;
  const H = hessian(m.branchy)(x);
  const E = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    const k = (i + 1) % n;
    if (x[i]! > 0) E[i]![i]! += 6 * x[i]!;
    else {
      E[i]![i]! += -Math.sin(x[i]!) * x[k]!;
      E[i]![k]! += Math.cos(x[i]!);
      E[k]![i]! += Math.cos(x[i]!);
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) assert.ok(close(H[i]![j]!, E[i]![j]!), `H[${i}][${j}] = ${H[i]![j]} expected ${E[i]![j]}`);
});

test('hvp equals the finite difference of the gradient along v', () => {
  const x = Float64Array.from([0.3, -0.7, 1.2, 0.5, 0.9]);
  const v = Float64Array.from([0.2, -0.1, 0.4, 0.3, -0.5]);
  const Hv = hvp(m.rosenbrock)(x, v) as Float64Array;
  const g = grad(m.rosenbrock);
  const eps = 1e-6;
  const up = g(Float64Array.from(x, (xi, i) => xi + eps * v[i]!)) as Float64Array;
  const dn = g(Float64Array.from(x, (xi, i) => xi - eps * v[i]!)) as Float64Array;
  for (let i = 0; i < x.length; i++) assert.ok(close(Hv[i]!, (up[i]! - dn[i]!) / (2 * eps), 1e-6), `Hv[${i}]`);
});

test('hvp of a function whose scratch array is an array literal equals finite differences of the gradient', () => {
  const x = [0.3, 0.7], v = [1, -0.5];
  const Hv = hvp(nu5.literalScratch)(x, v) as Float64Array;
  const g = grad(nu5.literalScratch), eps = 1e-6;
  const up = g(x.map((xi, i) => xi + eps * v[i]!)) as Float64Array, dn = g(x.map((xi, i) => xi - eps * v[i]!)) as Float64Array;
  for (let i = 0; i < 2; i++) assert.ok(close(Hv[i]!, (up[i]! - dn[i]!) / (2 * eps), 1e-6), `Hv[${i}] = ${Hv[i]}, finite differences ${(up[i]! - dn[i]!) / (2 * eps)}`);
});

test('hvp of logistic regression, a damped pendulum and heat diffusion equals finite differences of the gradient', () => {
  let seed = 9;
  const r = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return (seed / 2147483648) * 2 - 1; };
  const v = (n: number) => Float64Array.from({ length: n }, r);
  const fdHv = (f: any, args: any[], an: number, vv: any) => {
    const g = grad(f, an) as any;
    const eps = 1e-6;
    const at = (s: number) => args.map((a, i) => (i !== an ? a : typeof a === 'number' ? a + s * vv : Float64Array.from(a, (x: number, k) => x + s * vv[k])));
    const up = g(...at(eps)), dn = g(...at(-eps));
    return typeof up === 'number' ? (up - dn) / (2 * eps) : Float64Array.from(up as Float64Array, (u, k) => (u - (dn as Float64Array)[k]!) / (2 * eps));
  };
  const cases: [string, any, any[], number, any][] = [
    ['logistic', models.logistic, [v(3), v(15), Float64Array.from([1, 0, 1, 1, 0]), 0.1], 0, v(3)],
    ['pendulum', models.pendulum, [0.6, 0.3], 0, 1],
    ['heat (field)', models.heat, [v(8), 0.2], 0, v(8)],
    ['heat (kappa)', models.heat, [v(8), 0.2], 1, 1],
  ];
  for (const [name, f, args, an, vv] of cases) {
    const h = (hvp(f, an) as any)(...args, vv);
    const e = fdHv(f, args, an, vv);
    const hs = typeof h === 'number' ? [h] : Array.from(h as Float64Array), es = typeof e === 'number' ? [e] : Array.from(e);
    hs.forEach((x, k) => assert.ok(close(x, es[k]!, 1e-5), `${name}: Hv[${k}] = ${x}, finite differences ${es[k]}`));
  }
});

test('grad(grad(f)) for functions of numbers', () => {
  const x = 0.37;
  assert.ok(close(grad(grad(m.cube))(x) as unknown as number, 6 * x + 4 * Math.exp(2 * x)));
  const y = 1.3;
  // ∂/∂x f = 2xy + y cos(xy); its gradient in (x, y): (2y − y² sin(xy), 2x + cos(xy) − xy sin(xy)).
  const dfx = grad(m.twoVars, 0);
  const [hxx, hxy] = grad(dfx, [0, 1])(x, y) as unknown as number[];
  assert.ok(close(hxx!, 2 * y - y * y * Math.sin(x * y)));
  assert.ok(close(hxy!, 2 * x + Math.cos(x * y) - x * y * Math.sin(x * y)));
});

test('second derivatives taken while the module loads (its top-level code) are right', () => {
  const x = 0.3, y = -0.7;
  assert.ok(close(m.atLoad.hvp[0]!, 1200 * x * x - 400 * y + 2) && close(m.atLoad.hvp[1]!, -400 * x), String(Array.from(m.atLoad.hvp)));
  assert.ok(close(m.atLoad.cubeSecond, 6 * 0.4 + 4 * Math.exp(0.8)), String(m.atLoad.cubeSecond));
});

test('secondOrder: false leaves out the directional derivatives: first order as before, second order throws saying why', async () => {
  // A module of its own (second.ts runs hvp at its top level): two marked functions, one calling the other.
  const text = "/** @differentiable */\nexport function rosen(x: Float64Array): number {\n  let s = 0;\n  for (let i = 0; i + 1 < x.length; i++) s += 100 * (x[i + 1] - x[i] * x[i]) ** 2 + (1 - x[i]) ** 2;\n  return s;\n}\n" +
    "/** @differentiable */\nexport function twice(x: Float64Array): number {\n  return 2 * rosen(x);\n}\n";
  const file = join(root, 'test/programs/scalar/lean-second-order.ts');
  const off = createCompiler({ wasm: false, secondOrder: false }).transform(file, text);
  const on = createCompiler({ wasm: false }).transform(file, text);
  assert.equal(off.diagnostics.filter((d) => d.category === 'error'), []);
  assert.ok(on.code.includes('rosen$dd'), 'the default build writes them');
  assert.not.ok(off.code.includes('$dd'), 'no directional derivative in the build without second order');
  assert.ok(off.code.length < 0.7 * on.code.length, `${off.code.length} vs ${on.code.length} characters`);
  const dir = join(root, '.cache', 'second-order-off');
  mkdirSync(dir, { recursive: true });
  const importBuilt = async (code: string, name: string) => {
    const out = join(dir, `${name}.${process.pid}.js`);
    writeFileSync(out, transpileToJs(code, file).code);
    return import(pathToFileURL(out).href);
  };
  const lean = await importBuilt(off.code, 'off'), full = await importBuilt(on.code, 'on');
  const x = Float64Array.from([0.3, -0.7, 1.2, 0.5]);
  assert.equal(Array.from(grad(lean.twice)(x) as Float64Array), Array.from(grad(full.twice)(x) as Float64Array));
  assert.ok((hvp(full.twice)(x, x) as Float64Array).length === 4);
  assert.throws(() => hvp(lean.twice)(x, x), /has no second-order code: .*secondOrder: false \(--no-second-order, PULLBACK_SECOND_ORDER=0\)/);
});

test.run();
