// SPDX-License-Identifier: MIT
// Printing IR expressions back to TypeScript, with the fewest parentheses that keep the meaning.
import { assertNever, type Expr } from '../ir.js';

const PREC = { cond: 2, '||': 3, '&&': 4, eq: 8, rel: 9, '+': 11, '*': 12, '**': 13, unary: 14, call: 17, atom: 20 } as const;

function precOf(e: Expr): number {
  switch (e.k) {
    case 'lit': return typeof e.v === 'number' && (e.v < 0 || Object.is(e.v, -0)) ? PREC.unary : PREC.atom;
    case 'var': case 'ext': return e.k === 'ext' && /[^\w$.]/.test(e.text) ? PREC.cond - 1 : PREC.atom;
    case 'bin': return e.op === '+' || e.op === '-' ? PREC['+'] : e.op === '**' ? PREC['**'] : PREC['*'];
    case 'neg': case 'not': return PREC.unary;
    case 'cmp': return e.op === '<' || e.op === '<=' || e.op === '>' || e.op === '>=' ? PREC.rel : PREC.eq;
    case 'logic': return PREC[e.op];
    case 'cond': return PREC.cond;
    default: return PREC.call;
  }
}

export interface PrintHooks {
  /** How a variable is spelled (and a chance to record that it was read). */
  name(v: string): string;
  /** How a call of a differentiable function is printed (primal, forward sweep...). */
  call?(e: Extract<Expr, { k: 'call' }>, args: string[]): string;
}

export function printExpr(e: Expr, h: PrintHooks, min = 0): string {
  const s = raw(e, h);
  return precOf(e) < min ? `(${s})` : s;
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return String(v);
}

function raw(e: Expr, h: PrintHooks): string {
  switch (e.k) {
    case 'lit': return typeof e.v === 'boolean' ? String(e.v) : num(e.v);
    case 'var': return h.name(e.name);
    case 'ext': return e.text;
    case 'bin': {
      const p = precOf(e);
      if (e.op === '**') return `${printExpr(e.a, h, PREC.unary + 1)} ** ${printExpr(e.b, h, p)}`;
      return `${printExpr(e.a, h, p)} ${e.op} ${printExpr(e.b, h, p + 1)}`;
    }
    case 'neg': {
      const a = printExpr(e.a, h, PREC.unary);
      return a.startsWith('-') ? `-(${a})` : `-${a}`;
    }
    case 'not': return `!${printExpr(e.a, h, PREC.unary)}`;
    case 'cmp': { const p = precOf(e); return `${printExpr(e.a, h, p)} ${e.op} ${printExpr(e.b, h, p + 1)}`; }
    case 'logic': { const p = precOf(e); return `${printExpr(e.a, h, p)} ${e.op} ${printExpr(e.b, h, p + 1)}`; }
    case 'cond': return `${printExpr(e.c, h, PREC.cond + 1)} ? ${printExpr(e.a, h, PREC.cond)} : ${printExpr(e.b, h, PREC.cond)}`;
    case 'math': return `Math.${e.fn}(${e.args.map((a) => printExpr(a, h)).join(', ')})`;
    case 'index': return `${printExpr(e.arr, h, PREC.call)}[${printExpr(e.idx, h)}]`;
    case 'len': return `${printExpr(e.arr, h, PREC.call)}.length`;
    case 'call': {
      const args = e.args.map((a) => printExpr(a, h));
      return h.call ? h.call(e, args) : `${e.callee.ref}(${args.join(', ')})`;
    }
    case 'extcall': {
      const args = e.args.map((a) => printExpr(a, h, PREC.unary));
      if (e.fn.startsWith('(') && e.fn.endsWith(')') && args.length === 2) return `${args[0]} ${e.fn.slice(1, -1)} ${args[1]}`;
      return `${e.fn}(${e.args.map((a) => printExpr(a, h)).join(', ')})`;
    }
    case 'alloc': return e.array === 'f64' ? `new Float64Array(${printExpr(e.len, h)})` : `new Array<number>(${printExpr(e.len, h)}).fill(0)`;
    case 'copy': return e.array === 'f64' ? `Float64Array.from(${printExpr(e.src, h)})` : `Array.from(${printExpr(e.src, h)})`;
    case 'arrlit': return `[${e.items.map((a) => printExpr(a, h)).join(', ')}]`;
    case 'view': return `${printExpr(e.arr, h, PREC.call)}.subarray(${printExpr(e.start, h)}${e.end ? ', ' + printExpr(e.end, h) : ''})`;
    case 'stop': return printExpr(e.a, h, 0);
    default: return assertNever(e);
  }
}
