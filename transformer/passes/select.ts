// SPDX-License-Identifier: MIT
// Pass 1, select: find the functions marked differentiable and the custom derivative rules, through the
// type checker (a call is matched to its declaration by symbol, never by its name as text).
import { Node, SyntaxKind, type SourceFile, type CallExpression, type FunctionDeclaration, type ArrowFunction,
  type FunctionExpression, type MethodDeclaration } from 'ts-morph';

export type FnNode = FunctionDeclaration | ArrowFunction | FunctionExpression | MethodDeclaration;

export interface Marked {
  node: FnNode;
  /** Display name: `f` or `C.m`. */
  name: string;
  /** Prefix of generated names: `f` or `C$m`. */
  prefix: string;
  /** Expression that reaches the function object from module scope. */
  ref: string;
  /** The statement after which the function object exists (registration goes right after it). */
  anchor: Node;
  method: 'none' | 'static' | 'instance';
}

function jsDocTags(node: Node): { name: string; text: string }[] {
  const holder = Node.isVariableDeclaration(node) ? node.getVariableStatement() : node;
  if (!holder || !Node.isJSDocable(holder)) return [];
  return holder.getJsDocs().flatMap((d) => d.getTags().map((t) => ({ name: t.getTagName(), text: (t.getCommentText() ?? '').trim() })));
}

/** The function node a declaration stands for: `function f`, `const f = () =>`, or a method. */
export function functionOf(decl: Node | undefined): FnNode | undefined {
  if (!decl) return undefined;
  if (Node.isFunctionDeclaration(decl) || Node.isMethodDeclaration(decl)) return decl;
  if (Node.isVariableDeclaration(decl)) {
    const init = decl.getInitializer();
    if (init && (Node.isArrowFunction(init) || Node.isFunctionExpression(init))) return init;
  }
  if (Node.isArrowFunction(decl) || Node.isFunctionExpression(decl)) return decl;
  return undefined;
}

/** The node that carries the JSDoc of a function: the declaration, or the variable for an arrow. */
function docHolder(fn: FnNode): Node {
  if (Node.isArrowFunction(fn) || Node.isFunctionExpression(fn)) {
    const parent = fn.getParentWhileKind(SyntaxKind.ParenthesizedExpression) ?? fn;
    const v = parent.getParent();
    if (v && Node.isVariableDeclaration(v)) return v;
  }
  return fn;
}

function hasDifferentiableDecorator(fn: FnNode): boolean {
  if (!Node.isMethodDeclaration(fn)) return false;
  return fn.getDecorators().some((d) => {
    const sym = d.getCallExpression() ? undefined : d.getExpression().getSymbol();
    const target = sym?.getAliasedSymbol() ?? sym;
    return d.getName() === 'differentiable' && (target === undefined || target.getName() === 'differentiable');
  });
}

export function isMarked(fn: FnNode): boolean {
  return hasDifferentiableDecorator(fn) || jsDocTags(docHolder(fn)).some((t) => t.name === 'differentiable');
}

/** `/** @derivative fname *\/`: the name of the function whose reverse rule this is, if any. */
export function derivativeTarget(fn: FnNode): string | undefined {
  return jsDocTags(docHolder(fn)).find((t) => t.name === 'derivative')?.text.split(/\s+/)[0] || undefined;
}

/** `/** @tangent fname *\/`: the name of the function whose forward rule this is, if any. */
export function tangentTarget(fn: FnNode): string | undefined {
  return jsDocTags(docHolder(fn)).find((t) => t.name === 'tangent')?.text.split(/\s+/)[0] || undefined;
}

export function describe(fn: FnNode): Marked | undefined {
  if (Node.isFunctionDeclaration(fn)) {
    const name = fn.getName();
    if (!name || !Node.isSourceFile(fn.getParent())) return undefined;
    return { node: fn, name, prefix: name, ref: name, anchor: fn, method: 'none' };
  }
  if (Node.isMethodDeclaration(fn)) {
    const cls = fn.getParent();
    if (!Node.isClassDeclaration(cls) || !cls.getName() || !Node.isSourceFile(cls.getParent())) return undefined;
    const c = cls.getName()!;
    const m = fn.getName();
    const isStatic = fn.isStatic();
    return { node: fn, name: `${c}.${m}`, prefix: `${c}$${m}`, ref: isStatic ? `${c}.${m}` : `${c}.prototype.${m}`,
      anchor: cls, method: isStatic ? 'static' : 'instance' };
  }
  const holder = docHolder(fn);
  if (!Node.isVariableDeclaration(holder)) return undefined;
  const stmt = holder.getVariableStatement();
  if (!stmt || !Node.isSourceFile(stmt.getParent())) return undefined;
  const name = holder.getName();
  return { node: fn, name, prefix: name, ref: name, anchor: stmt, method: 'none' };
}

/** Every function in the file, marked or carrying a rule, in source order. */
export function functionsIn(sf: SourceFile): FnNode[] {
  const out: FnNode[] = [];
  sf.forEachDescendant((n) => {
    if (Node.isFunctionDeclaration(n) || Node.isArrowFunction(n) || Node.isFunctionExpression(n) || Node.isMethodDeclaration(n)) out.push(n);
  });
  return out;
}

/** The declaration a call's callee resolves to, through imports and aliases. */
export function calleeDeclaration(call: CallExpression): FnNode | undefined {
  const expr = call.getExpression();
  let sym = expr.getSymbol();
  if (sym?.isAlias()) sym = sym.getAliasedSymbol();
  for (const d of sym?.getDeclarations() ?? []) {
    const fn = functionOf(d);
    if (fn) return fn;
  }
  return undefined;
}

/** Finds the `@derivative` rule for `target` in the files where it may be declared. */
export function findRule(target: FnNode, files: SourceFile[], tag: (fn: FnNode) => string | undefined = derivativeTarget): FnNode | undefined {
  const targetName = describe(target)?.name;
  if (!targetName) return undefined;
  for (const sf of files) {
    for (const fn of functionsIn(sf)) {
      if (tag(fn) !== targetName) continue;
      // The rule names its target; make sure the name resolves to this very function from the rule's file.
      const local = sf.getLocal(targetName.split('.')[0]!);
      let sym = local;
      if (sym?.isAlias()) sym = sym.getAliasedSymbol();
      const decls = sym?.getDeclarations() ?? [];
      if (decls.some((d) => functionOf(d) === target || (Node.isClassDeclaration(d) && target.getParent() === d))) return fn;
    }
  }
  return undefined;
}
