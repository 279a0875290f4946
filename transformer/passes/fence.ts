// SPDX-License-Identifier: MIT
// Pass 4b, fence: the checks that need activity. A call of a function the transformer cannot differentiate
// is fine while none of its arguments carries a derivative; otherwise the gradient would silently be wrong,
// so it is a compile-time error. Parameters that provably get a zero gradient are reported as warnings.
import { Node } from 'ts-morph';
import { walkExpr, walkStmts, type Expr } from '../ir.js';
import type { Diagnostics } from '../diagnostics.js';
import type { Activity } from './activity.js';
import { diffVars, PIECEWISE_CONSTANT } from './activity.js';
import type { Normalized } from './normalize.js';
import type { FnNode } from './select.js';

/** Visits the subexpressions through which a derivative flows (not conditions, indices, lengths). */
function walkDiff(e: Expr, f: (e: Expr) => void): void {
  f(e);
  switch (e.k) {
    case 'bin': walkDiff(e.a, f); walkDiff(e.b, f); return;
    case 'neg': walkDiff(e.a, f); return;
    case 'math': if (!PIECEWISE_CONSTANT.has(e.fn)) for (const a of e.args) walkDiff(a, f); return;
    case 'call': for (const a of e.args) walkDiff(a, f); return;
    case 'cond': walkDiff(e.a, f); walkDiff(e.b, f); return;
    case 'arrlit': for (const a of e.items) walkDiff(a, f); return;
    default: return;
  }
}

export function fence(n: Normalized, act: Activity, fnNode: FnNode, diags: Diagnostics): void {
  const check = (e: Expr) => walkDiff(e, (x) => {
    if (x.k !== 'extcall') return;
    let varied = false;
    for (const a of x.args) diffVars(a, (v) => { if (act.varied.has(v)) varied = true; });
    if (!varied || !Node.isNode(x.node as Node)) return;
    const node = x.node as Node;
    if (x.fn.startsWith('(')) {
      diags.unsupported(node, `the operator '${x.fn.slice(1, -1)}' on a differentiated value`, 'it has no derivative', 'wrap the operand in stopGradient(...) if a zero derivative is intended, or use Math.trunc / Math.floor');
    } else {
      diags.unsupported(node, `the call of ${x.fn}`, 'it is not marked differentiable and an argument depends on a differentiated input', `mark ${x.fn} with /** @differentiable */, give it a /** @derivative ${x.fn} */ rule, or wrap the argument in stopGradient(...)`);
    }
  });
  walkStmts(n.body, (s) => {
    if (s.k === 'assign' && act.useful.has(s.name)) check(s.value);
    if (s.k === 'decl' && s.init && act.useful.has(s.name)) check(s.init);
    if (s.k === 'store' && act.useful.has(s.arr)) check(s.value);
  });

  // Zero-gradient warnings: a parameter read in arithmetic whose value never reaches the result.
  const readInArith = new Set<string>();
  const read = new Set<string>();
  walkStmts(n.body, (s) => {
    const exprs = s.k === 'assign' ? [s.value] : s.k === 'decl' && s.init ? [s.init] : s.k === 'store' ? [s.value, s.idx] : s.k === 'if' || s.k === 'loop' ? (s.k === 'if' ? [s.cond] : s.cond ? [s.cond] : []) : s.k === 'opaque' ? s.uses : [];
    for (const e of exprs) walkExpr(e, (x) => { if (x.k === 'var') read.add(x.name); });
    if (s.k === 'assign' || s.k === 'decl' || s.k === 'store') {
      const v = s.k === 'assign' ? s.value : s.k === 'decl' ? s.init : s.value;
      if (v) diffVars(v, (x) => readInArith.add(x));
    }
  });
  fnNode.getParameters().forEach((p, i) => {
    const name = n.fn.params[i]?.name;
    if (!name || act.useful.has(name)) return;
    if (!read.has(name)) diags.at(p, `the parameter '${p.getName()}' is never used: its gradient is always zero`, 'warning');
    else if (readInArith.has(name)) diags.at(p, `the parameter '${p.getName()}' provably has a zero derivative: its value never reaches the result through differentiable operations`, 'warning');
  });
}
