// Every construct and Math function of the scalar subset against central finite differences in f64, at
// several seeded random points from each function's domain, plus exact values at the documented kinks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { grad, gradcheck, valueAndGrad, vjp, jvp, jacobian, jacfwd, adjointSource } from '../../sdk/index.js';
import { load } from '../support/compile.js';

const math = await load('test/programs/scalar/math.ts');
const c = await load('test/programs/scalar/constructs.ts');
const h = await load('test/programs/scalar/helpers.ts');
const b = await load('test/programs/scalar/basics.ts');
const nu = await load('test/programs/scalar/newuser.ts');
const nu2 = await load('test/programs/scalar/newuser2.ts');
const nu3 = await load('test/programs/scalar/newuser3.ts');
const nu4 = await load('test/programs/scalar/newuser4.ts');
const nu5 = await load('test/programs/scalar/newuser5.ts');
const nu6 = await load('test/programs/scalar/newuser6.ts');

let seed = 12345;
const rand = (lo: number, hi: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return lo + (hi - lo) * (seed / 2147483648); };
const vec = (n: number, lo = -1, hi = 1) => Float64Array.from({ length: n }, () => rand(lo, hi));

function check(name: string, f: any, sample: () => any[], points = 4, argnums?: number | number[]) {
  test(`${name} matches finite differences`, () => {
    for (let p = 0; p < points; p++) {
      const args = sample();
      const r = gradcheck(f, args as never, { argnums, tolerance: 1e-6 });
      assert.ok(r.ok, `${name}(${args.map(String).join('; ')}): max error ${r.maxError} at ${JSON.stringify(r.where)} (analytic ${r.analytic}, numeric ${r.numeric})`);
      // gradcheck pulls back through vjp (the general sweeps); grad with respect to an array runs the gradient
      // sweeps (number parameters held constant, no value): they must give the same gradient.
      if (typeof f(...args) !== 'number') continue;
      const [, pb] = vjp(f, ...(args as never[]));
      const all = pb(1 as never) as unknown[];
      args.forEach((a, i) => {
        if (!(a instanceof Float64Array || Array.isArray(a))) return;
        const g = grad(f, i)(...args) as Float64Array, want = all[i] as Float64Array;
        const worst = Math.max(0, ...Array.from(g, (v, j) => Math.abs(v - want[j]!) / Math.max(1, Math.abs(want[j]!))));
        assert.ok(worst <= 1e-12, `${name}: grad(f, ${i}) differs from vjp's gradient by ${worst}`);
      });
    }
  });
}

const unit = () => [rand(-0.9, 0.9)];
const pos = () => [rand(0.2, 3)];
const any = () => [rand(-2, 2)];
// Math functions, each on its domain and away from its kinks.
check('sin', math.sin, any); check('cos', math.cos, any); check('tan', math.tan, unit);
check('asin', math.asin, unit); check('acos', math.acos, unit); check('atan', math.atan, any);
check('atan2', math.atan2, () => [rand(-2, 2), rand(0.3, 2)]);
check('sinh', math.sinh, any); check('cosh', math.cosh, any); check('tanh', math.tanh, any);
check('exp', math.exp, any); check('expm1', math.expm1, any); check('log', math.log, pos); check('log1p', math.log1p, pos);
check('log2', math.log2, pos); check('log10', math.log10, pos); check('sqrt', math.sqrt, pos); check('cbrt', math.cbrt, pos);
check('pow', math.pow, () => [rand(0.3, 2), rand(-2, 2)]); check('**', math.powOp, () => [rand(0.3, 2), rand(-2, 2)]);
check('hypot', math.hypot, () => [rand(-2, 2), rand(-2, 2), rand(0.5, 2)]);
check('abs', math.abs, () => [rand(0.1, 2) * (rand(0, 1) < 0.5 ? -1 : 1)]);
check('min', math.min, () => [rand(-2, 2), rand(-2, 2)]); check('max', math.max, () => [rand(-2, 2), rand(-2, 2), rand(-2, 2)]);
const offInteger = () => [Math.floor(rand(-3, 3)) + rand(0.1, 0.4)];
check('sign', math.sign, () => [rand(0.1, 2) * (rand(0, 1) < 0.5 ? -1 : 1)]);
check('floor', math.floor, offInteger); check('ceil', math.ceil, offInteger); check('round', math.round, offInteger); check('trunc', math.trunc, offInteger);
check('%', math.mod, () => [rand(0.1, 0.9) + Math.floor(rand(1, 5)) * 1.7, 1.7]);
check('Math constants', math.consts, any); check('unary minus', math.neg, () => [rand(-2, 2), rand(0.5, 2)]);

test('documented conventions at non-smooth points', () => {
  assert.is(grad(math.abs)(0), 0, "abs'(0) = 0");
  // max(x, x, z)·x: ties send the whole gradient to the first argument.
  assert.equal(grad(math.max, [0, 1])(1, 1, 0), [2, 0]);
  assert.equal(grad(math.min, [0, 1])(2, 2), [2, 2]); // min(x,y)·y at a tie: ∂x = y, ∂y = min + y·0
  assert.is(grad(math.floor)(2.5), 2, 'floor has derivative 0: d(floor(x)·x) = floor(x)');
  assert.is(grad(math.sign)(0), 0);
});

// Constructs.
check('if / else if / ?: / && ||', c.branches, () => [rand(-2, 2), rand(-2, 2)], 8);
check('while with a data-dependent trip count', c.whileData, () => [rand(0.5, 3)]);
check('do...while', c.doWhile, () => [rand(2, 9)]);
check('continue and break in a for loop', c.continueAndBreak, () => [vec(7), rand(0.2, 1.5)], 6);
check('early return from nested loops', c.nestedReturn, () => [vec(5)], 6);
check('compound assignment, ++ and --', c.compound, () => [rand(0.5, 2), rand(0.5, 2)]);
check('number[] and Float64Array, scratch arrays, subarray views, for...of', c.arrays, () => [Array.from(vec(6)), vec(6)]);
check('calls of marked functions imported from another module', c.callsImported, () => [rand(-1, 1), rand(-1, 1)]);
check('integer counters, % and boolean locals', c.integers, () => [vec(7)]);
check('scratch arrays allocated in a loop and passed to a callee', c.scratchInLoop, () => [vec(5)]);
check('aliased arrays swapped every step', c.pingPong, () => [vec(6)]);
check('an array-valued callee with a number argument', c.usesArrayCallee, () => [vec(5), rand(0.5, 2)]);
check('a grid stencil with ?: at the edges, sizes as number parameters', c.stencil, () => [vec(12), 3, 3, rand(0.05, 0.2)], 4, [0, 3]);
check('a linear grid stencil (elements overwritten without recording)', c.diffuse, () => [vec(9), 3, 4, rand(0.05, 0.2)], 4, [0, 3]);
check('a grid allocated from a product of number parameters', c.gridAlloc, () => [vec(12), 3, 4], 4, 0);
check('a counting-down loop', nu.decLoop, () => [vec(5)]);
check('while (true) with a break', nu.whileTrue, () => [rand(0.2, 2)]);
check('break out of an inner loop', nu.nestedBreak, () => [vec(4)]);
check('a let typed by its assignments, Number.EPSILON, unary plus', nu.misc, () => [rand(-2, 2), rand(-2, 2)], 6);
check('a stride-2 loop over number[]', nu.stride, () => [Array.from(vec(5))]);
check('w = f(w) in a loop, f recording on the tape', nu.useMatVec, () => [vec(9), vec(3)]);
check('recursion over subarray views', nu2.recArr, () => [vec(7)]);
check('three levels of callees that record', nu2.threeLevels, () => [rand(-0.5, 0.5), rand(-0.5, 0.5)]);
check('a marked call in a loop condition', nu2.condCall, () => [rand(-0.5, 1.5)]);
check('conditional stores reading earlier elements', nu2.condStore, () => [vec(6), rand(0.2, 2.2)]);
check('early return inside a callee in a loop', nu2.earlyCallee, () => [vec(6), rand(-0.3, 0.3)]);
check('do...while with continue', nu2.doContinue, () => [rand(-1, 1)]);
check('a custom rule inside a loop', nu2.ruleInLoop, () => [vec(5)]);
check('a number[] result with an early return', nu2.vecEarly, () => [vec(5), rand(0.8, 1.4)]);
check('boolean flags steering ?: and % of a negative number', nu2.flags, () => [vec(6)]);
check('a callee that reassigns its parameter', nu3.paramReassign, () => [rand(0.5, 2.5), rand(0.2, 2.2)]);
check('an inner loop bounded by the outer counter', nu3.triangular, () => [vec(5)]);
check('an array chosen by ?: (aliasing a parameter)', nu3.pickArray, () => [vec(4), vec(4), rand(-1, 1)], 6);
check('a scratch array sized by Math.floor, a let assigned in branches', nu3.dynamicScratch, () => [vec(7), rand(-1, 1)]);
check('a recording callee in a loop with a break', nu3.loopCallBreak, () => [rand(-1, 1), rand(0, 2)]);
check('.length inside callees, with a view', nu3.lenInCallee, () => [vec(5)]);
check('a running max', nu4.runningMax, () => [vec(6)]);
check('a parameter used as a bound and as a value', nu4.boundAndValue, () => [rand(-1, 1), 5], 4, 0);
check('return inside do...while', nu4.doReturn, () => [rand(1, 1.6)]);
check('mutual recursion', nu4.mutual, () => [rand(-1, 1)]);
check('softmax cross-entropy through an array-valued callee', nu4.crossEntropy, () => [vec(4), 2], 4, 0);
check('a vector output from an array-valued callee', nu4.probs, () => [vec(4), rand(1.2, 1.8)]);
check('a descending loop', nu5.descending, () => [vec(6), rand(0.5, 1.5)]);
check('an array literal written element by element', nu5.literalScratch, () => [[rand(-1, 1), rand(-1, 1)]]);

test('numeric literals with negative exponents keep their values (1e-9 is not 1)', () => {
  assert.is(grad(nu5.smallConstants)(0.5), 2.5e-3 + 1);
  assert.is(grad(nu5.smallConstants)(-0.5), 2.5e-3);
});
check('a loop stepping by 2 up to <=', nu5.stepTwo, () => [vec(7)]);
check('leapfrog wave with clamped neighbours and a buffer rotation', nu6.wave, () => [vec(9), vec(9), 9, 6, rand(0.1, 0.3)], 3, [0, 1, 4]);
check('in-place prefix sums read by a later loop', nu6.prefix, () => [vec(7)]);
check('a scratch array overwritten twice per step', nu6.twoPass, () => [vec(6), 3], 3, 0);
check('an active ?: beside a clamped index', nu6.leaky, () => [vec(8), rand(0.05, 0.3)], 4, [0, 1]);
check('a rows x cols grid with a per-row coefficient', nu6.grid, () => [vec(12), 3, 4, vec(3)], 3, [0, 3]);
check('an array-valued helper called in a loop', nu6.callsSmooth, () => [vec(6), rand(0.1, 0.5)], 3, [0, 1]);
check('views written through one and read through another', nu6.views, () => [vec(7)]);
check('a loop with a break and an adjacent-element update', nu6.breaks, () => [vec(8), rand(0.02, 0.2)], 4, 0);
check('a lagged chain read by a later loop', nu6.chain, () => [vec(9)]);
check('in-place overwrites read by later loops', nu6.inPlace, () => [vec(5)]);
check('a counter used after its loop, a fractional bound', nu5.counterAfter, () => [vec(7)]);
check('a bound read from an array the loop writes', nu5.boundInArray, () => [vec(5)]);
check('values that only steer a branch or only reach the result', nu5.steering, () => [vec(6), rand(-1, 1)]);
check('records in every step of a loop bounded by a parameter', nu5.recordsPerStep, () => [vec(2), 30, rand(0.05, 0.1)], 4, 0);

test('pullbacks can run again after arrays were overwritten in place (jacobian rows match forward mode)', () => {
  const z = vec(4);
  const R = jacobian(nu4.probs)(z, 1.3) as unknown as Float64Array[];
  const F = jacfwd(nu4.probs)(z, 1.3) as unknown as Float64Array[];
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) assert.ok(Math.abs(R[i]![j]! - F[i]![j]!) < 1e-14, `J[${i}][${j}]: ${R[i]![j]} vs ${F[i]![j]}`);
});
check('static methods calling static methods', c.Model.energy, () => [rand(-1, 1), rand(0.5, 2)]);
check('custom derivative used by a marked function', h.usesRule, () => [rand(-2, 2), rand(-2, 2)]);
check('custom derivative called directly', h.softplus, () => [rand(-2, 2)]);
check('Rosenbrock', b.rosen, () => [vec(9)]);
check('while with break on the data', b.loopBreak, () => [rand(0.5, 2), rand(1.2, 2)]);
check('Newton iterations', b.newtonSqrt, () => [rand(0.5, 9)]);
check('early return inside for...of', b.earlyReturn, () => [vec(6), rand(0.2, 3)], 6);
check('a scratch array overwritten in nested loops', b.scratch, () => [vec(6)]);
check('recursion', b.callsAndRecursion, () => [rand(-1, 1), 3], 4, 0);

test('stopGradient blocks the flow', () => {
  assert.equal(grad(c.stop, [0, 1])(2, 3), [6, 1]);
  assert.is(grad(b.withStop)(3), 3);
});

test('vector outputs through vjp and jacobian', () => {
  const p = Float64Array.from([2, 0.5]), t = Float64Array.from([0, 1, 2]), y = Float64Array.from([1, 2, 3]);
  const [r, pb] = vjp(c.residuals, p, t, y);
  assert.equal(Array.from(r), Array.from(c.residuals(p, t, y)));
  const g1 = pb([1, 0, 0])[0] as Float64Array;
  const g2 = pb([1, 0, 0])[0] as Float64Array; // a pullback runs again without the forward sweep
  assert.equal(Array.from(g1), Array.from(g2));
  p[1] = 7; // the caller changes its array: the pullback still differentiates at the point vjp was called at
  assert.equal(Array.from(pb([1, 0, 0])[0] as Float64Array), Array.from(g1));
  p[1] = 0.5;
  const J = jacobian(c.residuals)(p, t, y) as Float64Array[];
  assert.is(J.length, 3);
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(J[i]![0]! - Math.exp(-0.5 * t[i]!)) < 1e-14);
    assert.ok(Math.abs(J[i]![1]! + 2 * t[i]! * Math.exp(-0.5 * t[i]!)) < 1e-14);
  }
  const r2 = gradcheck(c.pairs, [0.3, 0.8]);
  assert.ok(r2.ok, String(r2.maxError));
  assert.equal(jacobian(c.pairs, [0, 1])(0.3, 0.8)[0], [0.8, 0.3]);
});

test('grad with argnums, valueAndGrad, and gradients typed like their parameters', () => {
  const [v, [gx, gy]] = valueAndGrad(c.branches, [0, 1])(1.3, 0.4) as unknown as [number, [number, number]];
  assert.is(v, c.branches(1.3, 0.4));
  assert.is(typeof gx, 'number');
  assert.is(typeof gy, 'number');
  const ga = grad(c.arrays, [0, 1])([1, 2, 3], Float64Array.from([1, 2, 3])) as Float64Array[];
  assert.ok(ga[0] instanceof Float64Array && ga[0].length === 3);
});

test('instance methods read `this` and call marked methods through it', () => {
  const p = new c.Pendulum(2, 9.81);
  const g = grad(c.Pendulum.prototype.energy, [0, 1]) as any;
  const [gt, go] = g.call(p, 0.3, 1.2) as number[];
  assert.ok(Math.abs(gt! - 9.81 * 2 * Math.sin(0.3)) < 1e-12);
  assert.ok(Math.abs(go! - (4 * 1.2 + 0.02 * 1.2 * 2)) < 1e-12);
});

test('vjp and jvp of an instance method take the receiver as `this`', () => {
  const p = new c.Pendulum(2, 9.81);
  const [value, pb] = (vjp as any).call(p, c.Pendulum.prototype.energy, 0.3, 1.2);
  assert.is(value, p.energy(0.3, 1.2));
  const [gt, go] = pb(1) as number[];
  assert.ok(Math.abs(gt! - 9.81 * 2 * Math.sin(0.3)) < 1e-12 && Math.abs(go! - (4 * 1.2 + 0.02 * 1.2 * 2)) < 1e-12);
  const [, t] = (jvp as any).call(p, c.Pendulum.prototype.energy, [0.3, 1.2], [1, 0]);
  assert.ok(Math.abs(t - gt!) < 1e-12);
});

test('marked functions stay ordinary functions', () => {
  assert.is(b.newtonSqrt(9), 3);
  assert.is(c.Model.energy(1, 2), 1 + Math.exp(-1));
});

test('errors: vector-valued grad, untransformed functions, bad arguments', () => {
  assert.throws(() => grad(c.residuals), /returns an array; use vjp\(f, \.\.\.args\).*jacobian/);
  const plain = (x: number) => x * x;
  // grad(f) cannot know until the call whether f is a tensor function (which the eager tape can record).
  assert.throws(() => grad(plain)(3), /plain has no generated adjoint: it was not transformed\. Mark it with \/\*\* @differentiable \*\//);
  assert.throws(() => grad(b.rosen)(3 as never), /argument 0 of rosen \(basics\.ts:4\) must be a Float64Array or number\[\], got number/);
  assert.throws(() => grad(b.newtonSqrt, 2), /argnums 2 is out of range for newtonSqrt/);
  const [, pb] = vjp(c.residuals, Float64Array.from([1, 1]), Float64Array.from([0, 1]), Float64Array.from([0, 0]));
  assert.throws(() => pb([1, 2, 3]), /cotangent of residuals has length 3; the output has length 2/);
});

test('grad(f, a, { out }) writes the gradient into out, call after call, and refuses what cannot work', () => {
  const out = new Float64Array(5);
  const df = grad(b.rosen, 0, { out });
  for (const x of [Float64Array.from([0.3, -0.7, 1.2, 0.5, 2]), Float64Array.from([1, 1, 1, 1, 1]), Float64Array.from([-1, 0.5, 0.25, 3, -2])]) {
    const g = df(x);
    assert.ok(g === out, 'returns out itself');
    assert.equal(Array.from(out), Array.from(grad(b.rosen)(x) as Float64Array)); // overwritten, not accumulated
  }
  // earlyReturn(x, t) with respect to x, a number parameter beside it.
  const e = new Float64Array(4), x = Float64Array.from([0.5, 1.5, -0.5, 2]);
  assert.equal(Array.from(grad(b.earlyReturn, 0, { out: e })(x, 1.2) as Float64Array), Array.from(grad(b.earlyReturn)(x, 1.2) as Float64Array));
  assert.throws(() => grad(b.newtonSqrt, 0, { out }), /writes the gradient of one array parameter; argnums must name one \(newtonSqrt's parameters: num\)/);
  assert.throws(() => grad(b.rosen, [0], { out }), /argnums must name one/);
  assert.throws(() => grad(b.rosen, 0, { out: [0, 0] as never }), /needs out to be a Float64Array, got Array/);
  assert.throws(() => df(new Float64Array(3)), /out has 5 elements, argument 0 has 3/);
  assert.throws(() => df(out), /out shares its memory with argument 0; pass an array of its own/);
  // A function of one array has its own entry: each new argument is checked, a number[] works, and without
  // out every call returns a new array.
  assert.throws(() => (df as (...a: unknown[]) => unknown)(Float64Array.from([1, 2, 3, 4, 5]), 2), /takes 1 arguments, got 2/);
  assert.throws(() => (df as (...a: unknown[]) => unknown)('x'), /must be a Float64Array or number\[\]/);
  const y = [0.3, -0.7, 1.2, 0.5, 2];
  const fresh = grad(b.rosen);
  const g1 = fresh(y as never) as Float64Array, g2 = fresh(Float64Array.from(y)) as Float64Array;
  assert.ok(g1 !== g2 && g1 instanceof Float64Array);
  assert.equal(Array.from(g1), Array.from(g2));
  assert.equal(Array.from(df(Float64Array.from(y)) as Float64Array), Array.from(g1));
  // valueAndGrad of a function of one array has its own entry too.
  const vg = valueAndGrad(b.rosen);
  for (const z of [Float64Array.from(y), [1, 2, 3] as never, Float64Array.from(y)]) {
    const [v, g] = vg(z) as [number, Float64Array];
    assert.is(v, b.rosen(z));
    assert.equal(Array.from(g), Array.from(grad(b.rosen)(z) as Float64Array));
  }
  assert.throws(() => (vg as (...a: unknown[]) => unknown)(1), /must be a Float64Array or number\[\]/);
});

test('adjointSource shows readable sweeps labelled with the source lines', () => {
  const s = adjointSource(b.rosen);
  assert.match(s, /function rosen\$fwd\(\$t: \$pb\.Tape, x: Float64Array, x_bar: Float64Array\): number/);
  assert.match(s, /\/\/ ∂ of: s \+= 100 \* a \* a \+ b \* b;/);
  // Iteration i adds to x_bar[i + 1] and x_bar[i], the next one to x_bar[i] again: the second is carried in a local.
  assert.match(s, /x_bar\[i \+ 1\] = x_bar\[i \+ 1\] \+ \$carry\d+ \+ \$d\d+;/);
  assert.match(s, /if \(\$n\d+ > 0\) x_bar\[i\] \+= \$carry\d+;/);
});

test('a tape of a million iterations grows, and the limit gives a clear error', async () => {
  const { Tape } = await import('../../sdk/ad/tape.js');
  const t = new Tape();
  for (let i = 0; i < 1_000_000; i++) t.push(i);
  assert.is(t.pop(), 999_999);
  const small = new Tape();
  small.limit = 8192;
  assert.throws(() => { for (let i = 0; i < 10_000; i++) small.push(i); }, /the tape is full \(8192 values recorded, limit 8192\)/);
  // A loop of a million iterations whose every step is recorded, through the generated code.
  const r = gradcheck(c.longLoop, [0.7, 1_000_000], { argnums: 0 });
  assert.ok(r.ok, `max error ${r.maxError}`);
});

test.run();
