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
fails('vjp inside a marked function', '  const p = ⟦vjp(sq, x);\n  return x;', /'vjp' inside a marked function is not differentiable: nested differentiation is not supported yet/, "import { vjp } from 'pullback';\n/** @differentiable */\nfunction sq(v: number): number { return v * v; }");
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

test('a callee with a reverse rule but no forward rule is a warning at the call', () => {
  const text = "export function cube(x: number): number { return x * x * x; }\n/** @derivative cube */\nexport function cubeGrad(x: number, g: number): number { return 3 * x * x * g; }\n/** @differentiable */\nexport function f(x: number): number { return cube(x) + 1; }\n";
  const r = transformProgram(`test/programs/errors/case${n++}.ts`, text);
  const w = r.diagnostics.filter((d) => d.category === 'warning');
  assert.is(w.length, 1);
  assert.equal([w[0]!.line, w[0]!.column], [5, 47]);
  assert.match(w[0]!.message, /cube has a \/\*\* @derivative \*\/ rule but no \/\*\* @tangent \*\/ rule: reverse mode works, but jvp and jacfwd through it will throw; declare \/\*\* @tangent cube \*\//);
  assert.ok(r.changed);
});

test.run();
