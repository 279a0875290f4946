// SPDX-License-Identifier: MIT
// One module through the pipeline: select → lower/fence → normalize → activity → fence → reverse → print,
// and the text of the module with the generated sweeps and their registrations spliced in.
import { Node, SyntaxKind, type SourceFile, type CallExpression, type ImportDeclaration } from 'ts-morph';
import type { TransformResult } from './compiler.js';
import { Diagnostics } from './diagnostics.js';
import { walkStmts, type Callee } from './ir.js';
import { analyzeActivity } from './passes/activity.js';
import { fence } from './passes/fence.js';
import { classify, lowerFunction, numericValue, type LowerHost } from './passes/lower.js';
import { normalize } from './passes/normalize.js';
import { generate, type Sweeps } from './passes/reverse.js';
import { generateTangent } from './passes/forward.js';
import { generateTensorSweep, isTensorFunction, type TensorHost } from './passes/tensor.js';
import { lowerToWasm, type WasmCandidate, type WasmOrigin, type WasmScope } from './wasm.js';
import { calleeDeclaration, derivativeTarget, tangentTarget, describe, functionOf, findRule, functionsIn, isMarked, type FnNode } from './passes/select.js';

const AD_OPERATORS = new Set(['grad', 'valueAndGrad', 'vjp', 'jvp', 'jacobian', 'jacfwd', 'hvp', 'hessian', 'gradcheck']);

/** The name a call's callee was imported as from 'pullback', if it was. */
function pullbackImport(call: CallExpression): string | undefined {
  const id = call.getExpression();
  const sym = id.getSymbol();
  for (const d of sym?.getDeclarations() ?? []) {
    if (Node.isImportSpecifier(d) && isPullbackModule(d.getImportDeclaration())) {
      return d.getName();
    }
  }
  if (Node.isPropertyAccessExpression(id)) {
    const base = id.getExpression().getSymbol()?.getDeclarations()[0];
    const decl = base && Node.isNamespaceImport(base) ? base.getFirstAncestorByKind(SyntaxKind.ImportDeclaration) : undefined;
    if (decl && isPullbackModule(decl)) {
      return id.getName();
    }
  }
  return undefined;
}

/** 'pullback' itself, or (inside the SDK, which imports by relative path) the modules that define its operators. */
function isPullbackModule(d: ImportDeclaration): boolean {
  if (d.getModuleSpecifierValue() === 'pullback') return true;
  if (!d.getModuleSpecifierValue().startsWith('.')) return false;
  const file = d.getModuleSpecifierSourceFile()?.getFilePath() ?? '';
  return /[\\/]sdk[\\/](index|ad[\\/]api|tensor[\\/]ad)\.(d\.)?ts$/.test(file);
}

const DD_MARKER = '// ---- pullback: directional derivatives, differentiated again for second order ----';

/**
 * Transforms a module. Second-order derivatives come from a second pass: the first writes, for each marked
 * function, its directional derivative `f$dd` as ordinary marked TypeScript; the second pass runs the whole
 * pipeline on the module with those functions appended, so `f$dd` gets sweeps of its own (reverse over
 * forward). If the second pass fails, the first pass's result stands and second order is unavailable.
 */
export interface ModuleOptions {
  /** Lower scalar adjoints to WebAssembly (default true). */
  wasm?: boolean;
  /** Where compiled Wasm modules are cached (default node_modules/.cache/pullback). */
  cacheDir?: string;
  /** Write the directional derivatives second order needs (default true; see CompilerOptions.secondOrder). */
  secondOrder?: boolean;
  /**
   * Internal: instead of lowering, hand over the file's scalar functions, for the Wasm module of a file that
   * calls them (see foreignUnits).
   */
  unit?: (u: ScalarUnit) => void;
}

/** One file's scalar functions as another file's Wasm module takes them in. */
interface ScalarUnit {
  cands: WasmCandidate[];
  scope: WasmScope;
  /** The marked functions of other files its functions call, by the text of the call. */
  foreignRefs: Map<string, FnNode>;
}

export function transformSourceFile(sf: SourceFile, options: ModuleOptions = {}): TransformResult {
  const text = sf.getFullText();
  const first = transformOnce(sf, !text.includes(DD_MARKER) && options.secondOrder !== false, options);
  if (!first.directional.length || first.diagnostics.some((d) => d.category === 'error')) return first.result;
  const combined = `${text.replace(/\s*$/, '\n')}\n${DD_MARKER}\n${first.directional.join('\n\n')}\n`;
  const project = sf.getProject();
  const path = sf.getFilePath();
  const sf2 = project.createSourceFile(path, combined, { overwrite: true });
  const second = transformOnce(sf2, false, options);
  // The project must hold the file as the user wrote it: other modules are checked against it.
  project.createSourceFile(path, text, { overwrite: true });
  // The second pass sees the user's code again (same diagnostics) plus what only the first pass checks.
  const seen = new Set(second.diagnostics.map((d) => `${d.start}:${d.message}`));
  const mine = [...second.diagnostics.filter((d) => d.start < text.length), ...first.diagnostics.filter((d) => !seen.has(`${d.start}:${d.message}`))];
  const inGenerated = second.diagnostics.filter((d) => d.start >= text.length && d.category === 'error');
  if (inGenerated.length) {
    // A bug of ours: keep first order, and say so where a function needed the second pass.
    const lost = first.deferred.map((d) => ({ ...d, message: `${d.message}: pullback could not differentiate its generated second-order code (${inGenerated[0]!.message}); please report this` }));
    // The first pass left the Wasm lowering to the second: run it again, first order only, to lower.
    const kept = options.wasm !== true || lost.length ? first : transformOnce(project.getSourceFileOrThrow(path), false, options);
    return { ...kept.result, diagnostics: [...kept.result.diagnostics, ...lost], changed: kept.result.changed && !lost.length };
  }
  if (mine.some((d) => d.category === 'error')) return { code: text, changed: false, diagnostics: mine, adjointSource: '', generated: [] };
  const code = second.result.code;
  const ddStart = code.indexOf(DD_MARKER);
  const generated = second.result.generated.concat(ddStart >= 0 ? [[ddStart, code.indexOf('// ---- pullback: adjoints generated from')]] : []);
  const adjointSource = `${second.result.adjointSource}\n${DD_MARKER}\n${first.directional.join('\n\n')}\n`;
  return { ...second.result, diagnostics: mine, generated, adjointSource };
}

function transformOnce(sf: SourceFile, directional: boolean, options: ModuleOptions) {
  const { directionalSources, deferred, ...result } = transformWith(sf, directional, options);
  return { result: result as TransformResult, diagnostics: result.diagnostics, directional: directionalSources, deferred };
}

function transformWith(sf: SourceFile, wantDirectional: boolean, options: ModuleOptions): TransformResult & { directionalSources: string[]; deferred: TransformResult['diagnostics'] } {
  const diags = new Diagnostics();
  /** Directional derivatives for the second pass: f$dd (with the prefixes of the $dd functions it calls) and inner grad/vjp functions. */
  const directional: { prefix?: string; calls: string[]; source: string }[] = [];
  const text = sf.getFullText();
  const fns = functionsIn(sf);
  const marked = fns.filter((f) => isMarked(f));
  const rules = fns.filter((f) => derivativeTarget(f) !== undefined);
  if (!marked.length && !rules.length && !fns.some((f) => tangentTarget(f) !== undefined)) return { code: text, changed: false, diagnostics: [], adjointSource: '', generated: [], directionalSources: directional.map((d) => d.source), deferred: [] };

  // For the check of forward-mode uses: which marked functions call a rule that has no @tangent, and which
  // marked functions of this module each one calls.
  const markedSet = new Set<Node>(marked);
  const callerOf = (call: Node) => call.getFirstAncestor((a) => markedSet.has(a)) as FnNode | undefined;
  const noTangent = new Map<FnNode, string>();
  const calls = new Map<FnNode, Set<FnNode>>();
  // grad(g, a)(...) and vjp(g, ...) inside marked functions: requested in the first pass, resolved in the second.
  const nestedRequests = new Map<string, { g: FnNode; a: number; at: Node; kind: InnerKind }>();
  /** A function's parameters and result as the scalar subset sees them, or undefined when one is outside it. */
  const scalarSignature = (decl: FnNode): { params: ('num' | 'arr')[]; returns: 'num' | 'arr' } | undefined => {
    const params = decl.getParameters().map((p) => classify(p.getType()));
    const returns = classify(decl.getReturnType());
    if (params.some((k) => k !== 'num' && k !== 'arr') || (returns !== 'num' && returns !== 'arr')) return undefined;
    return { params: params as ('num' | 'arr')[], returns };
  };
  /** The marked function of this module that a nested grad or vjp differentiates, with respect to parameter a (when given). */
  const innerFunction = (target: Node | undefined, a: number | undefined): { decl: FnNode; kinds: ('num' | 'arr')[]; returns: 'num' | 'arr' } | { unsupported: string } => {
    const decl = target && Node.isIdentifier(target) ? functionOfIdentifier(target) : undefined;
    if (!decl || decl.getSourceFile() !== sf || !isMarked(decl) || !describe(decl) || describe(decl)!.method !== 'none') {
      return { unsupported: 'the differentiated function must be a marked function of this module' };
    }
    const sig = scalarSignature(decl);
    if (!sig) return { unsupported: 'the inner function must take numbers or arrays and return a number or an array' };
    if (a !== undefined && a >= sig.params.length) {
      return { unsupported: `argnums ${a} names no parameter of ${describe(decl)!.name}, which has ${sig.params.length}` };
    }
    return { decl, kinds: sig.params, returns: sig.returns };
  };
  /** The generated function for a nested grad or vjp once the second pass has it, else 'defer' (and ask for it). */
  const requestInner = (kind: InnerKind, t: { decl: FnNode; kinds: ('num' | 'arr')[] }, a: number, at: Node, params: ('num' | 'arr')[]): Callee | 'defer' => {
    const name = `${describe(t.decl)!.prefix}$${kind}${a}`;
    if (!sf.getFunction(name)) {
      nestedRequests.set(name, { g: t.decl, a, at, kind });
      return 'defer';
    }
    return { ref: name, key: name, local: true, prefix: name, params, returns: t.kinds[a]!, viaThis: false };
  };
  const host: LowerHost = {
    diags,
    adOperator: (call) => pullbackImport(call),
    calleeOf(id) {
      const decl = Node.isIdentifier(id) ? functionOfIdentifier(id) : undefined;
      const info = decl && describe(decl);
      const sig = decl && info && isMarked(decl) ? scalarSignature(decl) : undefined;
      if (!sig) return undefined;
      const local = decl!.getSourceFile() === sf;
      return { ref: id.getText(), key: info!.ref, local, prefix: local ? info!.prefix : id.getText().replace(/\W/g, '_'), params: sig.params, returns: sig.returns, viaThis: false };
    },
    nestedGrad(op, call) {
      const which = pullbackImport(op);
      if (which !== 'grad' && which !== 'valueAndGrad') return { unsupported: `only grad(f)(...), const [v, g] = valueAndGrad(f)(...) and const [y, pb] = vjp(f, ...) can be nested for now, not ${which}` };
      const parent = call.getParent();
      if (which === 'valueAndGrad' && !(Node.isVariableDeclaration(parent) && Node.isArrayBindingPattern(parent.getNameNode()))) return { unsupported: 'valueAndGrad must be destructured: const [value, gradient] = valueAndGrad(f)(...)' };
      const [target, argnums] = op.getArguments();
      let a = 0;
      if (argnums) {
        if (!Node.isNumericLiteral(argnums)) return { unsupported: 'argnums must be a number literal' };
        a = numericValue(argnums);
      }
      const t = innerFunction(target, a);
      if ('unsupported' in t) return t;
      if (t.returns !== 'num') return { unsupported: 'the inner function of grad must return a number' };
      return requestInner('grad', t, a, call, t.kinds);
    },
    nestedVjp(op, index) {
      const t = innerFunction(op.getArguments()[0], index);
      if ('unsupported' in t) return t;
      if (index === undefined) return 'ok';
      return requestInner('vjp', t, index, op, [...t.kinds, t.returns]);
    },
    isStopGradient: (call) => pullbackImport(call) === 'stopGradient',
    isAdOperator: (call) => AD_OPERATORS.has(pullbackImport(call) ?? ''),
    callee(call: CallExpression): Callee | undefined {
      const decl = calleeDeclaration(call);
      if (!decl) return undefined;
      const files = [...new Set([decl.getSourceFile(), sf])];
      const rule = findRule(decl, files);
      if (!rule && !isMarked(decl)) return undefined;
      const caller = callerOf(call);
      if (caller && isMarked(decl) && decl.getSourceFile() === sf) (calls.get(caller) ?? calls.set(caller, new Set()).get(caller)!).add(decl);
      // A rule without a tangent rule is fine for reverse mode; forward-mode uses of its callers in this module
      // are errors (checkForwardUses), and elsewhere jvp throws naming the rule. No warning per call: it was
      // printed on every run of the register hook, for programs that never use forward mode.
      if (rule && caller && !noTangent.has(caller) && !findRule(decl, files, tangentTarget)) noTangent.set(caller, describe(decl)?.name ?? decl.getText());
      const info = describe(decl);
      if (!info) return undefined;
      const params = decl.getParameters().map((p) => classify(p.getType()));
      if (params.some((k) => k !== 'num' && k !== 'arr')) return undefined;
      const returns = classify(decl.getReturnType());
      if (returns !== 'num' && returns !== 'arr') return undefined;
      const expr = call.getExpression();
      const viaThis = Node.isPropertyAccessExpression(expr) && expr.getExpression().getKindName() === 'ThisKeyword';
      const local = decl.getSourceFile() === sf;
      if (!local && !rule && !viaThis) foreignRefs.set(expr.getText(), decl);
      const ruleInfo = rule ? describe(rule) : undefined;
      return {
        ref: expr.getText(), key: info.ref, local, prefix: local ? info.prefix : expr.getText().replace(/\W/g, '_'),
        rule: rule && ruleInfo ? { ref: ruleInfo.ref, local: rule.getSourceFile() === sf } : undefined,
        params: params as ('num' | 'arr')[], returns, viaThis,
      };
    },
  };

  const tensorHost: TensorHost = {
    diags,
    pullbackImport,
    calleeDeclaration,
    isMarked,
    hasRule: (decl) => findRule(decl, [...new Set([decl.getSourceFile(), sf])]) !== undefined,
  };
  /** Text to splice in at `pos` (replacing up to `end`, when given). */
  const inserts: { pos: number; end?: number; text: string }[] = [];
  const generated: string[] = [];
  /** What adjointSource shows: the sweeps of the user's functions (not those of their f$dd). */
  const readable: string[] = [];
  const externs = new Map<string, string>();
  const topRegistrations: string[] = [];
  const base = sf.getBaseName();
  /** Scalar functions whose registration waits for the Wasm lowering of the whole file. */
  const scalar: (WasmCandidate & { place: (wasm: string) => void })[] = [];
  /** Marked functions of other files that this file's functions call, by the text of the call. */
  const foreignRefs = new Map<string, FnNode>();

  for (const fnNode of marked) {
    const m = describe(fnNode);
    if (!m) {
      diags.unsupported(fnNode, 'this marked function', 'only module-level functions, `const f = (...) => ...` and methods of module-level classes can be differentiated', 'move it to module level');
      continue;
    }
    if (rules.some((r) => describe(r) && derivativeTarget(r) === m.name)) continue; // its rule is its adjoint
    if (isTensorFunction(fnNode)) {
      const sweep = generateTensorSweep(m, tensorHost);
      if (!sweep) continue;
      const line = sf.getLineAndColumnAtPos(fnNode.getStart()).line;
      generated.push(sweep.source);
      readable.push(sweep.source);
      inserts.push({ pos: sweep.bodySpan[0], end: sweep.bodySpan[1], text: sweep.primalBody });
      const reg = `$pb.registerTensor(${m.ref}, { name: ${JSON.stringify(m.name)}, where: ${JSON.stringify(`${base}:${line}`)}, ` +
        `vjp: ${m.prefix}$vjp, frees: ${sweep.frees}, source: ${JSON.stringify(header(m.name, base, line) + sweep.source)} });`;
      if (Node.isFunctionDeclaration(fnNode)) topRegistrations.push(reg);
      else inserts.push({ pos: m.anchor.getEnd(), text: `\n${reg}` });
      continue;
    }
    const fn = lowerFunction(m, host);
    if (fn === 'defer') continue; // uses grad(g)(...): generated in the second pass
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
    // Arrays the normalizer made (an array literal's temporary) have no declaration: typed by how they are made,
    // so that the directional derivative, which declares them, stays in the subset for the second pass.
    walkStmts(norm.body, (st) => {
      if (st.k !== 'assign' && st.k !== 'decl') return;
      const made = st.k === 'assign' ? st.value : st.init;
      if ((made?.k === 'alloc' || made?.k === 'copy') && !localTypes.has(st.name)) localTypes.set(st.name, made.array === 'js' ? 'number[]' : 'Float64Array');
    });
    const sweeps = generate(norm, act, localTypes);
    for (const [k, v] of sweeps.externs) externs.set(k, v);
    const gsweeps = gradientSweeps(norm, localTypes, sweeps);
    if (gsweeps) for (const [k, v] of gsweeps.externs) externs.set(k, v);
    const tangent = generateTangent(norm, act, localTypes, externs)!;
    if (wantDirectional && !m.prefix.endsWith('$dd')) {
      const calls = new Set<string>();
      const dd = generateTangent(norm, act, localTypes, externs, 'dd', calls);
      if (dd) directional.push({ prefix: norm.fn.prefix, calls: [...calls], source: dd });
    }
    const gsource = gsweeps ? `\n\n${gsweeps.fwd}${gsweeps.rev ? `\n\n${gsweeps.rev}` : ''}` : '';
    const source = `${sweeps.fwd}\n\n${sweeps.rev}${gsource}\n\n${tangent}`;
    generated.push(source);
    if (!m.prefix.endsWith('$dd')) readable.push(source);
    // Linked where f is registered (at the top for function declarations), so that top-level code of the
    // module can already take second derivatives.
    const ddLink = !wantDirectional && sf.getFunction(`${m.prefix}$dd`) ? `\n$pb.registerDirectional(${m.ref}, ${m.prefix}$dd);` : '';
    const reg = (wasm: string) => `$pb.register(${m.ref}, { name: ${JSON.stringify(m.name)}, where: ${JSON.stringify(`${base}:${fn.line}`)}, ` +
      `params: ${JSON.stringify(fn.params.map((p) => p.type))}, returns: ${JSON.stringify(fn.returns)}, ` +
      `fwd: ${m.prefix}$fwd, rev: ${m.prefix}$rev, jvp: ${m.prefix}$jvp, ` +
      `${gsweeps ? `grad: { fwd: ${m.prefix}$gfwd, rev: ${m.prefix}$${gsweeps.rev ? 'grev' : 'rev'} }, ` : ''}source: ${JSON.stringify(registeredSource(m.prefix, m.name, header(m.name, base, fn.line) + source))}` +
      `${m.method === 'static' ? `, self: ${m.ref.split('.')[0]}` : ''}${wasm} });${ddLink}`;
    const slot = Node.isFunctionDeclaration(fnNode) ? topRegistrations.push('') - 1 : -1;
    const place = slot >= 0 ? (w: string) => { topRegistrations[slot] = reg(w); } : (w: string) => { inserts.push({ pos: m.anchor.getEnd(), text: `\n${reg(w)}` }); };
    scalar.push({ fn: norm.fn, norm, fwd: sweeps.fwd, rev: sweeps.rev, ...(gsweeps ? { gfwd: gsweeps.fwd, grev: gsweeps.rev } : {}), method: m.method !== 'none', place });
  }

  // A directional derivative that calls one the module could not write (a callee with a custom rule) cannot
  // stand: drop it, and those that call it, so that the rest of the module keeps its second order.
  for (let dropped = true; dropped;) {
    const defined = new Set(directional.map((d) => d.prefix));
    const keep = directional.filter((d) => d.calls.every((c) => defined.has(c)));
    dropped = keep.length < directional.length;
    directional.splice(0, directional.length, ...keep);
  }
  const hasDirectional = (prefix: string) => directional.some((d) => d.prefix === prefix);

  // Wasm: one module for the file, built only by the pass whose result is final (a first pass that found
  // second-order work is followed by a second pass over the file with the directional derivatives).
  let wasmTail = '';
  const wasmFinal = options.wasm === true && !(wantDirectional && (directional.length || nestedRequests.size)) && !diags.hasErrors && scalar.length > 0;
  const plain = (name: string) => {
    const f = sf.getFunction(name);
    return f?.hasBody() ? { source: f.getText(), returns: f.getReturnType().isVoid() ? 'void' as const : classify(f.getReturnType()), rule: derivativeTarget(f) !== undefined } : undefined;
  };
  const own: WasmScope = { constant: (name) => numericConstant(sf, name), helper: plain };
  if (options.unit && !diags.hasErrors) options.unit({ cands: scalar, scope: own, foreignRefs });
  let lowering: ReturnType<typeof lowerToWasm> | undefined;
  let dependencies: string[] | undefined;
  if (wasmFinal) {
    const others = foreignUnits(sf, foreignRefs);
    lowering = lowerToWasm([...scalar, ...others.cands], { cacheDir: options.cacheDir, ...own, foreign: others.resolve });
    if (others.files.length) dependencies = others.files;
  }
  for (const c of scalar) {
    const why = lowering?.reasons.get(c.fn.prefix);
    c.place(options.wasm !== true ? ', reason: "the Wasm lowering is off (opt-in, as it is rarely much faster than the JS adjoint: wasm: true, --wasm or PULLBACK_WASM=1)"' : !lowering ? '' : why === undefined && lowering.bytes ? `, wasm: { module: $pb$wasm, prefix: ${JSON.stringify(c.fn.prefix)} }` : `, reason: ${JSON.stringify(why ?? 'not lowered')}`);
  }
  if (lowering?.bytes) {
    wasmTail = `/** This module's scalar sweeps compiled to WebAssembly (AssemblyScript, asc -O3). */\n` +
      `function $pb$wasm(): $pb.ScalarWasmModule { return $pb.wasmModule(${JSON.stringify(base)}, "${Buffer.from(lowering.bytes).toString('base64')}"); }\n`;
  }

  for (const [name, { g, a, at, kind }] of nestedRequests) {
    const gPrefix = describe(g)!.prefix;
    if (!hasDirectional(gPrefix)) {
      diags.unsupported(at, `${kind}(${describe(g)!.name}) inside a marked function`, `${describe(g)!.name} has no directional derivative (it calls functions of other modules or with custom rules)`, 'compute the inner derivative outside the marked function');
      continue;
    }
    directional.push({ calls: [gPrefix], source: innerSource(name, g, a, kind) });
  }

  if (wantDirectional) checkForwardUses(sf, { noTangent, calls, hasDirectional, diags });

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
    const line0 = sf.getLineAndColumnAtPos(r.getStart()).line;
    if (isTensorFunction(decl)) {
      if (r.getParameters().length !== decl.getParameters().length + 1) {
        diags.at(r, `@derivative ${target}: the rule must take ${target}'s ${decl.getParameters().length} argument(s) followed by the output cotangent (${decl.getParameters().length + 1} parameters), it takes ${r.getParameters().length}`);
        continue;
      }
      inserts.push({ pos: Math.max(r.getEnd(), ...(decl.getSourceFile() === sf ? [describe(decl)?.anchor.getEnd() ?? 0] : [])),
        text: `\n$pb.registerTensorRule(${target}, ${rd.ref}, { name: ${JSON.stringify(target)}, where: ${JSON.stringify(`${base}:${line0}`)} });` });
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

  if (diags.hasErrors) return { code: text, changed: false, diagnostics: diags.list, adjointSource: '', generated: [], directionalSources: directional.map((d) => d.source), deferred: [] };

  const imports = sf.getImportDeclarations();
  const top = imports.length ? imports[imports.length - 1]!.getEnd() : 0;
  const runtimeImport = `import * as $pb from 'pullback/runtime';`;
  inserts.push({ pos: top, text: `${top ? '\n' : ''}${runtimeImport}\n${topRegistrations.join('\n')}${top ? '' : '\n'}` });
  let code = text;
  for (const ins of inserts.sort((a, b) => b.pos - a.pos)) code = code.slice(0, ins.pos) + ins.text + code.slice(ins.end ?? ins.pos);
  const externDecls = [...externs.keys()].map((k) => `var ${k}: $pb.Adjoint | undefined;`);
  const marker = `// ---- pullback: adjoints generated from ${base}; edit the source, not this ----`;
  const tail = [`\n${marker}`, ...externDecls, ...generated.map((g) => g + '\n'), ...(wasmTail ? [wasmTail] : [])].join('\n');
  code = code.replace(/\s*$/, '\n') + tail;
  const ranges: [number, number][] = [];
  for (const m of code.matchAll(/^(import \* as \$pb from 'pullback\/runtime';|\$pb\.register\w*\(.*)$/gm)) ranges.push([m.index!, m.index! + m[0].length]);
  for (const m of code.matchAll(/\$pb\.primal\([^\n]*?\]\)/g)) ranges.push([m.index!, m.index! + m[0].length]);
  ranges.push([code.lastIndexOf(marker), code.length]);
  const adjointSource = readable.length ? `${header(undefined, base)}\nimport * as $pb from 'pullback/runtime';\n\n${readable.join('\n\n')}\n` : '';
  const deferred = [...nestedRequests.values()].map(({ at, g, kind }) => { const sub = new Diagnostics(); sub.at(at, `${kind}(${describe(g)!.name}) inside a marked function`); return sub.list[0]!; });
  return { code, changed: true, diagnostics: diags.list, adjointSource, generated: ranges, directionalSources: directional.map((d) => d.source), deferred, ...(dependencies ? { dependencies } : {}) };
}

/**
 * Forward mode needs a tangent for every function on the way: a call of jvp or jacfwd on a marked function of
 * this module that reaches a rule with no /** @tangent *\/ is an error here rather than a throw at run time.
 * hvp, hessian and grad(grad(f)) need f's directional derivative, which custom rules and other modules'
 * functions rule out for now: a warning, since the rest of the module is fine.
 */
function checkForwardUses(sf: SourceFile, k: { noTangent: Map<FnNode, string>; calls: Map<FnNode, Set<FnNode>>; hasDirectional: (prefix: string) => boolean; diags: Diagnostics }): void {
  const reaches = (f: FnNode, seen = new Set<FnNode>()): string | undefined => {
    if (seen.has(f)) return undefined;
    seen.add(f);
    return k.noTangent.get(f) ?? [...(k.calls.get(f) ?? [])].map((g) => reaches(g, seen)).find(Boolean);
  };
  sf.forEachDescendant((n) => {
    if (!Node.isCallExpression(n)) return;
    const op = pullbackImport(n);
    const first = n.getArguments()[0];
    const secondOrder = op === 'hvp' || op === 'hessian' || (op === 'grad' && first && Node.isCallExpression(first) && pullbackImport(first) === 'grad');
    if (op !== 'jvp' && op !== 'jacfwd' && !secondOrder) return;
    const target = secondOrder && op === 'grad' ? (first as CallExpression).getArguments()[0] : first;
    const decl = target && Node.isIdentifier(target) ? functionOfIdentifier(target) : undefined;
    const info = decl && decl.getSourceFile() === sf && isMarked(decl) ? describe(decl) : undefined;
    if (!decl || !info) return;
    const what = op === 'grad' ? `grad(grad(${info.name}))` : `${op}(${info.name})`;
    if (!secondOrder) {
      const rule = reaches(decl);
      if (rule) k.diags.at(n, `${what} runs forward mode through ${rule}, which has a /** @derivative */ rule but no /** @tangent */ rule: declare /** @tangent ${rule} */ (a function of ${rule}'s arguments followed by their tangents, returning the output's tangent), or use vjp/jacobian instead`);
    } else if (!info.prefix.endsWith('$dd') && !k.hasDirectional(info.prefix)) {
      k.diags.at(n, `${what} will throw: ${info.name} has no second-order code (the transformer writes it only when every function ${info.name} calls is in this module and has no custom rule); compute the second derivative by finite differences of grad(${info.name}) instead`, 'warning');
    }
  });
}

type InnerKind = 'grad' | 'vjp';

/**
 * The function a nested `grad(g, a)` or vjp pullback entry stands for, written with forward mode over g$dd
 * (one run per entry of parameter a) so that it can be differentiated again. grad: `g$grad{a}(...args)`, the
 * partial derivative of g. vjp: `g$vjp{a}(...args, $ct)`, the derivative of <$ct, g(...args)> (for g
 * returning an array, the dot product of $ct with each directional derivative).
 */
function innerSource(name: string, g: FnNode, a: number, kind: InnerKind): string {
  const d = describe(g)!;
  const ps = g.getParameters().map((p) => ({ name: p.getName(), kind: classify(p.getType()) as 'num' | 'arr', type: p.getTypeNode()?.getText() ?? (classify(p.getType()) === 'num' ? 'number' : 'Float64Array') }));
  const vectorOut = classify(g.getReturnType()) === 'arr';
  const sig = [...ps.map((p) => `${p.name}: ${p.type}`), ...(kind === 'vjp' ? [`$ct: ${vectorOut ? 'Float64Array' : 'number'}`] : [])].join(', ');
  const tangents = (unit: string) => ps.map((p, i) => (i === a ? unit : p.kind === 'num' ? '0' : `new Float64Array(${p.name}.length)`));
  const dd = (unit: string) => `${d.prefix}$dd(${[...ps.map((p) => p.name), ...tangents(unit)].join(', ')})`;
  const what = kind === 'grad' ? `grad(${d.name}, ${a}) as used inside marked functions` : `the pullback of ${d.name} for '${ps[a]!.name}', as vjp inside marked functions uses it`;
  const doc = [`/**`, ` * ${what}: forward mode over ${d.prefix}$dd, so that it can be`, ` * differentiated again. Written by pullback.`, ` * @differentiable`, ` */`];
  /** Statements that leave the derivative along `unit` in `into` (`return` when into is 'return'). */
  const along = (unit: string, into: string): string[] => {
    const put = (v: string) => (into === 'return' ? `return ${v};` : `${into} = ${v};`);
    if (kind === 'grad') return [put(dd(unit))];
    if (!vectorOut) return [put(`$ct * ${dd(unit)}`)];
    return [`const $d = ${dd(unit)};`, 'let $s = 0;', 'for (let $k = 0; $k < $d.length; $k++) $s += $ct[$k] * $d[$k];', put('$s')];
  };
  const p = ps[a]!;
  if (p.kind === 'num') return [...doc, `function ${name}(${sig}): number {`, ...along('1', 'return').map((l) => `  ${l}`), '}'].join('\n');
  return [...doc, `function ${name}(${sig}): Float64Array {`,
    `  const $out = new Float64Array(${p.name}.length);`,
    `  for (let $j = 0; $j < ${p.name}.length; $j++) {`,
    `    const $e = new Float64Array(${p.name}.length);`,
    `    $e[$j] = 1;`,
    ...along('$e', '$out[$j]').map((l) => `    ${l}`),
    '  }',
    '  return $out;',
    '}'].join('\n');
}

/**
 * The marked functions of other files that `sf`'s functions call (and those that these call, file by file), as
 * candidates of `sf`'s Wasm module under names prefixed per file: a Wasm module cannot call into another, so the
 * sweeps of a callee in another file are compiled into the caller's module too (its own file's module has them as
 * well). `resolve` maps the text of a call in any of these files to the callee's prefix in the module.
 */
function foreignUnits(sf: SourceFile, refs: Map<string, FnNode>): { cands: WasmCandidate[]; files: string[]; resolve: (ref: string) => string | { why: string } | undefined } {
  const self = sf.getFilePath();
  const units = new Map<string, { origin: WasmOrigin; unit: ScalarUnit } | { why: string }>();
  const cands: WasmCandidate[] = [];
  const unitOf = (file: SourceFile): { origin: WasmOrigin; unit: ScalarUnit } | { why: string } => {
    const path = file.getFilePath();
    const known = units.get(path);
    if (known) return known;
    const base = file.getBaseName();
    if (file.isDeclarationFile() || file.isInNodeModules()) {
      const why = { why: `it is declared in ${base}, a library's file, whose Wasm module is its own` };
      units.set(path, why);
      return why;
    }
    let unit: ScalarUnit | undefined;
    transformWith(file, false, { wasm: false, secondOrder: false, unit: (u) => { unit = u; } });
    if (!unit) {
      const why = { why: `${base} does not compile (see its own diagnostics)` };
      units.set(path, why);
      return why;
    }
    const u = unit;
    const origin: WasmOrigin = { tag: `$f${units.size + 1}$`, file: base, ...u.scope, foreign: (ref) => resolveIn(u.foreignRefs, ref) };
    const entry = { origin, unit: u };
    units.set(path, entry);
    // The callers' sweeps run its forward and reverse sweeps only: not grad's own, nor the exported wrappers.
    for (const c of u.cands) cands.push({ fn: c.fn, norm: c.norm, fwd: c.fwd, rev: c.rev, method: c.method, origin });
    // What it calls of other files, now, so that the module's candidates are all known before printing.
    for (const d of u.foreignRefs.values()) if (d.getSourceFile().getFilePath() !== self) unitOf(d.getSourceFile());
    return entry;
  };
  const resolveIn = (within: Map<string, FnNode>, ref: string): string | { why: string } | undefined => {
    const decl = within.get(ref);
    const info = decl && describe(decl);
    if (!decl || !info) return undefined;
    if (decl.getSourceFile().getFilePath() === self) return info.prefix; // a call back into this file
    const u = unitOf(decl.getSourceFile());
    if ('why' in u) return u;
    if (!u.unit.cands.some((c) => c.fn.prefix === info.prefix)) return { why: `pullback wrote no scalar sweeps for ${info.name} in ${u.origin.file}` };
    return u.origin.tag + info.prefix;
  };
  for (const d of refs.values()) unitOf(d.getSourceFile());
  const files = [...units].filter(([, u]) => !('why' in u)).map(([path]) => path);
  return { cands, files, resolve: (ref) => resolveIn(refs, ref) };
}

/**
 * The value of a module-level `const NAME = <number literal>` that `name` reads: of this file, imported by name
 * (`import { K } from './util.js'`, also renamed), or through a namespace import (`u.K`).
 */
function numericConstant(sf: SourceFile, name: string, depth = 0): number | undefined {
  const dot = name.indexOf('.');
  if (dot < 0) {
    const d = sf.getVariableDeclaration(name);
    const init = d?.getInitializer();
    if (d && init && d.getVariableStatement()?.getDeclarationKind() === 'const' && d.getVariableStatement()?.getParent() === sf) {
      const text = init.getText().replace(/_/g, '');
      return /^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Number(text) : undefined;
    }
  }
  if (depth > 8) return undefined;
  for (const imp of sf.getImportDeclarations()) {
    if (imp.isTypeOnly()) continue;
    const from = () => { try { return imp.getModuleSpecifierSourceFile(); } catch { return undefined; } };
    if (dot < 0) {
      const spec = imp.getNamedImports().find((s) => !s.isTypeOnly() && (s.getAliasNode()?.getText() ?? s.getName()) === name);
      const target = spec && from();
      if (target) return numericConstant(target, spec.getName(), depth + 1);
    } else if (imp.getNamespaceImport()?.getText() === name.slice(0, dot)) {
      const target = from();
      if (target && !name.slice(dot + 1).includes('.')) return numericConstant(target, name.slice(dot + 1), depth + 1);
    }
  }
  return undefined;
}

function functionOfIdentifier(id: Node): FnNode | undefined {
  let sym = id.getSymbol();
  if (sym?.isAlias()) sym = sym.getAliasedSymbol() ?? sym;
  for (const d of sym?.getDeclarations() ?? []) {
    const fn = functionOf(d);
    if (fn) return fn;
  }
  return undefined;
}

function header(name: string | undefined, base: string, line?: number): string {
  return name ? `// Adjoint of ${name} (${base}:${line}), generated by pullback.\n` : `// Adjoints generated by pullback from ${base}. Read-only: edit the source instead.\n`;
}

/**
 * The sweeps `grad` uses for a number-valued function of arrays when only arrays are differentiated: number
 * parameters are held constant (no adjoint code for a step size or a count) and the forward sweep skips what
 * only the value needs. Undefined when they would equal the general sweeps; `rev` is '' when only the forward
 * sweep differs (then `$rev` serves).
 */
function gradientSweeps(norm: ReturnType<typeof normalize>, localTypes: Map<string, string>, general: Sweeps): Sweeps | undefined {
  const fn = norm.fn;
  if (fn.returns !== 'num' || !fn.params.some((p) => p.type === 'arr')) return undefined;
  const g = generate(norm, analyzeActivity(norm, (p) => p.type === 'arr'), localTypes, { gradient: true });
  const code = (text: string) => text.split('\n').filter((l) => !l.trim().startsWith('/**')).join('\n').replace(/\$g(fwd|rev)\b/g, '$$$1');
  const sameRev = code(g.rev) === code(general.rev);
  if (sameRev && code(g.fwd) === code(general.fwd)) return undefined;
  return { ...g, rev: sameRev ? '' : g.rev };
}

/**
 * The text adjointSource() returns for a registered function. A directional derivative (f$dd, written for second
 * order) is internal: no user can name it, and its sweeps' text was a quarter of a compiled module (81 of 297 KB
 * in bench/programs/scalar.ts); it gets a line that says what it is instead.
 */
function registeredSource(prefix: string, name: string, source: string): string {
  return prefix.endsWith('$dd') ? `// ${name}: the directional derivative pullback writes for second order; its sweeps are in the compiled module` : source;
}
