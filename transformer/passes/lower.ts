// SPDX-License-Identifier: MIT
// Pass 2, lower and fence: turn a marked function's TypeScript into the IR, rejecting everything outside
// the scalar subset with a diagnostic at the offending node (`file:line:col: <construct> is not
// differentiable: <reason>; <what to do>`). Identifiers are resolved through the type checker: a local is
// known by its declaration node, never by its spelling, so shadowed names get distinct IR names.
import { Node, SyntaxKind, type Type, type Expression, type Statement, type CallExpression, type NumericLiteral } from 'ts-morph';
import type { Callee, Expr, Fn, Param, Src, Stmt, ValueType, ArithOp, CmpOp } from '../ir.js';
import { Abandon, type Diagnostics } from '../diagnostics.js';
import type { FnNode, Marked } from './select.js';

export const MATH_FUNCTIONS = new Set([
  'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'atan2', 'sinh', 'cosh', 'tanh', 'exp', 'expm1', 'log', 'log1p',
  'log2', 'log10', 'sqrt', 'cbrt', 'pow', 'hypot', 'abs', 'min', 'max', 'sign', 'floor', 'ceil', 'round', 'trunc',
  'asinh', 'acosh', 'atanh', 'fround',
]);
const MATH_CONSTANTS = new Set(['PI', 'E', 'LN2', 'LN10', 'LOG2E', 'LOG10E', 'SQRT2', 'SQRT1_2']);

export interface LowerHost {
  diags: Diagnostics;
  /** Resolves a call to a function whose derivative is known (marked, or with a rule); undefined otherwise. */
  callee(call: CallExpression): Callee | undefined;
  /** True when the call's target is pullback's stopGradient. */
  isStopGradient(call: CallExpression): boolean;
  /** True when the call's target is one of pullback's differentiation operators (grad, vjp...). */
  isAdOperator(call: CallExpression): boolean;
  /**
   * `grad(g, a)(...args)` inside a marked function: the callee that computes that gradient (written by the
   * transformer's first pass and differentiable in its second), `'defer'` when it does not exist yet, or a
   * reason why this nested use is not supported.
   */
  nestedGrad(op: CallExpression, call: CallExpression): Callee | 'defer' | { unsupported: string };
  /**
   * `const [y, pb] = vjp(g, ...args)` inside a marked function, then `pb(ct)`: the callee that computes the
   * pullback's entry for g's parameter `index` from (...args, ct), as for nestedGrad. Without an index, only
   * checks that g can be used so ('ok').
   */
  nestedVjp(op: CallExpression, index?: number): Callee | 'defer' | 'ok' | { unsupported: string };
  /** The marked function an identifier names, as a callee (for `valueAndGrad(f)(...)` inside marked code). */
  calleeOf(id: Node): Callee | undefined;
  /** Which of pullback's operators a call's callee is (grad, valueAndGrad...), if any. */
  adOperator(call: CallExpression): string | undefined;
}

/**
 * The value of a numeric literal, from its text. (ts-morph's getLiteralValue() reads `1e-12` as 1: every
 * constant with a negative exponent came out wrong.) Underscores are separators; 0x, 0o and 0b are as in JS.
 */
export function numericValue(n: NumericLiteral): number {
  return Number(n.getText().replace(/_/g, ''));
}

export function classify(type: Type): ValueType | undefined {
  if (type.isNumber() || type.isNumberLiteral()) return 'num';
  if (type.isBoolean() || type.isBooleanLiteral()) return 'bool';
  if (type.getSymbol()?.getName() === 'Float64Array') return 'arr';
  if (type.isArray() && classify(type.getArrayElementTypeOrThrow()) === 'num') return 'arr';
  if (type.isUnion() && type.getUnionTypes().every((t) => t.isBooleanLiteral())) return 'bool';
  return undefined;
}

const ARITH: Partial<Record<SyntaxKind, ArithOp>> = {
  [SyntaxKind.PlusToken]: '+', [SyntaxKind.MinusToken]: '-', [SyntaxKind.AsteriskToken]: '*',
  [SyntaxKind.SlashToken]: '/', [SyntaxKind.AsteriskAsteriskToken]: '**', [SyntaxKind.PercentToken]: '%',
};
const COMPOUND: Partial<Record<SyntaxKind, ArithOp>> = {
  [SyntaxKind.PlusEqualsToken]: '+', [SyntaxKind.MinusEqualsToken]: '-', [SyntaxKind.AsteriskEqualsToken]: '*',
  [SyntaxKind.SlashEqualsToken]: '/', [SyntaxKind.AsteriskAsteriskEqualsToken]: '**', [SyntaxKind.PercentEqualsToken]: '%',
};
const CMP: Partial<Record<SyntaxKind, CmpOp>> = {
  [SyntaxKind.LessThanToken]: '<', [SyntaxKind.LessThanEqualsToken]: '<=', [SyntaxKind.GreaterThanToken]: '>',
  [SyntaxKind.GreaterThanEqualsToken]: '>=', [SyntaxKind.EqualsEqualsEqualsToken]: '===',
  [SyntaxKind.ExclamationEqualsEqualsToken]: '!==', [SyntaxKind.EqualsEqualsToken]: '==',
  [SyntaxKind.ExclamationEqualsToken]: '!=',
};

export function lowerFunction(m: Marked, host: LowerHost): Fn | 'defer' | undefined {
  const d = host.diags;
  const fn = m.node;
  const sf = fn.getSourceFile();
  const names = new Map<Node, string>(); // declaration node -> IR name
  const locals = new Map<string, ValueType>();
  const taken = new Set<string>();
  let usesThis = false;

  const fail: (node: Node, construct: string, reason: string, todo: string) => never = (node, construct, reason, todo) => {
    d.unsupported(node, construct, reason, todo);
    throw new Abandon();
  };
  const src = (node: Node): Src => {
    const { line, column } = sf.getLineAndColumnAtPos(node.getStart());
    let text = node.getText();
    if (Node.isIfStatement(node)) text = `if (${node.getExpression().getText()})`;
    else if (Node.isForStatement(node) || Node.isForOfStatement(node) || Node.isWhileStatement(node)) text = text.slice(0, text.indexOf(')', text.indexOf('(')) + 1);
    else if (Node.isDoStatement(node)) text = `do ... while (${node.getExpression().getText()})`;
    return { line, col: column, text: text.split('\n')[0]!.trim() };
  };
  const fresh = (base: string): string => {
    let n = base, i = 1;
    while (taken.has(n)) n = `${base}_${++i}`;
    taken.add(n);
    return n;
  };
  // Hidden names (for...of counters) avoid every identifier spelled in the function.
  const spelled = new Set<string>();
  fn.forEachDescendant((n) => { if (Node.isIdentifier(n)) spelled.add(n.getText()); });
  const declare = (node: Node, name: string, type: ValueType): string => {
    const ir = taken.has(name) ? fresh(name) : (taken.add(name), name);
    names.set(node, ir);
    locals.set(ir, type);
    return ir;
  };
  const hidden = (base: string, type: ValueType): string => {
    let n = base, i = 1;
    while (taken.has(n) || spelled.has(n)) n = `${base}${++i}`;
    taken.add(n);
    locals.set(n, type);
    return n;
  };

  const assignedType = (decl: Node): ValueType | undefined => {
    const kinds = new Set<ValueType | undefined>();
    fn.forEachDescendant((x) => {
      if (!Node.isBinaryExpression(x) || x.getOperatorToken().getKind() !== SyntaxKind.EqualsToken) return;
      const l = x.getLeft();
      if (Node.isIdentifier(l) && (l.getSymbol()?.getDeclarations() ?? []).includes(decl)) kinds.add(classify(x.getRight().getType()));
    });
    return kinds.size === 1 ? [...kinds][0] : undefined;
  };
  const typeOf = (node: Node, what: string): ValueType => {
    const t = classify(node.getType());
    if (!t) fail(node, `${what} of type '${node.getType().getText(node)}'`, 'only number, boolean, Float64Array and number[] values are supported in scalar code', 'keep other values outside the marked function, or pass them as numbers');
    return t!;
  };

  /** The IR name of the local or parameter an identifier refers to, or undefined for outer names. */
  const localOf = (id: Node): string | undefined => {
    const sym = id.getSymbol();
    for (const decl of sym?.getDeclarations() ?? []) {
      const n = names.get(decl);
      if (n) return n;
    }
    return undefined;
  };
  const declaredInside = (id: Node): boolean => {
    const sym = id.getSymbol();
    return (sym?.getDeclarations() ?? []).some((decl) => decl.getSourceFile() === sf && decl.getPos() >= fn.getPos() && decl.getEnd() <= fn.getEnd());
  };

  const expr = (n: Expression | Node): Expr => {
    if (Node.isParenthesizedExpression(n) || Node.isAsExpression(n) || Node.isNonNullExpression(n) || Node.isSatisfiesExpression(n) || Node.isTypeAssertion(n)) {
      return expr(n.getExpression());
    }
    if (Node.isNumericLiteral(n)) return { k: 'lit', v: numericValue(n) };
    if (n.getKind() === SyntaxKind.TrueKeyword) return { k: 'lit', v: true };
    if (n.getKind() === SyntaxKind.FalseKeyword) return { k: 'lit', v: false };
    if (Node.isIdentifier(n)) {
      if (n.getText() === 'arguments') fail(n, '`arguments`', 'the parameters of a differentiated function must be named', 'declare the parameters explicitly');
      const local = localOf(n);
      if (local) return { k: 'var', name: local };
      if (pullbackOf(n)) fail(n, `the pullback '${n.getText()}' used as a value`, 'a pullback from vjp inside a marked function can only be called', `call it and destructure the gradients: const [dx] = ${n.getText()}(cotangent), or read one: ${n.getText()}(cotangent)[0]`);
      if (declaredInside(n)) fail(n, `'${n.getText()}'`, 'it refers to a nested function or a value the transformer does not track', 'move it to module level');
      return { k: 'ext', text: n.getText() };
    }
    if (n.getKind() === SyntaxKind.ThisKeyword) { usesThis = true; return { k: 'ext', text: 'this' }; }
    if (Node.isStringLiteral(n) || Node.isNoSubstitutionTemplateLiteral(n) || Node.isTemplateExpression(n)) return { k: 'ext', text: n.getText() };
    if (Node.isPrefixUnaryExpression(n)) {
      const op = n.getOperatorToken();
      const a = n.getOperand();
      if (op === SyntaxKind.MinusToken) return { k: 'neg', a: expr(a) };
      if (op === SyntaxKind.PlusToken) return expr(a);
      if (op === SyntaxKind.ExclamationToken) return { k: 'not', a: expr(a) };
      fail(n, `'${n.getText()}' inside an expression`, 'increments must be statements of their own', 'write it as a separate statement');
    }
    if (Node.isPostfixUnaryExpression(n)) fail(n, `'${n.getText()}' inside an expression`, 'increments must be statements of their own', 'write it as a separate statement');
    if (Node.isBinaryExpression(n)) {
      const kind = n.getOperatorToken().getKind();
      const a = n.getLeft(), b = n.getRight();
      const arith = ARITH[kind];
      if (arith) return { k: 'bin', op: arith, a: expr(a), b: expr(b) };
      const cmp = CMP[kind];
      if (cmp) return { k: 'cmp', op: cmp, a: expr(a), b: expr(b) };
      if (kind === SyntaxKind.AmpersandAmpersandToken) return { k: 'logic', op: '&&', a: expr(a), b: expr(b) };
      if (kind === SyntaxKind.BarBarToken) return { k: 'logic', op: '||', a: expr(a), b: expr(b) };
      if (kind === SyntaxKind.EqualsToken || COMPOUND[kind]) fail(n, 'an assignment inside an expression', 'assignments must be statements of their own', 'assign first, then use the variable');
      if (kind === SyntaxKind.CommaToken) fail(n, 'the comma operator', 'it hides an assignment order the reverse sweep must replay', 'write separate statements');
      // Bitwise operators and `??` produce values with zero derivative; they are kept verbatim and must stay inactive.
      return { k: 'extcall', text: n.getText(), fn: `(${n.getOperatorToken().getText()})`, args: [expr(a), expr(b)], node: n };
    }
    if (Node.isConditionalExpression(n)) return { k: 'cond', c: expr(n.getCondition()), a: expr(n.getWhenTrue()), b: expr(n.getWhenFalse()) };
    if (Node.isPropertyAccessExpression(n)) {
      const base = n.getExpression();
      const prop = n.getName();
      if (Node.isIdentifier(base) && base.getText() === 'Math' && !localOf(base)) {
        if (!MATH_CONSTANTS.has(prop)) fail(n, `Math.${prop}`, 'it is not a constant', 'call Math functions with arguments');
        return { k: 'ext', text: `Math.${prop}` };
      }
      if (prop === 'length') {
        const arr = expr(base);
        return { k: 'len', arr };
      }
      const b = expr(base);
      if (b.k === 'ext') return { k: 'ext', text: `${b.text}.${prop}` };
      fail(n, `reading '.${prop}'`, 'only .length of arrays is supported on local values', 'pass the value as a number parameter');
    }
    if (Node.isElementAccessExpression(n)) {
      const inner = n.getExpression();
      const pb = Node.isCallExpression(inner) ? pullbackOf(inner.getExpression()) : undefined;
      if (pb) {
        const k = n.getArgumentExpression();
        if (!k || !Node.isNumericLiteral(k)) fail(n, `'${n.getText()}'`, 'the entry of a pullback\'s result must be a number literal', `write ${inner.getText()}[0] or destructure: const [dx] = ${inner.getText()}`);
        return pullbackCall(pb, inner as CallExpression, numericValue(k as NumericLiteral), n);
      }
      const arr = expr(n.getExpression());
      const idx = n.getArgumentExpression();
      if (!idx) fail(n, 'an element access without index', 'syntax', 'add the index');
      return { k: 'index', arr, idx: expr(idx!) };
    }
    if (Node.isArrayLiteralExpression(n)) {
      const items = n.getElements();
      for (const it of items) if (Node.isSpreadElement(it)) fail(it, 'a spread element', 'array spreads are not supported', 'copy elements in a loop');
      const t = n.getContextualType();
      const array = t?.getSymbol()?.getName() === 'Float64Array' ? 'f64' : 'js';
      return { k: 'arrlit', items: items.map(expr), array };
    }
    if (Node.isNewExpression(n)) {
      const ctor = n.getExpression().getText();
      const args = n.getArguments();
      if (ctor === 'Float64Array' && args.length === 1) {
        const a = args[0]!;
        if (classify(a.getType()) === 'arr') return { k: 'copy', src: expr(a), array: 'f64' };
        return { k: 'alloc', len: expr(a), array: 'f64' };
      }
      fail(n, `new ${ctor}(...)`, 'only new Float64Array(n), new Float64Array(array) and new Array(n).fill(0) are supported', 'allocate scratch arrays with new Float64Array(n)');
    }
    if (Node.isCallExpression(n)) return call(n);
    if (Node.isArrowFunction(n) || Node.isFunctionExpression(n)) {
      let mutates = false;
      n.forEachDescendant((x) => {
        if (Node.isBinaryExpression(x) && (x.getOperatorToken().getKind() === SyntaxKind.EqualsToken || COMPOUND[x.getOperatorToken().getKind()])) {
          const l = x.getLeft();
          if (Node.isIdentifier(l) && !((l.getSymbol()?.getDeclarations() ?? []).some((dd) => dd.getPos() >= n.getPos() && dd.getEnd() <= n.getEnd()))) mutates = true;
        }
      });
      if (mutates) fail(n, 'a closure that mutates a captured variable', 'the reverse sweep cannot see assignments made inside closures', 'move the computation into the marked function or into another marked function');
      fail(n, 'a nested function', 'functions defined inside a marked function are not differentiated', 'move it to module level and mark it /** @differentiable */');
    }
    if (Node.isObjectLiteralExpression(n)) fail(n, 'an object literal', 'objects are not in the scalar subset', 'use separate number variables or a Float64Array');
    if (n.getKind() === SyntaxKind.AwaitExpression) fail(n, 'await', 'asynchronous code has no derivative', 'compute the inputs first, then call the marked function');
    if (n.getKind() === SyntaxKind.YieldExpression) fail(n, 'yield', 'generators are not supported', 'return the values as an array');
    if (n.getKind() === SyntaxKind.NullKeyword || n.getKind() === SyntaxKind.UndefinedKeyword) return { k: 'ext', text: n.getText() };
    return fail(n, `'${n.getKindName()}'`, 'this syntax is outside the scalar subset', 'rewrite it with numbers, arrays, loops and branches');
  };

  const call = (n: CallExpression): Expr => {
    const callee = n.getExpression();
    const args = n.getArguments();
    if (Node.isCallExpression(callee) && host.isAdOperator(callee)) {
      const r = host.nestedGrad(callee, n);
      if (r === 'defer') throw new Defer();
      if ('unsupported' in r) fail(n, `'${callee.getText()}(...)' inside a marked function`, r.unsupported, 'compute the inner derivative outside the marked function, or write a /** @derivative */ rule');
      const c = r as Callee;
      if (c.params.length !== args.length) fail(n, `the call of ${callee.getText()}`, `it passes ${args.length} arguments for ${c.params.length} parameters`, 'pass every parameter');
      return { k: 'call', callee: c, args: args.map(expr) };
    }
    if (pullbackOf(callee)) fail(n, `'${n.getText()}'`, 'a pullback returns one gradient per parameter of the differentiated function', `destructure them: const [dx, dy] = ${n.getText()}, or read one: ${n.getText()}[0]`);
    for (const a of args) if (Node.isSpreadElement(a)) fail(a, 'a spread argument', 'arguments must be listed', 'pass each argument explicitly');
    if (Node.isPropertyAccessExpression(callee)) {
      const base = callee.getExpression();
      const name = callee.getName();
      if (Node.isIdentifier(base) && base.getText() === 'Math' && !localOf(base)) {
        if (!MATH_FUNCTIONS.has(name)) fail(n, `Math.${name}`, 'it has no derivative rule', 'use one of the supported Math functions or write a /** @derivative */ rule');
        return { k: 'math', fn: name, args: args.map(expr) };
      }
      if (Node.isIdentifier(base) && base.getText() === 'Float64Array' && name === 'from' && args.length === 1) return { k: 'copy', src: expr(args[0]!), array: 'f64' };
      if (name === 'subarray') return { k: 'view', arr: expr(base), start: args[0] ? expr(args[0]) : { k: 'lit', v: 0 }, end: args[1] ? expr(args[1]) : null };
      if (name === 'slice' && args.length === 0 && classify(base.getType()) === 'arr') return { k: 'copy', src: expr(base), array: base.getType().getSymbol()?.getName() === 'Float64Array' ? 'f64' : 'js' };
      if (name === 'fill' && Node.isNewExpression(base) && base.getExpression().getText() === 'Array' && base.getArguments().length === 1) {
        const v = args[0];
        if (!v || !Node.isNumericLiteral(v) || numericValue(v) !== 0) fail(n, 'new Array(n).fill(v)', 'scratch arrays start at zero', 'use new Array(n).fill(0) and assign the elements');
        return { k: 'alloc', len: expr(base.getArguments()[0]!), array: 'js' };
      }
    }
    if (Node.isIdentifier(callee) && callee.getText() === 'eval' && !localOf(callee)) fail(n, 'eval', 'code built from strings cannot be analysed', 'write the computation as code');
    if (host.isStopGradient(n)) {
      if (args.length !== 1) fail(n, 'stopGradient', 'it takes one argument', 'call stopGradient(x)');
      return { k: 'stop', a: expr(args[0]!) };
    }
    if (host.adOperator(n) === 'vjp') fail(n, `'${callee.getText()}(...)' inside a marked function`, 'vjp returns a value and a pullback', `destructure them: const [y, pb] = ${n.getText()}; then const [dx] = pb(cotangent)`);
    if (host.isAdOperator(n)) fail(n, `'${callee.getText()}' inside a marked function`, 'nested differentiation is not supported yet', 'compute the inner derivative outside, or write a /** @derivative */ rule');
    const c = host.callee(n);
    if (c) {
      if (c.params.length !== args.length) fail(n, `the call of ${callee.getText()}`, `it passes ${args.length} arguments for ${c.params.length} parameters`, 'pass every parameter (default values are not supported)');
      if (c.viaThis) usesThis = true;
      return { k: 'call', callee: c, args: args.map(expr) };
    }
    return { k: 'extcall', text: n.getText(), fn: callee.getText(), args: args.map(expr), node: n };
  };

  const assignTarget = (lhs: Node, value: (old: Expr) => Expr, node: Node): Stmt => {
    const s = src(node);
    if (Node.isIdentifier(lhs)) {
      const name = localOf(lhs);
      if (!name) {
        if (declaredInside(lhs)) fail(lhs, `assigning '${lhs.getText()}'`, 'it is not a variable the transformer tracks', 'declare it with let in the marked function');
        fail(lhs, `assigning the outer variable '${lhs.getText()}'`, 'a marked function must not mutate state outside itself (the reverse sweep cannot undo it)', 'return the value instead');
      }
      return { k: 'assign', name: name!, value: value({ k: 'var', name: name! }), src: s };
    }
    if (Node.isElementAccessExpression(lhs)) {
      const base = lhs.getExpression();
      const arr = Node.isIdentifier(base) ? localOf(base) : undefined;
      if (!arr) fail(lhs, `writing into '${base.getText()}'`, 'only local scratch arrays can be written', 'allocate a local array with new Float64Array(n) and write into it');
      if (paramNames.has(arr!)) fail(lhs, `writing into the parameter array '${base.getText()}'`, 'parameter arrays are read-only in marked functions (their old values are needed by the reverse sweep)', `copy it first: const y = Float64Array.from(${base.getText()})`);
      const idx = expr(lhs.getArgumentExpressionOrThrow());
      return { k: 'store', arr: arr!, idx, value: value({ k: 'index', arr: { k: 'var', name: arr! }, idx }), src: s };
    }
    if (Node.isPropertyAccessExpression(lhs) || Node.isParenthesizedExpression(lhs)) fail(lhs, 'object/class field mutation', 'fields are state outside the function that the reverse sweep cannot restore', 'keep the value in a local variable and return it');
    return fail(lhs, 'this assignment target', 'only variables and array elements can be assigned', 'assign a local variable');
  };

  const stmt = (n: Statement | Node, out: Stmt[]): void => {
    if (Node.isBlock(n)) { for (const s of n.getStatements()) stmt(s, out); return; }
    if (Node.isEmptyStatement(n)) return;
    if (Node.isVariableStatement(n)) {
      for (const v of n.getDeclarations()) {
        const nameNode = v.getNameNode();
        const vinit = v.getInitializer();
        // `const [y, pb] = vjp(g, ...args)`, and `const [dx, dy] = pb(ct)` (see lowerVjp).
        if (Node.isArrayBindingPattern(nameNode) && vinit && Node.isCallExpression(vinit) && host.adOperator(vinit) === 'vjp') {
          lowerVjp(nameNode, vinit, v, out);
          continue;
        }
        const pb = Node.isArrayBindingPattern(nameNode) && vinit && Node.isCallExpression(vinit) ? pullbackOf(vinit.getExpression()) : undefined;
        if (pb && Node.isArrayBindingPattern(nameNode)) {
          const call = vinit as CallExpression;
          const ct = cotangentOf(pb, call, out);
          // Every entry is asked for before deferring, so that the second pass has all of them.
          let later = false;
          nameNode.getElements().forEach((el, i) => {
            if (Node.isOmittedExpression(el)) return;
            if (!Node.isIdentifier(el.getNameNode()) || el.getInitializer() || el.getDotDotDotToken()) fail(el, 'this element of the destructuring', 'each gradient must be a plain name', 'write const [dx, dy] = pb(cotangent)');
            const c = vjpCallee(pb, i, call, false);
            if (c === 'defer') { later = true; return; }
            out.push({ k: 'decl', name: declare(el, el.getName(), c.returns), type: c.returns, init: { k: 'call', callee: c, args: [...pb.args, ct] }, src: src(v) });
          });
          if (later) throw new Defer();
          continue;
        }
        // `const [value, gradient] = valueAndGrad(f, a)(...args)`: the value is f(...args), the gradient
        // grad(f, a)(...args), each a differentiable call (the primal runs twice; the code stays first order).
        if (Node.isArrayBindingPattern(nameNode) && vinit && Node.isCallExpression(vinit) && Node.isCallExpression(vinit.getExpression()) &&
            host.adOperator(vinit.getExpression() as CallExpression) === 'valueAndGrad') {
          const op = vinit.getExpression() as CallExpression;
          const els = nameNode.getElements();
          if (els.length !== 2 || !els.every((el) => Node.isBindingElement(el) && Node.isIdentifier(el.getNameNode()) && !el.getInitializer() && !el.getDotDotDotToken())) {
            fail(nameNode, 'this destructuring of valueAndGrad', 'it must name exactly the value and the gradient', 'write const [value, gradient] = valueAndGrad(f)(...)');
          }
          const r = host.nestedGrad(op, vinit);
          if (r === 'defer') throw new Defer();
          if ('unsupported' in r) fail(vinit, `'${op.getText()}(...)' inside a marked function`, r.unsupported, 'compute it outside the marked function');
          const valueCallee = host.calleeOf(op.getArguments()[0]!);
          const gradCallee = r as Callee;
          if (!valueCallee) fail(op, `'${op.getText()}'`, 'the function is not differentiable', 'mark it /** @differentiable */');
          const args = vinit.getArguments().map(expr);
          const [valueEl, gradEl] = els as import('ts-morph').BindingElement[];
          const valueName = declare(valueEl!, valueEl!.getName(), 'num');
          out.push({ k: 'decl', name: valueName, type: 'num', init: { k: 'call', callee: valueCallee!, args }, src: src(v) });
          const gradName = declare(gradEl!, gradEl!.getName(), gradCallee.returns);
          out.push({ k: 'decl', name: gradName, type: gradCallee.returns, init: { k: 'call', callee: gradCallee, args }, src: src(v) });
          continue;
        }
        if (!Node.isIdentifier(nameNode)) fail(nameNode, 'a destructuring declaration', 'each variable must be declared on its own', 'declare the variables one by one');
        const init = v.getInitializer();
        const e = init ? expr(init) : null; // lowered before the name is visible, as in TS
        // `new Array(n).fill(0)` is typed any[] by TypeScript; what it holds is numbers. A `let t;` with
        // neither type nor value is typed by what is assigned to it, as TypeScript's evolving let is.
        const type = e && (e.k === 'alloc' || e.k === 'copy' || e.k === 'arrlit') ? 'arr'
          : !init && !v.getTypeNode() ? assignedType(v) ?? typeOf(v, `the local '${v.getName()}'`)
          : typeOf(v, `the local '${v.getName()}'`);
        out.push({ k: 'decl', name: declare(v, v.getName(), type), type, init: e, src: src(v) });
      }
      return;
    }
    if (Node.isExpressionStatement(n)) {
      const e = n.getExpression();
      if (Node.isBinaryExpression(e)) {
        const kind = e.getOperatorToken().getKind();
        if (kind === SyntaxKind.EqualsToken) { out.push(assignTarget(e.getLeft(), () => expr(e.getRight()), n)); return; }
        const op = COMPOUND[kind];
        if (op) { out.push(assignTarget(e.getLeft(), (old) => ({ k: 'bin', op, a: old, b: expr(e.getRight()) }), n)); return; }
      }
      if ((Node.isPrefixUnaryExpression(e) || Node.isPostfixUnaryExpression(e)) &&
          (e.getOperatorToken() === SyntaxKind.PlusPlusToken || e.getOperatorToken() === SyntaxKind.MinusMinusToken)) {
        const op: ArithOp = e.getOperatorToken() === SyntaxKind.PlusPlusToken ? '+' : '-';
        out.push(assignTarget(e.getOperand(), (old) => ({ k: 'bin', op, a: old, b: { k: 'lit', v: 1 } }), n));
        return;
      }
      if (Node.isCallExpression(e)) {
        const c = expr(e);
        if (c.k === 'call') return; // marked functions have no side effects: a discarded result is dead code
        if (c.k === 'extcall') { out.push({ k: 'opaque', text: n.getText(), uses: c.args, src: src(n) }); return; }
      }
      fail(n, 'this expression statement', 'it has no effect the transformer understands', 'assign its value to a variable');
    }
    if (Node.isIfStatement(n)) {
      const t: Stmt[] = [], f: Stmt[] = [];
      const cond = expr(n.getExpression());
      stmt(n.getThenStatement(), t);
      const el = n.getElseStatement();
      if (el) stmt(el, f);
      out.push({ k: 'if', cond, then: t, else: f, src: src(n) });
      return;
    }
    if (Node.isForStatement(n)) {
      const init: Stmt[] = [];
      const ini = n.getInitializer();
      if (ini) {
        if (Node.isVariableDeclarationList(ini)) {
          for (const v of ini.getDeclarations()) {
            const type = typeOf(v, `the loop variable '${v.getName()}'`);
            const e = v.getInitializer();
            init.push({ k: 'decl', name: declare(v, v.getName(), type), type, init: e ? expr(e) : null, src: src(v) });
          }
        } else lowerUpdate(ini, init);
      }
      const inc = n.getIncrementor();
      const update: Stmt[] = [];
      const body: Stmt[] = [];
      stmt(n.getStatement(), body);
      if (inc) {
        lowerUpdate(inc, update);
      }
      const c = n.getCondition();
      out.push({ k: 'loop', init, cond: c ? expr(c) : null, update, body, post: false, src: src(n) });
      return;
    }
    if (Node.isForOfStatement(n)) {
      const list = n.getInitializer();
      if (!Node.isVariableDeclarationList(list) || list.getDeclarations().length !== 1 || !Node.isIdentifier(list.getDeclarations()[0]!.getNameNode())) {
        fail(n, 'this for...of head', 'only `for (const v of array)` is supported', 'declare one loop variable');
      }
      const iterable = n.getExpression();
      const init: Stmt[] = [];
      let arr = expr(iterable);
      const known = arr.k === 'var' && locals.get(arr.name) === 'arr';
      if (!known && classify(iterable.getType()) !== 'arr') fail(iterable, `for...of over '${iterable.getType().getText(iterable)}'`, 'only arrays of numbers can be iterated', 'iterate a Float64Array or number[]');
      if (arr.k !== 'var') {
        const t = hidden('$of', 'arr');
        init.push({ k: 'decl', name: t, type: 'arr', init: arr, src: src(iterable) });
        arr = { k: 'var', name: t };
      }
      const i = hidden('$i', 'num');
      init.push({ k: 'decl', name: i, type: 'num', init: { k: 'lit', v: 0 }, src: src(n) });
      const v = list.getDeclarations()[0]!;
      const body: Stmt[] = [{ k: 'decl', name: declare(v, v.getName(), 'num'), type: 'num', init: { k: 'index', arr, idx: { k: 'var', name: i } }, src: src(v) }];
      stmt(n.getStatement(), body);
      const iv: Expr = { k: 'var', name: i };
      out.push({ k: 'loop', init, cond: { k: 'cmp', op: '<', a: iv, b: { k: 'len', arr } }, update: [{ k: 'assign', name: i, value: { k: 'bin', op: '+', a: iv, b: { k: 'lit', v: 1 } }, src: src(n) }], body, post: false, src: src(n) });
      return;
    }
    if (Node.isWhileStatement(n) || Node.isDoStatement(n)) {
      const body: Stmt[] = [];
      const cond = expr(n.getExpression());
      stmt(n.getStatement(), body);
      out.push({ k: 'loop', init: [], cond, update: [], body, post: Node.isDoStatement(n), src: src(n) });
      return;
    }
    if (Node.isBreakStatement(n) || Node.isContinueStatement(n)) {
      if (n.getLabel()) fail(n, 'a labelled jump', 'labels are not supported', 'use a flag variable');
      out.push({ k: Node.isBreakStatement(n) ? 'break' : 'continue', src: src(n) });
      return;
    }
    if (Node.isReturnStatement(n)) {
      const e = n.getExpression();
      out.push({ k: 'return', value: e ? expr(e) : null, src: src(n) });
      return;
    }
    if (Node.isThrowStatement(n)) { out.push({ k: 'opaque', text: n.getText(), uses: [], src: src(n) }); return; }
    if (Node.isTryStatement(n)) fail(n, 'try/catch', 'an exception can leave the forward sweep half done, with no reverse to match', 'check the inputs with if/throw instead');
    if (Node.isSwitchStatement(n)) fail(n, 'switch', 'it is not in the scalar subset yet', 'use if/else');
    if (Node.isLabeledStatement(n)) fail(n, 'a labelled statement', 'labels are not supported', 'use a flag variable');
    if (Node.isFunctionDeclaration(n) || Node.isClassDeclaration(n)) fail(n, 'a nested declaration', 'functions and classes defined inside a marked function are not differentiated', 'move it to module level and mark it /** @differentiable */');
    if (Node.isForInStatement(n)) fail(n, 'for...in', 'it iterates keys, not numbers', 'use a counting for loop');
    fail(n, `'${n.getKindName()}'`, 'this statement is outside the scalar subset', 'rewrite it with assignments, loops and branches');
  };

  // vjp inside a marked function: `const [y, pb] = vjp(g, ...args)` evaluates y = g(...args) and keeps the
  // arguments as they are now (a later write to a scratch array must not change what pb differentiates);
  // `pb(ct)` is then one call per gradient wanted, each of g's pullback for one parameter, which the
  // transformer writes as a marked function (see nestedVjp) so that an outer derivative can go through it.
  const pullbacks = new Map<Node, PullbackBinding>();
  const pullbackOf = (id: Node): PullbackBinding | undefined => {
    if (!Node.isIdentifier(id)) return undefined;
    for (const decl of id.getSymbol()?.getDeclarations() ?? []) {
      const pb = pullbacks.get(decl);
      if (pb) return pb;
    }
    return undefined;
  };
  const lowerVjp = (pattern: import('ts-morph').ArrayBindingPattern, call: CallExpression, v: Node, out: Stmt[]): void => {
    const els = pattern.getElements();
    const [valueEl, pbEl] = els;
    if (els.length !== 2 || !pbEl || Node.isOmittedExpression(pbEl) || !Node.isIdentifier(pbEl.getNameNode()) || els.some((el) => !Node.isOmittedExpression(el) && (el.getInitializer() || el.getDotDotDotToken() || !Node.isIdentifier(el.getNameNode())))) {
      fail(pattern, 'this destructuring of vjp', 'it must name the value (or leave it out) and the pullback', 'write const [y, pb] = vjp(f, x) or const [, pb] = vjp(f, x)');
    }
    const [target, ...rest] = call.getArguments();
    if (!target) fail(call, 'vjp without a function', 'vjp takes the function and its arguments', 'write vjp(f, x, ...)');
    const c = host.nestedVjp(call);
    if (typeof c === 'object' && 'unsupported' in c) fail(call, `'vjp(${target!.getText()}, ...)' inside a marked function`, c.unsupported, 'compute it outside the marked function');
    const valueCallee = host.calleeOf(target!);
    if (!valueCallee) fail(target!, `'${target!.getText()}'`, 'the function is not differentiable', 'mark it /** @differentiable */');
    if (rest.length !== valueCallee!.params.length) fail(call, `the call of vjp(${target!.getText()}, ...)`, `it passes ${rest.length} arguments for ${valueCallee!.params.length} parameters`, 'pass every parameter');
    const args = rest.map((a, i): Expr => {
      const e = expr(a);
      if (e.k === 'lit' || (e.k === 'var' && paramNames.has(e.name))) return e; // parameters are read-only here
      const kind = valueCallee!.params[i]!;
      const name = hidden(`$vjp${i}`, kind);
      out.push({ k: 'decl', name, type: kind, init: kind === 'arr' ? { k: 'copy', src: e, array: 'f64' } : e, src: src(a) });
      return { k: 'var', name };
    });
    if (valueEl && Node.isBindingElement(valueEl)) {
      out.push({ k: 'decl', name: declare(valueEl, valueEl.getName(), valueCallee!.returns), type: valueCallee!.returns, init: { k: 'call', callee: valueCallee!, args }, src: src(v) });
    }
    pullbacks.set(pbEl as import('ts-morph').BindingElement, { call, args, returns: valueCallee!.returns, params: valueCallee!.params.length });
  };
  /** The one argument of a pullback call: the cotangent. */
  const cotangentArg = (call: CallExpression): Node => {
    const a = call.getArguments();
    if (a.length !== 1) fail(call, `the call of the pullback '${call.getExpression().getText()}'`, `it passes ${a.length} arguments`, 'pass the cotangent, one value shaped like the output');
    return a[0]!;
  };
  /** The cotangent of one pullback call, evaluated once (a temporary unless it is a plain local or a literal). */
  const cotangentOf = (pb: PullbackBinding, call: CallExpression, out: Stmt[]): Expr => {
    const arg = cotangentArg(call);
    const e = expr(arg);
    if (e.k === 'lit' || e.k === 'var') return e;
    const name = hidden('$ct', pb.returns);
    out.push({ k: 'decl', name, type: pb.returns, init: e, src: src(arg) });
    return { k: 'var', name };
  };
  function vjpCallee(pb: PullbackBinding, index: number, at: Node): Callee;
  function vjpCallee(pb: PullbackBinding, index: number, at: Node, deferNow: false): Callee | 'defer';
  function vjpCallee(pb: PullbackBinding, index: number, at: Node, deferNow = true): Callee | 'defer' {
    if (index >= pb.params) fail(at, `gradient ${index} of '${pb.call.getArguments()[0]!.getText()}'`, `the function has ${pb.params} parameter(s)`, `read an entry below ${pb.params}`);
    const c = host.nestedVjp(pb.call, index);
    if (c === 'defer') { if (deferNow) throw new Defer(); return c; }
    if (c === 'ok' || 'unsupported' in c) fail(at, `'${at.getText()}'`, c === 'ok' ? 'no pullback was made' : c.unsupported, 'compute it outside the marked function');
    return c as Callee;
  }
  /** `pb(ct)[k]` as an expression: the cotangent must not need a temporary, since no statement can be added here. */
  const pullbackCall = (pb: PullbackBinding, call: CallExpression, index: number, at: Node): Expr => {
    const arg = cotangentArg(call);
    return { k: 'call', callee: vjpCallee(pb, index, at), args: [...pb.args, expr(arg)] };
  };

  const lowerUpdate = (e: Node, out: Stmt[]): void => {
    if (Node.isBinaryExpression(e)) {
      const kind = e.getOperatorToken().getKind();
      if (kind === SyntaxKind.EqualsToken) { out.push(assignTarget(e.getLeft(), () => expr(e.getRight()), e)); return; }
      const op = COMPOUND[kind];
      if (op) { out.push(assignTarget(e.getLeft(), (old) => ({ k: 'bin', op, a: old, b: expr(e.getRight()) }), e)); return; }
      if (kind === SyntaxKind.CommaToken) { lowerUpdate(e.getLeft(), out); lowerUpdate(e.getRight(), out); return; }
    }
    if ((Node.isPrefixUnaryExpression(e) || Node.isPostfixUnaryExpression(e)) &&
        (e.getOperatorToken() === SyntaxKind.PlusPlusToken || e.getOperatorToken() === SyntaxKind.MinusMinusToken)) {
      const op: ArithOp = e.getOperatorToken() === SyntaxKind.PlusPlusToken ? '+' : '-';
      out.push(assignTarget(e.getOperand(), (old) => ({ k: 'bin', op, a: old, b: { k: 'lit', v: 1 } }), e));
      return;
    }
    fail(e, 'this loop update', 'only assignments and increments are supported', 'write i++, i += k or an assignment');
  };

  const paramNames = new Set<string>();

  try {
    if (Node.isFunctionDeclaration(fn) || Node.isMethodDeclaration(fn) || Node.isFunctionExpression(fn)) {
      if (fn.isAsync()) fail(fn, 'an async function', 'asynchronous code has no derivative', 'make it synchronous');
      if (!Node.isArrowFunction(fn) && fn.isGenerator()) fail(fn, 'a generator function', 'generators are not supported', 'return the values as an array');
    } else if (fn.isAsync()) fail(fn, 'an async function', 'asynchronous code has no derivative', 'make it synchronous');
    const params: Param[] = [];
    for (const p of fn.getParameters()) {
      const nameNode = p.getNameNode();
      if (!Node.isIdentifier(nameNode)) fail(nameNode, 'a destructured parameter', 'parameters must be plain names', 'take the values as separate parameters');
      if (p.isRestParameter()) fail(p, 'a rest parameter', 'parameters must be listed', 'take an array parameter instead');
      if (p.hasInitializer()) fail(p, 'a default parameter value', 'every argument must be passed', 'remove the default');
      const type = typeOf(p, `the parameter '${p.getName()}'`);
      if (type === 'bool') fail(p, `the boolean parameter '${p.getName()}'`, 'parameters must be numbers or arrays of numbers', 'pass 0 or 1 as a number');
      const name = declare(p, p.getName(), type);
      paramNames.add(name);
      params.push({ name, type, typeText: p.getTypeNode()?.getText() ?? (type === 'num' ? 'number' : 'Float64Array') });
    }
    const retType = fn.getReturnType();
    const rt = classify(retType);
    if (rt !== 'num' && rt !== 'arr') {
      fail(fn.getReturnTypeNode() ?? fn, `a function returning '${retType.getText(fn)}'`, 'a marked function returns a number, a Float64Array or a number[]', 'return a number or an array of numbers');
    }
    const body: Stmt[] = [];
    const b = fn.getBody();
    if (!b) fail(fn, 'a function without a body', 'there is nothing to differentiate', 'give it a body');
    if (Node.isBlock(b)) stmt(b, body);
    else body.push({ k: 'return', value: expr(b as Expression), src: src(b!) });
    return {
      name: (m.name), prefix: m.prefix, ref: m.ref, file: sf.getFilePath(),
      line: sf.getLineAndColumnAtPos(fn.getStart()).line, col: sf.getLineAndColumnAtPos(fn.getStart()).column,
      params, returns: rt as 'num' | 'arr', returnTypeText: fn.getReturnTypeNode()?.getText() ?? (rt === 'num' ? 'number' : 'Float64Array'),
      body, usesThis, locals,
    };
  } catch (e) {
    if (e instanceof Abandon) return undefined;
    if (e instanceof Defer) return 'defer';
    throw e;
  }
}

interface PullbackBinding {
  /** The `vjp(g, ...args)` call. */
  call: CallExpression;
  /** The arguments as kept at the vjp call. */
  args: Expr[];
  returns: ValueType;
  params: number;
}

/** Thrown when a function needs code that the transformer's second pass will have. */
export class Defer extends Error {}

export type { FnNode };
