// SPDX-License-Identifier: MIT
// Pass 8 (optional), AssemblyScript: the same sweeps as the JS printer, in AssemblyScript, for asc.
//
// The forward and reverse sweeps are printed once, as TypeScript, by the reverse pass. This pass does not
// differentiate again: it reads that TypeScript and re-prints it statement for statement in AssemblyScript,
// so the Wasm adjoint is the JS adjoint, operation for operation. What changes is typing: every number is an
// f64 except the locals that provably hold only integers (counters, trip counts, indices: i64, see
// integerLocals), every array is a Float64Array (number[] parameters arrive copied into one), and the tape and
// runtime helpers are those of runtime-wasm/scalar/support.as.ts. For speed, each sweep keeps its arrays' data
// pointers and lengths and the tape's stack pointer in locals (an element access is then one compare and one
// load), stores to the tape inline, and reads an element that it read before in the same stretch of plain
// statements from a local (see `loaded`). The primal, which sweeps call for inactive calls, is printed from the
// normalized IR the same way.
//
// Plain functions of the user's module that the sweeps call (the primal of a function with a custom rule, the
// rule itself, whatever they call) are re-printed from their source the same way, given their shape (see
// HelperShape). A rule of a function of several arguments returns its gradients as a tuple, `return [gx, gy]`:
// in AssemblyScript it stores them by position into `$ruleD` (numbers) and `$ruleA` (arrays) of the support
// code and returns nothing, and the sweep that called it copies them into locals straight after the call
// (`const $d = rule(...)` followed by `$d[0]`, `$d[1]` in the JS sweep).
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

/**
 * The message of the abort a lowered `throw` raises. A Wasm module cannot build the user's exception (its message
 * may format any value), so the glue, seeing this message, runs the function's JS primal on the same arguments,
 * which throws exactly what the JS adjoint would have thrown.
 */
export const THROWN = 'pullback:throw';
/** What a `throw` statement lowers to, in the primal and in the sweeps. */
const LOWERED_THROW = `throw new Error(${JSON.stringify(THROWN)});`;

/** Why a function stays on the JS adjoint. */
export class NotLowerable extends Error {}

export interface AsScope {
  /** Functions of the generated AssemblyScript module a sweep may call (primals and sweeps). */
  functions: Set<string>;
  /** Module-level numeric constants a sweep may read: name -> value. */
  constant(name: string): number | undefined;
  /**
   * The shape of a plain function of the module that the code calls by name; undefined when there is no such
   * function (the call then cannot be lowered). Whether its body lowers is the caller's business (wasm.ts).
   */
  helper?(name: string): HelperShape | undefined;
  /**
   * The name in the module of a module-level name of the file this source comes from (a function, a constant):
   * the identity for the file the module is built for; prefixed for another file's functions compiled into it
   * (see wasm.ts), so that two files' `sq` or `K` do not meet.
   */
  qualify?(name: string): string;
  /**
   * A marked function of another file that this source calls, by the text it is called with (`g`, `ns.g`): the
   * qualified prefix of its sweeps in this module, when they are compiled into it.
   */
  foreign?(ref: string): string | { why: string } | undefined;
}

/** How lowered code calls a plain function of the user's module. */
export interface HelperShape {
  returns: 'f64' | 'arr' | 'bool' | 'void';
  /** A custom rule of a function of several arguments: the kind of each gradient it returns, by position. */
  tuple?: ('f64' | 'arr')[];
}

/** At most this many gradients in a rule's tuple (the size of `$ruleD` and `$ruleA` in support.as.ts). */
const MAX_TUPLE = 64;

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
// `put` is the JS sweeps' unchecked push into room made by `reserve`; in Wasm every push checks its room inline
// (cheap there), so `put` lowers as `push` and `reserve` to nothing.
const TAPE_METHODS = new Set(['push', 'put', 'reserve', 'pop', 'popInt', 'pushRef', 'popRef']);
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
      // A throw (an argument check) stops the Wasm sweep; the glue then runs the JS primal, which throws the
      // user's own error (see THROWN).
      case 'opaque': if (/^throw\b/.test(s.text.trim())) return [LOWERED_THROW];
        throw new NotLowerable(`it runs \`${s.text.trim().split('\n')[0]}\`, which only JavaScript can run`);
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

/**
 * The shape of a plain function of the user's module, from its source and what the type checker says it
 * returns; `rule` when it is a `@derivative` rule (of a function of several arguments it returns a tuple).
 */
export function helperShape(source: string, returns: 'num' | 'arr' | 'bool' | 'void' | undefined, rule: boolean): HelperShape {
  const sf = ts.createSourceFile('helper.ts', source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const fn = sf.statements[0];
  if (sf.statements.length !== 1 || !fn || !ts.isFunctionDeclaration(fn) || !fn.body) throw new NotLowerable('it is not a function declaration');
  const bool = fn.parameters.find((p) => p.type?.getText() === 'boolean');
  if (bool) throw new NotLowerable(`it takes a boolean parameter (\`${bool.getText()}\`)`);
  if (rule && fn.parameters.length > 2) {
    const kinds = fn.parameters.slice(0, -1).map((p) => (p.type?.getText() === 'number' ? 'f64' : 'arr'));
    if (kinds.length > MAX_TUPLE) throw new NotLowerable(`it returns more than ${MAX_TUPLE} gradients`);
    return { returns: 'void', tuple: kinds };
  }
  if (returns === undefined) throw new NotLowerable(`it returns ${fn.type ? fn.type.getText() : 'something other than a number or an array of numbers'}`);
  return { returns: returns === 'num' ? 'f64' : returns };
}

/**
 * A version of the sweeps for number parameters that hold integers at run time (a grid size, a step count):
 * those parameters are i64 in it, so that the index arithmetic that reads them (`u[i * n + j]`) stays in
 * integers instead of converting to and from f64 at every element. Its functions are named with `suffix`;
 * the exported wrappers pick it when the arguments are integers (see wasm.ts).
 */
export interface IntVersion {
  params: Set<string>;
  suffix: string;
}

/**
 * Re-prints TypeScript function declarations (generated sweeps, or `primalSource`) as AssemblyScript; `shape`
 * for the one plain function of the user's module in `source` (see helperShape).
 */
export function toAssemblyScript(source: string, scope: AsScope, shape?: HelperShape, version?: IntVersion): AsPrinted {
  const sf = ts.createSourceFile('sweeps.ts', source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const calls = new Set<string>();
  const constants = new Map<string, number>();
  const fns: ts.FunctionDeclaration[] = [];
  for (const st of sf.statements) {
    if (!ts.isFunctionDeclaration(st) || !st.name || !st.body) throw new NotLowerable(`unexpected generated code: ${st.getText().slice(0, 60)}`);
    fns.push(st);
  }
  // The primal and both sweeps of one function share their variables' names: one analysis for all three.
  const ints = integerLocals(fns, version?.params);
  return { text: fns.map((fn) => printFunction(fn, scope, calls, constants, ints, shape, version)).join('\n\n'), calls, constants };
}

const isTapeCall = (n: ts.Node, names?: readonly string[]): n is ts.CallExpression => ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) &&
  n.expression.expression.getText() === '$t' && (names ?? [...TAPE_METHODS]).includes(n.expression.name.text);
const smallInt = (v: number) => Number.isInteger(v) && Math.abs(v) <= 2 ** 31;

/**
 * The local number variables that only ever hold integers: loop counters, trip counts, indices. They are
 * i64 in Wasm (JS numbers are doubles, whose integers are exact up to 2^53; a counter that starts below
 * 2^31 and moves by sums of such values cannot leave that range in any run that ends), so loop tests and
 * element addresses need no float conversion, the largest cost of the f64 counters this pass printed before.
 *
 * A name qualifies when every assignment to it, in every function that declares it, is an integer literal,
 * `.length`, another such variable, a sum or difference of those, a `?:` between those, `++`/`--`, or a restore from the tape of a
 * value it held in the forward sweep (`$t.pop()`/`$t.popInt()`, the tape being a stack whose pushes of that
 * name were integers). Products are left out: a counter doubled each trip leaves 2^53 within 54 trips.
 */
function integerLocals(fns: ts.FunctionDeclaration[], intParams?: Set<string>): Set<string> {
  const candidates = new Set<string>();
  const excluded = new Set<string>();
  const params = new Set<string>();
  interface Site { name: string; op: string; value?: ts.Expression }
  const sites: Site[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isParameter(n)) params.add(n.name.getText());
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name)) {
      const name = n.name.text;
      if (n.type && n.type.getText() !== 'number') excluded.add(name);
      else if (!n.type && !n.initializer) excluded.add(name);
      else candidates.add(name);
      sites.push({ name, op: '=', value: n.initializer });
    }
    if (ts.isBinaryExpression(n) && ts.isIdentifier(n.left) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment) {
      sites.push({ name: n.left.text, op: n.operatorToken.getText(), value: n.right });
    }
    if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && ts.isIdentifier(n.operand) &&
      (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)) sites.push({ name: n.operand.text, op: '++' });
    ts.forEachChild(n, visit);
  };
  fns.forEach(visit);
  const ints = new Set([...candidates].filter((v) => !excluded.has(v) && !params.has(v)));
  const restore = (e: ts.Expression) => isTapeCall(e, ['pop', 'popInt']);
  const isInt = (e: ts.Expression): boolean => {
    if (ts.isParenthesizedExpression(e)) return isInt(e.expression);
    if (ts.isNumericLiteral(e)) return smallInt(Number(e.text));
    if (ts.isPrefixUnaryExpression(e) && e.operator === ts.SyntaxKind.MinusToken && ts.isNumericLiteral(e.operand)) return smallInt(Number(e.operand.text));
    if (ts.isIdentifier(e)) return ints.has(e.text) || !!intParams?.has(e.text);
    if (ts.isPropertyAccessExpression(e)) return e.name.text === 'length' && e.expression.getText() !== '$t';
    if (ts.isCallExpression(e)) return isTapeCall(e, ['popInt']);
    if (ts.isConditionalExpression(e)) return isInt(e.whenTrue) && isInt(e.whenFalse);
    if (ts.isBinaryExpression(e)) {
      const op = e.operatorToken.kind;
      return (op === ts.SyntaxKind.PlusToken || op === ts.SyntaxKind.MinusToken) && isInt(e.left) && isInt(e.right);
    }
    return false;
  };
  // A restore from `$t.pop()` counts only for a name that is also given an integer some other way.
  const given = (v: string) => sites.some((s) => s.name === v && (s.op === '++' || !s.value || !restore(s.value)));
  for (let changed = true; changed;) {
    changed = false;
    for (const s of sites) {
      if (!ints.has(s.name)) continue;
      const ok = s.op === '++' || !s.value ? true
        : s.op === '=' ? isInt(s.value) || (restore(s.value) && given(s.name))
        : (s.op === '+=' || s.op === '-=') && isInt(s.value);
      if (!ok) { ints.delete(s.name); changed = true; }
    }
  }
  return ints;
}

type Ty = 'f64' | 'i64' | 'bool' | 'arr' | 'tape';
/** A printed expression, its type, and its value when it is an integer literal (which takes the type its context wants). */
interface V { s: string; t: Ty; lit?: number }

const f64Lit = (v: number): string => (Number.isInteger(v) ? `${v}.0` : String(v));

function printFunction(fn: ts.FunctionDeclaration, scope: AsScope, calls: Set<string>, constants: Map<string, number>, ints: Set<string>, shape?: HelperShape, version?: IntVersion): string {
  const types = new Map<string, Ty>();
  /** A module-level name of this source's file as the module knows it (see AsScope.qualify). */
  const own = (name: string) => scope.qualify?.(name) ?? name;
  /** A read of the module constant `name` (qualified), whose value is `c`. */
  const constantRef = (name: string, c: number): V => { constants.set(own(name), c); return { s: asName(own(name)), t: 'f64' }; };
  /** Locals holding a rule's tuple of gradients: the kinds of its elements (element i is the local `<name>$g<i>`). */
  const tuples = new Map<string, ('f64' | 'arr')[]>();
  const fail = (n: ts.Node, why: string): never => { throw new NotLowerable(`${why} (\`${n.getText().slice(0, 80)}\`)`); };

  const typeOf = (t: ts.TypeNode | undefined, at: ts.Node): Ty | 'void' => {
    if (!t) return fail(at, 'a value of unknown type');
    const text = t.getText();
    if (text === 'number') return 'f64';
    if (text === 'boolean') return 'bool';
    if (text === 'void') return 'void';
    if (text === '$pb.Tape') return 'tape';
    if (/^(Float64Array(<\w+>)?|number\[\]|Array<number>|any|ArrayLike<number>)$/.test(text)) return 'arr';
    return fail(at, `the type ${text}`);
  };
  const asType: Record<Ty | 'void', string> = { f64: 'f64', i64: 'i64', bool: 'bool', arr: 'Float64Array', tape: 'Tape', void: 'void' };

  // ---- what this function allows: cached array pointers, and the tape's stack pointer in locals ----
  const body = fn.body!;
  const tapeParam = fn.parameters.some((p) => p.name.getText() === '$t');
  /** Calls that hand `$t` to another sweep. */
  const passesTape = (n: ts.Node): boolean => {
    let found = false;
    const v = (m: ts.Node) => { if (ts.isCallExpression(m) && m.arguments.some((a) => a.getText() === '$t')) found = true; else if (!found) ts.forEachChild(m, v); };
    v(n);
    return found;
  };
  const movesSp = (n: ts.Node): boolean => {
    let found = false;
    const v = (m: ts.Node) => { if (isTapeCall(m, ['push', 'put', 'pop', 'popInt'])) found = true; else if (!found) ts.forEachChild(m, v); };
    v(n);
    return found;
  };
  /**
   * The tape pointer lives in locals ($tp, $sp, $te) when every use of the tape allows it: pushes are
   * statements of their own, `$t` goes to other sweeps only from plain statements that move nothing else
   * (the locals are written back before and read again after), and `$t` is used for nothing else.
   */
  const cacheTape = tapeParam && (() => {
    let ok = true;
    const v = (n: ts.Node): void => {
      if (!ok) return;
      if (ts.isIdentifier(n) && n.text === '$t' && !ts.isParameter(n.parent)) {
        const p = n.parent;
        const member = ts.isPropertyAccessExpression(p) && p.expression === n && (TAPE_METHODS.has(p.name.text) || p.name.text === 'd');
        const arg = ts.isCallExpression(p) && p.arguments.includes(n as never);
        if (!member && !arg) ok = false;
        if (member && ['push', 'put', 'reserve'].includes(p.name.text) && !(ts.isCallExpression(p.parent) && ts.isExpressionStatement(p.parent.parent))) ok = false;
        if (arg) {
          let st: ts.Node = p;
          while (!ts.isStatement(st)) st = st.parent;
          if (!(ts.isExpressionStatement(st) || ts.isVariableStatement(st) || ts.isReturnStatement(st)) || movesSp(st)) ok = false;
        }
      }
      ts.forEachChild(n, v);
    };
    v(body);
    return ok;
  })();
  /** Arrays whose every assignment is a statement of its own: their data pointer and length live in locals. */
  const cached = new Set<string>();
  {
    const arrays = new Set<string>(), bad = new Set<string>();
    fn.parameters.forEach((p) => { if (p.type && typeOf(p.type, p) === 'arr') arrays.add(p.name.getText()); });
    const v = (n: ts.Node): void => {
      if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name)) {
        const list = n.parent;
        if (!ts.isVariableDeclarationList(list) || !ts.isVariableStatement(list.parent)) bad.add(n.name.text);
        arrays.add(n.name.text);
      }
      if (ts.isBinaryExpression(n) && ts.isIdentifier(n.left) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken && !ts.isExpressionStatement(n.parent)) bad.add(n.left.text);
      ts.forEachChild(n, v);
    };
    v(body);
    for (const a of arrays) if (!bad.has(a)) cached.add(a);
  }

  // ---- element loads shared within a stretch of plain statements ----
  // An element read again before anything can have changed it is read from a local: Binaryen keeps every load
  // and its bounds check (Rosenbrock's reverse sweep reads x[i] three times: sharing the reads made its Wasm
  // gradient 7-9% faster at n = 100 to 10,000).
  // The first read in evaluation order sets the local (`($$e0 = $ldc(...))`), later ones read it. Only within
  // plain statements (no call but Math's and the tape's, no allocation, ++, -- or nested assignment), in the
  // order they run: a store to any element, and any statement that is not plain, forgets every load; an
  // assignment forgets the loads whose array or index reads its name; control flow forgets them all on the
  // way in and out.
  /** The loads held in locals: `x[<printed index>]` -> its local, and the names the load reads. */
  const loaded = new Map<string, { local: string; deps: string[] }>();
  const loadLocals: string[] = [];
  /** Whether the statement being printed is plain (its loads may be shared). */
  let reuse = false;
  /** > 0 inside what may not run (?: branches, the right of && and ||) and in indices: loads are reused, not recorded. */
  let conditional = 0;
  const forget = (names?: string[]) => {
    if (!names) loaded.clear();
    else for (const [k, l] of loaded) if (l.deps.some((d) => names.includes(d))) loaded.delete(k);
  };
  /** The names an element read depends on, when its array is a name and its index arithmetic on names and literals. */
  const plainIndex = (n: ts.ElementAccessExpression): string[] | undefined => {
    if (!ts.isIdentifier(n.expression)) return undefined;
    const deps = [n.expression.text];
    let ok = true;
    const v = (m: ts.Expression): void => {
      if (ts.isIdentifier(m)) deps.push(m.text);
      else if (ts.isBinaryExpression(m) && ['+', '-', '*'].includes(m.operatorToken.getText())) { v(m.left); v(m.right); }
      else if (ts.isParenthesizedExpression(m)) v(m.expression);
      else if (ts.isPrefixUnaryExpression(m) && m.operator === ts.SyntaxKind.MinusToken) v(m.operand);
      else if (!ts.isNumericLiteral(m)) ok = false;
    };
    v(n.argumentExpression);
    return ok ? deps : undefined;
  };
  const isAssignment = (n: ts.Node): n is ts.BinaryExpression =>
    ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment;
  /** Whether running `s` writes no element (but the one it assigns at its top) and calls nothing that might. */
  const plainStatement = (s: ts.ExpressionStatement | ts.VariableStatement): boolean => {
    const top = ts.isExpressionStatement(s) ? s.expression : undefined;
    let ok = true;
    const v = (n: ts.Node): void => {
      if (!ok) return;
      if (ts.isCallExpression(n)) {
        const math = ts.isPropertyAccessExpression(n.expression) && n.expression.expression.getText() === 'Math';
        if (!math && !isTapeCall(n, ['push', 'put', 'pop', 'popInt', 'popRef'])) ok = false;
      }
      if (ts.isNewExpression(n) || ts.isPostfixUnaryExpression(n) || (isAssignment(n) && n !== top)) ok = false;
      if (ts.isPrefixUnaryExpression(n) && (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)) ok = false;
      ts.forEachChild(n, v);
    };
    v(s);
    return ok;
  };

  // ---- expressions ----
  const f64 = (x: V): string => (x.lit !== undefined ? f64Lit(x.lit) : x.t === 'f64' ? x.s : x.t === 'i64' || x.t === 'bool' ? `<f64>(${x.s})` : fail(body, `an array used as a number`));
  const i64 = (x: V): string => (x.lit !== undefined ? `<i64>${x.lit}` : x.t === 'i64' ? x.s : `<i64>(${f64(x)})`);
  const bool = (x: V): string => (x.t === 'bool' ? x.s : x.lit !== undefined ? String(x.lit !== 0) : x.t === 'i64' ? `(${x.s} != 0)` : `$truthy(${f64(x)})`);
  const intish = (x: V) => x.t === 'i64' || x.lit !== undefined;
  const to = (t: Ty, x: V): string => (t === 'f64' ? f64(x) : t === 'i64' ? i64(x) : t === 'bool' ? bool(x) : x.s);

  /** An element address: a cached array's pointer and length, or the array itself. */
  const elem = (arrNode: ts.Expression, idxNode: ts.Expression): { c: boolean; a: string; i: string } => {
    conditional++; // an index is printed twice by a compound store: it records no load of its own
    const i = i64(expr(idxNode));
    conditional--;
    if (ts.isIdentifier(arrNode) && cached.has(arrNode.text) && types.get(arrNode.text) === 'arr') return { c: true, a: `${arrNode.text}$$$p, ${arrNode.text}$$$n`, i };
    return { c: false, a: expr(arrNode).s, i };
  };

  const expr = (n: ts.Expression): V => {
    if (ts.isIdentifier(n)) {
      const name = n.text;
      const t = types.get(name);
      if (t) return { s: name, t };
      if (name === 'NaN' || name === 'Infinity') return { s: name, t: 'f64' };
      const c = scope.constant(name);
      if (c !== undefined) return constantRef(name, c);
      return fail(n, `it reads \`${name}\` from outside the function (of module-level values, only a \`const\` set to a number literal lowers: pass others as arguments)`);
    }
    if (ts.isNumericLiteral(n)) {
      const v = Number(n.text);
      return smallInt(v) ? { s: f64Lit(v), t: 'f64', lit: v } : { s: /^[\d.e+-]+$/i.test(n.text) ? n.text : String(v), t: 'f64' };
    }
    if (n.kind === ts.SyntaxKind.TrueKeyword) return { s: 'true', t: 'bool' };
    if (n.kind === ts.SyntaxKind.FalseKeyword) return { s: 'false', t: 'bool' };
    if (ts.isParenthesizedExpression(n)) { const x = expr(n.expression); return { ...x, s: `(${x.s})` }; }
    if (ts.isNonNullExpression(n)) return expr(n.expression);
    if (ts.isPrefixUnaryExpression(n)) {
      switch (n.operator) {
        case ts.SyntaxKind.MinusToken: {
          const a = expr(n.operand);
          if (a.lit !== undefined && a.lit !== 0) return { s: f64Lit(-a.lit), t: 'f64', lit: -a.lit };
          return { s: `-${f64(a)}`, t: 'f64' }; // -0 is a double, as in JS
        }
        case ts.SyntaxKind.ExclamationToken: return { s: `!${bool(expr(n.operand))}`, t: 'bool' };
        case ts.SyntaxKind.PlusToken: return { s: f64(expr(n.operand)), t: 'f64' };
        case ts.SyntaxKind.PlusPlusToken: case ts.SyntaxKind.MinusMinusToken: {
          if (!ts.isIdentifier(n.operand)) return fail(n, 'this operator');
          const a = expr(n.operand);
          return { s: `${n.operator === ts.SyntaxKind.PlusPlusToken ? '++' : '--'}${a.s}`, t: a.t };
        }
        default: return fail(n, 'this operator');
      }
    }
    if (ts.isPostfixUnaryExpression(n)) {
      if (!ts.isIdentifier(n.operand)) return fail(n, 'this operator');
      const a = expr(n.operand);
      return { s: `${a.s}${n.operator === ts.SyntaxKind.PlusPlusToken ? '++' : '--'}`, t: a.t };
    }
    if (ts.isBinaryExpression(n)) return binary(n);
    if (ts.isConditionalExpression(n)) {
      const c = bool(expr(n.condition));
      conditional++;
      const a = expr(n.whenTrue), b = expr(n.whenFalse);
      conditional--;
      const t: Ty = a.t === 'bool' && b.t === 'bool' ? 'bool' : a.t === 'arr' || b.t === 'arr' ? 'arr'
        : intish(a) && intish(b) && (a.t === 'i64' || b.t === 'i64') ? 'i64' : 'f64';
      return { s: `(${c} ? ${to(t, a)} : ${to(t, b)})`, t };
    }
    if (ts.isElementAccessExpression(n)) {
      const tuple = ts.isIdentifier(n.expression) ? tuples.get(n.expression.text) : undefined;
      if (tuple) {
        const i = ts.isNumericLiteral(n.argumentExpression) ? Number(n.argumentExpression.text) : -1;
        if (!(i >= 0 && i < tuple.length)) return fail(n, 'this element of a rule\'s gradients');
        return { s: `${n.expression.getText()}$g${i}`, t: tuple[i]! };
      }
      const e = elem(n.expression, n.argumentExpression);
      if (!e.c) return { s: `$ld(${e.a}, ${e.i})`, t: 'f64' };
      const load = `$ldc(${e.a}, ${e.i})`, deps = reuse ? plainIndex(n) : undefined;
      if (!deps) return { s: load, t: 'f64' };
      const key = `${n.expression.getText()}[${e.i}]`, known = loaded.get(key);
      if (known) return { s: known.local, t: 'f64' };
      if (conditional) return { s: load, t: 'f64' };
      const local = `$$e${loadLocals.length}`;
      loadLocals.push(local);
      loaded.set(key, { local, deps });
      return { s: `(${local} = ${load})`, t: 'f64' };
    }
    if (ts.isPropertyAccessExpression(n)) {
      const base = n.expression.getText(), name = n.name.text;
      if (base === 'Math' && MATH_CONSTANTS.has(name)) return { s: `Math.${name}`, t: 'f64' };
      if (base === '$pb' && name === 'EMPTY') return { s: '$EMPTY', t: 'arr' };
      if (base === '$t' && name === 'd') return { s: '$t.d', t: 'arr' };
      if (base === 'Number' && NUMBER_CONSTANTS[name]) return { s: NUMBER_CONSTANTS[name]!, t: 'f64' };
      if (name === 'length') {
        if (ts.isIdentifier(n.expression) && cached.has(base) && types.get(base) === 'arr') return { s: `${base}$$$n`, t: 'i64' };
        return { s: `<i64>(${expr(n.expression).s}.length)`, t: 'i64' };
      }
      // A numeric constant of another file, through a namespace import (`u.K`).
      const c = ts.isIdentifier(n.expression) && !types.has(base) ? scope.constant(`${base}.${name}`) : undefined;
      if (c !== undefined) return constantRef(`${base}$$${name}`, c);
      return fail(n, `it reads ${n.getText()}`);
    }
    if (ts.isNewExpression(n)) {
      const args = n.arguments ?? [];
      if (n.expression.getText() === 'Float64Array' && args.length === 1) return { s: `$new(<i32>(${i64(expr(args[0]!))}))`, t: 'arr' };
      return fail(n, 'this allocation');
    }
    if (ts.isCallExpression(n)) return call(n);
    return fail(n, 'this expression');
  };

  const ARITH = new Set(['+', '-', '*']);
  const COMPARE = new Set(['<', '<=', '>', '>=', '===', '!==', '==', '!=']);
  const binary = (n: ts.BinaryExpression): V => {
    const op = n.operatorToken.getText();
    if (!BINARY.has(op)) return fail(n, `the operator ${op} (integer semantics differ in Wasm)`);
    if (op.endsWith('=') && !COMPARE.has(op)) return assign(n, op);
    if (op === '&&' || op === '||') {
      const a = bool(expr(n.left));
      conditional++;
      const b = bool(expr(n.right));
      conditional--;
      return { s: `${a} ${op} ${b}`, t: 'bool' };
    }
    const a = expr(n.left), b = expr(n.right);
    const asOp = op === '===' ? '==' : op === '!==' ? '!=' : op;
    if (COMPARE.has(op)) {
      if (a.t === 'bool' && b.t === 'bool') return { s: `${a.s} ${asOp} ${b.s}`, t: 'bool' };
      if (a.t === 'arr' && b.t === 'arr') return { s: `${a.s} ${op === '===' || op === '==' ? '===' : '!=='} ${b.s}`, t: 'bool' };
      if (intish(a) && intish(b) && (a.t === 'i64' || b.t === 'i64')) return { s: `${i64(a)} ${asOp} ${i64(b)}`, t: 'bool' };
      return { s: `${f64(a)} ${asOp} ${f64(b)}`, t: 'bool' };
    }
    if (ARITH.has(op) && intish(a) && intish(b) && (a.t === 'i64' || b.t === 'i64')) return { s: `${i64(a)} ${op} ${i64(b)}`, t: 'i64' };
    if (op === '**') return { s: `Math.pow(${f64(a)}, ${f64(b)})`, t: 'f64' };
    return { s: `${f64(a)} ${op} ${f64(b)}`, t: 'f64' };
  };

  const assign = (n: ts.BinaryExpression, op: string): V => {
    if (ts.isElementAccessExpression(n.left)) {
      // An element store; a compound one reads the element first, as JS does (index expressions are pure here).
      const e = elem(n.left.expression, n.left.argumentExpression);
      const rhs = f64(expr(n.right));
      const ld = e.c ? `$ldc(${e.a}, ${e.i})` : `$ld(${e.a}, ${e.i})`;
      const value = op === '=' ? rhs : op === '**=' ? `Math.pow(${ld}, ${rhs})` : `${ld} ${op[0]} (${rhs})`;
      if (e.c && (op === '+=' || op === '-=') && !passesTape(n.right) && !ts.isCallExpression(n.right)) return { s: `$${op === '+=' ? 'add' : 'sub'}c(${e.a}, ${e.i}, ${rhs})`, t: 'f64' };
      return { s: e.c ? `$stc(${e.a}, ${e.i}, ${value})` : `$st(${e.a}, ${e.i}, ${value})`, t: 'f64' };
    }
    if (!ts.isIdentifier(n.left)) return fail(n, 'an assignment to this target');
    const name = n.left.text, t = types.get(name);
    if (!t) return fail(n, `it assigns \`${name}\` outside the function`);
    const r = expr(n.right);
    if (op === '=') {
      if (t === 'i64' && !intish(r) && !(ts.isCallExpression(n.right) && isTapeCall(n.right))) throw new Error(`pullback internal error: ${name} is not an integer`);
      return { s: `${name} = ${to(t, r)}`, t };
    }
    if (t === 'i64') {
      if ((op !== '+=' && op !== '-=') || !intish(r)) throw new Error(`pullback internal error: ${name} is not an integer`);
      return { s: `${name} ${op} ${i64(r)}`, t };
    }
    if (op === '**=') return { s: `${name} = Math.pow(${name}, ${f64(r)})`, t };
    return { s: `${name} ${op} ${f64(r)}`, t };
  };

  /** A call's arguments: sweeps and primals take numbers as f64 and arrays (and the tape) as they are. */
  const callArgs = (args: ts.NodeArray<ts.Expression>) => args.map((a) => { const x = expr(a); return x.t === 'arr' || x.t === 'tape' ? x.s : f64(x); }).join(', ');

  /** The module function a call of another file's marked function runs (recorded in `calls`), or undefined for other calls. */
  const foreignCall = (callee: ts.Expression): string | undefined => {
    if (!scope.foreign) return undefined;
    let ref: string | undefined, sweep = '';
    if (ts.isPropertyAccessExpression(callee) && (callee.name.text === 'fwd' || callee.name.text === 'rev')) {
      let b: ts.Expression = callee.expression;
      while (ts.isParenthesizedExpression(b)) b = b.expression;
      if (ts.isBinaryExpression(b) && b.operatorToken.kind === ts.SyntaxKind.QuestionQuestionEqualsToken && ts.isCallExpression(b.right) &&
        b.right.expression.getText() === '$pb.adjointOf' && b.right.arguments.length === 1) {
        ref = b.right.arguments[0]!.getText();
        sweep = `$${callee.name.text}`;
      }
    } else if (ts.isIdentifier(callee) || ts.isPropertyAccessExpression(callee)) {
      const id = ts.isIdentifier(callee) ? callee.text : undefined;
      if (id === undefined || (!scope.functions.has(own(id)) && !scope.helper?.(id))) ref = callee.getText();
    }
    if (ref === undefined) return undefined;
    const prefix = scope.foreign(ref);
    if (prefix === undefined) return undefined;
    if (typeof prefix !== 'string') return fail(callee, `it calls ${ref}, a marked function of another file: ${prefix.why}`);
    calls.add(prefix + sweep);
    return prefix + sweep;
  };

  const call = (n: ts.CallExpression, tuple = false): V => {
    const args = n.arguments;
    const callee = n.expression;
    // Another file's marked function: its primal `g(...)`, or its sweeps `(g$ad ??= $pb.adjointOf(g)).fwd(...)`.
    const other = foreignCall(callee);
    if (other) return { s: `${asName(other)}(${callArgs(args)})`, t: 'f64' };
    if (ts.isIdentifier(callee)) {
      const name = own(callee.text);
      const helper = scope.functions.has(name) ? undefined : scope.helper?.(callee.text);
      if (!scope.functions.has(name) && !helper) {
        return fail(n, `it calls ${callee.text}, which is not a function declaration of this file or a marked function of another ` +
          '(calls to arrow functions, function expressions and unmarked functions of other files stay on JS)');
      }
      calls.add(name);
      // Sweeps and primals take numbers as f64 and arrays as arrays; they return f64 (or nothing: used as
      // statements). Plain functions take what their parameters say.
      const printed = `${asName(name)}(${callArgs(args)})`;
      if (helper?.tuple && !tuple) return fail(n, `the gradients of the rule ${callee.text} used other than as \`const d = ${callee.text}(...)\``);
      return { s: printed, t: !helper || helper.returns === 'void' ? 'f64' : helper.returns };
    }
    if (ts.isCallExpression(callee) && callee.expression.getText() === '$pb.ruleOf') {
      return fail(n, `the custom derivative of ${callee.arguments[0]?.getText()} is not in this module (only rules of the same module are lowered)`);
    }
    if (!ts.isPropertyAccessExpression(callee)) return fail(n, `it calls ${callee.getText()}`);
    const base = callee.expression, name = callee.name.text, baseText = base.getText();
    if (baseText === '$t' && TAPE_METHODS.has(name)) {
      if (name === 'pushRef') return { s: `$t.pushRef(${expr(args[0]!).s})`, t: 'f64' };
      if (name === 'popRef') return { s: '$t.popRef()', t: 'arr' };
      if (name === 'push' || name === 'put') return { s: cacheTape ? fail(n, 'a push inside an expression') : `$t.push(${f64(expr(args[0]!))})`, t: 'f64' };
      if (name === 'reserve') return fail(n, 'a reserve inside an expression');
      return { s: cacheTape ? 'load<f64>($$tp + (<usize>(--$$sp) << 3))' : '$t.pop()', t: 'f64' };
    }
    if (baseText === 'Math') {
      if (!MATH.has(name)) return fail(n, `Math.${name} has no derivative rule in Wasm`);
      const xs = args.map((a) => f64(expr(a)));
      // AssemblyScript's max, min and hypot take two arguments: fold the rest.
      if ((name === 'max' || name === 'min' || name === 'hypot') && xs.length !== 2) {
        if (xs.length === 1) return { s: name === 'hypot' ? `Math.abs(${xs[0]})` : xs[0]!, t: 'f64' };
        if (xs.length === 0) return fail(n, `Math.${name}() without arguments`);
        return { s: xs.slice(1).reduce((acc, x) => `Math.${name}(${acc}, ${x})`, xs[0]!), t: 'f64' };
      }
      return { s: `Math.${name}(${xs.join(', ')})`, t: 'f64' };
    }
    if (baseText === '$pb' && name === 'addTo') return { s: `$addTo(${args.map((a) => expr(a).s).join(', ')})`, t: 'f64' };
    if (baseText === '$pb' && (name === 'argmax' || name === 'argmin')) {
      const xs = args.map((a) => f64(expr(a)));
      // Two or three candidates (max/min of two, of three) without allocating an array per call.
      if (xs.length === 2 || xs.length === 3) return { s: `$${name}${xs.length}(${xs.join(', ')})`, t: 'f64' };
      return { s: `$${name}([${xs.join(', ')}] as StaticArray<f64>)`, t: 'f64' };
    }
    if ((baseText === 'Float64Array' || baseText === 'Array') && name === 'from' && args.length === 1) return { s: `$copy(${expr(args[0]!).s})`, t: 'arr' };
    if (name === 'fill' && args.length === 1 && ts.isNumericLiteral(args[0]!) && Number(args[0].text) === 0) {
      // new Array<number>(n).fill(0): a zeroed scratch array.
      if (ts.isNewExpression(base) && /^Array(<number>)?$/.test(base.expression.getText() + (base.typeArguments ? `<${base.typeArguments.map((t) => t.getText()).join()}>` : ''))) {
        return { s: `$new(<i32>(${i64(expr(base.arguments![0]!))}))`, t: 'arr' };
      }
      return { s: `${expr(base).s}.fill(0.0)`, t: 'arr' };
    }
    if (name === 'subarray' && args.length >= 1 && args.length <= 2) {
      const b = expr(base).s;
      return { s: `$view(${b}, <i32>(${i64(expr(args[0]!))}), ${args[1] ? `<i32>(${i64(expr(args[1]))})` : `${b}.length`})`, t: 'arr' };
    }
    if (name === 'slice' && args.length === 0) return { s: `$copy(${expr(base).s})`, t: 'arr' };
    return fail(n, `it calls ${callee.getText()}`);
  };

  // ---- statements ----
  const refresh = (name: string) => (cached.has(name) && types.get(name) === 'arr' ? [`${name}$$$p = ${name}.dataStart; ${name}$$$n = <i64>${name}.length;`] : []);
  const declare = (d: ts.VariableDeclaration, kw: string): string[] => {
    if (!ts.isIdentifier(d.name)) return fail(d, 'a destructuring declaration');
    const name = d.name.text;
    const init = d.initializer;
    const tuple = init && ts.isCallExpression(init) && ts.isIdentifier(init.expression) && !scope.functions.has(init.expression.text)
      ? scope.helper?.(init.expression.text)?.tuple : undefined;
    if (tuple) {
      // `const $d = rule(...)`: the rule leaves its gradients in $ruleD / $ruleA, copied out before anything else runs.
      tuples.set(name, tuple);
      return [`${call(init as ts.CallExpression, true).s};`,
        ...tuple.map((k, i) => (k === 'f64' ? `const ${name}$g${i}: f64 = unchecked($ruleD[${i}]);` : `const ${name}$g${i}: Float64Array = unchecked($ruleA[${i}])!;`))];
    }
    let t: Ty;
    let value: string;
    if (d.exclamationToken || !init) {
      const dt = typeOf(d.type, d);
      if (dt === 'void' || dt === 'tape') return fail(d, 'this declaration');
      t = dt === 'f64' && ints.has(name) ? 'i64' : dt;
      value = t === 'arr' ? '$EMPTY' : t === 'bool' ? 'false' : t === 'i64' ? '0' : '0.0';
      types.set(name, t);
    } else {
      const x = expr(init);
      const dt = d.type ? typeOf(d.type, d) : x.t;
      if (dt === 'void' || dt === 'tape') return fail(d, 'this declaration');
      t = dt === 'f64' && ints.has(name) ? 'i64' : dt;
      if (t === 'i64' && !intish(x) && !(ts.isCallExpression(init) && isTapeCall(init))) throw new Error(`pullback internal error: ${name} is not an integer`);
      value = to(t, x);
      types.set(name, t);
    }
    const out = [`${kw} ${name}: ${asType[t]} = ${value};`];
    if (t === 'arr' && cached.has(name)) out.push(`let ${name}$$$p: usize = ${name}.dataStart, ${name}$$$n: i64 = <i64>${name}.length;`);
    return out;
  };
  const declList = (l: ts.VariableDeclarationList): string[] => l.declarations.flatMap((d) => declare(d, l.flags & ts.NodeFlags.Const ? 'const' : 'let'));
  /** Writes the cached tape pointer back before `$t` goes to another sweep, and reads it again after. */
  const syncing = (st: ts.Statement, lines: string[]): string[] =>
    (cacheTape && passesTape(st) ? ['$t.sp = $$sp;', ...lines, '$$sp = $t.sp; $$tp = $t.f.dataStart; $$te = $t.end;'] : lines);

  const ind = (ls: string[]) => ls.map((l) => '  ' + l);
  /** A statement, and what it does to the loads held in locals (see `loaded`). */
  const stmt = (s: ts.Statement): string[] => {
    if (!ts.isVariableStatement(s) && !ts.isExpressionStatement(s)) {
      forget();
      const out = stmtIn(s);
      forget();
      return out;
    }
    const declared = ts.isVariableStatement(s) ? s.declarationList.declarations.map((d) => d.name.getText()) : [];
    const plain = plainStatement(s);
    forget(declared);
    reuse = plain;
    let out: string[];
    try {
      out = stmtIn(s);
    } finally {
      reuse = false;
    }
    const e = ts.isExpressionStatement(s) ? s.expression : undefined;
    if (!plain || (e && isAssignment(e) && !ts.isIdentifier(e.left))) forget(); // an element store: any array may alias it
    else forget(e && isAssignment(e) ? [(e.left as ts.Identifier).text] : declared);
    return out;
  };
  const stmtIn = (s: ts.Statement): string[] => {
    if (ts.isVariableStatement(s)) return syncing(s, declList(s.declarationList));
    if (ts.isExpressionStatement(s)) {
      const e = s.expression;
      if (isTapeCall(e, ['reserve'])) return [];
      if (cacheTape && isTapeCall(e, ['push', 'put'])) {
        return [`{ const $$v: f64 = ${f64(expr((e as ts.CallExpression).arguments[0]!))}; if ($$sp >= $$te) { $$tp = $grow($t, $$sp); $$te = $t.end; } store<f64>($$tp + (<usize>$$sp << 3), $$v); $$sp++; }`];
      }
      const lines = [`${expr(e).s};`];
      if (ts.isBinaryExpression(e) && ts.isIdentifier(e.left) && e.operatorToken.kind === ts.SyntaxKind.EqualsToken) lines.push(...refresh(e.left.text));
      return syncing(s, lines);
    }
    if (ts.isBlock(s)) return ['{', ...ind(s.statements.flatMap(stmt)), '}'];
    if (ts.isIfStatement(s)) {
      return [`if (${bool(expr(s.expression))}) {`, ...ind(block(s.thenStatement)), ...(s.elseStatement ? ['} else {', ...ind(block(s.elseStatement))] : []), '}'];
    }
    if (ts.isWhileStatement(s)) return [`while (${bool(expr(s.expression))}) {`, ...ind(block(s.statement)), '}'];
    if (ts.isDoStatement(s)) return ['do {', ...ind(block(s.statement)), `} while (${bool(expr(s.expression))});`];
    if (ts.isForStatement(s)) {
      let init = '';
      if (s.initializer && ts.isVariableDeclarationList(s.initializer)) {
        const ds = declList(s.initializer);
        if (ds.some((l) => l.includes('$$p: usize'))) return fail(s, 'an array declared in a for header');
        init = ds.map((l, i) => (i ? l.replace(/^(let|const) /, '') : l).replace(/;$/, '')).join(', ');
      } else if (s.initializer) init = expr(s.initializer).s;
      return [`for (${init}; ${s.condition ? bool(expr(s.condition)) : ''}; ${s.incrementor ? expr(s.incrementor).s : ''}) {`, ...ind(block(s.statement)), '}'];
    }
    if (ts.isThrowStatement(s)) return [LOWERED_THROW];
    if (ts.isBreakStatement(s) && !s.label) return ['break;'];
    if (ts.isContinueStatement(s) && !s.label) return ['continue;'];
    if (ts.isReturnStatement(s)) {
      if (shape?.tuple) {
        // A rule's tuple of gradients: evaluated first (an element may call the rule again), then stored.
        let e = s.expression;
        while (e && (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e))) e = e.expression;
        if (!e || !ts.isArrayLiteralExpression(e) || e.elements.length !== shape.tuple.length || e.elements.some(ts.isSpreadElement)) {
          return fail(s, `a rule of ${shape.tuple.length} arguments must return its gradients as \`return [${shape.tuple.map((_, i) => `g${i}`).join(', ')}]\` to run on Wasm`);
        }
        const kinds = shape.tuple;
        return ['{', ...ind([
          ...e.elements.map((x, i) => {
            const v = expr(x);
            if ((kinds[i] === 'arr') !== (v.t === 'arr')) return fail(x, `gradient ${i} is ${kinds[i] === 'arr' ? 'not an array' : 'an array'}, its argument ${kinds[i] === 'arr' ? 'is' : 'is not'}`);
            return `const $$r${i}: ${asType[kinds[i]!]} = ${to(kinds[i]!, v)};`;
          }),
          ...kinds.map((k, i) => (k === 'f64' ? `unchecked($ruleD[${i}] = $$r${i});` : `unchecked($ruleA[${i}] = $$r${i});`)),
          'return;',
        ]), '}'];
      }
      if (!s.expression) return cacheTape ? ['$t.sp = $$sp;', 'return;'] : ['return;'];
      const x = expr(s.expression);
      const v = ret === 'f64' || ret === 'i64' || ret === 'bool' ? to(ret, x) : x.s;
      if (!cacheTape) return [`return ${v};`];
      return movesSp(s.expression) ? [`{ const $$r: ${asType[ret]} = ${v}; $t.sp = $$sp; return $$r; }`] : ['$t.sp = $$sp;', `return ${v};`];
    }
    return fail(s, 'this statement');
  };
  const block = (s: ts.Statement): string[] => {
    forget(); // a branch or a loop body: what was loaded before may not hold (the other branch, the last iteration)
    const out = ts.isBlock(s) ? s.statements.flatMap(stmt) : stmt(s);
    forget();
    return out;
  };

  const params = fn.parameters.map((p) => {
    const name = p.name.getText();
    if (name === 'this') return fail(p, 'a method');
    const declared = typeOf(p.type, p);
    if (declared === 'void') return fail(p, 'a void parameter');
    const t = declared === 'f64' && version?.params.has(name) ? 'i64' : declared;
    types.set(name, t);
    return `${name}: ${asType[t]}`;
  });
  const ret = shape ? (shape.tuple ? 'void' : shape.returns) : typeOf(fn.type, fn);
  const lines = body.statements.flatMap(stmt);
  /** Array parameters with an adjoint parameter beside them (`x`, `x_bar`): the caller may pass `$pb.EMPTY` for it (see $sinkFor). */
  const sinks = fn.parameters.map((q) => q.name.getText()).filter((a) => types.get(a) === 'arr' && types.get(`${a}_bar`) === 'arr');
  const prologue = [
    ...sinks.map((a) => `if (${a}_bar.length == 0 && ${a}.length != 0) ${a}_bar = $sinkFor(${a}.length);`),
    ...(cacheTape ? ['let $$tp: usize = $t.f.dataStart, $$sp: i32 = $t.sp, $$te: i32 = $t.end;'] : []),
    ...fn.parameters.filter((p) => types.get(p.name.getText()) === 'arr' && cached.has(p.name.getText()))
      .map((p) => { const a = p.name.getText(); return `let ${a}$$$p: usize = ${a}.dataStart, ${a}$$$n: i64 = <i64>${a}.length;`; }),
    ...(loadLocals.length ? [`let ${loadLocals.map((l) => `${l}: f64 = 0.0`).join(', ')};`] : []),
  ];
  const last = body.statements[body.statements.length - 1];
  if (cacheTape && !(last && ts.isReturnStatement(last))) lines.push('$t.sp = $$sp;');
  return [`function ${asName(own(fn.name!.text) + (version?.suffix ?? ''))}(${params.join(', ')}): ${asType[ret]} {`, ...ind([...prologue, ...lines]), '}'].join('\n');
}
