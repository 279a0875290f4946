// SPDX-License-Identifier: MIT
// One source file's scalar adjoints as one WebAssembly module: AssemblyScript printed by
// passes/assemblyscript.ts, compiled by asc -O3 in a worker thread that the transformer waits for (its entry
// points are synchronous, asc's API is not; see asc-run.ts), cached by content hash so that an unchanged file
// is never recompiled.
// Whatever goes wrong here leaves the functions on their JS adjoints, with the reason for `explain(f)`:
// Wasm never fails a user's build.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { AscAnswer, AscJob } from './asc-run.js';
import { stmtExprs, varsOf, walkExpr, walkStmts, type Expr, type Fn } from './ir.js';
import { NotLowerable, asName, helperShape, primalSource, toAssemblyScript, type AsPrinted, type AsScope, type HelperShape } from './passes/assemblyscript.js';
import type { Normalized } from './passes/normalize.js';

export interface WasmCandidate {
  fn: Fn;
  norm: Normalized;
  /** The JS printer's forward and reverse sweeps (TypeScript text). */
  fwd: string;
  rev: string;
  /** The gradient sweeps grad runs, where they differ ('' for grev: the reverse sweep is `rev`). */
  gfwd?: string;
  grev?: string;
  /** A method (static or instance): stays on JS. */
  method: boolean;
  /** For a marked function of another file that this file's functions call: that file (its sweeps are compiled in). */
  origin?: WasmOrigin;
}

/** What the code of one source file resolves its names against. */
export interface WasmScope {
  /** Module-level numeric constants the functions read: name -> value. */
  constant(name: string): number | undefined;
  /**
   * A plain (unmarked) function of the file, by name: the primal of a function with a custom rule, the rule,
   * and what they call. Undefined when the file has no function declaration of that name.
   */
  helper?(name: string): PlainFunction | undefined;
  /**
   * A marked function of another file that the code calls, by the text of the call (`g`, `ns.g`): the prefix of
   * its sweeps in the module (qualified by its origin's tag), or why they are not in it.
   */
  foreign?(ref: string): string | { why: string } | undefined;
}

/**
 * Another source file some of whose marked functions the module's file calls: their sweeps, and what they
 * call of that file, are compiled into the module under names prefixed with `tag`.
 */
export interface WasmOrigin extends WasmScope {
  tag: string;
  /** The file's base name, for reasons. */
  file: string;
}

export interface WasmOptions extends WasmScope {
  /** Where compiled modules are kept, keyed by content hash. */
  cacheDir?: string;
}

export interface PlainFunction {
  /** Its declaration's text. */
  source: string;
  /** What the type checker says it returns (classify's kind; undefined for anything else). */
  returns: 'num' | 'arr' | 'bool' | 'void' | undefined;
  /** Whether it is a `/** @derivative *\/` rule. */
  rule: boolean;
}

export interface WasmLowering {
  /** The module, when at least one function lowered and asc succeeded. */
  bytes?: Uint8Array;
  /** Per function prefix: undefined when it runs on Wasm, else why it stays on JS. */
  reasons: Map<string, string | undefined>;
}

/** The prefixes of the functions the transformer writes for second order: f$dd, and g$grad0 / g$vjp0 of nested grads. */
const SECOND_ORDER = /\$(dd|grad\d+|vjp\d+)$/;

/** Counters for tests and for the curious: how often asc really ran, and how often the cache answered. */
export const wasmStats = { ascRuns: 0, cacheHits: 0 };

const supportPath = fileURLToPath(new URL('../../runtime-wasm/scalar/support.as.ts', import.meta.url));
const runnerPath = fileURLToPath(new URL('./asc-run.js', import.meta.url));
const ASC_FLAGS = ['-O3', '--runtime', 'minimal', '--exportRuntime', '--initialMemory', '64'];

/**
 * node_modules/.cache/pullback of the project pullback is installed in (of this repository, when it is the
 * project), wherever the build runs from: every entry point and every working directory share one cache.
 * A linked install (`npm i ../pullback`, `npm link pullback`) resolves to pullback's own folder: the project is
 * then the nearest folder at or above the working directory whose node_modules/pullback links there.
 */
export function defaultCacheDir(): string {
  if (process.env.PULLBACK_CACHE_DIR) return process.env.PULLBACK_CACHE_DIR;
  const pkg = fileURLToPath(new URL('../../', import.meta.url));
  const parent = dirname(pkg);
  if (basename(parent) === 'node_modules') return join(parent, '.cache', 'pullback');
  return join(linkingProject(pkg) ?? pkg, 'node_modules', '.cache', 'pullback');
}

function linkingProject(pkg: string): string | undefined {
  let real: string;
  try { real = realpathSync(pkg); } catch { return undefined; }
  for (let d = process.cwd(); ; d = dirname(d)) {
    const link = join(d, 'node_modules', 'pullback');
    try { if (realpathSync(link) === real) return d; } catch { /* not installed here */ }
    if (dirname(d) === d) return undefined;
  }
}

/** The AssemblyScript text of a file's lowerable functions, with the reason each other one stays on JS. */
export function assemblyScriptOf(cands: WasmCandidate[], opts: WasmOptions): { source: string; reasons: Map<string, string | undefined> } {
  const reasons = new Map<string, string | undefined>();
  const functions = new Set<string>();
  const owner = new Map<string, string>();
  /** A function's prefix in the module: another file's are qualified by their origin's tag. */
  const qp = (c: WasmCandidate) => (c.origin?.tag ?? '') + c.fn.prefix;
  /** How a reason names a function of the module: another file's with its file. */
  const shown = new Map<string, string>();
  for (const c of cands) {
    const p = qp(c);
    shown.set(p, c.origin ? `${c.fn.name} (${c.origin.file})` : p);
    const names = [p, `${p}$fwd`, `${p}$rev`, ...(c.gfwd ? [`${p}$gfwd`] : []), ...(c.grev ? [`${p}$grev`] : [])];
    for (const name of names) { functions.add(name); owner.set(name, p); }
  }
  // Plain functions the code calls, printed the first time one is asked for (the entry exists before its body
  // is printed, so that recursion finds it); `why` says what keeps one off Wasm. Keyed by qualified name.
  type Helper = { name: string; shape: HelperShape; rule: boolean; printed?: AsPrinted; why?: string };
  const helpers = new Map<string, Helper>();
  /** The scope of the code of one file: this module's own (tag '') or another's compiled into it. */
  const scopes = new Map<WasmOrigin | undefined, AsScope>();
  const scopeOf = (o: WasmOrigin | undefined): AsScope => {
    const known = scopes.get(o);
    if (known) return known;
    const tag = o?.tag ?? '';
    const src = o ?? opts;
    const scope: AsScope = {
      functions,
      constant: src.constant,
      ...(tag ? { qualify: (name: string) => tag + name } : {}),
      ...(src.foreign ? { foreign: src.foreign } : {}),
      helper(name) {
        const key = tag + name;
        const known = helpers.get(key);
        if (known) return known.shape;
        const plain = src.helper?.(name);
        if (!plain) return undefined;
        const h: Helper = { name: o ? `${name} (${o.file})` : name, shape: { returns: 'f64' }, rule: plain.rule };
        helpers.set(key, h);
        try {
          h.shape = helperShape(plain.source, plain.returns, plain.rule);
          h.printed = toAssemblyScript(plain.source, scope, h.shape);
        } catch (e) {
          if (!(e instanceof NotLowerable)) throw e;
          h.why = e.message;
        }
        return h.shape;
      },
    };
    scopes.set(o, scope);
    return scope;
  };
  const printed = new Map<string, AsPrinted>();
  const intVersions = new Map<string, Set<string>>();
  for (const c of cands) {
    const p = qp(c), scope = scopeOf(c.origin);
    const why = precheck(c);
    if (why) { reasons.set(p, why); continue; }
    try {
      const gradient = c.gfwd ? `\n\n${c.gfwd}${c.grev ? `\n\n${c.grev}` : ''}` : '';
      const r = toAssemblyScript(`${primalSource(c.norm)}\n\n${c.fwd}\n\n${c.rev}${gradient}`, scope);
      // Another file's functions, and those that return an array, are called by the sweeps of this module only,
      // never through the exported wrappers: no integer version.
      const ints = c.origin || c.fn.returns === 'arr' ? new Set<string>() : integerParams(c);
      if (ints.size) {
        // The sweeps again with those parameters as integers; the wrappers choose per call (see IntVersion).
        const v = toAssemblyScript(`${c.fwd}\n\n${c.rev}${gradient}`, scope, undefined, { params: ints, suffix: INT_SUFFIX });
        r.text += `\n\n${v.text}`;
        for (const f of v.calls) r.calls.add(f);
        for (const [k, x] of v.constants) r.constants.set(k, x);
        intVersions.set(p, ints);
      }
      printed.set(p, r);
      reasons.set(p, undefined);
    } catch (e) {
      if (!(e instanceof NotLowerable)) throw e;
      reasons.set(p, e.message);
    }
  }
  // A function lowers only when everything it calls does: the other functions' sweeps, and the plain functions.
  const blocked = (name: string, from: string): string | undefined => {
    const h = helpers.get(name);
    if (h) return h.why === undefined ? undefined : `it calls ${h.rule ? 'the custom derivative ' : ''}${h.name}, which cannot run on Wasm: ${h.why}`;
    const q = owner.get(name)!;
    return q !== from && !printed.has(q) ? `it calls ${shown.get(q) ?? q}, which stays on JS (${reasons.get(q) ?? 'see explain'})` : undefined;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (const [name, h] of helpers) {
      const why = h.why === undefined ? [...h.printed!.calls].map((f) => blocked(f, name)).find(Boolean) : undefined;
      if (why) { h.why = why; changed = true; }
    }
    for (const [p, r] of printed) {
      const why = [...r.calls].map((f) => blocked(f, p)).find(Boolean);
      if (why) { printed.delete(p); reasons.set(p, why); changed = true; }
    }
  }
  // What the module holds: the user's functions, and what they reach of the plain functions, of other files'
  // functions and of the second-order code (a nested grad's g$grad0 and the g$dd it runs). The rest of the
  // second-order code, which only hvp, hessian and grad(grad(f)) run, stays on the JS sweeps: it was most of
  // asc's time.
  const used = new Set<string>(), reached = new Set<string>();
  const reach = (calls: Set<string>) => {
    for (const f of calls) {
      const h = helpers.get(f), q = owner.get(f);
      if (h && !used.has(f)) { used.add(f); reach(h.printed!.calls); }
      if (q !== undefined && !reached.has(q)) { reached.add(q); reach(printed.get(q)!.calls); }
    }
  };
  // A function that returns an array runs on Wasm only inside the sweeps of its callers there (the glue hands
  // numbers back, not arrays): its own grad, vjp and valueAndGrad stay on its JS sweeps.
  const foreign = new Set(cands.filter((c) => c.origin).map(qp));
  const arrayValued = new Set(cands.filter((c) => c.fn.returns === 'arr').map(qp));
  for (const [p, r] of printed) if (!SECOND_ORDER.test(p) && !foreign.has(p) && !arrayValued.has(p)) { reached.add(p); reach(r.calls); }
  for (const p of printed.keys()) {
    if (!reached.has(p)) {
      printed.delete(p);
      reasons.set(p, foreign.has(p) ? 'not called by this file\'s functions' : arrayValued.has(p) ? ARRAY_VALUED : 'second-order code (hvp, hessian, grad of grad) runs on the JS sweeps');
    }
  }
  for (const p of arrayValued) if (printed.has(p)) reasons.set(p, `${ARRAY_VALUED}; the Wasm functions that call it run its Wasm sweeps`);
  if (!printed.size) return { source: '', reasons };
  const constants = new Map<string, number>();
  for (const r of [...printed.values(), ...[...used].map((f) => helpers.get(f)!.printed!)]) for (const [k, v] of r.constants) constants.set(k, v);
  const parts = [
    readFileSync(supportPath, 'utf8'),
    '// ---- constants of the module ----',
    ...[...constants].map(([k, v]) => `const ${asName(k)}: f64 = ${Number.isFinite(v) ? (Number.isInteger(v) ? `${v}.0` : String(v)) : String(v)};`),
  ];
  if (used.size) parts.push('// ---- plain functions of the module that the sweeps call (custom rules and their primals) ----', ...[...used].map((f) => helpers.get(f)!.printed!.text));
  for (const c of cands) {
    const r = printed.get(qp(c));
    if (!r) continue;
    parts.push(`// ---- ${c.fn.name} (${c.fn.file.split('/').pop()}:${c.fn.line})${c.origin ? ', which this file calls' : ''} ----`, r.text);
    if (c.origin || c.fn.returns === 'arr') continue;
    const ints = intVersions.get(c.fn.prefix);
    parts.push(wrappers(c.fn, undefined, ints));
    if (c.gfwd) parts.push(wrappers(c.fn, c.grev ? '$grev' : '$rev', ints));
  }
  return { source: parts.join('\n\n') + '\n', reasons };
}

/** What the printer could accept but the glue cannot. */
function precheck(c: WasmCandidate): string | undefined {
  if (c.method) return 'methods stay on the JS adjoint for now';
  if (c.fn.usesThis) return 'it uses `this`';
  if (c.fn.returns !== 'num' && c.fn.returns !== 'arr') return 'it returns neither a number nor an array';
  if (c.fn.params.filter((p) => p.type === 'num').length > 64) return 'it has more than 64 number parameters';
  if (c.fn.params.some((p) => p.type === 'bool')) return 'it takes a boolean parameter';
  // The Wasm sweeps work on copies of the array arguments: a function that writes into an argument (or an
  // alias of one) would not change the caller's array as the JS adjoint does.
  const fromParam = new Set(c.fn.params.filter((p) => p.type === 'arr').map((p) => p.name));
  let stores = '';
  for (let grew = true; grew;) {
    grew = false;
    const visit = (ss: Normalized['body']) => {
      for (const s of ss) {
        if ((s.k === 'decl' || s.k === 'assign') && !fromParam.has(s.name)) {
          const e = s.k === 'decl' ? s.init : s.value;
          const src = e?.k === 'var' ? e.name : e?.k === 'view' && e.arr.k === 'var' ? e.arr.name : undefined;
          if (src && fromParam.has(src)) { fromParam.add(s.name); grew = true; }
        }
        if (s.k === 'store' && fromParam.has(s.arr)) stores ||= s.src.text;
        if (s.k === 'if') { visit(s.then); visit(s.else); }
        if (s.k === 'loop') { visit(s.init); visit(s.body); visit(s.update); }
      }
    };
    visit(c.norm.body);
  }
  return stores ? `it writes into an array argument (\`${stores}\`); the Wasm sweeps work on copies` : undefined;
}

/**
 * The exported entry points of one function, in the calling convention of support.as.ts: JS has written the
 * array arguments into their frame's slots before the forward sweep, and the caller's adjoints of them before
 * the reverse sweep (it accumulates into them, as the JS sweep does into the caller's arrays), and reads the
 * adjoints from the same slots after it.
 */
function wrappers(fn: Fn, gradient?: '$grev' | '$rev', ints?: Set<string>): string {
  // The gradient sweeps' wrappers ($gfwd$w, $grev$w, and $grad$w for both) run f$gfwd and f$grev (or f$rev) and
  // hand back the arrays' adjoints only: grad holds the number parameters constant, and its adjoints start from zero.
  const F = gradient ? '$gfwd' : '$fwd', R = gradient ?? '$rev';
  const arrs = fn.params.map((p, i) => ({ p, i })).filter(({ p }) => p.type === 'arr');
  const nums = fn.params.filter((p) => p.type === 'num');
  const numOut = gradient ? 0 : nums.length;
  const numSig = nums.map((_, j) => `n${j}: f64`);
  const args = fn.params.map((p, i) => (p.type === 'arr' ? `a${i}` : `n${nums.indexOf(p)}`));
  const shadows = arrs.map(({ i }) => `s${i}`);
  // With an integer version: it runs when every one of its integer parameters holds an integer.
  const intArgs = fn.params.map((p, i) => (p.type !== 'num' ? `a${i}` : ints?.has(p.name) ? `<i64>n${nums.indexOf(p)}` : `n${nums.indexOf(p)}`));
  const test = ints?.size ? fn.params.filter((p) => p.type === 'num' && ints.has(p.name)).map((p) => `$isInt(n${nums.indexOf(p)})`).join(' && ') : '';
  const pick = (f: string, lead: string[], tail: string[], prefix: string) => (test
    ? [`  if (${test}) ${prefix}${asName(`${fn.prefix}${f}${INT_SUFFIX}`)}(${[...lead, ...intArgs, ...tail].join(', ')});`,
      `  else ${prefix}${asName(`${fn.prefix}${f}`)}(${[...lead, ...args, ...tail].join(', ')});`]
    : [`  ${prefix}${asName(`${fn.prefix}${f}`)}(${[...lead, ...args, ...tail].join(', ')});`]);
  const fwd = [
    `export function ${fn.prefix}${F}$w(${['id: i32', ...arrs.map(({ i }) => `len${i}: i32`), ...numSig].join(', ')}): f64 {`,
    '  const fr = $frame(id);',
    ...arrs.flatMap(({ i }, j) => [`  const a${i} = $slot(fr, ${2 * j}, len${i});`, `  const s${i} = $slot(fr, ${2 * j + 1}, len${i});`]),
    ...(test ? ['  let r: f64;', ...pick(F, ['fr.tape'], shadows, 'r = '), '  return r;'] : pick(F, ['fr.tape'], shadows, 'return ')),
    '}',
  ];
  const rev = [
    `export function ${fn.prefix}${gradient ? '$grev' : '$rev'}$w(${['id: i32', ...numSig, 'seed: f64'].join(', ')}): f64 {`,
    '  const fr = $frameAt(id);',
    ...arrs.flatMap(({ i }, j) => [`  const a${i} = unchecked(fr.slots[${2 * j}]);`, `  const s${i} = unchecked(fr.slots[${2 * j + 1}]);`, ...(gradient ? [`  $zero(s${i});`] : [])]),
    ...(numOut === 1 ? ['  let r: f64;'] : []),
    ...pick(R, ['fr.tape'], [...shadows, 'seed'], numOut === 1 ? 'r = ' : ''),
    ...(numOut > 1 ? [`  $outD(fr.tape, ${numOut});`] : []),
    `  return ${numOut === 1 ? 'r' : '0.0'};`,
    '}',
  ];
  if (!gradient) return [...fwd, '', ...rev].join('\n');
  // grad's direct path (sdk/ad/wasm.ts) runs both gradient sweeps in one call, with the seed 1: one entry into
  // Wasm and one frame lookup instead of two (measured: 42 against 50 ns for Rosenbrock of 2 values).
  const sweeps = (int: boolean) => {
    const call = (f: string, tail: string[]) => `${asName(`${fn.prefix}${f}${int ? INT_SUFFIX : ''}`)}(${['fr.tape', ...(int ? intArgs : args), ...tail].join(', ')});`;
    return [call(F, shadows), ...shadows.map((s) => `$zero(${s});`), call(R, [...shadows, '1.0'])];
  };
  const both = [
    `export function ${fn.prefix}$grad$w(${['id: i32', ...arrs.map(({ i }) => `len${i}: i32`), ...numSig].join(', ')}): void {`,
    '  const fr = $frame(id);',
    ...arrs.flatMap(({ i }, j) => [`  const a${i} = $slot(fr, ${2 * j}, len${i});`, `  const s${i} = $slot(fr, ${2 * j + 1}, len${i});`]),
    ...(test ? [`  if (${test}) {`, ...sweeps(true).map((l) => `    ${l}`), '  } else {', ...sweeps(false).map((l) => `    ${l}`), '  }'] : sweeps(false).map((l) => `  ${l}`)),
    '}',
  ];
  return [...fwd, '', ...rev, '', ...both].join('\n');
}

const INT_SUFFIX = '$int';

/** Why a function that returns an array keeps its own gradient on JS. */
const ARRAY_VALUED = 'it returns an array: its own grad, vjp and valueAndGrad run its JS sweeps (the Wasm glue hands back numbers)';

/**
 * The number parameters worth an integer version of the sweeps: never assigned, and read where integers
 * are wanted (an element index, an array length, a loop test), as a grid size or a step count is.
 */
function integerParams(c: WasmCandidate): Set<string> {
  const nums = new Set(c.fn.params.filter((p) => p.type === 'num').map((p) => p.name));
  const out = new Set<string>();
  const note = (e: Expr | null | undefined) => { if (e) for (const v of varsOf(e)) if (nums.has(v)) out.add(v); };
  walkStmts(c.norm.body, (s) => {
    if ((s.k === 'assign' || s.k === 'decl') && nums.has(s.name)) nums.delete(s.name);
    if (s.k === 'store') note(s.idx);
    if (s.k === 'loop') note(s.cond);
    for (const e of stmtExprs(s)) walkExpr(e, (x) => { if (x.k === 'index') note(x.idx); if (x.k === 'alloc') note(x.len); });
  });
  for (const v of out) if (!nums.has(v)) out.delete(v);
  return out;
}

/** Compiles a file's functions to Wasm (or takes them from the cache). Never throws for the user's code. */
export function lowerToWasm(cands: WasmCandidate[], opts: WasmOptions): WasmLowering {
  const { source, reasons } = assemblyScriptOf(cands, opts);
  if (!source) return { reasons };
  const failAll = (why: string): WasmLowering => {
    for (const [p, r] of reasons) if (r === undefined) reasons.set(p, why);
    return { reasons };
  };
  const ascVersion = ascVersionOf();
  if (!ascVersion) return failAll('assemblyscript is not installed (npm i -D assemblyscript enables the Wasm adjoints)');
  const hash = createHash('sha256').update(source).update('\0').update(ASC_FLAGS.join(' ')).update('\0').update(ascVersion).digest('hex').slice(0, 32);
  const dir = opts.cacheDir ?? defaultCacheDir();
  const wasmPath = join(dir, `${hash}.wasm`);
  if (existsSync(wasmPath)) {
    wasmStats.cacheHits++;
    return { bytes: new Uint8Array(readFileSync(wasmPath)), reasons };
  }
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${process.pid}-${Date.now()}`;
    const input = join(dir, `${hash}.ts`);
    writeFileSync(`${input}.${tmp}`, source);
    renameSync(`${input}.${tmp}`, input);
    wasmStats.ascRuns++;
    const r = runAsc({ input, output: `${wasmPath}.${tmp}`, flags: ASC_FLAGS });
    if (!r.ok) {
      const log = r.log;
      const first = /ERROR[^\n]*\n[^\n]*\n[^\n]*/.exec(log)?.[0] ?? log.trim().split('\n').slice(0, 3).join(' ');
      return failAll(`asc could not compile the generated AssemblyScript (${first.replace(/\s+/g, ' ').slice(0, 300)}); the source is in ${input}`);
    }
    renameSync(`${wasmPath}.${tmp}`, wasmPath);
    return { bytes: new Uint8Array(readFileSync(wasmPath)), reasons };
  } catch (e) {
    return failAll(`the Wasm build failed: ${(e as Error).message}`);
  }
}

/** The asc worker of this process, started by the first compilation, ended after a while without one. */
let asc: { worker: Worker; port: MessagePort; signal: Int32Array; idle?: NodeJS.Timeout } | undefined;
const ASC_TIMEOUT_MS = 120_000, ASC_IDLE_MS = 10_000;

/** Runs asc on the worker and waits for it (the transformer is synchronous). */
function runAsc(job: AscJob): AscAnswer {
  if (!asc) {
    const { port1, port2 } = new MessageChannel();
    const signal = new Int32Array(new SharedArrayBuffer(4));
    // execArgv: [] so that the worker does not load what the process was started with (the register hook).
    const worker = new Worker(runnerPath, { workerData: { port: port2, signal }, transferList: [port2], execArgv: [] });
    worker.unref(); // an idle worker never keeps the process alive
    port1.unref();
    asc = { worker, port: port1, signal };
  }
  const w = asc;
  clearTimeout(w.idle);
  Atomics.store(w.signal, 0, 0);
  w.worker.postMessage(job);
  const waited = Atomics.wait(w.signal, 0, 0, ASC_TIMEOUT_MS);
  const answer = receiveMessageOnPort(w.port)?.message as AscAnswer | undefined;
  if (waited === 'timed-out' || !answer || answer.ended) {
    // Timed out, or the worker crashed (it answers that before it ends) or died without a word: a fresh one
    // for the next file.
    void w.worker.terminate();
    asc = undefined;
    if (answer && waited !== 'timed-out') return answer;
    return { ok: false, log: waited === 'timed-out' ? `asc took more than ${ASC_TIMEOUT_MS / 1000} s` : 'the asc worker stopped without an answer' };
  }
  // asc and binaryen hold about 250 MB after a file: let them go once the build is over.
  w.idle = setTimeout(() => { if (asc === w) asc = undefined; void w.worker.terminate(); }, ASC_IDLE_MS);
  w.idle.unref();
  return answer;
}

let ascVersionCache: string | null | undefined;
function ascVersionOf(): string | null {
  if (ascVersionCache !== undefined) return ascVersionCache;
  try {
    ascVersionCache = String((createRequire(import.meta.url)('assemblyscript/package.json') as { version: string }).version);
  } catch {
    ascVersionCache = null; // not installed: the functions stay on JS, and explain says why
  }
  return ascVersionCache;
}
