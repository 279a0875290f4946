// SPDX-License-Identifier: MIT
// The transformer's intermediate representation of one marked scalar function.
//
// It is deliberately close to the TypeScript it came from: expressions stay trees (the reverse pass
// differentiates them statement by statement, as Tapenade does), statements keep their source position so
// that every adjoint block can say which line it came from. Only what the scalar subset allows exists here;
// anything else was rejected by the lowering pass with a diagnostic.

/** Where a statement came from: printed above its adjoint as `// ∂ of: <text>`. */
export interface Src {
  line: number;
  col: number;
  text: string;
}

export type ValueType = 'num' | 'bool' | 'arr';

export type ArithOp = '+' | '-' | '*' | '/' | '**' | '%';
export type CmpOp = '<' | '<=' | '>' | '>=' | '===' | '!==' | '==' | '!=';

/** A function this one calls whose derivative the transformer knows. */
export interface Callee {
  /** How generated code names the callee's primal (an identifier or `this.m` / `C.m`). */
  ref: string;
  /** Identity used to find the callee's adjoint: same-module callees are called directly. */
  key: string;
  /** Same module: generated `${prefix}$fwd` / `${prefix}$rev` exist in this file. */
  local: boolean;
  prefix: string;
  /** A `/** @derivative *\/` rule replaces differentiation of the callee's body. */
  rule?: { ref: string; local: boolean };
  params: ValueType[];
  returns: 'num' | 'arr';
  /** Method called through `this`: fwd/rev are invoked with `.call(this, ...)`. */
  viaThis: boolean;
}

export type Expr =
  | { k: 'lit'; v: number | boolean }
  /** A local variable or parameter of the function. */
  | { k: 'var'; name: string }
  /** A name or expression from outside the function (module constant, `this.k`, `Math.PI`): never active. */
  | { k: 'ext'; text: string }
  | { k: 'bin'; op: ArithOp; a: Expr; b: Expr }
  | { k: 'neg'; a: Expr }
  | { k: 'not'; a: Expr }
  | { k: 'cmp'; op: CmpOp; a: Expr; b: Expr }
  | { k: 'logic'; op: '&&' | '||'; a: Expr; b: Expr }
  | { k: 'cond'; c: Expr; a: Expr; b: Expr }
  | { k: 'math'; fn: string; args: Expr[] }
  | { k: 'index'; arr: Expr; idx: Expr }
  | { k: 'len'; arr: Expr }
  | { k: 'call'; callee: Callee; args: Expr[] }
  /** A call of a function that is not differentiable: allowed only while no argument is active. */
  | { k: 'extcall'; text: string; fn: string; args: Expr[]; node?: unknown }
  /** new Float64Array(n) / new Array(n).fill(0): a zeroed scratch array. */
  | { k: 'alloc'; len: Expr; array: 'f64' | 'js' }
  /** Float64Array.from(a) / new Float64Array(a) / a.slice(): a copy. */
  | { k: 'copy'; src: Expr; array: 'f64' | 'js' }
  | { k: 'arrlit'; items: Expr[]; array: 'f64' | 'js' }
  | { k: 'view'; arr: Expr; start: Expr; end: Expr | null }
  | { k: 'stop'; a: Expr };

export type Stmt =
  | { k: 'decl'; name: string; type: ValueType; init: Expr | null; src: Src }
  | { k: 'assign'; name: string; value: Expr; src: Src }
  | { k: 'store'; arr: string; idx: Expr; value: Expr; src: Src }
  | { k: 'if'; cond: Expr; then: Stmt[]; else: Stmt[]; src: Src }
  | {
      k: 'loop';
      init: Stmt[];
      cond: Expr | null;
      update: Stmt[];
      body: Stmt[];
      /** do ... while: the body runs before the first test. */
      post: boolean;
      src: Src;
    }
  | { k: 'break'; src: Src }
  | { k: 'continue'; src: Src }
  | { k: 'return'; value: Expr | null; src: Src }
  /** Verbatim statement with no effect on any value the function differentiates (e.g. `throw`). */
  | { k: 'opaque'; text: string; uses: Expr[]; src: Src };

export interface Param {
  name: string;
  type: ValueType;
  /** The TypeScript type as written, for readable generated signatures. */
  typeText: string;
}

export interface Fn {
  /** Display name: `f`, `C.m`. */
  name: string;
  /** Prefix of generated names: `f$fwd`, `C$m$fwd`. */
  prefix: string;
  /** How to reach the primal function object from module scope (for registration). */
  ref: string;
  file: string;
  line: number;
  col: number;
  params: Param[];
  returns: 'num' | 'arr';
  returnTypeText: string;
  body: Stmt[];
  /** Method: the generated sweeps are called with the method's `this`. */
  usesThis: boolean;
  /** Names declared in the function (after renaming), with their types. */
  locals: Map<string, ValueType>;
}

/** Visits every expression node below `e`, `e` included. */
export function walkExpr(e: Expr, f: (e: Expr) => void): void {
  f(e);
  switch (e.k) {
    case 'lit': case 'var': case 'ext': return;
    case 'bin': case 'cmp': case 'logic': walkExpr(e.a, f); walkExpr(e.b, f); return;
    case 'neg': case 'not': case 'stop': walkExpr(e.a, f); return;
    case 'cond': walkExpr(e.c, f); walkExpr(e.a, f); walkExpr(e.b, f); return;
    case 'math': case 'call': case 'extcall': case 'arrlit':
      for (const a of e.k === 'arrlit' ? e.items : e.args) walkExpr(a, f);
      return;
    case 'index': walkExpr(e.arr, f); walkExpr(e.idx, f); return;
    case 'len': walkExpr(e.arr, f); return;
    case 'alloc': walkExpr(e.len, f); return;
    case 'copy': walkExpr(e.src, f); return;
    case 'view': walkExpr(e.arr, f); walkExpr(e.start, f); if (e.end) walkExpr(e.end, f); return;
    default: return assertNever(e);
  }
}

/** Variables an expression reads. */
export function varsOf(e: Expr, out = new Set<string>()): Set<string> {
  walkExpr(e, (x) => { if (x.k === 'var') out.add(x.name); });
  return out;
}

/** Visits every statement, nested ones included, in source order. */
export function walkStmts(ss: Stmt[], f: (s: Stmt, inLoop: boolean) => void, inLoop = false): void {
  for (const s of ss) {
    f(s, inLoop);
    if (s.k === 'if') { walkStmts(s.then, f, inLoop); walkStmts(s.else, f, inLoop); }
    else if (s.k === 'loop') {
      walkStmts(s.init, f, inLoop);
      walkStmts(s.body, f, true);
      walkStmts(s.update, f, true);
    }
  }
}

/** Expressions directly held by a statement (not those of nested statements). */
export function stmtExprs(s: Stmt): Expr[] {
  switch (s.k) {
    case 'decl': return s.init ? [s.init] : [];
    case 'assign': return [s.value];
    case 'store': return [s.idx, s.value];
    case 'if': return [s.cond];
    case 'loop': return s.cond ? [s.cond] : [];
    case 'return': return s.value ? [s.value] : [];
    case 'opaque': return s.uses;
    case 'break': case 'continue': return [];
    default: return assertNever(s);
  }
}

export function assertNever(x: never): never {
  throw new Error(`pullback internal error: unexpected ${JSON.stringify(x)}`);
}
