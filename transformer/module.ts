// SPDX-License-Identifier: MIT
// One module through the pipeline: select → lower/fence → normalize → activity → fence → reverse → print,
// and the text of the module with the generated sweeps and their registrations spliced in.
import { Node, SyntaxKind, type SourceFile, type CallExpression } from 'ts-morph';
import type { TransformResult } from './compiler.js';
import { Diagnostics } from './diagnostics.js';
import type { Callee } from './ir.js';
import { analyzeActivity } from './passes/activity.js';
import { fence } from './passes/fence.js';
import { classify, lowerFunction, type LowerHost } from './passes/lower.js';
import { normalize } from './passes/normalize.js';
import { generate } from './passes/reverse.js';
import { generateTangent } from './passes/forward.js';
import { calleeDeclaration, derivativeTarget, tangentTarget, describe, findRule, functionsIn, isMarked, type FnNode } from './passes/select.js';

const AD_OPERATORS = new Set(['grad', 'valueAndGrad', 'vjp', 'jacobian', 'gradcheck']);

/** The name a call's callee was imported as from 'pullback', if it was. */
function pullbackImport(call: CallExpression): string | undefined {
  const id = call.getExpression();
  const sym = id.getSymbol();
  for (const d of sym?.getDeclarations() ?? []) {
    if (Node.isImportSpecifier(d) && d.getImportDeclaration().getModuleSpecifierValue() === 'pullback') {
      return d.getName();
    }
  }
  if (Node.isPropertyAccessExpression(id)) {
    const base = id.getExpression().getSymbol()?.getDeclarations()[0];
    if (base && Node.isNamespaceImport(base) && base.getFirstAncestorByKind(SyntaxKind.ImportDeclaration)?.getModuleSpecifierValue() === 'pullback') {
      return id.getName();
    }
  }
  return undefined;
}

const DD_MARKER = '// ---- pullback: directional derivatives, differentiated again for second order ----';

/**
 * Transforms a module. Second-order derivatives come from a second pass: the first writes, for each marked
 * function, its directional derivative `f$dd` as ordinary marked TypeScript; the second pass runs the whole
 * pipeline on the module with those functions appended, so `f$dd` gets sweeps of its own (reverse over
 * forward). If the second pass fails, the first pass's result stands and second order is unavailable.
 */
export function transformSourceFile(sf: SourceFile): TransformResult {
  const text = sf.getFullText();
  const first = transformOnce(sf, !text.includes(DD_MARKER));
  if (!first.directional.length || first.diagnostics.some((d) => d.category === 'error')) return first.result;
  const combined = `${text.replace(/\s*$/, '\n')}\n${DD_MARKER}\n${first.directional.join('\n\n')}\n`;
  const project = sf.getProject();
  const path = sf.getFilePath();
  const sf2 = project.createSourceFile(path, combined, { overwrite: true });
  const second = transformOnce(sf2, false);
  // The project must hold the file as the user wrote it: other modules are checked against it.
  project.createSourceFile(path, text, { overwrite: true });
  if (second.diagnostics.some((d) => d.category === 'error' && d.start >= text.length)) return first.result;
  const code = second.result.code;
  const ddStart = code.indexOf(DD_MARKER);
  const generated = second.result.generated.concat(ddStart >= 0 ? [[ddStart, code.indexOf('// ---- pullback: adjoints generated from')]] : []);
  const adjointSource = `${second.result.adjointSource}\n${DD_MARKER}\n${first.directional.join('\n\n')}\n`;
  return { ...second.result, diagnostics: first.result.diagnostics, generated, adjointSource };
}

function transformOnce(sf: SourceFile, directional: boolean): { result: TransformResult; diagnostics: TransformResult['diagnostics']; directional: string[] } {
  const r = transformWith(sf, directional);
  return { result: r, diagnostics: r.diagnostics, directional: r.directionalSources };
}

function transformWith(sf: SourceFile, wantDirectional: boolean): TransformResult & { directionalSources: string[] } {
  const diags = new Diagnostics();
  const directionalSources: string[] = [];
  const text = sf.getFullText();
  const fns = functionsIn(sf);
  const marked = fns.filter((f) => isMarked(f));
  const rules = fns.filter((f) => derivativeTarget(f) !== undefined);
  if (!marked.length && !rules.length && !fns.some((f) => tangentTarget(f) !== undefined)) return { code: text, changed: false, diagnostics: [], adjointSource: '', generated: [], directionalSources };

  const host: LowerHost = {
    diags,
    isStopGradient: (call) => pullbackImport(call) === 'stopGradient',
    isAdOperator: (call) => AD_OPERATORS.has(pullbackImport(call) ?? ''),
    callee(call: CallExpression): Callee | undefined {
      const decl = calleeDeclaration(call);
      if (!decl) return undefined;
      const rule = findRule(decl, [...new Set([decl.getSourceFile(), sf])]);
      if (!rule && !isMarked(decl)) return undefined;
      const info = describe(decl);
      if (!info) return undefined;
      const params = decl.getParameters().map((p) => classify(p.getType()));
      if (params.some((k) => k !== 'num' && k !== 'arr')) return undefined;
      const returns = classify(decl.getReturnType());
      if (returns !== 'num' && returns !== 'arr') return undefined;
      const expr = call.getExpression();
      const viaThis = Node.isPropertyAccessExpression(expr) && expr.getExpression().getKindName() === 'ThisKeyword';
      const local = decl.getSourceFile() === sf;
      const ruleInfo = rule ? describe(rule) : undefined;
      return {
        ref: expr.getText(), key: info.ref, local, prefix: local ? info.prefix : expr.getText().replace(/\W/g, '_'),
        rule: rule && ruleInfo ? { ref: ruleInfo.ref, local: rule.getSourceFile() === sf } : undefined,
        params: params as ('num' | 'arr')[], returns, viaThis,
      };
    },
  };

  const inserts: { pos: number; text: string }[] = [];
  const generated: string[] = [];
  /** What adjointSource shows: the sweeps of the user's functions (not those of their f$dd). */
  const readable: string[] = [];
  const externs = new Map<string, string>();
  const topRegistrations: string[] = [];
  const base = sf.getBaseName();

  for (const fnNode of marked) {
    const m = describe(fnNode);
    if (!m) {
      diags.unsupported(fnNode, 'this marked function', 'only module-level functions, `const f = (...) => ...` and methods of module-level classes can be differentiated', 'move it to module level');
      continue;
    }
    if (rules.some((r) => describe(r) && derivativeTarget(r) === m.name)) continue; // its rule is its adjoint
    const fn = lowerFunction(m, host);
    if (!fn) continue;
    const norm = normalize(fn);
    const act = analyzeActivity(norm);
    const before = diags.list.length;
    fence(norm, act, fnNode, diags);
    if (diags.list.slice(before).some((d) => d.category === 'error')) continue;
    const localTypes = new Map<string, string>();
    fnNode.forEachDescendant((d) => {
      if (Node.isVariableDeclaration(d) && classify(d.getType()) === 'arr') localTypes.set(d.getName(), d.getType().getText(d));
    });
    const sweeps = generate(norm, act, localTypes);
    for (const [k, v] of sweeps.externs) externs.set(k, v);
    const tangent = generateTangent(norm, act, localTypes, externs)!;
    if (wantDirectional && !m.prefix.endsWith('$dd')) {
      const dd = generateTangent(norm, act, localTypes, externs, 'dd');
      if (dd) directionalSources.push(dd);
    }
    const source = `${sweeps.fwd}\n\n${sweeps.rev}\n\n${tangent}`;
    generated.push(source);
    if (!m.prefix.endsWith('$dd')) readable.push(source);
    const reg = `$pb.register(${m.ref}, { name: ${JSON.stringify(m.name)}, where: ${JSON.stringify(`${base}:${fn.line}`)}, ` +
      `params: ${JSON.stringify(fn.params.map((p) => p.type))}, returns: ${JSON.stringify(fn.returns)}, ` +
      `fwd: ${m.prefix}$fwd, rev: ${m.prefix}$rev, jvp: ${m.prefix}$jvp, source: ${JSON.stringify(header(m.name, base, fn.line) + source)}` +
      `${m.method === 'static' ? `, self: ${m.ref.split('.')[0]}` : ''} });`;
    if (Node.isFunctionDeclaration(fnNode)) topRegistrations.push(reg);
    else inserts.push({ pos: m.anchor.getEnd(), text: `\n${reg}` });
  }

  for (const r of fns.filter((f) => tangentTarget(f) !== undefined)) {
    const target = tangentTarget(r)!;
    const rd = describe(r);
    if (!rd || !sf.getLocal(target.split('.')[0]!)) { diags.at(r, `@tangent ${target}: no function named '${target}' is visible here; import it or fix the name`); continue; }
    inserts.push({ pos: r.getEnd(), text: `\n$pb.registerTangent(${target}, ${rd.ref});` });
  }

  for (const r of rules) {
    const target = derivativeTarget(r)!;
    const rd = describe(r);
    if (!rd) { diags.unsupported(r, 'this derivative rule', 'rules must be module-level functions', 'move it to module level'); continue; }
    const local = sf.getLocal(target.split('.')[0]!);
    if (!local) { diags.at(r, `@derivative ${target}: no function named '${target}' is visible here; import it or fix the name`); continue; }
    let sym = local;
    if (sym.isAlias()) sym = sym.getAliasedSymbol() ?? sym;
    const decl = sym.getDeclarations().map((d) => (Node.isFunctionDeclaration(d) ? d : Node.isVariableDeclaration(d) ? d.getInitializer() : undefined)).find(Boolean) as FnNode | undefined;
    if (!decl || !(Node.isFunctionDeclaration(decl) || Node.isArrowFunction(decl) || Node.isFunctionExpression(decl))) {
      diags.at(r, `@derivative ${target}: '${target}' is not a function`);
      continue;
    }
    const params = decl.getParameters().map((p) => classify(p.getType()));
    const returns = classify(decl.getReturnType());
    if (params.some((k) => k !== 'num' && k !== 'arr') || (returns !== 'num' && returns !== 'arr')) {
      diags.at(r, `@derivative ${target}: '${target}' must take numbers or arrays of numbers and return a number or an array`);
      continue;
    }
    if (r.getParameters().length !== params.length + 1) {
      diags.at(r, `@derivative ${target}: the rule must take ${target}'s ${params.length} argument(s) followed by the output cotangent (${params.length + 1} parameters), it takes ${r.getParameters().length}`);
      continue;
    }
    const line = sf.getLineAndColumnAtPos(r.getStart()).line;
    const reg = `$pb.registerRule(${target}, ${rd.ref}, { name: ${JSON.stringify(target)}, where: ${JSON.stringify(`${base}:${line}`)}, ` +
      `params: ${JSON.stringify(params)}, returns: ${JSON.stringify(returns)} });`;
    if (Node.isFunctionDeclaration(r) && decl.getSourceFile() === sf && Node.isFunctionDeclaration(decl)) topRegistrations.push(reg);
    else inserts.push({ pos: Math.max(r.getEnd(), ...(decl.getSourceFile() === sf ? [describe(decl)?.anchor.getEnd() ?? 0] : [])), text: `\n${reg}` });
  }

  if (diags.hasErrors) return { code: text, changed: false, diagnostics: diags.list, adjointSource: '', generated: [], directionalSources };

  const imports = sf.getImportDeclarations();
  const top = imports.length ? imports[imports.length - 1]!.getEnd() : 0;
  const runtimeImport = `import * as $pb from 'pullback/runtime';`;
  inserts.push({ pos: top, text: `${top ? '\n' : ''}${runtimeImport}\n${topRegistrations.join('\n')}${top ? '' : '\n'}` });
  let code = text;
  for (const ins of inserts.sort((a, b) => b.pos - a.pos)) code = code.slice(0, ins.pos) + ins.text + code.slice(ins.pos);
  const externDecls = [...externs.keys()].map((k) => `var ${k}: $pb.Adjoint | undefined;`);
  const marker = `// ---- pullback: adjoints generated from ${base}; edit the source, not this ----`;
  const tail = [`\n${marker}`, ...externDecls, ...generated.map((g) => g + '\n')].join('\n');
  code = code.replace(/\s*$/, '\n') + tail;
  const ranges: [number, number][] = [];
  for (const m of code.matchAll(/^(import \* as \$pb from 'pullback\/runtime';|\$pb\.register(Rule)?\(.*)$/gm)) ranges.push([m.index!, m.index! + m[0].length]);
  ranges.push([code.lastIndexOf(marker), code.length]);
  const adjointSource = readable.length ? `${header(undefined, base)}\nimport * as $pb from 'pullback/runtime';\n\n${readable.join('\n\n')}\n` : '';
  return { code, changed: true, diagnostics: diags.list, adjointSource, generated: ranges, directionalSources };
}

function header(name: string | undefined, base: string, line?: number): string {
  return name ? `// Adjoint of ${name} (${base}:${line}), generated by pullback.\n` : `// Adjoints generated by pullback from ${base}. Read-only: edit the source instead.\n`;
}
