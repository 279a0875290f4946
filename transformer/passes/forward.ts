// SPDX-License-Identifier: MIT
// Pass 5b, forward: the tangent sweep (forward mode). Each active statement `v = E` is preceded by
// `v_dot = Ė`, the derivative of E along the input tangents, so one run carries values and tangents side
// by side; control flow is the program's own and nothing is recorded. Arrays carry tangent arrays, made
// and aliased alongside them, as the reverse sweep's shadows are. A call of a differentiable function
// calls its tangent sweep, which returns the value and leaves the tangent of the result in `$pb.fw`.
import { assertNever, walkStmts, type Callee, type Expr, type Stmt, type ValueType } from '../ir.js';
import type { Activity } from './activity.js';
import type { NStmt, Normalized } from './normalize.js';
import { printExpr, type PrintHooks } from './print.js';
import { MATH_RULES, mul, neg, powRule } from './rules.js';

const IND = '  ';
const indent = (ls: string[]) => ls.map((l) => IND + l);
const ZERO: Expr = { k: 'lit', v: 0 };
const isZero = (e: Expr) => e.k === 'lit' && e.v === 0;
const add = (a: Expr, b: Expr): Expr => (isZero(a) ? b : isZero(b) || (b.k === 'neg' && isZero(b.a)) ? a : b.k === 'neg' ? { k: 'bin', op: '-', a, b: b.a } : { k: 'bin', op: '+', a, b });
const times = (a: Expr, b: Expr): Expr => (isZero(a) || isZero(b) ? ZERO : mul(a, b));

/**
 * `jvp` mode: the tangent sweep used by jvp (value returned, tangent left in `$pb.fw`).
 * `dd` mode: the directional derivative as an ordinary marked function, `f$dd(...args, ...tangents)`
 * returning the tangent, written in the scalar subset so that the transformer can differentiate it again
 * (reverse over forward: hvp, hessian, grad of grad). Returns undefined when f calls something whose
 * directional derivative is not in this module (another module's function, a custom rule, a method).
 */
export function generateTangent(n: Normalized, act: Activity, localTypes: Map<string, string>, externs: Map<string, string>, mode: 'jvp' | 'dd' = 'jvp', ddCalls?: Set<string>): string | undefined {
  const fn = n.fn;
  if (mode === 'dd' && fn.usesThis) return undefined;
  let unsupported = false;
  const EMPTY = mode === 'dd' ? 'new Float64Array(0)' : '$pb.EMPTY';
  const params = new Set(fn.params.map((p) => p.name));
  const typeOf = (v: string): ValueType => fn.locals.get(v) ?? 'num';
  const isArr = (v: string) => typeOf(v) === 'arr';
  const taken = new Set<string>([...fn.locals.keys(), ...params]);
  const dots = new Map<string, string>();
  const dot = (v: string): string => {
    let d = dots.get(v);
    if (!d) { d = `${v}_dot`; while (taken.has(d)) d += '_'; taken.add(d); dots.set(v, d); }
    return d;
  };
  const hasTangent = (v: string) => params.has(v) || act.active(v);
  const pf: PrintHooks = { name: (v) => v, call: (e, args) => `${e.callee.ref}(${args.join(', ')})` };
  const P = (e: Expr) => printExpr(e, pf);

  /** The tangent of an expression, as an expression. */
  const tan = (e: Expr): Expr => {
    if (!act.activeExpr(e)) return ZERO;
    switch (e.k) {
      case 'var': return hasTangent(e.name) && !isArr(e.name) ? { k: 'var', name: dot(e.name) } : ZERO;
      case 'index':
        return e.arr.k === 'var' && hasTangent(e.arr.name) ? { k: 'index', arr: { k: 'var', name: dot(e.arr.name) }, idx: e.idx } : ZERO;
      case 'neg': return neg(tan(e.a));
      case 'bin': {
        const ta = tan(e.a), tb = tan(e.b);
        switch (e.op) {
          case '+': return add(ta, tb);
          case '-': return add(ta, neg(tb));
          case '*': return add(times(ta, e.b), times(e.a, tb));
          case '/': return add(times(ta, { k: 'bin', op: '/', a: { k: 'lit', v: 1 }, b: e.b }), neg(times(tb, { k: 'bin', op: '/', a: e.a, b: mul(e.b, e.b) })));
          case '%': return add(ta, neg(times(tb, { k: 'math', fn: 'trunc', args: [{ k: 'bin', op: '/', a: e.a, b: e.b }] })));
          case '**': {
            const [da] = powRule(e.a, e.b, ta, false);
            const [, db] = powRule(e.a, e.b, tb, !isZero(tb));
            return add(isZero(ta) ? ZERO : da!, db ?? ZERO);
          }
          default: return ZERO;
        }
      }
      case 'math': {
        const rule = MATH_RULES[e.fn]!;
        // Reverse rules are linear in the adjoint: the tangent is Σ_i rule(args, ṫ_i)[i].
        let sum: Expr = ZERO;
        e.args.forEach((a, i) => {
          const t = tan(a);
          if (isZero(t)) return;
          const c = rule(e.args, t)[i];
          if (c) sum = add(sum, c);
        });
        return sum;
      }
      // The tangent of the branch taken (the other may not be defined there: `x > 0 ? Math.log(x) : 0`).
      case 'cond': {
        const ta = tan(e.a), tb = tan(e.b);
        return isZero(ta) && isZero(tb) ? ZERO : { k: 'cond', c: e.c, a: ta, b: tb };
      }
      default: return ZERO; // stopGradient, comparisons, lengths, calls of non-differentiable functions
    }
  };

  const calleeJvp = (c: Callee): string => {
    if (c.local) return `${c.prefix}$jvp`;
    const cache = `${c.prefix}$ad`;
    externs.set(cache, c.ref);
    return `(${cache} ??= $pb.adjointOf(${c.ref})).jvp!`;
  };
  const arrTangentOf = (e: Expr): string => {
    if (e.k === 'var') return hasTangent(e.name) ? dot(e.name) : EMPTY;
    if (e.k === 'view' && e.arr.k === 'var' && hasTangent(e.arr.name)) return `${dot(e.arr.name)}.subarray(${P(e.start)}${e.end ? ', ' + P(e.end) : ''})`;
    return EMPTY;
  };

  const assign = (v: string, E: Expr, src: Stmt['src']): string[] => {
    const out: string[] = [];
    const active = act.active(v);
    if (E.k === 'call' && active && E.args.some((a) => act.activeExpr(a) || (a.k === 'var' && isArr(a.name) && act.active(a.name)) || (a.k === 'view' && a.arr.k === 'var' && act.active(a.arr.name)))) {
      const c = E.callee;
      const args = E.args.map(P);
      const tans = E.args.map((a, i) => (c.params[i] === 'arr' ? arrTangentOf(a) : P(tan(a))));
      if (mode === 'dd') {
        if (!c.local || c.rule || c.viaThis) { unsupported = true; return []; }
        ddCalls?.add(c.prefix);
        return [`${dot(v)} = ${c.prefix}$dd(${[...args, ...tans].join(', ')});`, `${v} = ${c.ref}(${args.join(', ')});`];
      }
      const f = c.rule
        ? `$pb.tangentOf(${c.ref})`
        : calleeJvp(c);
      const call = c.viaThis ? `${f}.call(this, ${[...args, ...tans].join(', ')})` : `${f}(${[...args, ...tans].join(', ')})`;
      out.push(`${v} = ${call};`, `${dot(v)} = $pb.fw.${isArr(v) ? 'a' : 't'};`);
      return out;
    }
    if (isArr(v)) {
      out.push(`${v} = ${P(E)};`);
      if (!hasTangent(v)) return out;
      if (E.k === 'var') out.push(`${dot(v)} = ${hasTangent(E.name) ? dot(E.name) : `new Float64Array(${v}.length)`};`);
      else if (E.k === 'view') out.push(`${dot(v)} = ${arrTangentOf(E)};`);
      else if (E.k === 'copy') out.push(`${dot(v)} = ${E.src.k === 'var' && hasTangent(E.src.name) || E.src.k === 'view' ? `Float64Array.from(${arrTangentOf(E.src)})` : `new Float64Array(${v}.length)`};`);
      else out.push(`${dot(v)} = new Float64Array(${v}.length);`);
      return out;
    }
    if (active) out.push(`${dot(v)} = ${P(tan(E))};`);
    out.push(`${v} = ${P(E)};`);
    void src;
    return out;
  };

  const stmt = (s: NStmt): string[] => {
    switch (s.k) {
      case 'decl': {
        if (mode === 'jvp') return s.init ? assign(s.name, s.init, s.src) : [];
        // The directional derivative keeps declarations where the program had them, so that the second
        // pass sees block-local constants (which it recomputes) rather than hoisted variables (which it stores).
        const lines = s.init ? assign(s.name, s.init, s.src) : [];
        const first = (name: string) => (lines.findIndex((l) => l.startsWith(`${name} = `)));
        // An array keeps the type the program gave it (`let a: Float64Array = Float64Array.from(x)` may later hold
        // what a function returns): left to inference, the copy would be a Float64Array<ArrayBuffer>, to which a
        // plain Float64Array cannot be assigned under strict TypeScript. Its tangent takes the widest type.
        const declareAt = (name: string, fallback: string, type?: string) => {
          const i = first(name);
          if (i >= 0) lines[i] = `let ${type ? `${name}: ${type}${lines[i]!.slice(name.length)}` : lines[i]}`;
          else lines.unshift(`let ${fallback};`);
        };
        declareAt(s.name, decl(s.name), isArr(s.name) ? localTypes.get(s.name) : undefined);
        if (act.active(s.name)) declareAt(dot(s.name), isArr(s.name) ? `${dot(s.name)}!: Float64Array` : `${dot(s.name)} = 0`, isArr(s.name) ? 'Float64Array' : undefined);
        return lines;
      }
      case 'assign': return assign(s.name, s.value, s.src);
      case 'store': {
        const out: string[] = [];
        if (act.active(s.arr)) out.push(`${dot(s.arr)}[${P(s.idx)}] = ${P(tan(s.value))};`);
        out.push(`${s.arr}[${P(s.idx)}] = ${P(s.value)};`);
        return out;
      }
      case 'if': {
        const t = list(s.then), f = list(s.else);
        return [`if (${P(s.cond)}) {`, ...indent(t), ...(f.length ? ['} else {', ...indent(f)] : []), '}'];
      }
      case 'loop': {
        const init = list(s.init);
        const upd = list(s.update);
        const body = list(s.body);
        if (s.exit) body.push(`if (${P(s.exit)}) break;`);
        // A counting loop stays a `for`, so that the second pass sees (and undoes) its counter update.
        const oneLine = (ls: string[], prefix: string) => ls.length === 1 && ls[0]!.startsWith(prefix) && ls[0]!.endsWith(';');
        if (mode === 'dd' && !s.post && upd.length === 1 && (init.length === 0 || (init.length === 1 && oneLine(init, 'let '))) && oneLine(upd, '')) {
          const cond = s.cond ? P(s.cond) : '';
          return [`for (${init[0]?.slice(0, -1) ?? ''}; ${cond}; ${upd[0]!.slice(0, -1)}) {`, ...indent(body), '}'];
        }
        const out = init;
        body.push(...upd);
        const cond = s.cond ? P(s.cond) : 'true';
        if (s.post) out.push('do {', ...indent(body), `} while (${cond});`);
        else out.push(`while (${cond}) {`, ...indent(body), '}');
        return out;
      }
      case 'opaque': return [s.text];
      case 'break': case 'continue': case 'return': throw new Error('pullback internal error: jump after normalize');
      default: return assertNever(s);
    }
  };
  const list = (ss: NStmt[]): string[] => ss.flatMap(stmt);

  const decl = (v: string) => (isArr(v) ? `${v}!: ${localTypes.get(v) ?? (v === n.result ? fn.returnTypeText : 'any')}` : typeOf(v) === 'bool' ? `${v} = false` : `${v} = 0`);
  const declared = new Set<string>();
  if (mode === 'dd') walkStmts(n.body, (x) => { if (x.k === 'decl') declared.add(x.name); });
  const body = list(n.body);
  const localsList = [...fn.locals.keys()].filter((v) => !params.has(v) && !declared.has(v));
  const dotLocals = localsList.filter((v) => act.active(v)).map((v) => (isArr(v) ? `${dot(v)}!: Float64Array` : `${dot(v)} = 0`));
  const lets = (xs: string[]) => (xs.length ? [`let ${xs.join(', ')};`] : []);
  const sig = fn.params.map((p) => `${p.name}: ${p.typeText}`);
  const tanSig = fn.params.map((p) => `${dot(p.name)}: ${p.type === 'arr' ? 'Float64Array' : 'number'}`);
  const thisSig = fn.usesThis ? ['this: any'] : [];
  const r = n.result;
  const rt = isArr(r) ? (hasTangent(r) ? dot(r) : `new Float64Array(${r}.length)`) : hasTangent(r) ? dot(r) : '0';
  const where = `${fn.file.split('/').pop()}:${fn.line}`;
  if (unsupported) return undefined;
  if (mode === 'dd') {
    const retType = isArr(r) ? 'Float64Array' : 'number';
    return [
      `/**`,
      ` * Directional derivative of ${fn.name} (${where}) along the tangents: written by pullback for second-order`,
      ` * derivatives, and differentiated like any marked function.`,
      ` * @differentiable`,
      ` */`,
      `function ${fn.prefix}$dd(${[...sig, ...tanSig].join(', ')}): ${retType} {`,
      ...indent([...lets([...localsList.map(decl), ...dotLocals]), ...body, `return ${rt};`]),
      '}',
    ].join('\n');
  }
  const resultTangent = isArr(r) ? `$pb.fw.a = ${rt};` : `$pb.fw.t = ${rt};`;
  return [
    `/** Tangent sweep of ${fn.name} (${where}): the primal with the derivative along the input tangents beside it. */`,
    `function ${fn.prefix}$jvp(${[...thisSig, ...sig, ...tanSig].join(', ')}): ${fn.returnTypeText} {`,
    ...indent([...lets([...localsList.map(decl), ...dotLocals]), ...body, resultTangent, `return ${r};`]),
    '}',
  ].join('\n');
}
