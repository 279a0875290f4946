// SPDX-License-Identifier: MIT
// explain(f) for Wasm-backed and JS-backed scalar functions, tape growth and the tape limit on Wasm,
// re-entrancy, and the transform-time cache (an unchanged file does not run asc again).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { grad, valueAndGrad, vjp, gradcheck, explain, setWasmTapeLimit } from '../../sdk/index.js';
import { Tape } from '../../sdk/ad/tape.js';
import { WASM_TAPE_LIMIT } from '../../sdk/ad/wasm.js';
import { createCompiler } from '../../transformer/compiler.js';
import { wasmStats } from '../../transformer/wasm.js';
import { root } from '../support/compile.js';
import { adjoint, loadWasm, relativeError, sweepOnce } from './support.js';

const file = 'test/programs/wasm/subset.ts';
const m = await loadWasm(file);

test('functions in the subset run on Wasm, and explain says so', () => {
  // usesRule calls softplus, whose rule is in the subset too; callsJsOnly calls usesRule; throws checks its argument.
  // crossFile calls usesSoftplus of rules.ts, whose sweeps are compiled into this file's module (cross-file.test.ts).
  // callsArrayValued calls returnsArray, whose sweeps run inside its own on Wasm.
  for (const f of [m.inSubset, m.damped, m.longLoop, m.usesRule, m.callsJsOnly, m.throws, m.checksThenCalls, m.crossFile, m.callsArrayValued]) {
    const e = explain(f);
    assert.is(e.backend, 'wasm', String(e));
    assert.is(e.reason, undefined);
    assert.match(String(e), /generated at build time \(wasm\)/);
  }
});

test('functions outside the subset stay on JS, and explain says why', () => {
  const why: [(...a: any[]) => any, RegExp][] = [
    [m.logs, /runs `console\.log\(x\);`, which only JavaScript can run/],
    [m.returnsArray, /it returns an array: its own grad, vjp and valueAndGrad run its JS sweeps .*; the Wasm functions that call it run its Wasm sweeps/],
    [m.readsMutable, /reads `counter` from outside the function/],
    [m.outer, /calls the custom derivative wrappedRule, which cannot run on Wasm: it calls grad\(longLoop\)/],
  ];
  for (const [f, re] of why) {
    const e = explain(f);
    assert.is(e.backend, 'js', `${f.name}: ${String(e)}`);
    assert.match(e.reason ?? '', re, f.name);
    assert.ok(String(e).includes(e.reason!), 'the sentence carries the reason');
  }
});

test('a throw on Wasm (an argument check) throws the user\'s own error, from every entry point', () => {
  assert.throws(() => grad(m.throws)(-1), (e: Error) => e.message === 'negative x: -1');
  assert.throws(() => valueAndGrad(m.throws)(-2), (e: Error) => e.message === 'negative x: -2');
  assert.throws(() => vjp(m.throws, -3), (e: Error) => e.message === 'negative x: -3');
  // Thrown in a callee's Wasm sweep: the caller's JS primal reaches the same throw.
  const x = Float64Array.from([0.5, -0.25]);
  assert.throws(() => grad(m.checksThenCalls)(x), (e: Error) => e.message === 'negative x: -0.25');
  assert.throws(() => valueAndGrad(m.checksThenCalls)(x), (e: Error) => e.message === 'negative x: -0.25');
  // The frames are released: good arguments still work, on Wasm.
  assert.is(grad(m.throws)(4), 0.25);
  const [v, g] = valueAndGrad(m.checksThenCalls)(Float64Array.from([4, 9])) as [number, Float64Array];
  assert.is(v, 5);
  assert.equal(Array.from(g), [0.25, 1 / 6]);
  assert.is(explain(m.throws).backend, 'wasm');
});

test('the adjoint of an argument nobody differentiates ($pb.EMPTY) takes what the callee\'s Wasm sweeps write into it', () => {
  assert.is(explain(m.constantWeights).backend, 'wasm');
  const x = Float64Array.from([0.5, -2, 3]);
  assert.equal(Array.from(grad(m.constantWeights)(x) as Float64Array), [1, -8, 18]); // 2 (i + 1) x_i
  const ad = adjoint(m.constantWeights)!;
  assert.ok(relativeError(sweepOnce(ad, ad, [x]), sweepOnce(ad, ad.js!, [x])) <= 1e-12);
});

test('a caller of an array-valued function on Wasm: gradient as on the JS sweeps and by hand', () => {
  const x = Float64Array.from([0.7, -1.3, 2]);
  const ad = adjoint(m.callsArrayValued)!;
  assert.ok(relativeError(sweepOnce(ad, ad, [x]), sweepOnce(ad, ad.js!, [x])) <= 1e-12);
  assert.equal(Array.from(grad(m.callsArrayValued)(x) as Float64Array), [1.4, 0, 0]); // d(x0^2)
});

test('grad(f, a, { out }) on Wasm: the gradient copied out of linear memory into out, call after call', () => {
  assert.is(explain(m.inSubset).backend, 'wasm');
  const out = new Float64Array(4);
  const df = grad(m.inSubset, 0, { out });
  for (const x of [Float64Array.from([0.3, -0.7, 0.2, 0.9]), Float64Array.from([1, 2, 3, 4])]) {
    assert.ok(df(x, 0.4) === out);
    assert.equal(Array.from(out), Array.from(grad(m.inSubset)(x, 0.4) as Float64Array));
  }
  assert.throws(() => df(new Float64Array(2), 0.4), /out has 4 elements, argument 0 has 2/);
});

test('grad of a function of one array on Wasm (its own entry): out, the checks of each new argument, throws', () => {
  const f = m.checksThenCalls;
  assert.is(explain(f).backend, 'wasm');
  const out = new Float64Array(3);
  const df = grad(f, 0, { out });
  const x = Float64Array.from([4, 9, 0.25]);
  const want = Array.from(x, (v) => 0.5 / Math.sqrt(v));
  for (let k = 0; k < 3; k++) {
    assert.ok(df(x) === out);
    out.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 1e-12, `d/dx${i}: ${g}`));
  }
  assert.equal(Array.from(grad(f)(x) as Float64Array), Array.from(out));
  assert.equal(Array.from(grad(f)([4, 9, 0.25] as never) as Float64Array), Array.from(out), 'a number[] argument');
  // Each argument is checked when it is not the one checked last: length, memory shared with out, count, type.
  assert.throws(() => df(new Float64Array(2)), /out has 3 elements, argument 0 has 2/);
  assert.throws(() => df(out), /out shares its memory with argument 0/);
  const big = new Float64Array(6);
  assert.throws(() => grad(f, 0, { out: big.subarray(0, 3) })(big.subarray(3)), /shares its memory/);
  assert.throws(() => (df as (...a: unknown[]) => unknown)(x, 1), /takes 1 arguments, got 2/);
  assert.throws(() => (df as (...a: unknown[]) => unknown)('x'), /must be a Float64Array or number\[\]/);
  assert.throws(() => df(Float64Array.from([1, -2, 3])), (e: Error) => e.message === 'negative x: -2');
  assert.ok(df(x) === out, 'the frame is released after a throw');
  // valueAndGrad's own entry: both general sweeps in one frame, the same numbers as the JS sweeps.
  const vg = valueAndGrad(f);
  const ad = adjoint(f)!;
  for (const y of [x, Float64Array.from([1, 16, 0.04]), x]) {
    const [v, g] = vg(y) as [number, Float64Array];
    const js = sweepOnce(ad, ad.js!, [y]);
    assert.is(v, js[0]![0]);
    assert.equal(Array.from(g), js[1]);
  }
  assert.throws(() => (vg as (...a: unknown[]) => unknown)(x, 1), /takes 1 arguments, got 2/);
});

test('Wasm gradients match the JS sweeps and finite differences', () => {
  const x = Float64Array.from([0.3, -0.7, 0.2, 0.9]);
  const ad = adjoint(m.inSubset)!;
  assert.ok(relativeError(sweepOnce(ad, ad, [x, 0.4]), sweepOnce(ad, ad.js!, [x, 0.4])) <= 1e-12);
  const r = gradcheck(m.inSubset, [x, 0.4] as never, { argnums: [0, 1], tolerance: 1e-6 });
  assert.ok(r.ok, `max error ${r.maxError}`);
  const [v, g] = valueAndGrad(m.damped)(0.8) as [number, number];
  assert.ok(Math.abs(v - 0.8 * Math.exp(-0.8)) < 1e-15);
  assert.ok(Math.abs(g - Math.exp(-0.8) * (1 - 0.8)) < 1e-15);
});

test('argument slots: lengths that change and change back, a caller\'s adjoints, grad\'s own sweeps', () => {
  // JS writes the arguments into the frames' slots through cached views: a slot reallocated for another
  // length must never be written through the view of its old place.
  const ad = adjoint(m.inSubset)!;
  for (const n of [4, 40, 4, 100, 40, 0, 4]) {
    const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i + n));
    const w = sweepOnce(ad, ad, [x, 0.4]), j = sweepOnce(ad, ad.js!, [x, 0.4]);
    assert.ok(relativeError(w, j) <= 1e-12, `length ${n}`);
    const g = grad(m.inSubset)(x, 0.4) as Float64Array;
    assert.ok(relativeError([Array.from(g)], [j[1]!]) <= 1e-12, `grad, length ${n}`);
  }
  // The general reverse sweep adds to the caller's adjoints, as the JS one does.
  const x = Float64Array.from([0.3, -0.7, 0.2, 0.9]);
  const run = (sweeps: Pick<typeof ad, 'fwd' | 'rev'>) => {
    const t = new Tape(), s = Float64Array.from([1, 2, 3, 4]);
    sweeps.fwd(t, x, 0.4, s);
    sweeps.rev(t, x, 0.4, s, 1);
    return Array.from(s);
  };
  assert.ok(relativeError([run(ad)], [run(ad.js!)]) <= 1e-12);
});

test('argument slots shared by functions of one module: grad reads each slot through a view of its own place', async () => {
  // The glue trusts a cached view of a slot while its length is the one asked for (sdk/ad/wasm.ts, slot). Here
  // slot 1 of the frame changes length under twoArrays' gradient with respect to x (which reads only slot 3)
  // and comes back to oneArray's length: read through its old place, oneArray's gradient would be the one of
  // the call before (or whatever the module's collector put there since).
  const s = await loadWasm('test/wasm/slots-program.ts');
  for (const f of [s.oneArray, s.twoArrays]) assert.is(explain(f).backend, 'wasm', String(explain(f)));
  const want = (f: unknown, args: unknown[], which: number) => { const ad = adjoint(f)!; return sweepOnce(ad, ad.js!, args)[1 + which]!; };
  const same = (got: Float64Array, w: number[], what: string) => {
    let scale = 0, worst = 0; // relativeError's measure, in loops (its spread of 2^20 values overflows the stack)
    for (const v of w) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(got[i]! - w[i]!));
    assert.ok(got.length === w.length && worst <= 1e-12 * scale, `${what}: off by ${worst} (scale ${scale})`);
  };
  const vec = (n: number, phase: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(i + phase));
  for (let round = 0; round < 70; round++) { // past 64 gradients, so that the module collects its garbage in between
    const x = vec(4, round), w = vec(6 + (round % 3), 2 * round), y = vec(4 + (round % 2), 3 * round);
    same(grad(s.oneArray)(x, 0.4) as Float64Array, want(s.oneArray, [x, 0.4], 0), `oneArray, round ${round}`);
    if (round % 2) same(grad(s.twoArrays, 1)(w, y) as Float64Array, want(s.twoArrays, [w, y], 1), `twoArrays d/dx, round ${round}`);
    else same(grad(s.twoArrays)(w, y) as Float64Array, want(s.twoArrays, [w, y], 0), `twoArrays d/dw, round ${round}`);
  }
  // A memory that grows detaches every cached view: a gradient of 2^20 values, then small ones again.
  const big = vec(1 << 20, 1), x = vec(4, 7);
  same(grad(s.twoArrays, 1)(x, big) as Float64Array, want(s.twoArrays, [x, big], 1), 'twoArrays d/dx, 2^20 values');
  same(grad(s.oneArray)(x, 0.4) as Float64Array, want(s.oneArray, [x, 0.4], 0), 'oneArray after the memory grew');
});

test('tape growth: a loop of a million iterations', () => {
  const ad = adjoint(m.longLoop)!;
  const args = [0.3, 1_000_000];
  const w = sweepOnce(ad, ad, args), j = sweepOnce(ad, ad.js!, args);
  assert.ok(relativeError(w, j) <= 1e-12, `${JSON.stringify(w)} vs ${JSON.stringify(j)}`);
  assert.is(grad(m.longLoop)(0.3, 1_000_000), j[1]![0]);
});

test('the tape limit gives a clear Error, and the module works again after it', () => {
  setWasmTapeLimit(4096);
  try {
    assert.throws(() => grad(m.longLoop)(0.3, 10_000), /the Wasm tape of longLoop is full \(4096 values recorded, limit 4096\).*setWasmTapeLimit/);
    assert.ok(Number.isFinite(grad(m.longLoop)(0.3, 1000)), 'a call within the limit still works');
  } finally {
    setWasmTapeLimit(WASM_TAPE_LIMIT);
  }
  assert.throws(() => setWasmTapeLimit(1), /between 1024 and 2\^26/);
  const ad = adjoint(m.longLoop)!;
  assert.ok(relativeError(sweepOnce(ad, ad, [0.3, 10_000]), sweepOnce(ad, ad.js!, [0.3, 10_000])) <= 1e-12);
});

test('re-entrancy: a Wasm gradient taken inside a custom derivative', () => {
  // outer = 2·wrapped(x) + longLoop(x, 3); wrapped's rule calls grad(longLoop) on Wasm during outer's reverse sweep.
  const g = grad(m.outer)(0.7) as number;
  const jsLongLoop = (x: number, n: number) => { const ad = adjoint(m.longLoop)!; return sweepOnce(ad, ad.js!, [x, n])[1]![0]!; };
  const want = 2 * jsLongLoop(0.7, 10) + jsLongLoop(0.7, 3);
  assert.ok(Math.abs(g - want) <= 1e-12 * Math.abs(want), `${g} vs ${want}`);
});

test('transform-time cache: transforming an unchanged file again does not run asc', () => {
  const before = { ...wasmStats };
  const again = createCompiler({ wasm: true }).transform(`${root}/${file}`);
  assert.is(wasmStats.ascRuns, before.ascRuns, 'asc ran again');
  assert.is(wasmStats.cacheHits, before.cacheHits + 1);
  assert.ok(again.code.includes('function $pb$wasm()'));
});

test('the cache of a linked install (npm i ../pullback) is in the project that links it, not in pullback\'s folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pullback-linked-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'pullback'), 'dir');
  mkdirSync(join(dir, 'src'));
  const script = `import { defaultCacheDir } from ${JSON.stringify(pathToFileURL(join(root, 'dist/transformer/wasm.js')).href)}; console.log(defaultCacheDir());`;
  const env = { ...process.env };
  delete env.PULLBACK_CACHE_DIR;
  const inProject = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: join(dir, 'src'), encoding: 'utf8', env });
  const elsewhere = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: tmpdir(), encoding: 'utf8', env });
  const real = realpathSync(dir);
  rmSync(dir, { recursive: true, force: true });
  assert.is(inProject.stdout.trim(), join(real, 'node_modules', '.cache', 'pullback'), inProject.stderr);
  assert.is(elsewhere.stdout.trim(), join(root, 'node_modules', '.cache', 'pullback'), elsewhere.stderr);
});

test('a crash of the asc worker is reported at once, and the next file gets a new worker', () => {
  // In a child process, so that the worker starts with the fault-injection variable set (see asc-run.ts).
  const dir = mkdtempSync(join(tmpdir(), 'pullback-asc-'));
  const script = `
    import { createCompiler } from ${JSON.stringify(pathToFileURL(join(root, 'dist/transformer/compiler.js')).href)};
    import { writeFileSync } from 'node:fs';
    const src = (k) => '/** @differentiable */\\nexport function f(x: number): number { return x * x * ' + k + '; }\\n';
    writeFileSync(${JSON.stringify(join(dir, 'a.ts'))}, src(3));
    writeFileSync(${JSON.stringify(join(dir, 'b.ts'))}, src(5));
    const c = createCompiler({ wasm: true, cacheDir: ${JSON.stringify(join(dir, 'cache'))} });
    const t0 = Date.now();
    const a = c.transform(${JSON.stringify(join(dir, 'a.ts'))});
    const seconds = (Date.now() - t0) / 1000;
    process.env.PULLBACK_ASC_FAULT = '';
    const b = c.transform(${JSON.stringify(join(dir, 'b.ts'))});
    console.log(JSON.stringify({ a: /asc crashed: Error: injected asc fault/.test(a.code), seconds, b: b.code.includes('function $pb$wasm()') }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, PULLBACK_ASC_FAULT: 'crash' }, timeout: 100_000 });
  rmSync(dir, { recursive: true, force: true });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { a: boolean; seconds: number; b: boolean };
  assert.ok(out.a, 'the first file reports the crash as the reason it stays on JS');
  assert.ok(out.seconds < 60, `the crash took ${out.seconds} s to be noticed (the worker timeout is 120 s)`);
  assert.ok(out.b, 'the second file compiled on a new worker');
});

test('wasm: false turns the lowering off, with the reason in the registration', () => {
  const before = { ...wasmStats };
  const off = createCompiler({ wasm: false }).transform(`${root}/${file}`);
  assert.not.ok(off.code.includes('$pb$wasm'));
  assert.match(off.code, /reason: "the Wasm lowering is off \(opt-in, as it is rarely much faster than the JS adjoint: wasm: true, --wasm or PULLBACK_WASM=1\)"/);
  assert.equal({ ...wasmStats }, before);
});

test.run();
