// SPDX-License-Identifier: MIT
// The tensor pass: a marked function over Tensors becomes f$vjp($s, ...args), the same body with
//  - every call that yields a Tensor routed through the frame `$f`: library ops (recognised by the declaration
//    their symbol resolves to, never by name) through `$f.op`/`$f.method`, which record each op's pullback;
//    other differentiable functions through `$f.call` (their own generated pullback, or their custom rule);
//    `checkpoint(g, ...)` through `$f.checkpoint`;
//  - a compile-time memory plan: a tensor held by a local variable is freed right after the last statement of
//    its block that uses it; a tensor passed straight into another call is freed as soon as that call has run
//    (`$f.t`); an overwritten variable's old value is freed once the new one is computed (`$f.swap`);
//    whatever is left when the function returns, except the result, is freed by `$f.ret`;
//  - constructs that cannot be differentiated rejected with file:line:col.
// The backward pass runs the recorded pullbacks in reverse (sdk/tensor/ad.ts); the pullbacks keep only what
// they need (sdk/tensor/engine.ts). The function's own body becomes a call of f$vjp without a session, so plain
// calls free their intermediates too.
import { Node, SyntaxKind, type BinaryExpression, type CallExpression, type Type, type Identifier, type Block } from 'ts-morph';
import type { Diagnostics } from '../diagnostics.js';
import type { FnNode, Marked } from './select.js';

const TENSOR_DECL = /[\\/]sdk[\\/]tensor[\\/]engine\.(d\.)?ts$/;
const LIBRARY_DECL = /[\\/]sdk[\\/]tensor[\\/](ops|methods|engine)\.(d\.)?ts$/;
const READBACK = new Set(['data', 'item', 'array']);

export function isTensorClass(t: Type): boolean {
  const sym = t.getSymbol() ?? t.getAliasSymbol();
  if (!sym || sym.getName() !== 'Tensor') return false;
  return sym.getDeclarations().some((d) => TENSOR_DECL.test(d.getSourceFile().getFilePath()));
}

/** A Tensor, possibly `| undefined`/`| null`. */
export function isTensorType(t: Type): boolean {
  if (isTensorClass(t)) return true;
  if (t.isUnion()) {
    const parts = t.getUnionTypes().filter((u) => !u.isUndefined() && !u.isNull());
    return parts.length > 0 && parts.every(isTensorClass);
  }
  return false;
}

/** Whether a type holds Tensors: a Tensor, or objects, arrays and tuples that nest them. */
export function containsTensor(t: Type, at: Node, depth = 0, seen = new Set<Type>()): boolean {
  if (depth > 6 || seen.has(t)) return false;
  seen.add(t);
  if (isTensorClass(t)) return true;
  if (t.isUnion()) return t.getUnionTypes().some((u) => containsTensor(u, at, depth + 1, seen));
  if (t.isIntersection()) return t.getIntersectionTypes().some((u) => containsTensor(u, at, depth + 1, seen));
  if (t.isArray()) return containsTensor(t.getArrayElementTypeOrThrow(), at, depth + 1, seen);
  if (t.isTuple()) return t.getTupleElements().some((u) => containsTensor(u, at, depth + 1, seen));
  if (t.getCallSignatures().length) return false;
  if (t.isObject()) return t.getProperties().some((p) => containsTensor(p.getTypeAtLocation(at), at, depth + 1, seen));
  return false;
}

/** A marked function is a tensor function when a parameter or its result holds Tensors. */
export function isTensorFunction(fn: FnNode): boolean {
  return fn.getParameters().some((p) => containsTensor(p.getType(), p)) || containsTensor(fn.getReturnType(), fn);
}

export interface TensorHost {
  diags: Diagnostics;
  /** The name a call's callee was imported as from 'pullback' (grad, checkpoint, stopGradient...). */
  pullbackImport(call: CallExpression): string | undefined;
  /** The declaration a call resolves to, when it is a function. */
  calleeDeclaration(call: CallExpression): FnNode | undefined;
  isMarked(fn: FnNode): boolean;
  hasRule(fn: FnNode): boolean;
}

export interface TensorSweep {
  /** The text of f$vjp. */
  source: string;
  /** The new body of the user's function: `{ return $pb.primal(...); }` (or an expression for arrows). */
  primalBody: string;
  /** The span of the original body it replaces. */
  bodySpan: [number, number];
  frees: number;
}

const looksThrough = (n: Node): Node => {
  let p = n.getParentOrThrow();
  while (Node.isParenthesizedExpression(p) || Node.isAsExpression(p) || Node.isNonNullExpression(p) || Node.isSatisfiesExpression(p)) p = p.getParentOrThrow();
  return p;
};

export function generateTensorSweep(m: Marked, host: TensorHost): TensorSweep | undefined {
  const fn = m.node;
  const d = host.diags;
  const before = d.list.length;
  const body = fn.getBody();
  if (!body) { d.unsupported(fn, m.name, 'it has no body', 'give it one'); return undefined; }
  if (fn.isAsync() || (!Node.isArrowFunction(fn) && fn.isGenerator())) {
    d.unsupported(fn, `${m.name}`, 'async functions and generators cannot be differentiated (reading values back is asynchronous)', 'keep data()/item() outside the differentiable function');
    return undefined;
  }
  const params = fn.getParameters();
  for (const p of params) {
    if (!Node.isIdentifier(p.getNameNode())) { d.unsupported(p, 'a destructured parameter', 'the generated code forwards parameters by name', 'take the object as one parameter and destructure it in the body'); }
  }

  // ---- find every call that yields Tensors, classify it, and check what cannot be differentiated ----
  type Kind = { kind: 'op' | 'method' | 'call' | 'callWith' | 'checkpoint' };
  const calls = new Map<Node, Kind>();
  const inner = (n: Node): boolean => n.getFirstAncestor((a) => Node.isFunctionDeclaration(a) || Node.isArrowFunction(a)
    || Node.isFunctionExpression(a) || Node.isMethodDeclaration(a) || Node.isGetAccessorDeclaration(a) || Node.isSetAccessorDeclaration(a)
    || Node.isConstructorDeclaration(a)) !== fn;
  body.forEachDescendant((n) => {
    if (Node.isAwaitExpression(n) || Node.isYieldExpression(n)) { d.unsupported(n, 'await/yield', 'differentiable functions run synchronously', 'read values back outside the differentiable function'); return; }
    if (Node.isBinaryExpression(n) && n.getOperatorToken().getKind() === SyntaxKind.EqualsToken) {
      const lhs = n.getLeft();
      if ((Node.isPropertyAccessExpression(lhs) || Node.isElementAccessExpression(lhs)) && containsTensor(lhs.getType(), lhs) && !inner(n)) {
        d.unsupported(n, 'storing a Tensor into an object or array', 'parameters and their trees are read-only inside a differentiable function (a gradient could not tell which value it belongs to)', 'build a new object instead, or keep the tensor in a local variable');
      }
      return;
    }
    // Calls inside callbacks (`layers.reduce((h, l) => relu(...), x)`) go through the frame too: the closure
    // captures $f, so their results are freed when the function returns rather than by the garbage collector.
    if (!Node.isCallExpression(n)) return;
    const callee = n.getExpression();
    if (Node.isPropertyAccessExpression(callee) && READBACK.has(callee.getName()) && isTensorType(callee.getExpression().getType())) {
      d.unsupported(n, `${callee.getText()}()`, 'reading a tensor back to the host is asynchronous and has no derivative', 'compute with tensor ops, and read values after grad returns');
      return;
    }
    const imp = host.pullbackImport(n);
    if (imp === 'checkpoint') { calls.set(n, { kind: 'checkpoint' }); return; }
    if (imp === 'grad' || imp === 'valueAndGrad' || imp === 'vjp') {
      d.unsupported(n, `${imp}(...) inside a differentiable tensor function`, 'nested differentiation of tensor functions is not supported yet', 'compute the inner gradient outside');
      return;
    }
    if (!containsTensor(n.getType(), n)) return;
    if (imp === 'stopGradient') { calls.set(n, { kind: 'op' }); return; }
    const decl = host.calleeDeclaration(n);
    const declFile = decl?.getSourceFile().getFilePath() ?? symbolFile(callee);
    const library = declFile !== undefined && LIBRARY_DECL.test(declFile);
    if (Node.isPropertyAccessExpression(callee)) {
      const recv = callee.getExpression();
      if (library) calls.set(n, { kind: isTensorType(recv.getType()) ? 'method' : 'op' }); // t.matmul(w) / pb.matmul(a, b)
      else calls.set(n, isNamespace(recv) ? { kind: 'call' } : { kind: 'callWith' }); // nn.linear(...) / model.apply(...)
      return;
    }
    if (library) { calls.set(n, { kind: 'op' }); return; }
    if (decl && !host.isMarked(decl) && !host.hasRule(decl)) {
      d.at(n, `${callee.getText()} is not marked /** @differentiable */: its ops are recorded at run time and its intermediates ` +
        'are freed when it returns, not at their last use; mark it to have it transformed', 'warning');
    }
    calls.set(n, { kind: 'call' });
  });

  // ---- the memory plan for local variables ----
  const frees = new Map<Node, string[]>(); // statement -> variables to free after it
  const swaps = new Set<Node>(); // assignments `v = E` whose old value is freed
  let freeCount = 0;
  const fnIdentifiers = body.getDescendantsOfKind(SyntaxKind.Identifier);
  const refsOf = (decl: Node & { getNameNode(): Node }): Identifier[] => {
    const sym = decl.getNameNode().getSymbol();
    if (!sym) return [];
    return fnIdentifiers.filter((id) => {
      if (id === decl.getNameNode()) return false;
      const p = id.getParent();
      // `{ h }` names the property; the variable it reads is the shorthand's value symbol.
      if (Node.isShorthandPropertyAssignment(p) && p.getNameNode() === id) return p.getValueSymbol() === sym;
      return id.getSymbol() === sym;
    });
  };
  for (const v of body.getDescendantsOfKind(SyntaxKind.VariableDeclaration)) {
    if (!Node.isIdentifier(v.getNameNode()) || inner(v) || !isTensorType(v.getType())) continue;
    const list = v.getParent();
    if (!Node.isVariableDeclarationList(list) || list.getDeclarationKind() === 'var') continue;
    const stmt = list.getParent();
    if (!Node.isVariableStatement(stmt)) continue; // for-of/for-in heads: values of the tree, not ours
    const block = stmt.getParent();
    if (!block || !(Node.isBlock(block) || Node.isCaseClause(block) || Node.isDefaultClause(block))) continue;
    const refs = refsOf(v);
    // A variable whose value may live on elsewhere (aliased, captured, stored) is left to $f.ret.
    const escapes = refs.some((r) => {
      if (inner(r)) return true;
      const p = looksThrough(r);
      // An argument of a tensor call is read by it; any other call (outs.push(h)) may keep it.
      if (Node.isCallExpression(p)) return !calls.has(p);
      if (Node.isPropertyAccessExpression(p) && p.getExpression() === r) return false;
      if (Node.isElementAccessExpression(p) && p.getExpression() === r) return false;
      if (Node.isBinaryExpression(p) && p.getLeft() === r && p.getOperatorToken().getKind() === SyntaxKind.EqualsToken) return false;
      if (Node.isReturnStatement(p)) return false;
      return !isArgumentOfCall(r);
    });
    if (escapes) continue;
    // Freeing what v holds is safe only if v never holds a value another binding may still use: every value
    // assigned to it is a fresh result of a tensor call, or a parameter's (which this call does not own).
    const fresh = (e: Node | undefined): boolean => {
      if (!e) return true;
      if (Node.isParenthesizedExpression(e) || Node.isAsExpression(e) || Node.isNonNullExpression(e) || Node.isSatisfiesExpression(e)) return fresh(e.getExpression());
      if (Node.isCallExpression(e)) return calls.has(e);
      if (Node.isConditionalExpression(e)) return fresh(e.getWhenTrue()) && fresh(e.getWhenFalse());
      if (Node.isIdentifier(e)) return (e.getSymbol()?.getDeclarations() ?? []).some((d) => Node.isParameterDeclaration(d) && d.getParent() === fn);
      return false;
    };
    const assigned = refs.map((r) => looksThrough(r)).filter((p): p is BinaryExpression => Node.isBinaryExpression(p) && p.getOperatorToken().getKind() === SyntaxKind.EqualsToken);
    if (!fresh(v.getInitializer()) || !assigned.every((a) => fresh(a.getRight()))) continue;
    for (const r of refs) {
      const p = looksThrough(r);
      if (Node.isBinaryExpression(p) && p.getLeft() === r && p.getOperatorToken().getKind() === SyntaxKind.EqualsToken && Node.isExpressionStatement(p.getParent())) swaps.add(p);
    }
    const stmts = (block as Block).getStatements();
    const idx = stmts.indexOf(stmt as never);
    let last: Node = stmt;
    for (const s of stmts.slice(idx + 1)) if (refs.some((r) => r.getStart() >= s.getStart() && r.getEnd() <= s.getEnd())) last = s;
    if (Node.isReturnStatement(last) || Node.isThrowStatement(last) || Node.isBreakStatement(last) || Node.isContinueStatement(last)) continue;
    frees.set(last, [...(frees.get(last) ?? []), v.getName()]);
    freeCount++;
  }

  if (d.list.slice(before).some((x) => x.category === 'error')) return undefined;

  // ---- print ----
  const emit = (n: Node): string => {
    const k = calls.get(n);
    if (k && Node.isCallExpression(n)) return wrapTemp(n, emitCall(n, k));
    if (Node.isReturnStatement(n) && !inner(n)) {
      const e = n.getExpression();
      return e ? `return $f.ret(${emit(e)});` : n.getText();
    }
    if (Node.isBinaryExpression(n) && swaps.has(n)) return `${n.getLeft().getText()} = $f.swap(${n.getLeft().getText()}, ${emit(n.getRight())})`;
    if ((Node.isBlock(n) || Node.isCaseClause(n) || Node.isDefaultClause(n)) && n.getStatements().some((s) => frees.has(s))) {
      return splice(n, (c) => {
        if (!Node.isSyntaxList(c)) return undefined;
        return splice(c, (s) => {
          const vs = frees.get(s);
          return vs ? `${emit(s)}\n${indentOf(s)}${vs.map((v) => `$f.free(${v});`).join(' ')}` : undefined;
        });
      });
    }
    return splice(n, () => undefined);
  };
  /** The node's text with each child replaced by its rewrite (or by `over(child)` when that gives one). */
  const splice = (n: Node, over: (c: Node) => string | undefined): string => {
    const text = n.getText();
    const start = n.getStart();
    let out = '', at = 0;
    for (const c of n.getChildren()) {
      const cs = c.getStart(), ce = c.getEnd();
      if (ce <= cs) continue;
      const rewritten = over(c) ?? (hasWork(c) ? emit(c) : undefined);
      if (rewritten === undefined) continue;
      out += text.slice(at, cs - start) + rewritten;
      at = ce - start;
    }
    return out + text.slice(at);
  };
  const work = new Set<Node>();
  for (const n of [...calls.keys(), ...swaps, ...frees.keys(), ...body.getDescendantsOfKind(SyntaxKind.ReturnStatement).filter((r) => !inner(r))]) {
    for (let p: Node | undefined = n; p && p !== body; p = p.getParent()) work.add(p);
  }
  const hasWork = (n: Node): boolean => work.has(n) || (Node.isSyntaxList(n) && n.getChildren().some(hasWork));
  const args = (c: CallExpression): string => c.getArguments().map(emit).join(', ');
  const emitCall = (c: CallExpression, k: Kind): string => {
    const callee = c.getExpression();
    const a = args(c);
    const comma = a ? `, ${a}` : '';
    switch (k.kind) {
      case 'op': return `$f.op(${emit(callee)}${comma})`;
      case 'call': return `$f.call(${emit(callee)}${comma})`;
      case 'checkpoint': return `$f.checkpoint(${a})`;
      case 'method': {
        const pa = callee.asKindOrThrow(SyntaxKind.PropertyAccessExpression);
        return `$f.method(${emit(pa.getExpression())}, ${JSON.stringify(pa.getName())}${comma})`;
      }
      case 'callWith': {
        const pa = callee.asKindOrThrow(SyntaxKind.PropertyAccessExpression);
        const self = emit(pa.getExpression());
        const simple = Node.isIdentifier(pa.getExpression()) || pa.getExpression().getKind() === SyntaxKind.ThisKeyword;
        return simple ? `$f.callWith(${self}, ${self}.${pa.getName()}${comma})` : `$f.callWith(...$f.bind(${self}, ${JSON.stringify(pa.getName())})${comma})`;
      }
    }
  };
  /** A tensor passed straight into another tensor call is freed once that call has run. */
  const wrapTemp = (c: CallExpression, text: string): string => {
    const p = looksThrough(c);
    const direct = (Node.isCallExpression(p) && calls.has(p) && (p.getArguments().includes(c as never) || isReceiverOf(c, p)))
      || (Node.isPropertyAccessExpression(p) && Node.isCallExpression(p.getParent()) && calls.get(p.getParentOrThrow())?.kind === 'method');
    return direct && isTensorType(c.getType()) ? `$f.t(${text})` : text;
  };

  const paramText = params.map((p) => p.getText()).join(', ');
  const names = params.map((p) => (p.isRestParameter() ? `...${p.getName()}` : p.getName()));
  const ret = fn.getReturnTypeNode()?.getText();
  const self = m.method === 'instance' ? 'this: any, ' : '';
  const bodyText = Node.isBlock(body) ? emit(body) : `{\n  return $f.ret(${emit(body)});\n}`;
  const source = [
    `function ${m.prefix}$vjp(${self}$s: $pb.Session | null${paramText ? `, ${paramText}` : ''}): [${ret ?? 'any'}, (() => void) | null] {`,
    `  const $f = $pb.frame($s);`,
    reindent(bodyText.replace(/^\{\n?/, '').replace(/\}$/, '')),
    '}',
  ].join('\n');
  const call = `$pb.primal(${m.prefix}$vjp, ${Node.isArrowFunction(fn) ? 'undefined' : 'this'}, [${names.join(', ')}])`;
  const primalBody = Node.isBlock(body) ? `{ return ${call}; }` : call;
  return { source, primalBody, bodySpan: [body.getStart(), body.getEnd()], frees: freeCount };
}

/** `ns` in `ns.f(...)` when ns is a module namespace (`import * as ns`, `export * as ns`): no receiver to bind. */
function isNamespace(recv: Node): boolean {
  let sym = recv.getSymbol();
  if (sym?.isAlias()) sym = sym.getAliasedSymbol() ?? sym;
  return (sym?.getDeclarations() ?? []).some((d) => Node.isSourceFile(d) || Node.isModuleDeclaration(d) || Node.isNamespaceImport(d) || Node.isNamespaceExport(d));
}

function isArgumentOfCall(r: Node): boolean {
  const p = looksThrough(r);
  if (!Node.isCallExpression(p)) return false;
  let n: Node = r;
  while (n.getParent() !== p) n = n.getParentOrThrow();
  return p.getArguments().includes(n as never);
}

function isReceiverOf(c: Node, call: CallExpression): boolean {
  const e = call.getExpression();
  return Node.isPropertyAccessExpression(e) && e.getExpression() === c;
}

function symbolFile(callee: Node): string | undefined {
  let sym = callee.getSymbol();
  if (sym?.isAlias()) sym = sym.getAliasedSymbol();
  return sym?.getDeclarations()[0]?.getSourceFile().getFilePath();
}

function indentOf(s: Node): string {
  const text = s.getSourceFile().getFullText();
  const lineStart = text.lastIndexOf('\n', s.getStart() - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart))![0];
}

function reindent(text: string): string {
  const lines = text.split('\n');
  while (lines.length && !lines[0]!.trim()) lines.shift();
  while (lines.length && !lines[lines.length - 1]!.trim()) lines.pop();
  const min = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => `  ${l.slice(Number.isFinite(min) ? min : 0)}`).join('\n');
}
