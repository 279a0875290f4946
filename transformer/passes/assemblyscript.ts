// SPDX-License-Identifier: MIT
// Pass 8 (optional), AssemblyScript: the same sweeps as the JS printer, in AssemblyScript, for asc.
//
// The forward and reverse sweeps are printed once, as TypeScript, by the reverse pass. This pass does not
// differentiate again: it reads that TypeScript and re-prints it statement for statement in AssemblyScript,
// so the Wasm adjoint is the JS adjoint, operation for operation. What changes is typing: every number is an
// f64 (integer literals are written `1.0`, `.length` is widened, and indices and lengths are narrowed to i32
// where they are used; element reads and writes go through `$ld` / `$st`, whose bounds check is far cheaper
// than AssemblyScript's own), every array is a Float64Array (number[] parameters arrive copied into one), and the
// tape and runtime helpers are those of runtime-wasm/scalar/support.as.ts. The primal, which sweeps call for
// inactive calls, is printed from the normalized IR the same way.
//
// Anything outside that vocabulary (a JS-only helper, console.log, a module variable that is not a numeric
// constant, bitwise operators...) throws NotLowerable with a sentence for `explain(f)`.
import { ts } from 'ts-morph';
import { assertNever, type Expr } from '../ir.js';
import type { NStmt, Normalized } from './normalize.js';
import { printExpr, type PrintHooks } from './print.js';

/**
 * The AssemblyScript name of a module function or constant of the user's: prefixed, so that a user's `max`
 * or `abs` does not shadow AssemblyScript's built-ins of the same name in the support code.
 */
export const asName = (name: string): string => `$u_${name}`;

/** Why a function stays on the JS adjoint. */
export class NotLowerable extends Error {}

export interface AsScope {
  /** Functions of the generated AssemblyScript module a sweep may call (primals and sweeps). */
  functions: Set<string>;
  /** Module-level numeric constants a sweep may read: name -> value. */
  constant(name: string): number | undefined;
}

export interface AsPrinted {
  text: string;
  /** Module functions and constants it uses. */
  calls: Set<string>;
  constants: Map<string, number>;
}

/** Math functions AssemblyScript's f64 Math provides with JS semantics. */
const MATH = new Set(['abs', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atan2', 'atanh', 'cbrt', 'ceil', 'cos', 'cosh', 'exp', 'expm1',
  'floor', 'fround', 'hypot', 'log', 'log10', 'log1p', 'log2', 'max', 'min', 'pow', 'round', 'sign', 'sin', 'sinh', 'sqrt', 'tan', 'tanh', 'trunc']);
const MATH_CONSTANTS = new Set(['E', 'LN2', 'LN10', 'LOG2E', 'LOG10E', 'PI', 'SQRT1_2', 'SQRT2']);
const NUMBER_CONSTANTS: Record<string, string> = {
  EPSILON: 'f64.EPSILON', MAX_VALUE: 'f64.MAX_VALUE', MIN_VALUE: 'f64.MIN_VALUE', MAX_SAFE_INTEGER: 'f64.MAX_SAFE_INTEGER',
  MIN_SAFE_INTEGER: 'f64.MIN_SAFE_INTEGER', POSITIVE_INFINITY: 'Infinity', NEGATIVE_INFINITY: '(-Infinity)', NaN: 'NaN',
};
const TAPE_METHODS = new Set(['push', 'pop', 'popInt', 'pushRef', 'popRef']);
const BINARY = new Set(['=', '+=', '-=', '*=', '/=', '%=', '+', '-', '*', '/', '%', '**', '<', '<=', '>', '>=', '===', '!==', '==', '!=', '&&', '||']);

/** TypeScript of the primal, from the normalized IR (what the forward sweep runs, without the tape). */
export function primalSource(n: Normalized): string {
  const fn = n.fn;
  const params = new Set(fn.params.map((p) => p.name));
  const typeOf = (v: string) => fn.locals.get(v) ?? 'num';
  const h: PrintHooks = { name: (v) => v };
  const P = (e: Expr) => printExpr(e, h);
  const ind = (ls: string[]) => ls.map((l) => '  ' + l);
  const stmt = (s: NStmt): string[] => {
    switch (s.k) {
      case 'decl': return s.init ? [`${s.name} = ${P(s.init)};`] : [];
      case 'assign': return [`${s.name} = ${P(s.value)};`];
      case 'store': return [`${s.arr}[${P(s.idx)}] = ${P(s.value)};`];
      case 'if': {
        const t = list(s.then), f = list(s.else);
        return [`if (${P(s.cond)}) {`, ...ind(t), ...(f.length ? ['} else {', ...ind(f)] : []), '}'];
      }
      case 'loop': {
        const body = list(s.body);
        if (s.exit) body.push(`if (${P(s.exit)}) break;`);
        body.push(...list(s.update));
        const cond = s.cond ? P(s.cond) : 'true';
        return [...list(s.init), ...(s.post ? ['do {', ...ind(body), `} while (${cond});`] : [`while (${cond}) {`, ...ind(body), '}'])];
      }
      case 'opaque': throw new NotLowerable(`it runs \`${s.text.trim().split('\n')[0]}\`, which only JavaScript can run`);
      case 'break': case 'continue': case 'return': throw new Error('pullback internal error: jump after normalize');
      default: return assertNever(s);
    }
  };
  const list = (ss: NStmt[]): string[] => ss.flatMap(stmt);
  const locals = [...fn.locals.keys()].filter((v) => !params.has(v))
    .map((v) => (typeOf(v) === 'arr' ? `${v}!: Float64Array` : typeOf(v) === 'bool' ? `${v} = false` : `${v} = 0`));
  return [
    `function ${fn.prefix}(${fn.params.map((p) => `${p.name}: ${p.typeText}`).join(', ')}): ${fn.returnTypeText} {`,
    ...ind([...(locals.length ? [`let ${locals.join(', ')};`] : []), ...list(n.body), `return ${n.result};`]),
    '}',
  ].join('\n');
}

/** Re-prints TypeScript function declarations (generated sweeps, or `primalSource`) as AssemblyScript. */
export function toAssemblyScript(source: string, scope: AsScope): AsPrinted {
  const sf = ts.createSourceFile('sweeps.ts', source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const calls = new Set<string>();
  const constants = new Map<string, number>();
  const out: string[] = [];
  for (const st of sf.statements) {
    if (!ts.isFunctionDeclaration(st) || !st.name || !st.body) throw new NotLowerable(`unexpected generated code: ${st.getText().slice(0, 60)}`);
    out.push(printFunction(st, scope, calls, constants));
  }
  return { text: out.join('\n\n'), calls, constants };
}

function printFunction(fn: ts.FunctionDeclaration, scope: AsScope, calls: Set<string>, constants: Map<string, number>): string {
  const declared = new Set<string>();
  const fail = (n: ts.Node, why: string): never => { throw new NotLowerable(`${why} (\`${n.getText().slice(0, 80)}\`)`); };

  const type = (t: ts.TypeNode | undefined, at: ts.Node): string => {
    if (!t) return fail(at, 'a value of unknown type');
    const text = t.getText();
    if (text === 'number') return 'f64';
    if (text === 'boolean') return 'bool';
    if (text === 'void') return 'void';
    if (text === '$pb.Tape') return 'Tape';
    if (/^(Float64Array(<\w+>)?|number\[\]|Array<number>|any|ArrayLike<number>)$/.test(text)) return 'Float64Array';
    return fail(at, `the type ${text}`);
  };

  const num = (text: string): string => (/^\d+$/.test(text) ? `${text}.0` : /^[\d.e+-]+$/i.test(text) ? text : String(Number(text)));

  const expr = (n: ts.Expression): string => {
    if (ts.isIdentifier(n)) {
      const name = n.text;
      if (declared.has(name)) return name;
      if (name === 'NaN' || name === 'Infinity') return name;
      const c = scope.constant(name);
      if (c !== undefined) { constants.set(name, c); return asName(name); }
      return fail(n, `it reads \`${name}\` from outside the function`);
    }
    if (ts.isNumericLiteral(n)) return num(n.text);
    if (n.kind === ts.SyntaxKind.TrueKeyword) return 'true';
    if (n.kind === ts.SyntaxKind.FalseKeyword) return 'false';
    if (ts.isParenthesizedExpression(n)) return `(${expr(n.expression)})`;
    if (ts.isNonNullExpression(n)) return expr(n.expression);
    if (ts.isPrefixUnaryExpression(n)) {
      const a = expr(n.operand);
      switch (n.operator) {
        case ts.SyntaxKind.MinusToken: return `-${a}`;
        case ts.SyntaxKind.ExclamationToken: return `!${a}`;
        case ts.SyntaxKind.PlusToken: return `<f64>(${a})`;
        case ts.SyntaxKind.PlusPlusToken: return `++${a}`;
        case ts.SyntaxKind.MinusMinusToken: return `--${a}`;
        default: return fail(n, 'this operator');
      }
    }
    if (ts.isPostfixUnaryExpression(n)) return `${expr(n.operand)}${n.operator === ts.SyntaxKind.PlusPlusToken ? '++' : '--'}`;
    if (ts.isBinaryExpression(n)) {
      const op = n.operatorToken.getText();
      if (!BINARY.has(op)) return fail(n, `the operator ${op} (integer semantics differ in Wasm)`);
      if (ts.isElementAccessExpression(n.left) && op.endsWith('=') && op.length <= 2) {
        // An element store: `$st(a, i, v)`, compound ones through `$ld` (index expressions are pure here).
        const arr = expr(n.left.expression), idx = `<i32>(${expr(n.left.argumentExpression)})`;
        const value = op === '=' ? expr(n.right) : `$ld(${arr}, ${idx}) ${op[0]} (${expr(n.right)})`;
        return `$st(${arr}, ${idx}, ${value})`;
      }
      return `${expr(n.left)} ${op} ${expr(n.right)}`;
    }
    if (ts.isConditionalExpression(n)) return `${expr(n.condition)} ? ${expr(n.whenTrue)} : ${expr(n.whenFalse)}`;
    if (ts.isElementAccessExpression(n)) return `$ld(${expr(n.expression)}, <i32>(${expr(n.argumentExpression)}))`;
    if (ts.isPropertyAccessExpression(n)) {
      const base = n.expression.getText(), name = n.name.text;
      if (base === 'Math' && MATH_CONSTANTS.has(name)) return `Math.${name}`;
      if (base === '$pb' && name === 'EMPTY') return '$EMPTY';
      if (base === '$t' && name === 'd') return '$t.d';
      if (base === 'Number' && NUMBER_CONSTANTS[name]) return NUMBER_CONSTANTS[name]!;
      if (name === 'length') return `<f64>(${expr(n.expression)}.length)`;
      return fail(n, `it reads ${n.getText()}`);
    }
    if (ts.isNewExpression(n)) {
      const args = n.arguments ?? [];
      if (n.expression.getText() === 'Float64Array' && args.length === 1) return `new Float64Array(<i32>(${expr(args[0]!)}))`;
      return fail(n, 'this allocation');
    }
    if (ts.isCallExpression(n)) return call(n);
    return fail(n, 'this expression');
  };

  const call = (n: ts.CallExpression): string => {
    const args = n.arguments;
    const callee = n.expression;
    if (ts.isIdentifier(callee)) {
      if (!scope.functions.has(callee.text)) return fail(n, `it calls ${callee.text}, which has no Wasm build`);
      calls.add(callee.text);
      return `${asName(callee.text)}(${args.map(expr).join(', ')})`;
    }
    if (!ts.isPropertyAccessExpression(callee)) return fail(n, 'this call');
    const base = callee.expression, name = callee.name.text, baseText = base.getText();
    if (baseText === '$t' && TAPE_METHODS.has(name)) return `$t.${name}(${args.map(expr).join(', ')})`;
    if (baseText === 'Math') {
      if (!MATH.has(name)) return fail(n, `Math.${name} has no derivative rule in Wasm`);
      const xs = args.map(expr);
      // AssemblyScript's max, min and hypot take two arguments: fold the rest.
      if ((name === 'max' || name === 'min' || name === 'hypot') && xs.length !== 2) {
        if (xs.length === 1) return name === 'hypot' ? `Math.abs(${xs[0]})` : xs[0]!;
        if (xs.length === 0) return fail(n, `Math.${name}() without arguments`);
        return xs.slice(1).reduce((acc, x) => `Math.${name}(${acc}, ${x})`, xs[0]!);
      }
      return `Math.${name}(${xs.join(', ')})`;
    }
    if (baseText === '$pb' && name === 'addTo') return `$addTo(${args.map(expr).join(', ')})`;
    if (baseText === '$pb' && (name === 'argmax' || name === 'argmin')) return `$${name}([${args.map(expr).join(', ')}] as StaticArray<f64>)`;
    if ((baseText === 'Float64Array' || baseText === 'Array') && name === 'from' && args.length === 1) return `$copy(${expr(args[0]!)})`;
    if (name === 'fill' && args.length === 1 && ts.isNumericLiteral(args[0]!) && Number(args[0].text) === 0) {
      // new Array<number>(n).fill(0): a zeroed scratch array.
      if (ts.isNewExpression(base) && /^Array(<number>)?$/.test(base.expression.getText() + (base.typeArguments ? `<${base.typeArguments.map((t) => t.getText()).join()}>` : ''))) {
        return `new Float64Array(<i32>(${expr(base.arguments![0]!)}))`;
      }
      return `${expr(base)}.fill(0.0)`;
    }
    if (name === 'subarray' && args.length >= 1 && args.length <= 2) return `${expr(base)}.subarray(${args.map((a) => `<i32>(${expr(a)})`).join(', ')})`;
    if (name === 'slice' && args.length === 0) return `$copy(${expr(base)})`;
    return fail(n, `it calls ${callee.getText()}`);
  };

  const declList = (l: ts.VariableDeclarationList): string => {
    const kw = l.flags & ts.NodeFlags.Const ? 'const' : 'let';
    const parts = l.declarations.map((d) => {
      if (!ts.isIdentifier(d.name)) return fail(d, 'a destructuring declaration');
      declared.add(d.name.text);
      const name = d.name.text;
      if (d.exclamationToken || !d.initializer) {
        const t = type(d.type, d);
        return t === 'Float64Array' ? `${name}: Float64Array = $EMPTY` : `${name}: ${t} = ${t === 'bool' ? 'false' : '0.0'}`;
      }
      const init = d.initializer;
      const t = d.type ? type(d.type, d)
        : ts.isNumericLiteral(init) || (ts.isPrefixUnaryExpression(init) && ts.isNumericLiteral(init.operand)) ? 'f64'
        : init.kind === ts.SyntaxKind.TrueKeyword || init.kind === ts.SyntaxKind.FalseKeyword ? 'bool' : undefined;
      return `${name}${t ? `: ${t}` : ''} = ${expr(init)}`;
    });
    return `${kw} ${parts.join(', ')}`;
  };

  const ind = (ls: string[]) => ls.map((l) => '  ' + l);
  const stmt = (s: ts.Statement): string[] => {
    if (ts.isVariableStatement(s)) return [`${declList(s.declarationList)};`];
    if (ts.isExpressionStatement(s)) return [`${expr(s.expression)};`];
    if (ts.isBlock(s)) return ['{', ...ind(s.statements.flatMap(stmt)), '}'];
    if (ts.isIfStatement(s)) {
      return [`if (${expr(s.expression)}) {`, ...ind(body(s.thenStatement)), ...(s.elseStatement ? ['} else {', ...ind(body(s.elseStatement))] : []), '}'];
    }
    if (ts.isWhileStatement(s)) return [`while (${expr(s.expression)}) {`, ...ind(body(s.statement)), '}'];
    if (ts.isDoStatement(s)) return ['do {', ...ind(body(s.statement)), `} while (${expr(s.expression)});`];
    if (ts.isForStatement(s)) {
      const init = !s.initializer ? '' : ts.isVariableDeclarationList(s.initializer) ? declList(s.initializer) : expr(s.initializer);
      return [`for (${init}; ${s.condition ? expr(s.condition) : ''}; ${s.incrementor ? expr(s.incrementor) : ''}) {`, ...ind(body(s.statement)), '}'];
    }
    if (ts.isBreakStatement(s) && !s.label) return ['break;'];
    if (ts.isContinueStatement(s) && !s.label) return ['continue;'];
    if (ts.isReturnStatement(s)) return [s.expression ? `return ${expr(s.expression)};` : 'return;'];
    return fail(s, 'this statement');
  };
  const body = (s: ts.Statement): string[] => (ts.isBlock(s) ? s.statements.flatMap(stmt) : stmt(s));

  const params = fn.parameters.map((p) => {
    const name = p.name.getText();
    if (name === 'this') return fail(p, 'a method');
    declared.add(name);
    return `${name}: ${type(p.type, p)}`;
  });
  const ret = type(fn.type, fn);
  return [`function ${asName(fn.name!.text)}(${params.join(', ')}): ${ret} {`, ...ind(fn.body!.statements.flatMap(stmt)), '}'].join('\n');
}
