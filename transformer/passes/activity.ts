// SPDX-License-Identifier: MIT
// Pass 4, activity: a value is active when it depends on a differentiated input (varied) and influences the
// result (useful). Only active values get adjoint code. The analysis is flow-insensitive (a variable is
// active if any of its assignments is), which is conservative and enough for straight-line and loop code.
import { walkStmts, type Expr, type Stmt } from '../ir.js';
import type { Normalized } from './normalize.js';

/** Math functions whose derivative is zero almost everywhere: their result is never active. */
export const PIECEWISE_CONSTANT = new Set(['sign', 'floor', 'ceil', 'round', 'trunc']);

/** Calls `f` on every variable in a position through which a derivative flows. */
export function diffVars(e: Expr, f: (name: string) => void): void {
  switch (e.k) {
    case 'var': f(e.name); return;
    case 'bin': diffVars(e.a, f); diffVars(e.b, f); return;
    case 'neg': diffVars(e.a, f); return;
    case 'math': if (!PIECEWISE_CONSTANT.has(e.fn)) for (const a of e.args) diffVars(a, f); return;
    case 'index': diffVars(e.arr, f); return;
    case 'call': for (const a of e.args) diffVars(a, f); return;
    case 'view': diffVars(e.arr, f); return;
    case 'copy': diffVars(e.src, f); return;
    case 'cond': diffVars(e.a, f); diffVars(e.b, f); return;
    case 'arrlit': for (const a of e.items) diffVars(a, f); return;
    // No derivative flows through: literals, outer values, comparisons, logic, lengths, allocations,
    // stopGradient and calls of functions that are not differentiable (checked separately).
    case 'lit': case 'ext': case 'not': case 'cmp': case 'logic': case 'len': case 'alloc': case 'stop': case 'extcall':
      return;
  }
}

export interface Activity {
  varied: Set<string>;
  useful: Set<string>;
  active(name: string): boolean;
  /** True when a derivative can flow out of `e` (it reads an active variable in a differentiable position). */
  activeExpr(e: Expr): boolean;
}

/**
 * `independents`: the parameters differentiated (default: all). The gradient sweeps of a function
 * differentiate its arrays only, so that number parameters held constant (a step size, a trip count) cost
 * no adjoint code.
 */
export function analyzeActivity(n: Normalized, independents?: (p: { name: string; type: string }) => boolean): Activity {
  const varied = new Set<string>(n.fn.params.filter((p) => !independents || independents(p)).map((p) => p.name));
  const useful = new Set<string>([n.result]);
  const defs: { target: string; value: Expr }[] = [];
  walkStmts(n.body, (s: Stmt) => {
    if (s.k === 'assign') defs.push({ target: s.name, value: s.value });
    else if (s.k === 'decl' && s.init) defs.push({ target: s.name, value: s.init });
    else if (s.k === 'store') defs.push({ target: s.arr, value: s.value });
  });
  // An array view aliases the array it views: whatever is true of one is true of the other.
  const aliases: [string, string][] = [];
  for (const d of defs) if (d.value.k === 'view' && d.value.arr.k === 'var') aliases.push([d.target, d.value.arr.name]);

  let changed = true;
  while (changed) {
    changed = false;
    const add = (set: Set<string>, x: string) => { if (!set.has(x)) { set.add(x); changed = true; } };
    for (const d of defs) {
      let v = false;
      diffVars(d.value, (x) => { if (varied.has(x)) v = true; });
      if (v) add(varied, d.target);
      if (useful.has(d.target)) diffVars(d.value, (x) => add(useful, x));
    }
    for (const [a, b] of aliases) {
      if (varied.has(a) || varied.has(b)) { add(varied, a); add(varied, b); }
      if (useful.has(a) || useful.has(b)) { add(useful, a); add(useful, b); }
    }
  }
  const active = (x: string) => varied.has(x) && useful.has(x);
  const activeExpr = (e: Expr) => { let a = false; diffVars(e, (x) => { if (active(x)) a = true; }); return a; };
  return { varied, useful, active, activeExpr };
}
