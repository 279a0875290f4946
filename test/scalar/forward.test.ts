// Forward mode: jvp against the reverse sweep through ⟨u, J·v⟩ = ⟨Jᵀ·u, v⟩ on seeded random vectors, and
// against central differences along v; jacfwd against jacobian.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { jvp as jvp_, vjp as vjp_, jacfwd, jacobian } from '../../sdk/index.js';

// The programs are loaded at run time, so their types are not known here.
const jvp = jvp_ as unknown as (f: any, p: any[], t: any[]) => [any, any];
const vjp = vjp_ as unknown as (f: any, ...args: any[]) => [any, (c: any) => any[]];
import { load } from '../support/compile.js';

const math = await load('test/programs/scalar/math.ts');
const c = await load('test/programs/scalar/constructs.ts');
const b = await load('test/programs/scalar/basics.ts');
const h = await load('test/programs/scalar/helpers.ts');

let seed = 777;
const rand = (lo = -1, hi = 1) => { seed = (seed * 1103515245 + 12345) % 2147483648; return lo + (hi - lo) * (seed / 2147483648); };
const like = (a: unknown): number | Float64Array => (typeof a === 'number' ? rand() : Float64Array.from(a as ArrayLike<number>, () => rand()));
const dotp = (a: number | ArrayLike<number>, b: number | ArrayLike<number>) => {
  if (typeof a === 'number') return a * (b as number);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * (b as ArrayLike<number>)[i]!;
  return s;
};

function checkForward(name: string, f: any, sample: () => any[], points = 3, fixed: number[] = []) {
  test(`${name}: jvp agrees with the reverse sweep and with finite differences`, () => {
    for (let p = 0; p < points; p++) {
      const args = sample();
      const v = args.map((a, i) => (fixed.includes(i) ? 0 : like(a)));
      const [value, jv] = jvp(f, args as never, v as never);
      const y = f(...args);
      assert.equal(typeof value === 'number' ? value : Array.from(value as ArrayLike<number>), typeof y === 'number' ? y : Array.from(y));
      const u = like(y);
      const [, pb] = vjp(f, ...args);
      const jtu = pb(u as never) as unknown[];
      const lhs = dotp(u, jv as never);
      const rhs = jtu.reduce((s: number, g, i) => s + dotp(g as never, v[i]!), 0);
      assert.ok(Math.abs(lhs - rhs) <= 1e-10 * Math.max(1, Math.abs(lhs)), `${name}: <u, Jv> = ${lhs} but <J'u, v> = ${rhs}`);
      // Central difference along v.
      const eps = 1e-6;
      const at = (s: number) => args.map((a, i) => (typeof a === 'number' ? a + s * (v[i] as number) : Float64Array.from(a as ArrayLike<number>, (x, k) => x + s * (v[i] as Float64Array)[k]!)));
      const fd = (dotp(u, f(...at(eps))) - dotp(u, f(...at(-eps)))) / (2 * eps);
      assert.ok(Math.abs(fd - lhs) <= 1e-6 * Math.max(1, Math.abs(fd)), `${name}: jvp ${lhs} vs finite difference ${fd}`);
    }
  });
}

const vec = (n: number) => Float64Array.from({ length: n }, () => rand());
checkForward('Math functions', math.atan2, () => [rand(), rand(0.3, 2)]);
checkForward('pow', math.pow, () => [rand(0.3, 2), rand()]);
checkForward('hypot', math.hypot, () => [rand(), rand(), rand(0.5, 2)]);
checkForward('max', math.max, () => [rand(), rand(), rand()]);
checkForward('%', math.mod, () => [rand(0.1, 0.9) + 3.4, 1.7]);
checkForward('branches', c.branches, () => [rand(-2, 2), rand(-2, 2)], 6);
checkForward('data-dependent while', c.whileData, () => [rand(0.5, 3)]);
checkForward('break and continue', c.continueAndBreak, () => [vec(7), rand(0.2, 1.5)], 5);
checkForward('early return from nested loops', c.nestedReturn, () => [vec(5)], 5);
checkForward('compound assignment', c.compound, () => [rand(0.5, 2), rand(0.5, 2)]);
checkForward('arrays, views and for...of', c.arrays, () => [Array.from(vec(6)), vec(6)]);
checkForward('imported callees', c.callsImported, () => [rand(), rand()]);
checkForward('scratch arrays in a loop', c.scratchInLoop, () => [vec(5)]);
checkForward('swapped buffers', c.pingPong, () => [vec(6)]);
checkForward('vector output', c.residuals, () => [vec(2), vec(4), vec(4)]);
checkForward('array literal output', c.pairs, () => [rand(), rand()]);
checkForward('recursion', b.callsAndRecursion, () => [rand(), 3], 3, [1]);
checkForward('Rosenbrock', b.rosen, () => [vec(6)]);
checkForward('a callee with @derivative and @tangent rules', h.usesBothRules, () => [rand(-2, 2), rand(-2, 2)]);
checkForward('static methods', c.Model.energy, () => [rand(), rand(0.5, 2)]);

test('stopGradient has a zero tangent', () => {
  assert.equal(jvp(c.stop, [2, 3], [1, 0]), [c.stop(2, 3), 3 * 2 + 6 - 6]);
  assert.is(jvp(b.withStop, [3], [1])[1], 3);
});

test('jacfwd equals jacobian (reverse) and jacobian picks forward mode for tall outputs', () => {
  const p = Float64Array.from([2, 0.5]), t = Float64Array.from([0, 1, 2, 3]), y = Float64Array.from([1, 2, 3, 4]);
  const F = jacfwd(c.residuals)(p, t, y) as unknown as Float64Array[];
  const [, pb] = vjp(c.residuals, p, t, y);
  for (let i = 0; i < 4; i++) {
    const row = (pb(Float64Array.from([0, 1, 2, 3], (k) => (k === i ? 1 : 0)) as never) as Float64Array[])[0]!;
    for (let j = 0; j < 2; j++) assert.ok(Math.abs(F[i]![j]! - row[j]!) < 1e-14);
  }
  const J = jacobian(c.residuals)(p, t, y) as unknown as Float64Array[];
  assert.equal(J.map((r) => Array.from(r)), F.map((r) => Array.from(r)));
});

test('a function with only a reverse rule says how to add a forward rule', () => {
  assert.throws(() => jvp(h.softplus, [0.3], [1]), /softplus has a \/\*\* @derivative \*\/ rule for reverse mode but no forward rule: declare \/\*\* @tangent softplus \*\//);
  assert.throws(() => jvp(c.residuals, [vec(2), vec(3), vec(3)], [vec(2), vec(2), vec(3)]), /tangent of argument 1 of residuals must be an array of length 3/);
});

test.run();
