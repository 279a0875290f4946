// SPDX-License-Identifier: MIT
// Pass 5, reverse: write the forward sweep and the reverse sweep of one normalized function.
//
// Strategy (Tapenade's, "store on overwrite"): the forward sweep is the user's program, plus a push of the
// old value before each assignment that destroys a value the reverse sweep will read, plus the branch taken
// by each `if` and the trip count of each loop. The reverse sweep walks the statements backwards; after the
// adjoint of an assignment it pops the old value back, so at every point of the reverse sweep each variable
// holds exactly the value it had at the mirror point of the forward sweep, and adjoint code can read
// program variables directly. Two refinements keep the tape small:
//  - a `const` of a block whose inputs do not change later in the block is recomputed at the start of the
//    block's reverse instead of being stored (Rosenbrock's loop body stores nothing);
//  - a counting loop's update `i += c` is undone by `i -= c` instead of being stored.
// The sweeps share one tape (`$t`); a callee's records sit between its caller's, in call order, so the
// caller's reverse calls the callee's reverse at the mirror point and the records pop out in order.
// Arrays have shadows: every active array `a` has an adjoint array `a_bar` of the same length, created and
// aliased alongside it in the forward sweep, so that aliasing (`u = next`) carries adjoints with it.
import { assertNever, stmtExprs, varsOf, walkExpr, walkStmts, type Callee, type Expr, type Stmt, type ValueType } from '../ir.js';
import type { Activity } from './activity.js';
import type { NStmt, Normalized } from './normalize.js';
import { printExpr, type PrintHooks } from './print.js';
import { MATH_RULES, div, mul, neg, powRule } from './rules.js';

export interface Sweeps {
  fwd: string;
  rev: string;
  /** Module-level caches for adjoints of callees from other modules: name -> initial lookup. */
  externs: Map<string, string>;
}

type CallExpr = Extract<Expr, { k: 'call' }>;
const IND = '  ';
const indent = (ls: string[]) => ls.map((l) => IND + l);

export interface GenerateOptions {
  /**
   * The gradient sweeps (`$gfwd`, `$grev`) that `grad` uses: the forward sweep computes only what the reverse
   * sweep and the control flow read, not the function's value, which grad does not return.
   */
  gradient?: boolean;
}

export function generate(n: Normalized, act: Activity, localTypes: Map<string, string>, opts: GenerateOptions = {}): Sweeps {
  const fn = n.fn;
  const FWD = opts.gradient ? '$gfwd' : '$fwd', REV = opts.gradient ? '$grev' : '$rev';
  const params = new Set(fn.params.map((p) => p.name));
  const typeOf = (v: string): ValueType => fn.locals.get(v) ?? 'num';
  const externs = new Map<string, string>();

  // Assignment sites of every variable, and whether one sits inside a loop.
  const sites = new Map<string, { count: number; inLoop: boolean }>();
  walkStmts(n.body, (s, inLoop) => {
    const t = s.k === 'assign' ? s.name : s.k === 'decl' && s.init ? s.name : undefined;
    if (!t) return;
    const e = sites.get(t) ?? { count: 0, inLoop: false };
    e.count++;
    e.inLoop ||= inLoop;
    sites.set(t, e);
  });
  const singleDef = (v: string) => !params.has(v) && (sites.get(v)?.count ?? 0) <= 1 && !sites.get(v)?.inLoop;

  // Adjoint names: x -> x_bar, unless the program already uses that name.
  const taken = new Set<string>([...fn.locals.keys(), ...params]);
  const bars = new Map<string, string>();
  const bar = (v: string): string => {
    let b = bars.get(v);
    if (!b) {
      b = `${v}_bar`;
      while (taken.has(b)) b += '_';
      taken.add(b);
      bars.set(v, b);
    }
    return b;
  };
  const isArr = (v: string) => typeOf(v) === 'arr';
  const hasShadow = (v: string) => isArr(v) && (params.has(v) || act.active(v));

  // Loop updates that can be undone exactly: `i = i ± <integer literal>` on an integer counter.
  const invertible = new Set<Stmt>();
  const integral = new Set<string>();
  const isIntegral = (e: Expr): boolean => {
    switch (e.k) {
      case 'lit': return typeof e.v === 'number' && Number.isInteger(e.v);
      case 'len': return true;
      case 'var': return integral.has(e.name);
      case 'bin': return (e.op === '+' || e.op === '-' || e.op === '*') && isIntegral(e.a) && isIntegral(e.b);
      case 'math': return ['floor', 'ceil', 'round', 'trunc', 'sign'].includes(e.fn);
      default: return false;
    }
  };
  walkStmts(n.body, (s) => {
    if (s.k !== 'loop' || s.update.length !== 1) return;
    const u = s.update[0]!;
    if (u.k !== 'assign' || u.value.k !== 'bin' || (u.value.op !== '+' && u.value.op !== '-')) return;
    const { a, b } = u.value;
    if (a.k !== 'var' || a.name !== u.name || b.k !== 'lit' || typeof b.v !== 'number' || !Number.isInteger(b.v)) return;
    const inits = s.init.filter((x) => (x.k === 'decl' || x.k === 'assign') && x.name === u.name);
    if (inits.length !== 1) return;
    const init = inits[0]! as Extract<Stmt, { k: 'decl' | 'assign' }>;
    const value = init.k === 'decl' ? init.init : init.value;
    if (!value || !isIntegral(value)) return;
    // The counter must not be assigned in the body.
    let touched = false;
    walkStmts(s.body, (x) => { if ((x.k === 'assign' || x.k === 'decl') && x.name === u.name) touched = true; });
    if (touched) return;
    integral.add(u.name);
    invertible.add(u);
  });

  // Arrays that may be the same object (`t = u; u = v; v = t`, views): a store through one destroys an
  // element that a read through another may need, so element saving is decided per alias group.
  const group = new Map<string, string>();
  const find = (v: string): string => { const p = group.get(v); if (!p || p === v) return v; const r = find(p); group.set(v, r); return r; };
  walkStmts(n.body, (s) => {
    const t = s.k === 'assign' ? s.name : s.k === 'decl' ? s.name : undefined;
    const e = s.k === 'assign' ? s.value : s.k === 'decl' ? s.init : null;
    if (!t || !e || !isArr(t)) return;
    const src = e.k === 'var' ? e.name : e.k === 'view' && e.arr.k === 'var' ? e.arr.name : undefined;
    if (src) group.set(find(t), find(src));
  });

  // The top-level statement each element store sits in (see `lastRead`).
  const storeTop = new Map<Stmt, number>();
  n.body.forEach((top, i) => walkStmts([top], (x) => { if (x.k === 'store') storeTop.set(x, i); }));
  // Alias groups whose arrays someone outside sees: a parameter (the caller's array, which the reverse sweep
  // gives back as it was), or the returned array.
  const outside = new Set([...fn.params.filter((p) => p.type === 'arr').map((p) => p.name), ...(fn.returns === 'arr' ? [n.result] : [])].map(find));

  let N = new Set<string>();
  let R = new Map<string, number>();
  let g!: ReturnType<typeof sweepsWith>;
  // N (the variables the reverse sweep reads) and the recomputation choices depend on each other: iterate
  // until the reads are all in N. N only grows, so this ends after at most one round per variable.
  let settled = false;
  for (let round = 0; round <= fn.locals.size + fn.params.length + 1 && !settled; round++) {
    R = recomputable(n, N, sites);
    g = sweepsWith(N, R);
    let grew = false;
    for (const v of g.reads) if (!N.has(v)) { N.add(v); grew = true; }
    if (!grew) settled = true;
    else N = new Set(N);
  }
  if (!settled) throw new Error(`pullback internal error: the reverse sweep of ${fn.name} did not settle`);
  // Then element stores whose old values no later part of the reverse sweep reads are not recorded: the sweeps
  // are written again for the reads of the last version, and kept when their own reads are no earlier than
  // the ones they were written for (a few rounds at most; otherwise every store stays recorded). Heat
  // diffusion's gradient reads the field only after the time loop: its stencil's stores record nothing.
  let assumed = g.lastRead;
  for (let round = 0; round < 4; round++) {
    const h = sweepsWith(N, R, assumed);
    if ([...h.reads].some((v) => !N.has(v))) break;
    if ([...h.lastRead].every(([grp, at]) => at >= (assumed.get(grp) ?? Infinity))) { g = h; break; }
    assumed = h.lastRead;
  }
  return { fwd: g.fwd, rev: g.rev, externs };

  /**
   * `lastRead`: for each alias group, the first top-level statement (in program order) whose reverse reads the
   * group's elements, from an earlier version of the sweeps; an element store in a later statement need not be
   * recorded, since everything that reads its old value runs before its reverse. Without it, every store into a
   * group that the reverse sweep reads anywhere is recorded.
   */
  function sweepsWith(N: Set<string>, R: Map<string, number>, lastRead?: Map<string, number>): { fwd: string; rev: string; reads: Set<string>; lastRead: Map<string, number> } {
    const reads = new Set<string>();
    const firstRead = new Map<string, number>();
    /** The top-level statement whose reverse is being written (n.body.length: before the first). */
    let curTop = n.body.length;
    let depth = 0;
    let tmp = 0;
    const fresh = (base: string) => `$${base}${++tmp}`;
    const elementsNeeded = (a: string) => [...N].some((v) => isArr(v) && find(v) === find(a));
    /** Whether the store `s` into array `a` records the element it overwrites. */
    const recordsElement = (s: Stmt, a: string) => elementsNeeded(a) &&
      (!lastRead || outside.has(find(a)) || (lastRead.get(find(a)) ?? Infinity) <= (storeTop.get(s) ?? -1));
    const needsSave = (v: string) => (isArr(v) ? (N.has(v) || act.active(v)) : N.has(v) && !R.has(v)) && !singleDef(v);
    const revInfo = new Map<Stmt, { flag?: boolean; count?: boolean }>();
    const dead = opts.gradient ? deadForGradient(n, N, R, typeOf) : new Set<Stmt>();
    /** Forward-sweep locals the generator adds: name -> declaration. */
    const fwdHoist = new Map<string, string>();

    const pf: PrintHooks = { name: (v) => v, call: (e, args) => callFwd(e, args) };
    const pr: PrintHooks = {
      name: (v) => {
        reads.add(v);
        if (isArr(v)) { const r = find(v); if ((firstRead.get(r) ?? Infinity) > curTop) firstRead.set(r, curTop); }
        return v;
      },
    };
    const P = (e: Expr) => printExpr(e, pf);
    const Q = (e: Expr) => printExpr(e, pr);
    const atomic = (e: Expr) => e.k === 'var' || e.k === 'lit' || e.k === 'ext';

    const calleeAdjoint = (c: Callee): string => {
      const cache = `${c.prefix}$ad`;
      externs.set(cache, c.ref);
      return `(${cache} ??= $pb.adjointOf(${c.ref}))`;
    };
    const shadowOf = (e: Expr, h: PrintHooks): string => {
      if (e.k === 'var') return hasShadow(e.name) ? bar(e.name) : '$pb.EMPTY';
      if (e.k === 'view' && e.arr.k === 'var' && hasShadow(e.arr.name)) {
        return `${bar(e.arr.name)}.subarray(${printExpr(e.start, h)}${e.end ? ', ' + printExpr(e.end, h) : ''})`;
      }
      return '$pb.EMPTY';
    };
    const argIsActive = (a: Expr) => (a.k === 'var' && isArr(a.name)) || (a.k === 'view' && a.arr.k === 'var')
      ? act.active(a.k === 'var' ? a.name : (a as { arr: { name: string } }).arr.name)
      : act.activeExpr(a);
    /** A call is differentiated only when its result is active and some argument is. */
    const callIsActive = (target: string, e: CallExpr) => act.active(target) && e.args.some(argIsActive);
    let currentCallActive = false;
    const callFwd = (e: CallExpr, args: string[]): string => {
      const c = e.callee;
      if (!currentCallActive || c.rule) return `${c.ref}(${args.join(', ')})`;
      const shadows = e.args.flatMap((a, i) => (c.params[i] === 'arr' ? [shadowOf(a, pf)] : []));
      const all = ['$t', ...args, ...shadows].join(', ');
      const f = c.local ? `${c.prefix}$fwd` : `${calleeAdjoint(c)}.fwd`;
      return c.viaThis ? `${f}.call(this, ${all})` : `${f}(${all})`;
    };

    // ---------- reverse ----------
    // Contributions to the same adjoint within one statement are summed into one update
    // (`x_bar[i] += 2 * ($d * x[i])` rather than two read-modify-writes), emitted when the statement ends.
    const pending = new Map<string[], Map<string, Expr[]>>();
    const contribute = (out: string[], target: string, g: Expr) => {
      const m = pending.get(out) ?? new Map<string, Expr[]>();
      pending.set(out, m);
      m.set(target, [...(m.get(target) ?? []), g]);
    };
    /** Moves the pending contributions to adjoint-array elements of `from` to `to`, to be written with its own. */
    const moveElementContributions = (from: string[], to: string[]) => {
      const m = pending.get(from);
      if (!m) return;
      for (const [target, terms] of m) {
        if (!target.endsWith(']')) continue;
        const into = pending.get(to) ?? new Map<string, Expr[]>();
        pending.set(to, into);
        into.set(target, [...terms, ...(into.get(target) ?? [])]);
        m.delete(target);
      }
    };
    const flush = (out: string[]) => {
      const m = pending.get(out);
      if (!m) return;
      pending.delete(out);
      for (const [target, terms] of m) {
        if (terms.length === 1) {
          const g = terms[0]!;
          out.push(g.k === 'neg' ? `${target} -= ${Q(g.a)};` : `${target} += ${Q(g)};`);
          continue;
        }
        // Several terms: like terms (the same factors, in any order and grouping, up to a constant) are merged,
        // so that the product rule's `s_bar * a * 100 + s_bar * (100 * a)` for `100 * a * a` is one
        // `200 * s_bar * a`; each term printed tight enough to be summed.
        // A term alike with none other is printed as it was built (its grouping may share work with the primal's).
        const like = new Map<string, { negative: boolean; c: number; factors: Expr[]; n: number; g: Expr }>();
        for (const g of terms) {
          const t = productTerm(g);
          const key = t.factors.map((f) => printExpr(f, pr, 13)).sort().join(' * ');
          const c = like.get(key);
          if (c) { c.c += (c.negative === t.negative ? 1 : -1) * t.c; c.n++; } else like.set(key, { ...t, n: 1, g });
        }
        const parts = [...like.values()].filter((t) => t.n === 1 || t.c !== 0).map((t) => {
          if (t.n === 1) {
            const negative = t.g.k === 'neg';
            return { negative, text: printExpr(negative ? (t.g as { a: Expr }).a : t.g, pr, 12) };
          }
          const negative = t.negative !== t.c < 0;
          const c = Math.abs(t.c);
          const product = [...(c === 1 && t.factors.length ? [] : [{ k: 'lit', v: c } as Expr]), ...t.factors].reduce((a, b) => ({ k: 'bin', op: '*', a, b }));
          return { negative, text: printExpr(product, pr, 12) };
        });
        if (!parts.length) continue;
        const allNegative = parts.every((p) => p.negative);
        const sum = parts.map((p, i) => (i === 0 ? (p.negative && !allNegative ? `-${p.text}` : p.text) : `${p.negative !== allNegative ? ' - ' : ' + '}${p.text}`)).join('');
        out.push(`${target} ${allNegative ? '-=' : '+='} ${sum};`);
      }
    };
    const prop = (e: Expr, g: Expr, out: string[]): void => {
      if (!act.activeExpr(e)) return;
      const share = (count: number): Expr => {
        if (atomic(g) || count < 2) return g;
        const d = fresh('d');
        out.push(`const ${d} = ${Q(g)};`);
        return { k: 'var', name: d };
      };
      switch (e.k) {
        case 'var':
          if (!act.active(e.name)) return;
          contribute(out, bar(e.name), g);
          return;
        case 'index':
          if (e.arr.k !== 'var' || !act.active(e.arr.name)) return;
          reads.add(e.arr.name);
          contribute(out, `${bar(e.arr.name)}[${Q(e.idx)}]`, g);
          return;
        case 'neg': prop(e.a, neg(g), out); return;
        case 'bin': {
          const both = act.activeExpr(e.a) && act.activeExpr(e.b);
          const gg = share(both ? 2 : 1);
          switch (e.op) {
            case '+': prop(e.a, gg, out); prop(e.b, gg, out); return;
            case '-': prop(e.a, gg, out); prop(e.b, neg(gg), out); return;
            case '*': prop(e.a, mul(gg, e.b), out); prop(e.b, mul(gg, e.a), out); return;
            // The adjoint is the last factor (g * (1 / b), not g / b): the partial derivative depends on primal
            // values only, so a division never sits on the chain of adjoints that runs through a loop.
            case '/': prop(e.a, mul(gg, div({ k: 'lit', v: 1 }, e.b)), out); prop(e.b, neg(mul(gg, div(e.a, mul(e.b, e.b)))), out); return;
            case '%': prop(e.a, gg, out); prop(e.b, neg(mul(gg, { k: 'math', fn: 'trunc', args: [div(e.a, e.b)] })), out); return;
            case '**': {
              const [da, db] = powRule(e.a, e.b, gg, act.activeExpr(e.b));
              if (da) prop(e.a, da, out);
              if (db) prop(e.b, db, out);
              return;
            }
            default: return;
          }
        }
        case 'math': {
          const rule = MATH_RULES[e.fn];
          if (!rule) throw new Error(`pullback internal error: no rule for Math.${e.fn}`);
          const activeArgs = e.args.filter((a) => act.activeExpr(a)).length;
          const gg = share(activeArgs);
          const contribs = rule(e.args, gg);
          e.args.forEach((a, i) => { const c = contribs[i]; if (c) prop(a, c, out); });
          return;
        }
        case 'cond': {
          out.push(`if (${Q(e.c)}) {`);
          const a: string[] = [], b: string[] = [];
          const gg = share(2);
          prop(e.a, gg, a); flush(a); prop(e.b, gg, b); flush(b);
          out.push(...indent(a), '} else {', ...indent(b), '}');
          return;
        }
        default: return; // stopGradient, comparisons, lengths...: nothing flows back
      }
    };

    // Recomputations due right after the restore of the statement being reversed (see `recomputable`).
    let pendingRecompute: string[] | null = null;
    /** Set when a statement's reverse gives a program variable back an older value (a pop or a recomputation). */
    let restored = false;
    const restore = (v: string, out: string[]) => {
      restoreOnly(v, out);
      if (pendingRecompute) { out.push(...pendingRecompute); pendingRecompute = null; restored = true; }
    };
    const restoreOnly = (v: string, out: string[]) => {
      if (!needsSave(v)) return;
      restored = true;
      if (isArr(v)) {
        if (hasShadow(v)) out.push(`${bar(v)} = $t.popRef();`);
        out.push(`${v} = $t.popRef();`);
      } else out.push(typeOf(v) === 'bool' ? `${v} = $t.pop() !== 0;` : integral.has(v) ? `${v} = $t.popInt();` : `${v} = $t.pop();`);
    };

    const callRev = (e: CallExpr, seed: string, out: string[]) => {
      const c = e.callee;
      const shadows = e.args.flatMap((a, i) => (c.params[i] === 'arr' ? [shadowOf(a, pr)] : []));
      const numArgs = e.args.map((a, i) => ({ a, i })).filter(({ i }) => c.params[i] === 'num');
      const args = e.args.map((a) => Q(a));
      if (c.rule) {
        const d = fresh('d');
        out.push(`const ${d} = ${c.rule.local ? c.rule.ref : `$pb.ruleOf(${c.ref})`}(${[...args, seed].join(', ')});`);
        e.args.forEach((a, i) => {
          const gi: Expr = { k: 'ext', text: c.params.length === 1 ? d : `${d}[${i}]` };
          if (c.params[i] === 'arr') { if (argIsActive(a)) out.push(`$pb.addTo(${shadowOf(a, pr)}, ${gi.text});`); }
          else prop(a, gi, out);
        });
        return;
      }
      const all = ['$t', ...args, ...shadows, seed].join(', ');
      const f = c.local ? `${c.prefix}$rev` : `${calleeAdjoint(c)}.rev`;
      const callText = c.viaThis ? `${f}.call(this, ${all})` : `${f}(${all})`;
      if (numArgs.length === 1) {
        const d = fresh('d');
        out.push(`const ${d} = ${callText};`);
        prop(numArgs[0]!.a, { k: 'var', name: d }, out);
      } else {
        out.push(`${callText};`);
        if (numArgs.length > 1) {
          const ds = numArgs.map(() => fresh('d'));
          out.push(`const ${numArgs.map((_, j) => `${ds[j]} = $t.d[${j}]`).join(', ')};`);
          numArgs.forEach(({ a }, j) => prop(a, { k: 'var', name: ds[j]! }, out));
        }
      }
    };

    const revAssign = (v: string, E: Expr, src: Stmt['src']): string[] => {
      const out: string[] = [];
      if (isArr(v)) {
        // The adjoint of the new array is taken before the old array (and its shadow) are restored, so that
        // `w = f(w)` pulls back into the w that was passed in.
        const fresh_ = act.active(v) && (E.k === 'alloc' || E.k === 'copy' || E.k === 'call');
        const newBar = fresh_ ? fresh('d') : '';
        if (fresh_) out.push(`const ${newBar} = ${bar(v)};`);
        restore(v, out);
        if (E.k === 'call' && callIsActive(v, E)) callRev(E, newBar, out);
        if (E.k === 'copy' && act.active(v) && argIsActive(E.src)) out.push(`$pb.addTo(${shadowOf(E.src, pr)}, ${newBar});`);
        if (fresh_) out.push(`${newBar}.fill(0);`);
        // Prepend in place: contributions pending on `out` are flushed with it.
        if (out.length && act.active(v)) out.unshift(`// ∂ of: ${src.text}`);
        return out;
      }
      if (!act.active(v)) { restore(v, out); return out; }
      const head = `// ∂ of: ${src.text}`;
      if (E.k === 'call') {
        if (!callIsActive(v, E)) { out.push(`${bar(v)} = 0;`); restore(v, out); return out; }
        const d = fresh('d');
        out.push(head, `const ${d} = ${bar(v)};`, `${bar(v)} = 0;`);
        restore(v, out);
        callRev(E, d, out);
        return out;
      }
      if (!act.activeExpr(E)) { if (!singleDef(v)) out.push(`${bar(v)} = 0;`); restore(v, out); return out; }
      // Accumulation `v = v + e` / `v = e + v` / `v = v - e`: v's adjoint passes through unchanged.
      if (E.k === 'bin' && (E.op === '+' || E.op === '-')) {
        const self = (x: Expr) => x.k === 'var' && x.name === v;
        const other = self(E.a) ? E.b : E.op === '+' && self(E.b) ? E.a : undefined;
        if (other && !varsOf(other).has(v)) {
          out.push(head);
          restore(v, out);
          const g: Expr = { k: 'var', name: bar(v) };
          prop(other, self(E.a) && E.op === '-' ? neg(g) : g, out);
          return out;
        }
      }
      if (singleDef(v)) {
        // Defined once: nothing reads v's adjoint after this point, so it is consumed where it stands.
        out.push(head);
        prop(E, { k: 'var', name: bar(v) }, out);
        return out;
      }
      const d = fresh('d');
      out.push(head, `const ${d} = ${bar(v)};`, `${bar(v)} = 0;`);
      restore(v, out);
      prop(E, { k: 'var', name: d }, out);
      return out;
    };

    const revStmt = (s: NStmt): string[] => {
      const lines = revStmtUnflushed(s);
      flush(lines);
      return lines;
    };
    const revStmtUnflushed = (s: NStmt): string[] => {
      switch (s.k) {
        case 'decl': return s.init ? revAssign(s.name, s.init, s.src) : [];
        case 'assign':
          if (invertible.has(s)) {
            const v = s.value as Extract<Expr, { k: 'bin' }>;
            reads.add(s.name);
            return [`${s.name} ${v.op === '+' ? '-=' : '+='} ${P(v.b)};`];
          }
          return revAssign(s.name, s.value, s.src);
        case 'store': {
          const out: string[] = [];
          const a = s.arr;
          const activeStore = act.active(a);
          let d = '';
          if (activeStore) {
            d = fresh('d');
            out.push(`// ∂ of: ${s.src.text}`, `const ${d} = ${bar(a)}[${Q(s.idx)}];`, `${bar(a)}[${Q(s.idx)}] = 0;`);
          }
          // The restore reads `a` itself: it must be in N, so that the reverse sweep has the array (an array
          // literal's temporary is otherwise only reached through its alias).
          if (recordsElement(s, a)) { reads.add(a); out.push(`${a}[${Q(s.idx)}] = $t.pop();`); }
          if (activeStore) prop(s.value, { k: 'var', name: d }, out);
          return out;
        }
        case 'if': {
          const t = revBlock(s.then), f = revBlock(s.else);
          if (!t.length && !f.length) return [];
          revInfo.set(s, { flag: true });
          if (!t.length) return [`if (!$t.pop()) {`, ...indent(f), '}'];
          return [`if ($t.pop()) {`, ...indent(t), ...(f.length ? ['} else {', ...indent(f)] : []), '}'];
        }
        case 'loop': {
          const body = revBlock(s.body);
          const upd = revList(s.update);
          const init = revList(s.init);
          if (!body.length && !upd.length) return init;
          revInfo.set(s, { count: true });
          const k = fresh('k');
          const out = [`// ∂ of: ${s.src.text}`];
          if (s.exit && !upd.length) {
            out.push('$t.pop(); // how the loop ended: nothing to undo either way');
            out.push(`for (let ${k} = $t.popInt(); ${k} > 0; ${k}--) {`);
          } else if (s.exit) {
            const ex = fresh('exit');
            out.push(`let ${ex} = $t.pop() !== 0;`);
            out.push(`for (let ${k} = $t.popInt(); ${k} > 0; ${k}--) {`);
            if (upd.length) out.push(...indent([`if (!${ex}) {`, ...indent(upd), '}', `${ex} = false;`]));
          } else {
            const carry = carryAdjacent(s, body);
            if (carry) {
              const trips = fresh('n');
              out.push(...carry.before, `const ${trips} = $t.popInt();`, `for (let ${k} = ${trips}; ${k} > 0; ${k}--) {`, ...indent(upd), ...indent(carry.body), '}');
              out.push(...(carry.after.length === 1 ? [`if (${trips} > 0) ${carry.after[0]}`] : [`if (${trips} > 0) {`, ...indent(carry.after), '}']), ...init);
              return out;
            }
            out.push(`for (let ${k} = $t.popInt(); ${k} > 0; ${k}--) {`);
            out.push(...indent(upd));
          }
          out.push(...indent(body), '}', ...init);
          return out;
        }
        case 'opaque': case 'break': case 'continue': case 'return': return [];
        default: return assertNever(s);
      }
    };
    /**
     * Scalar replacement of an adjoint element that consecutive iterations both update. In the reverse of
     * `for (i = a; ...; i++)`, iteration i adds to x_bar[i + 1] and x_bar[i] (Rosenbrock, a 1-D stencil), and
     * iteration i - 1 adds to x_bar[i] again: a read-modify-write that waits for the store before it. The
     * addition to x_bar[i] is kept in a local instead and added with the next iteration's (or after the last
     * iteration), in the same order as before, so the sums are bit for bit the same (the local starts at -0,
     * which adds nothing to any value). Only where the two lines are the body's only mentions of x_bar and
     * no alias of x may share its adjoint array.
     */
    const carryAdjacent = (loop: Extract<NStmt, { k: 'loop' }>, body: string[]): { before: string[]; body: string[]; after: string[] } | undefined => {
      const u = loop.update.length === 1 ? loop.update[0]! : undefined;
      if (!u || u.k !== 'assign' || !invertible.has(u) || u.value.k !== 'bin' || u.value.op !== '+' || u.value.b.k !== 'lit' || u.value.b.v !== 1) return undefined;
      const i = u.name;
      const esc = (t: string) => t.replace(/[$]/g, '\\$');
      const update = new RegExp(`^(\\S+)\\[${esc(i)}(?: ([+-]) (\\d+))?\\] ([+-])= (.+);$`);
      const byArray = new Map<string, { line: number; offset: number; op: string; e: string }[]>();
      body.forEach((l, line) => {
        const m = update.exec(l);
        if (!m) return;
        const offset = m[2] ? (m[2] === '+' ? 1 : -1) * Number(m[3]) : 0;
        byArray.set(m[1]!, [...(byArray.get(m[1]!) ?? []), { line, offset, op: m[4]!, e: m[5]! }]);
      });
      const primalOf = new Map([...bars].map(([v, b]) => [b, v]));
      const atom = (e: string) => /^[\w$.]+$/.test(e);
      const out = body.slice(), before: string[] = [], after: string[] = [], first: string[] = [];
      for (const [xb, ups] of byArray) {
        const x = primalOf.get(xb);
        if (!x || ups.length !== 2 || Math.abs(ups[0]!.offset - ups[1]!.offset) !== 1) continue;
        const word = new RegExp(`(^|[^\\w$])${esc(xb)}(?![\\w$])`);
        if (body.filter((l) => word.test(l)).length !== 2) continue;
        const mates = [...bars].filter(([v, b]) => v !== x && find(v) === find(x) && body.some((l) => l.includes(b)));
        if (mates.length) continue;
        const [lo, hi] = ups[0]!.offset < ups[1]!.offset ? [ups[0]!, ups[1]!] : [ups[1]!, ups[0]!];
        const c = fresh('carry');
        const at = (o: number) => (o === 0 ? `${xb}[${i}]` : `${xb}[${i} ${o > 0 ? '+' : '-'} ${Math.abs(o)}]`);
        // The carry read by the hi line is the previous iteration's: taken first when the lo line comes first.
        const prev = lo.line < hi.line ? fresh('carried') : c;
        out[hi.line] = `${at(hi.offset)} = ${at(hi.offset)} + ${prev} ${hi.op} ${atom(hi.e) ? hi.e : `(${hi.e})`};`;
        out[lo.line] = `${c} = ${lo.op === '+' ? lo.e : atom(lo.e) ? `-${lo.e}` : `-(${lo.e})`};`;
        if (prev !== c) first.push(`const ${prev} = ${c};`);
        before.push(`// ${at(lo.offset)}'s additions are carried in ${c} to the next iteration, where it is ${at(hi.offset)}`, `let ${c} = -0;`);
        after.push(`${at(lo.offset)} += ${c};`);
      }
      return after.length ? { before, body: [...first, ...out], after } : undefined;
    };
    const revList = (ss: NStmt[]): string[] => ss.slice().reverse().flatMap(revStmt);
    const revBlock = (ss: NStmt[]): string[] => {
      const top = depth++ === 0;
      try {
        return revBlockIn(ss, top);
      } finally {
        depth--;
      }
    };
    const revBlockIn = (ss: NStmt[], top: boolean): string[] => {
      const pre: string[] = [];
      const due = new Map<number, string[]>();
      for (const s of ss) {
        if (s.k !== 'decl' || !s.init || !R.has(s.name)) continue;
        const at = R.get(s.name)!;
        const line = `${s.name} = ${Q(s.init)};`;
        if (at === Infinity) pre.push(line);
        else due.set(at, [...(due.get(at) ?? []), line]);
      }
      // Contributions to an element of an adjoint array are held back across the statements that follow in the
      // reverse when these change no program variable and read no adjoint array: `x_bar[i] -= d1` and
      // `x_bar[i] += 2 * d3 * x[i]` from two statements become one read-modify-write.
      const chunks: string[][] = [];
      let held: string[] | null = null;
      let real = false;
      for (let k = ss.length - 1; k >= 0; k--) {
        if (top) curTop = k;
        pendingRecompute = due.get(k) ?? null;
        restored = false;
        const s = ss[k]!;
        const lines = revStmtUnflushed(s);
        const quiet = !restored && !pendingRecompute && (s.k === 'decl' || s.k === 'assign') && !isArr(s.name) && !invertible.has(s) &&
          !hasCall(s.k === 'decl' ? s.init : s.value);
        if (held) {
          if (quiet) moveElementContributions(held, lines);
          flush(held);
        }
        held = lines;
        if (pendingRecompute) { flush(lines); lines.push(...pendingRecompute); pendingRecompute = null; held = null; }
        if (lines.length) real = true;
        chunks.push(lines);
      }
      if (held) flush(held);
      return real ? [...pre, ...chunks.flat()] : [];
    };

    // ---------- forward ----------
    const fwdAssign = (v: string, E: Expr): string[] => {
      const out: string[] = [];
      if (E.k === 'call' && callIsActive(v, E) && needsSave(v)) {
        // The callee records on the tape too: the old value is pushed after its records, so that the reverse
        // sweep pops it first and then finds the callee's records on top, as its reverse expects.
        const old = fresh('saved');
        fwdHoist.set(old, isArr(v) ? `${old}!: any` : typeOf(v) === 'bool' ? `${old} = false` : `${old} = 0`);
        const oldBar = isArr(v) && hasShadow(v) ? fresh('saved') : '';
        if (oldBar) fwdHoist.set(oldBar, `${oldBar}!: any`);
        out.push(`${old} = ${v};`, ...(oldBar ? [`${oldBar} = ${bar(v)};`] : []));
        currentCallActive = true;
        out.push(`${v} = ${P(E)};`);
        currentCallActive = false;
        if (oldBar) out.push(`${bar(v)} = new Float64Array(${v}.length);`);
        if (isArr(v)) out.push(`$t.pushRef(${old});`, ...(oldBar ? [`$t.pushRef(${oldBar});`] : []));
        else out.push(typeOf(v) === 'bool' ? `$t.push(+${old});` : `$t.push(${old});`);
        return out;
      }
      if (needsSave(v)) {
        if (isArr(v)) { out.push(`$t.pushRef(${v});`); if (hasShadow(v)) out.push(`$t.pushRef(${bar(v)});`); }
        else out.push(typeOf(v) === 'bool' ? `$t.push(+${v});` : `$t.push(${v});`);
      }
      currentCallActive = E.k === 'call' && callIsActive(v, E);
      out.push(`${v} = ${P(E)};`);
      currentCallActive = false;
      if (isArr(v) && hasShadow(v)) {
        if (E.k === 'var') out.push(`${bar(v)} = ${hasShadow(E.name) ? bar(E.name) : `new Float64Array(${v}.length)`};`);
        else if (E.k === 'view') out.push(`${bar(v)} = ${shadowOf(E, pf)};`);
        else out.push(`${bar(v)} = new Float64Array(${v}.length);`);
      }
      return out;
    };
    const fwdStmt = (s: NStmt): string[] => {
      if (dead.has(s)) return [];
      switch (s.k) {
        case 'decl': return s.init ? fwdAssign(s.name, s.init) : [];
        case 'assign': return invertible.has(s) ? [`${s.name} = ${P(s.value)};`] : fwdAssign(s.name, s.value);
        case 'store': {
          const out: string[] = [];
          // The element's old value is read by the reverse sweep: keep it.
          if (recordsElement(s, s.arr)) out.push(`$t.push(${s.arr}[${P(s.idx)}]);`);
          out.push(`${s.arr}[${P(s.idx)}] = ${P(s.value)};`);
          return out;
        }
        case 'if': {
          const flag = revInfo.get(s)?.flag;
          const t = fwdList(s.then), f = fwdList(s.else);
          if (flag) { t.push('$t.push(1);'); f.push('$t.push(0);'); }
          return [`if (${P(s.cond)}) {`, ...indent(t), ...(f.length ? ['} else {', ...indent(f)] : []), '}'];
        }
        case 'loop': {
          const counted = revInfo.get(s)?.count;
          const out = fwdList(s.init);
          const body = fwdList(s.body);
          const trips = counted && !body.length ? closedFormTrips(s) : undefined;
          if (trips) {
            // Nothing to record inside the loop but its trip count: compute it instead of running the loop.
            const cnt = fresh('n');
            fwdHoist.set(cnt, `${cnt} = 0`);
            out.push(`// the trip count of: ${s.src.text}`, `${cnt} = ${trips.count};`, `if (!(${cnt} > 0)) ${cnt} = 0;`, `${trips.counter} += ${cnt}${trips.step === 1 ? '' : ` * ${trips.step}`};`, `$t.push(${cnt});`);
            return out;
          }
          // A counting loop with a known trip count and a fixed number of records per iteration reserves its room
          // on the tape once, and its records skip the per-value capacity check (`put` rather than `push`).
          const perStep = body.filter((l) => l.includes('$t.push(')).length;
          const room = perStep && !body.some((l) => /^\s*(while|do|for)\b|\$fwd\b|\.fwd\b/.test(l)) ? closedFormTrips(s) : undefined;
          if (room) {
            out.push(`$t.reserve(${perStep === 1 ? room.count : `${perStep} * (${room.count})`});`);
            for (let k = 0; k < body.length; k++) body[k] = body[k]!.replace('$t.push(', '$t.put(');
          }
          let cnt = '';
          if (counted) {
            cnt = fresh('n');
            fwdHoist.set(cnt, `${cnt} = 0`);
            out.push(`${cnt} = 0;`);
            body.unshift(`${cnt}++;`);
          }
          if (s.exit) body.push(`if (${P(s.exit)}) break;`);
          body.push(...fwdList(s.update));
          const cond = s.cond ? P(s.cond) : 'true';
          if (s.post) out.push('do {', ...indent(body), `} while (${cond});`);
          else out.push(`while (${cond}) {`, ...indent(body), '}');
          if (counted) {
            out.push(`$t.push(${cnt});`);
            if (s.exit) out.push(`$t.push(+(${P(s.exit)}));`);
          }
          return out;
        }
        case 'opaque': return [s.text];
        case 'break': case 'continue': case 'return': throw new Error('pullback internal error: jump after normalize');
        default: return assertNever(s);
      }
    };
    const fwdList = (ss: NStmt[]): string[] => ss.flatMap(fwdStmt);
    /**
     * The trip count of `for (...; i < E; i += c)` as an expression of i's value before the first test, when
     * i is an integer counter that only its update changes, E does not change in the loop, and nothing else
     * ends it. (Used where the forward sweep would run the loop only to count.)
     */
    const closedFormTrips = (s: Extract<NStmt, { k: 'loop' }>): { count: string; counter: string; step: number } | undefined => {
      const u = s.update[0];
      if (s.exit || s.post || !s.cond || s.cond.k !== 'cmp' || s.update.length !== 1 || !u || !invertible.has(u) || u.k !== 'assign') return undefined;
      const { op, a, b } = s.cond;
      if (a.k !== 'var' || a.name !== u.name) return undefined;
      const v = u.value as Extract<Expr, { k: 'bin' }>;
      const step = (v.op === '+' ? 1 : -1) * ((v.b as { v: number }).v);
      // E must keep its value through the loop: no variable of it is assigned there, and it reads no array
      // element (a store could change it) and no outer value while the loop calls outer code.
      const changed = new Set<string>();
      let callsOut = false;
      walkStmts([...s.body, ...s.update], (x) => {
        if (x.k === 'assign' || x.k === 'decl') changed.add(x.name);
        if (x.k === 'opaque' || stmtExprs(x).some(hasCall)) callsOut = true;
      });
      let pure = true;
      walkExpr(b, (y) => { if (y.k === 'index' || y.k === 'call' || y.k === 'extcall' || (y.k === 'ext' && callsOut)) pure = false; });
      if (!pure || [...varsOf(b)].some((x) => changed.has(x))) return undefined;
      const i = u.name, E = printExpr(b, pf, 11), tight = printExpr(b, pf, 12); // E - i, i - E
      if (step > 0 && (op === '<' || op === '<=')) {
        const span = step === 1 ? `${E} - ${i}` : `(${E} - ${i}) / ${step}`;
        const count = op === '<' ? (step === 1 && isIntegral(b) ? span : `Math.ceil(${span})`) : step === 1 && isIntegral(b) ? `${span} + 1` : `Math.floor(${span}) + 1`;
        return { count, counter: i, step };
      }
      if (step < 0 && (op === '>' || op === '>=')) {
        const span = step === -1 ? `${i} - ${tight}` : `(${i} - ${tight}) / ${-step}`;
        const count = op === '>' ? (step === -1 && isIntegral(b) ? span : `Math.ceil(${span})`) : step === -1 && isIntegral(b) ? `${span} + 1` : `Math.floor(${span}) + 1`;
        return { count, counter: i, step };
      }
      return undefined;
    };

    // Reverse first: it decides which branches and loops the forward sweep must record.
    const revBody = revBlock(n.body);
    const fwdBody = fwdList(n.body);

    // Values alive at the end of the forward sweep that the reverse sweep starts from.
    const snapshot = [...fn.locals.keys(), ...fn.params.map((p) => p.name)].filter((v) =>
      (params.has(v) ? (sites.get(v)?.count ?? 0) > 0 : true) &&
      (isArr(v) ? N.has(v) || act.active(v) : N.has(v) && !R.has(v)));
    const pushSnap = snapshot.flatMap((v) => isArr(v)
      ? [`$t.pushRef(${v});`, ...(hasShadow(v) ? [`$t.pushRef(${bar(v)});`] : [])]
      : [typeOf(v) === 'bool' ? `$t.push(+${v});` : `$t.push(${v});`]);
    const popSnap = snapshot.slice().reverse().flatMap((v) => isArr(v)
      ? [...(hasShadow(v) ? [`${bar(v)} = $t.popRef();`] : []), `${v} = $t.popRef();`]
      : [typeOf(v) === 'bool' ? `${v} = $t.pop() !== 0;` : integral.has(v) ? `${v} = $t.popInt();` : `${v} = $t.pop();`]);

    const sig = fn.params.map((p) => `${p.name}: ${p.typeText}`);
    const shadowSig = fn.params.filter((p) => p.type === 'arr').map((p) => `${bar(p.name)}: Float64Array`);
    const thisSig = fn.usesThis ? ['this: any'] : [];
    // Number and boolean locals start at a value of their type (never undefined), so that V8 keeps them
    // unboxed; arrays start undefined and are always assigned before use.
    const decl = (v: string) => typeOf(v) === 'arr' ? `${v}!: ${localTypes.get(v) ?? (v === n.result ? fn.returnTypeText : 'any')}` : typeOf(v) === 'bool' ? `${v} = false` : `${v} = 0`;
    const localsList = [...fn.locals.keys()].filter((v) => !params.has(v));
    const shadowLocals = localsList.filter((v) => isArr(v) && hasShadow(v)).map((v) => `${bar(v)}!: Float64Array`);
    const lets = (xs: string[]) => (xs.length ? [`let ${xs.join(', ')};`] : []);
    const where = `${fn.file.split('/').pop()}:${fn.line}`;

    const valueKept = !dead.size || N.has(n.result) || !walkAssigns(n.body).some((s) => dead.has(s) && s.name === n.result);
    const fwd = [
      opts.gradient
        ? `/** Forward sweep of ${fn.name} (${where}) for grad with respect to its arrays: records what ${fn.prefix}$grev needs on $t${valueKept ? '' : ', and skips the work that only the value needs (grad does not return it)'}. */`
        : `/** Forward sweep of ${fn.name} (${where}): runs the primal and records what the reverse sweep needs on $t. */`,
      `function ${fn.prefix}${FWD}(${[...thisSig, '$t: $pb.Tape', ...sig, ...shadowSig].join(', ')}): ${fn.returnTypeText} {`,
      ...indent([...lets([...localsList.map(decl), ...shadowLocals]), ...lets([...fwdHoist.values()]), ...fwdBody, ...pushSnap, `return ${valueKept ? n.result : 'NaN'};`]),
      '}',
    ].join('\n');

    // The gradient sweeps hold number parameters constant: they have no adjoints to return.
    const numParams = opts.gradient ? [] : fn.params.filter((p) => p.type === 'num');
    const activeNums = localsList.filter((v) => !isArr(v) && act.active(v));
    const seed = fn.returns === 'num' ? '$seed: number' : '$seed: ArrayLike<number>';
    const revRet = numParams.length === 1 ? 'number' : 'void';
    const ret = numParams.length === 1 ? [`return ${bar(numParams[0]!.name)};`]
      : numParams.length > 1 ? numParams.map((p, i) => `$t.d[${i}] = ${bar(p.name)};`) : [];
    const seedLines = fn.returns === 'num'
      ? (act.active(n.result) ? [`${bar(n.result)} = $seed;`] : [])
      : (act.active(n.result) ? [`$pb.addTo(${bar(n.result)}, $seed);`] : []);
    const rev = [
      opts.gradient
        ? `/** Reverse sweep of ${fn.name} (${where}) for grad with respect to its arrays: pops $t and propagates $seed back to the arrays only. */`
        : `/** Reverse sweep of ${fn.name} (${where}): pops $t and propagates the adjoint $seed of the result back to the inputs. */`,
      `function ${fn.prefix}${REV}(${[...thisSig, '$t: $pb.Tape', ...sig, ...shadowSig, seed].join(', ')}): ${revRet} {`,
      ...indent([
        ...lets([...localsList.map(decl), ...shadowLocals]),
        ...lets([...numParams.map((p) => `${bar(p.name)} = 0`), ...activeNums.map((v) => `${bar(v)} = 0`)]),
        ...popSnap, ...seedLines, ...revBody, ...ret,
      ]),
      '}',
    ].join('\n');
    return { fwd, rev, reads, lastRead: firstRead };
  }
}

/**
 * Block-local constants that the reverse sweep recomputes instead of storing: declared once at the top level
 * of a block, with a pure expression. The value maps each to the index of the statement of its block after
 * whose restore its inputs again hold their values at the definition (Infinity: nothing in the block changes
 * them, recompute at the start of the block's reverse). The reverse of every later statement must not read it.
 */
function recomputable(n: Normalized, N: Set<string>, sites: Map<string, { count: number; inLoop: boolean }>): Map<string, number> {
  const R = new Map<string, number>();
  const assignsDeep = (s: Stmt, v: string): boolean => {
    let hit = false;
    walkStmts([s], (x) => {
      if ((x.k === 'assign' || x.k === 'decl') && x.name === v) hit = true;
      if (x.k === 'store' && x.arr === v) hit = true;
    });
    return hit;
  };
  const readsDeep = (s: Stmt, v: string): boolean => {
    let hit = false;
    walkStmts([s], (x) => { for (const e of stmtExprs(x)) if (varsOf(e).has(v)) hit = true; if (x.k === 'loop' && (x as NStmt).exit && varsOf((x as NStmt).exit!).has(v)) hit = true; });
    return hit;
  };
  const pure = (e: Expr): boolean => {
    let ok = true;
    walkExpr(e, (x) => {
      if (x.k === 'call' || x.k === 'alloc' || x.k === 'copy' || x.k === 'view' || x.k === 'arrlit') ok = false;
      if (x.k === 'extcall' && !x.fn.startsWith('(')) ok = false;
    });
    return ok;
  };
  const block = (ss: NStmt[]) => {
    const local = new Map<string, number>();
    ss.forEach((s, i) => {
      if (s.k === 'if') { block(s.then); block(s.else); }
      if (s.k === 'loop') block(s.body);
      if (s.k !== 'decl' || !s.init || s.type === 'arr' || !N.has(s.name) || sites.get(s.name)?.count !== 1 || !pure(s.init)) return;
      let at = Infinity;
      for (const w of varsOf(s.init)) {
        if (local.has(w)) { at = Math.min(at, local.get(w)!); continue; }
        for (let j = i + 1; j < ss.length; j++) {
          if (!assignsDeep(ss[j]!, w)) continue;
          const x = ss[j]!;
          if (x.k !== 'assign' || x.name !== w) return; // changed inside a branch or loop, or element-wise: store it
          at = Math.min(at, j);
          break;
        }
      }
      if (at !== Infinity) for (let j = at + 1; j < ss.length; j++) if (readsDeep(ss[j]!, s.name)) return;
      local.set(s.name, at);
      R.set(s.name, at);
    });
  };
  block(n.body);
  return R;
}

/** True when `e` calls a function (whose forward sweep records, or which may have effects). */
function hasCall(e: Expr | null): boolean {
  let c = false;
  if (e) walkExpr(e, (x) => { if (x.k === 'call' || x.k === 'extcall') c = true; });
  return c;
}

/** Assignments (and initialised declarations) anywhere in `ss`. */
function walkAssigns(ss: Stmt[]): Extract<Stmt, { k: 'assign' | 'decl' }>[] {
  const out: Extract<Stmt, { k: 'assign' | 'decl' }>[] = [];
  walkStmts(ss, (s) => { if (s.k === 'assign' || (s.k === 'decl' && s.init)) out.push(s); });
  return out;
}

/**
 * Statements of the forward sweep whose values nothing reads when only the gradient is wanted: assignments of
 * numbers that neither the reverse sweep (`N`, less what it recomputes itself: `R`), nor a branch or loop
 * test, nor an array store, nor a call, nor another such assignment reads. Calls stay (they record on the tape).
 */
function deadForGradient(n: Normalized, N: Set<string>, R: Map<string, number>, typeOf: (v: string) => ValueType): Set<Stmt> {
  const live = new Set<string>([...N].filter((v) => typeOf(v) === 'arr' || !R.has(v)));
  const use = (e: Expr | null | undefined) => { if (e) for (const v of varsOf(e)) live.add(v); };
  const assigns = walkAssigns(n.body);
  walkStmts(n.body, (s) => {
    const x = s as NStmt;
    if (x.k === 'loop') use(x.exit);
    if (x.k === 'assign' || x.k === 'decl') {
      const e = x.k === 'assign' ? x.value : x.init;
      if (typeOf(x.name) === 'arr' || (e && hasCall(e))) { live.add(x.name); use(e); }
    } else for (const e of stmtExprs(x)) use(e);
  });
  for (let grew = true; grew;) {
    grew = false;
    for (const s of assigns) {
      if (!live.has(s.name)) continue;
      for (const v of varsOf(s.k === 'assign' ? s.value : s.init!)) if (!live.has(v)) { live.add(v); grew = true; }
    }
  }
  return new Set(assigns.filter((s) => !live.has(s.name)));
}

/**
 * A contribution as ±c · f1 · f2 · …: its `*` chain flattened, negations taken out and its number literals
 * multiplied into c, so that terms which differ only in the order and grouping of their factors are found alike.
 */
function productTerm(g: Expr): { negative: boolean; c: number; factors: Expr[] } {
  const t = { negative: false, c: 1, factors: [] as Expr[] };
  const walk = (e: Expr): void => {
    if (e.k === 'neg') { t.negative = !t.negative; walk(e.a); }
    else if (e.k === 'bin' && e.op === '*') { walk(e.a); walk(e.b); }
    else if (e.k === 'lit' && typeof e.v === 'number') t.c *= e.v;
    else t.factors.push(e);
  };
  walk(g);
  return t;
}
