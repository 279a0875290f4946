// SPDX-License-Identifier: MIT
// Derivative rules of the scalar primitives: given the incoming adjoint g of `op(args)`, the adjoint each
// argument receives. Rules are written with the shape helpers below so that the kind of rule is visible
// (as in JAX's ad.py): linear, unary with a local derivative, binary with two.
import type { Expr } from '../ir.js';

const lit = (v: number): Expr => ({ k: 'lit', v });
export const mul = (a: Expr, b: Expr): Expr => {
  // Negations float to the top, where two of them cancel and one becomes `-=`.
  if (a.k === 'neg') return neg(mul(a.a, b));
  if (b.k === 'neg') return neg(mul(a, b.a));
  if (a.k === 'lit' && a.v === 1) return b;
  if (b.k === 'lit' && b.v === 1) return a;
  return { k: 'bin', op: '*', a, b };
};
export const div = (a: Expr, b: Expr): Expr => (a.k === 'neg' ? neg(div(a.a, b)) : { k: 'bin', op: '/', a, b });
export const add = (a: Expr, b: Expr): Expr => ({ k: 'bin', op: '+', a, b });
export const sub = (a: Expr, b: Expr): Expr => ({ k: 'bin', op: '-', a, b });
export const neg = (a: Expr): Expr => (a.k === 'neg' ? a.a : { k: 'neg', a });
const m = (fn: string, ...args: Expr[]): Expr => ({ k: 'math', fn, args });
const sq = (a: Expr): Expr => mul(a, a);
const cmp = (op: '>=' | '<=', a: Expr, b: Expr): Expr => ({ k: 'cmp', op, a, b });
const cond = (c: Expr, a: Expr, b: Expr): Expr => ({ k: 'cond', c, a, b });

/** A rule maps (arguments, incoming adjoint) to one adjoint per argument (null: none flows). */
export type Rule = (args: Expr[], g: Expr) => (Expr | null)[];

/** f(x) with f'(x) = d(x): the adjoint of x is g·d(x). */
const unary = (d: (x: Expr) => Expr): Rule => ([x], g) => [mul(g, d(x!))];
/** Derivative zero almost everywhere (floor, sign...): nothing flows back. */
const piecewiseConstant: Rule = (args) => args.map(() => null);

/** The first argument wins ties (documented convention: max(x, x) sends the whole gradient to x). */
const extremum = (op: '>=' | '<='): Rule => (args, g) => {
  if (args.length === 1) return [g];
  if (args.length === 2) {
    const first = cmp(op, args[0]!, args[1]!);
    return [cond(first, g, lit(0)), cond(first, lit(0), g)];
  }
  const which: Expr = { k: 'extcall', text: '', fn: op === '>=' ? '$pb.argmax' : '$pb.argmin', args };
  return args.map((_, i) => cond({ k: 'cmp', op: '===', a: which, b: lit(i) }, g, lit(0)));
};

export const MATH_RULES: Record<string, Rule> = {
  sin: unary((x) => m('cos', x)),
  cos: unary((x) => neg(m('sin', x))),
  tan: unary((x) => add(lit(1), sq(m('tan', x)))),
  asin: unary((x) => div(lit(1), m('sqrt', sub(lit(1), sq(x))))),
  acos: unary((x) => neg(div(lit(1), m('sqrt', sub(lit(1), sq(x)))))),
  atan: unary((x) => div(lit(1), add(lit(1), sq(x)))),
  sinh: unary((x) => m('cosh', x)),
  cosh: unary((x) => m('sinh', x)),
  tanh: unary((x) => sub(lit(1), sq(m('tanh', x)))),
  asinh: unary((x) => div(lit(1), m('sqrt', add(sq(x), lit(1))))),
  acosh: unary((x) => div(lit(1), m('sqrt', sub(sq(x), lit(1))))),
  atanh: unary((x) => div(lit(1), sub(lit(1), sq(x)))),
  exp: unary((x) => m('exp', x)),
  expm1: unary((x) => m('exp', x)),
  log: ([x], g) => [div(g, x!)],
  log1p: ([x], g) => [div(g, add(lit(1), x!))],
  log2: ([x], g) => [div(g, mul(x!, { k: 'ext', text: 'Math.LN2' }))],
  log10: ([x], g) => [div(g, mul(x!, { k: 'ext', text: 'Math.LN10' }))],
  sqrt: ([x], g) => [div(mul(lit(0.5), g), m('sqrt', x!))],
  cbrt: ([x], g) => [div(g, mul(lit(3), sq(m('cbrt', x!))))],
  // abs'(0) = 0 (documented convention): Math.sign(0) is 0.
  abs: unary((x) => m('sign', x)),
  fround: ([], g) => [g],
  atan2: ([y, x], g) => {
    const r2 = add(sq(x!), sq(y!));
    return [div(mul(g, x!), r2), neg(div(mul(g, y!), r2))];
  },
  pow: (args, g) => powRule(args[0]!, args[1]!, g),
  hypot: (args, g) => {
    const h = m('hypot', ...args);
    // At the origin the gradient is taken to be 0 (hypot is not differentiable there).
    return args.map((a) => cond({ k: 'cmp', op: '===', a: h, b: lit(0) }, lit(0), div(mul(g, a), h)));
  },
  max: extremum('>='),
  min: extremum('<='),
  sign: piecewiseConstant, floor: piecewiseConstant, ceil: piecewiseConstant, round: piecewiseConstant, trunc: piecewiseConstant,
};

/** x ** y: ∂x = y·x^(y-1), ∂y = x^y·ln x (only built when y is active). */
export function powRule(x: Expr, y: Expr, g: Expr, yActive = true): (Expr | null)[] {
  let dx: Expr;
  if (y.k === 'lit' && typeof y.v === 'number') {
    dx = y.v === 2 ? mul(lit(2), x) : y.v === 1 ? lit(1) : y.v === 0 ? lit(0) : mul(lit(y.v), { k: 'bin', op: '**', a: x, b: lit(y.v - 1) });
  } else dx = mul(y, { k: 'bin', op: '**', a: x, b: sub(y, lit(1)) });
  const dy = yActive ? mul(g, mul({ k: 'bin', op: '**', a: x, b: y }, m('log', x))) : null;
  return [mul(g, dx), dy];
}
