// Each construct outside the scalar subset fails at compile time at the offending node, with
// `<construct> is not differentiable: <reason>; <what to do>`. `⟦` in a case marks where the error must point.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { transformProgram } from '../support/compile.js';
import { formatDiagnostic } from '../../transformer/compiler.js';

let n = 0;
function fails(construct: string, body: string, message: RegExp, prelude = '') {
  test(`${construct} is rejected at its line and column`, () => {
    const marked = `${prelude}\n/** @differentiable */\nexport function f(x: number, a: Float64Array): number {\n${body}\n}\n`;
    const at = marked.indexOf('⟦');
    assert.ok(at >= 0, 'test case lacks a ⟦ marker');
    const text = marked.replace('⟦', '');
    const before = text.slice(0, at).split('\n');
    const line = before.length, column = before[before.length - 1]!.length + 1;
    const r = transformProgram(`test/programs/errors/case${n++}.ts`, text);
    const errors = r.diagnostics.filter((d) => d.category === 'error');
    assert.ok(errors.length > 0, `no error for ${construct}`);
    const d = errors[0]!;
    assert.match(d.message, message);
    assert.match(d.message, / is not differentiable: .*; /);
    assert.equal([d.line, d.column], [line, column], formatDiagnostic(d));
    assert.is(r.changed, false, 'nothing is generated for a file with errors');
  });
}

fails('try/catch', '  let y = x;\n  ⟦try { y = x * x; } catch { y = 0; }\n  return y;', /^try\/catch is not differentiable/);
fails('a closure mutating a captured variable', '  let y = x;\n  const g = ⟦() => { y = y * 2; };\n  return y;', /closure that mutates a captured variable/);

fails('arguments', '  return ⟦arguments.length * x;', /`arguments`/);
fails('eval', '  return ⟦eval("x") * x;', /^eval is not differentiable: code built from strings cannot be analysed/);
fails('a call of an unmarked function with an active argument', '  return ⟦helper(x) + 1;', /the call of helper is not differentiable: it is not marked differentiable.*stopGradient/, 'function helper(v: number): number { return v * 2; }');
fails('a write into a parameter array', '  ⟦a[0] = x;\n  return a[0];', /writing into the parameter array 'a'.*Float64Array\.from\(a\)/);
fails('an object literal', '  const o = ⟦{ v: 1 };\n  return x;', /^an object literal is not differentiable/);
fails('class field mutation', '  ⟦state.v = x;\n  return x;', /object\/class field mutation/, 'const state = { v: 0 };');
fails('mutating an outer variable', '  ⟦total = x;\n  return x;', /assigning the outer variable 'total'/, 'let total = 0;');
fails('switch', '  ⟦switch (x) { default: return x; }', /^switch is not differentiable/);
fails('a bitwise operator on an active value', '  return (⟦x | 0) + x;', /the operator '\|' on a differentiated value/);
fails('a labelled statement', '  ⟦outer: for (let i = 0; i < 3; i++) { x = x * 2; }\n  return x;', /labelled statement/);
fails('a nested function declaration', '  ⟦function g(v: number) { return v; }\n  return x;', /nested declaration/);
fails('an assignment inside an expression', '  let y = 0;\n  return (⟦y = x) * 2;', /an assignment inside an expression/);
fails('valueAndGrad inside a marked function without destructuring', '  const p = ⟦valueAndGrad(sq)(x);\n  return x;', /valueAndGrad must be destructured: const \[value, gradient\] = valueAndGrad\(f\)\(\.\.\.\)/, "import { valueAndGrad } from 'pullback';\n/** @differentiable */\nfunction sq(v: number): number { return v * v; }");
fails('jvp inside a marked function', '  const p = ⟦jvp(sq, [x], [1])[1];\n  return x;', /'jvp' inside a marked function is not differentiable: nested differentiation is not supported yet/, "import { jvp } from 'pullback';\n/** @differentiable */\nfunction sq(v: number): number { return v * v; }");
fails('an unsupported Math function', '  return ⟦Math.random() * x;', /Math\.random is not differentiable: it has no derivative rule/);

test('a generator and an async function are rejected at the function', () => {
  for (const [src, re] of [['/** @differentiable */\nexport ⟦function* g(x: number): any { yield x; }', /generator/],
    ['/** @differentiable */\nexport ⟦async function g(x: number): Promise<number> { return x; }', /async function/]] as const) {
    const text = src.replace('⟦', '');
    const r = transformProgram(`test/programs/errors/case${n++}.ts`, text);
    const d = r.diagnostics.find((x) => x.category === 'error');
    assert.ok(d, `no error for ${src}`);
    assert.match(d!.message, re);
    assert.is(d!.line, 2);
  }
});

test('a zero-derivative parameter is a warning, not an error', () => {
  const text = "import { stopGradient } from 'pullback';\n/** @differentiable */\nexport function g(x: number, unused: number, frozen: number, n: number): number {\n  let s = 0;\n  for (let i = 0; i < n; i++) s += x * stopGradient(frozen);\n  return s + Math.floor(frozen);\n}\n";
  const r = transformProgram(`test/programs/errors/case${n++}.ts`, text);
  const w = r.diagnostics.filter((d) => d.category === 'warning').map((d) => `${d.line}:${d.column} ${d.message}`);
  assert.is(r.diagnostics.filter((d) => d.category === 'error').length, 0);
  assert.ok(r.changed);
  assert.ok(w.some((m) => /^3:30 the parameter 'unused' is never used/.test(m)), w.join('\n'));
  assert.ok(!w.some((m) => /'n'/.test(m)), 'a loop bound is not a suspicious zero derivative');
  assert.ok(!w.some((m) => /'x'/.test(m)));
});

test('a callee with a reverse rule but no forward rule compiles without a diagnostic', () => {
  // Reverse mode needs no tangent rule. A warning here was printed on every run of the register hook and failed
  // tsc builds (tsc counts a warning as a failure); forward-mode uses are checked where they are (next test).
  const text = "export function cube(x: number): number { return x * x * x; }\n/** @derivative cube */\nexport function cubeGrad(x: number, g: number): number { return 3 * x * x * g; }\n/** @differentiable */\nexport function f(x: number): number { return cube(x) + 1; }\n";
  const r = transformProgram(`test/programs/errors/case${n++}.ts`, text);
  assert.equal(r.diagnostics.map((d) => d.message), []);
  assert.ok(r.changed);
});

test('jvp through a rule with no forward rule is a compile-time error at the jvp call; hvp through it a warning', () => {
  const rule = "import { jvp, jacfwd, hvp } from 'pullback';\nexport function cube(x: number): number { return x * x * x; }\n/** @derivative cube */\nexport function cubeGrad(x: number, g: number): number { return 3 * x * x * g; }\n";
  const fns = "/** @differentiable */\nexport function f(x: number): number { return cube(x) + 1; }\n/** @differentiable */\nexport function h(x: number): number { return 2 * f(x); }\n";
  const r = transformProgram(`test/programs/errors/case${n++}.ts`, rule + fns + "export const t = jvp(h, [1], [1]);\nexport const J = jacfwd(f)(2);\n");
  const e = r.diagnostics.filter((d) => d.category === 'error');
  assert.equal(e.map((d) => [d.line, d.column]), [[9, 18], [10, 18]]);
  assert.match(e[0]!.message, /^jvp\(h\) runs forward mode through cube, which has a \/\*\* @derivative \*\/ rule but no \/\*\* @tangent \*\/ rule: declare \/\*\* @tangent cube \*\//);
  assert.match(e[1]!.message, /^jacfwd\(f\) runs forward mode through cube/);
  assert.not.ok(r.changed);
  // With the forward rule declared, the same module compiles.
  const tangent = "/** @tangent cube */\nexport function cubeTangent(x: number, dx: number): number { return 3 * x * x * dx; }\n";
  const ok = transformProgram(`test/programs/errors/case${n++}.ts`, rule + tangent + fns + "export const t = jvp(h, [1], [1]);\n");
  assert.is(ok.diagnostics.filter((d) => d.category === 'error').length, 0, ok.diagnostics.map((d) => d.message).join('\n'));
  assert.ok(ok.changed);
  // hvp needs second-order code, which custom rules rule out for now: it would throw, so say so, and go on.
  const q = "/** @differentiable */\nexport function q(x: number): number { return x * x * x; }\n";
  const w = transformProgram(`test/programs/errors/case${n++}.ts`, rule + tangent + fns + q + "export const hv = hvp(h)(1, 1);\n");
  assert.is(w.diagnostics.filter((d) => d.category === 'error').length, 0);
  assert.ok(w.diagnostics.some((d) => d.category === 'warning' && /^hvp\(h\) will throw: h has no second-order code/.test(d.message)), w.diagnostics.map((d) => d.message).join('\n'));
  assert.ok(w.changed);
  // ... and the functions of the module that call no rule keep theirs.
  assert.match(w.code, /\$pb\.registerDirectional\(q, q\$dd\);/);
  assert.not.match(w.code, /registerDirectional\(h,/);
});

test('vjp inside a marked function: what can be done with the pullback, and what cannot', () => {
  const head = "import { vjp, grad } from 'pullback';\n/** @differentiable */\nexport function g(x: number, y: number): number { return x * y; }\n/** @differentiable */\nexport function f(x: number): number {\n";
  const cases: [string, RegExp][] = [
    ['  return vjp(g, x, 2)[0];\n', /'vjp\(\.\.\.\)' inside a marked function is not differentiable: vjp returns a value and a pullback; destructure them: const \[y, pb\] = vjp\(g, x, 2\)/],
    ['  const [y, pb] = vjp(g, x, 2);\n  const q = pb;\n  return y;\n', /the pullback 'pb' used as a value is not differentiable: a pullback from vjp inside a marked function can only be called/],
    ['  const [y, pb] = vjp(g, x, 2);\n  return pb(1) * y;\n', /'pb\(1\)' is not differentiable: a pullback returns one gradient per parameter of the differentiated function; destructure them: const \[dx, dy\] = pb\(1\)/],
    ['  const [y, pb] = vjp(g, x, 2);\n  return pb(1)[2] * y;\n', /gradient 2 of 'g' is not differentiable: the function has 2 parameter\(s\)/],
    ['  const [y, pb] = vjp(g, x);\n  return y;\n', /it passes 1 arguments for 2 parameters/],
    ['  const [y, pb] = vjp(Math.sin, x);\n  return y;\n', /the differentiated function must be a marked function of this module/],
    // A nested grad's argnums out of range says so, with the parameter count.
    ['  return grad(g, 2)(x, 1);\n', /argnums 2 names no parameter of g, which has 2/],
  ];
  for (const [body, re] of cases) {
    const r = transformProgram(`test/programs/errors/case${n++}.ts`, `${head}${body}}\n`);
    const e = r.diagnostics.filter((d) => d.category === 'error');
    assert.is(e.length, 1, `${body}: ${r.diagnostics.map((d) => d.message).join('\n')}`);
    assert.match(e[0]!.message, re);
    assert.ok(e[0]!.line >= 6, `${body}: the error points into f, at line ${e[0]!.line}`);
  }
});

test.run();
