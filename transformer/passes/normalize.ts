// SPDX-License-Identifier: MIT
// Pass 3, normalize: give the reverse pass a small language to work on.
//  - jumps become data: `break`, `continue` and early `return` set flags and the statements they skip are
//    guarded by `if (!flag)`; a loop keeps one exit test at the end of its body. The reverse sweep then only
//    has to replay branches and trip counts, which it records on the tape.
//  - `?:` in a value becomes an if/else assigning a temporary, so that only the branch taken is differentiated
//    (a number-valued `?:` without calls stays: the reverse and tangent passes branch on it themselves);
//  - calls of differentiable functions become statements of their own (`t = g(x)`), since their reverse
//    sweep runs at a statement boundary;
//  - array literals become an allocation and element stores; the result is one variable.
import { varsOf, walkExpr, walkStmts, type Expr, type Fn, type Stmt, type ValueType } from '../ir.js';

export interface LoopExit {
  /** Tested at the end of every iteration; true: leave the loop (a break, or a return inside it). */
  exit: Expr | null;
}

/** A normalized loop: `loop` statements carry their exit test. */
export type NStmt = Stmt & Partial<LoopExit>;

export interface Normalized {
  fn: Fn;
  body: NStmt[];
  /** The variable holding the returned value. */
  result: string;
}

export function normalize(fn: Fn): Normalized {
  const locals = fn.locals;
  const fresh = (base: string, type: ValueType): string => {
    let n = base, i = 1;
    while (locals.has(n)) n = `${base}${++i}`;
    locals.set(n, type);
    return n;
  };
  const v = (name: string): Expr => ({ k: 'var', name });
  const TRUE: Expr = { k: 'lit', v: true };
  const FALSE: Expr = { k: 'lit', v: false };

  // The returned value: the user's own variable when the function ends with its only `return <var>`.
  let returns = 0;
  const countReturns = (ss: Stmt[]) => { for (const s of ss) {
    if (s.k === 'return') returns++;
    else if (s.k === 'if') { countReturns(s.then); countReturns(s.else); }
    else if (s.k === 'loop') countReturns(s.body);
  } };
  countReturns(fn.body);
  const last = fn.body[fn.body.length - 1];
  const paramNames = new Set(fn.params.map((p) => p.name));
  let result: string;
  let finalReturn: Stmt | undefined;
  if (returns === 1 && last?.k === 'return' && last.value?.k === 'var' && !paramNames.has(last.value.name)) {
    result = last.value.name;
    finalReturn = last;
  } else {
    result = fresh('$result', fn.returns);
  }
  let returnedFlag: string | undefined;
  const returned = () => (returnedFlag ??= fresh('$returned', 'bool'));

  interface LoopCtx { brk?: string; cont?: string }
  type Jumps = Set<string>; // names of flags a statement list may set

  const orAll = (flags: Iterable<string>): Expr => {
    let e: Expr | null = null;
    for (const f of flags) e = e ? { k: 'logic', op: '||', a: e, b: v(f) } : v(f);
    return e!;
  };

  /** Structures a statement list; reports the flags it may set through `jumps`. */
  const seq = (ss: Stmt[], loop: LoopCtx | null, jumps: Jumps, top: boolean): NStmt[] => {
    const out: NStmt[] = [];
    for (let i = 0; i < ss.length; i++) {
      const s = ss[i]!;
      if (s.k === 'break' || s.k === 'continue') {
        if (!loop) throw new Error('pullback internal error: jump outside a loop');
        const flag = s.k === 'break' ? (loop.brk ??= fresh('$break', 'bool')) : (loop.cont ??= fresh('$continue', 'bool'));
        out.push({ k: 'assign', name: flag, value: TRUE, src: s.src });
        jumps.add(flag);
        return out; // what follows a jump never runs
      }
      if (s.k === 'return') {
        const value = s.value ?? { k: 'lit', v: 0 };
        if (s !== finalReturn) {
          const isArrParam = value.k === 'var' && paramNames.has(value.name);
          out.push({ k: 'assign', name: result, value: isArrParam && fn.returns === 'arr' ? { k: 'copy', src: value, array: 'f64' } : value, src: s.src });
        }
        if (!(top && i === ss.length - 1)) {
          out.push({ k: 'assign', name: returned(), value: TRUE, src: s.src });
          jumps.add(returned());
        }
        return out;
      }
      if (s.k === 'if') {
        const j: Jumps = new Set();
        out.push({ ...s, then: seq(s.then, loop, j, false), else: seq(s.else, loop, j, false) });
        if (j.size) {
          for (const f of j) jumps.add(f);
          const rest = seq(ss.slice(i + 1), loop, jumps, top);
          if (rest.length) out.push({ k: 'if', cond: { k: 'not', a: orAll(j) }, then: rest, else: [], src: s.src });
          return out;
        }
        continue;
      }
      if (s.k === 'loop') {
        const inner: LoopCtx = {};
        const j: Jumps = new Set();
        const body = seq(s.body, inner, j, false);
        const exits: string[] = [];
        const init = [...s.init];
        if (inner.brk) { exits.push(inner.brk); init.push({ k: 'assign', name: inner.brk, value: FALSE, src: s.src }); }
        if (inner.cont) body.unshift({ k: 'assign', name: inner.cont, value: FALSE, src: s.src });
        const escapes = returnedFlag !== undefined && j.has(returnedFlag);
        if (escapes) exits.push(returnedFlag!);
        out.push({ ...s, init, body, exit: exits.length ? orAll(exits) : null });
        if (escapes) {
          jumps.add(returnedFlag!);
          const rest = seq(ss.slice(i + 1), loop, jumps, top);
          if (rest.length) out.push({ k: 'if', cond: { k: 'not', a: v(returnedFlag!) }, then: rest, else: [], src: s.src });
          return out;
        }
        continue;
      }
      out.push(s);
    }
    return out;
  };
  const structured = seq(fn.body, null, new Set(), true);
  if (returnedFlag) structured.unshift({ k: 'decl', name: returnedFlag, type: 'bool', init: FALSE, src: { line: fn.line, col: fn.col, text: 'return' } });

  const exprType = (e: Expr): ValueType => {
    switch (e.k) {
      case 'var': return locals.get(e.name) ?? fn.params.find((p) => p.name === e.name)?.type ?? 'num';
      case 'alloc': case 'copy': case 'arrlit': case 'view': return 'arr';
      case 'call': return e.callee.returns;
      case 'cond': return exprType(e.a) === 'arr' || exprType(e.b) === 'arr' ? 'arr' : 'num';
      default: return 'num';
    }
  };

  /** No calls (a callee's sweeps run at statement boundaries) and nothing allocated: a pure expression. */
  const plain = (e: Expr): boolean => {
    let ok = true;
    walkExpr(e, (x) => { if (x.k === 'call' || x.k === 'extcall' || x.k === 'arrlit' || x.k === 'alloc' || x.k === 'copy' || x.k === 'view') ok = false; });
    return ok;
  };

  // Values: pull `?:`, calls and array literals out of expressions into statements of their own.
  const pre: NStmt[] = [];
  const value = (e: Expr, src: Stmt['src'], top: boolean): Expr => {
    switch (e.k) {
      case 'cond': {
        // An array-valued `c ? x : y` makes an array alias (its shadow follows), a number one a number.
        const type: ValueType = exprType(e.a) === 'arr' || exprType(e.b) === 'arr' ? 'arr' : 'num';
        // A number-valued one without calls stays an expression: the reverse sweep differentiates the branch
        // taken (`if (c) ... else ...` at the mirror point), and a constant that holds it, such as
        // `const up = i > 0 ? i - 1 : i` in a stencil, is recomputed there instead of stored with its branch.
        if (type === 'num' && plain(e)) return e;
        const t = fresh('$cond', type);
        const a: NStmt[] = [], b: NStmt[] = [];
        const saved = pre.splice(0);
        const av = value(e.a, src, true); a.push(...pre.splice(0), { k: 'assign', name: t, value: av, src });
        const bv = value(e.b, src, true); b.push(...pre.splice(0), { k: 'assign', name: t, value: bv, src });
        pre.push(...saved, { k: 'if', cond: e.c, then: a, else: b, src });
        return v(t);
      }
      case 'call': {
        const args = e.args.map((a) => value(a, src, false));
        const call: Expr = { ...e, args };
        if (top) return call;
        const t = fresh(`$${e.callee.prefix.replace(/\$/g, '_')}`, e.callee.returns);
        pre.push({ k: 'assign', name: t, value: call, src });
        return v(t);
      }
      case 'arrlit': {
        const items = e.items.map((a) => value(a, src, false));
        const t = fresh('$array', 'arr');
        pre.push({ k: 'assign', name: t, value: { k: 'alloc', len: { k: 'lit', v: items.length }, array: e.array }, src });
        items.forEach((it, i) => pre.push({ k: 'store', arr: t, idx: { k: 'lit', v: i }, value: it, src }));
        return v(t);
      }
      case 'bin': return { ...e, a: value(e.a, src, false), b: value(e.b, src, false) };
      case 'neg': return { ...e, a: value(e.a, src, false) };
      case 'math': return { ...e, args: e.args.map((a) => value(a, src, false)) };
      case 'stop': return { ...e, a: value(e.a, src, false) };
      case 'view': return { ...e, arr: value(e.arr, src, false) };
      case 'copy': return { ...e, src: value(e.src, src, false) };
      // Conditions, indices, lengths and calls of non-differentiable functions only feed control flow or
      // integer positions: they are evaluated as written (a differentiable callee there runs its primal).
      default: return e;
    }
  };
  const block = (ss: NStmt[]): NStmt[] => {
    const out: NStmt[] = [];
    for (const s of ss) {
      switch (s.k) {
        case 'decl': {
          const init = s.init ? value(s.init, s.src, true) : null;
          out.push(...pre.splice(0), { ...s, init });
          break;
        }
        case 'assign': { const val = value(s.value, s.src, true); out.push(...pre.splice(0), { ...s, value: val }); break; }
        case 'store': { const val = value(s.value, s.src, false); out.push(...pre.splice(0), { ...s, value: val }); break; }
        case 'if': out.push({ ...s, then: block(s.then), else: block(s.else) }); break;
        case 'loop': out.push({ ...s, init: block(s.init), body: block(s.body), update: block(s.update) }); break;
        default: out.push(s);
      }
    }
    return out;
  };
  return { fn, body: ssa(block(structured)), result };

  /**
   * Versions of a variable updated in place, where that blocks recomputation: in a loop body such as
   * `const k1 = f(x); ...; x = x + h * k1;` the update of x makes every constant that read x impossible to
   * recompute in the reverse sweep. Renaming the update (`const x_1 = x + h * k1`, later reads use x_1) and
   * copying back once at the end of the block (`x = x_1`) leaves x unchanged through the block, so the
   * constants are recomputed and only x itself is stored, once per iteration.
   */
  function ssa(ss: NStmt[]): NStmt[] {
    const nested = (s: NStmt): NStmt => s.k === 'if' ? { ...s, then: ssa(s.then), else: ssa(s.else) }
      : s.k === 'loop' ? { ...s, body: ssa(s.body) } : s;
    ss = ss.map(nested);
    const assignsDeep = (s: NStmt, v: string) => { let hit = false; walkStmts([s], (x) => { if ((x.k === 'assign' || x.k === 'decl') && x.name === v) hit = true; }); return hit; };
    const candidates = new Set<string>();
    ss.forEach((s, i) => {
      if (s.k !== 'decl' || !s.init) return;
      for (const v of varsOf(s.init)) {
        if (locals.get(v) !== 'num' && !(fn.params.some((p) => p.name === v && p.type === 'num'))) continue;
        const later = ss.slice(i + 1).filter((x) => assignsDeep(x, v));
        if (later.length && later.every((x) => x.k === 'assign' && x.name === v) && ss.every((x) => x.k === 'assign' || !assignsDeep(x, v))) candidates.add(v);
      }
    });
    // A verbatim statement (console.log(x)) would print a stale x: leave such variables alone.
    walkStmts(ss, (x) => { if (x.k === 'opaque') for (const u of x.uses) for (const v of varsOf(u)) candidates.delete(v); });
    if (!candidates.size) return ss;
    const version = new Map<string, string>();
    const rename = (e: Expr): Expr => mapVars(e, (name) => version.get(name) ?? name);
    const out: NStmt[] = [];
    let lastSrc = ss[ss.length - 1]!.src;
    for (const s of ss) {
      const r = renameStmt(s, rename);
      if (r.k === 'assign' && candidates.has(r.name)) {
        const t = fresh(`${r.name}_${(version.size + 1)}`, 'num');
        out.push({ k: 'decl', name: t, type: 'num', init: r.value, src: r.src });
        version.set(r.name, t);
        lastSrc = r.src;
      } else out.push(r);
    }
    for (const [v, t] of version) out.push({ k: 'assign', name: v, value: { k: 'var', name: t }, src: { ...lastSrc, text: `${v} = ${t} (the updated ${v} carried to the next step)` } });
    return out;
  }
}

/** Rewrites every variable read in an expression. */
function mapVars(e: Expr, f: (name: string) => string): Expr {
  const m = (x: Expr) => mapVars(x, f);
  switch (e.k) {
    case 'var': return { k: 'var', name: f(e.name) };
    case 'lit': case 'ext': return e;
    case 'bin': case 'cmp': case 'logic': return { ...e, a: m(e.a), b: m(e.b) } as Expr;
    case 'neg': case 'not': case 'stop': return { ...e, a: m(e.a) } as Expr;
    case 'cond': return { ...e, c: m(e.c), a: m(e.a), b: m(e.b) };
    case 'math': case 'call': case 'extcall': return { ...e, args: e.args.map(m) } as Expr;
    case 'arrlit': return { ...e, items: e.items.map(m) };
    case 'index': return { ...e, arr: m(e.arr), idx: m(e.idx) };
    case 'len': return { ...e, arr: m(e.arr) };
    case 'alloc': return { ...e, len: m(e.len) };
    case 'copy': return { ...e, src: m(e.src) };
    case 'view': return { ...e, arr: m(e.arr), start: m(e.start), end: e.end ? m(e.end) : null };
  }
}

/** Rewrites the expressions of a statement and of the statements nested in it (targets are kept). */
function renameStmt(s: NStmt, f: (e: Expr) => Expr): NStmt {
  const list = (xs: NStmt[]) => xs.map((x) => renameStmt(x, f));
  switch (s.k) {
    case 'decl': return { ...s, init: s.init ? f(s.init) : null };
    case 'assign': return { ...s, value: f(s.value) };
    case 'store': return { ...s, idx: f(s.idx), value: f(s.value) };
    case 'if': return { ...s, cond: f(s.cond), then: list(s.then), else: list(s.else) };
    case 'loop': return { ...s, init: list(s.init), cond: s.cond ? f(s.cond) : null, update: list(s.update), body: list(s.body), exit: s.exit ? f(s.exit) : s.exit };
    case 'opaque': return { ...s, uses: s.uses.map(f) };
    default: return s;
  }
}
