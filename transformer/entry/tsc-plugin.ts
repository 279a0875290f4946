// SPDX-License-Identifier: MIT
// The ts-patch plugin behind `pullback/transformer`. Our compiler maps TypeScript text to TypeScript
// text, so the plugin works on texts, never on tsc's AST, and it works in both ways ts-patch can call it:
//
//   { "transform": "pullback/transformer", "transformProgram": true }   (recommended)
//     A program transformer: the Program is re-created from the transformed texts, so tsc type-checks
//     and emits the generated code; our diagnostics are semantic diagnostics of the new Program.
//   { "transform": "pullback/transformer" }
//     A source transformer, run by tsc at emit time after type checking (so not at all under noEmit):
//     each transformed text is re-parsed and its new statements are emitted; our diagnostics are emit
//     diagnostics. New statements are emitted syntactically, so generated code must import types with
//     `import type` (tsc's checker cannot elide imports it never saw).
//
// Either way a diagnostic sits at the node the compiler named, with category error or warning, and tsc
// exits non-zero when there is one (tsc treats any diagnostic, a warning too, as a failed build).
import type * as TS from 'typescript';
import type { PluginConfig, ProgramTransformerExtras, TransformerExtras } from 'ts-patch';
import { createFilter, type FilterPattern } from '@rollup/pluginutils';
import { createCompiler, type Compiler, type PullbackDiagnostic } from '../compiler.js';
import { errorsOf } from './shared.js';

type Ts = ProgramTransformerExtras['ts'];

export interface TscPluginConfig extends PluginConfig {
  include?: FilterPattern;
  exclude?: FilterPattern;
  /** Passed to the compiler (default: its own default). */
  wasm?: boolean;
  /** Passed to the compiler: false leaves out the code second order needs (about half of each module). */
  secondOrder?: boolean;
}

/** Code of every pullback diagnostic (`error TS99001: ...`), outside the range TypeScript uses. */
export const PULLBACK_DIAGNOSTIC_CODE = 99001;

type CompilerFactory = (program: TS.Program, config: TscPluginConfig) => Compiler;

/**
 * The plugin over a given compiler factory (tests pass one that reports diagnostics). ts-patch calls it
 * as (program, host, config, { ts }) for a program transformer and as (program, config, extras) for
 * source transformers; only the latter's extras have addDiagnostic.
 */
export function pluginWith(makeCompiler: CompilerFactory) {
  return (program: TS.Program, a?: unknown, b?: unknown, c?: unknown): unknown => {
    if (typeof (b as TransformerExtras | undefined)?.addDiagnostic === 'function') {
      const config = (a ?? {}) as TscPluginConfig;
      return sourceTransformers(program, config, b as TransformerExtras, makeCompiler(program, config));
    }
    const config = (b ?? {}) as TscPluginConfig;
    return transformProgram(program, a as TS.CompilerHost | undefined, config, c as ProgramTransformerExtras, makeCompiler(program, config));
  };
}

const compilerFor: CompilerFactory = (program, config) => {
  const tsConfigFilePath = program.getCompilerOptions().configFilePath;
  return createCompiler({ wasm: config.wasm, secondOrder: config.secondOrder, tsConfigFilePath: typeof tsConfigFilePath === 'string' ? tsConfigFilePath : undefined });
};

export default pluginWith(compilerFor);

/** The user's own sources: not declaration files, not libraries, and passing include/exclude. */
function sourcesToTransform(program: TS.Program, config: TscPluginConfig): TS.SourceFile[] {
  const filter = createFilter(config.include ?? /\.[cm]?ts$/, config.exclude);
  return program.getSourceFiles().filter((sf) =>
    !sf.isDeclarationFile && !program.isSourceFileFromExternalLibrary(sf) && !program.isSourceFileDefaultLibrary(sf) &&
    filter(sf.fileName));
}

/** A TypeScript diagnostic at the compiler's span, in the (original) file it names. */
export function toTsDiagnostic(ts: Ts, d: PullbackDiagnostic, program: TS.Program, fallback: TS.SourceFile): TS.Diagnostic {
  return {
    file: program.getSourceFile(d.file) ?? fallback,
    start: d.start,
    length: d.length,
    messageText: d.message,
    category: d.category === 'error' ? ts.DiagnosticCategory.Error : ts.DiagnosticCategory.Warning,
    code: PULLBACK_DIAGNOSTIC_CODE,
    source: 'pullback',
  };
}

/** Program transformer: the same Program, with the transformed texts, and our diagnostics added to it. */
export function transformProgram(
  program: TS.Program, host: TS.CompilerHost | undefined, config: TscPluginConfig,
  { ts }: ProgramTransformerExtras, compiler: Compiler,
): TS.Program {
  const texts = new Map<string, string>();
  const generated = new Map<string, [number, number][]>();
  const diagnostics: TS.Diagnostic[] = [];
  for (const sf of sourcesToTransform(program, config)) {
    const result = compiler.transform(sf.fileName, sf.text);
    diagnostics.push(...result.diagnostics.map((d) => toTsDiagnostic(ts, d, program, sf)));
    if (result.changed && errorsOf(result.diagnostics).length === 0) {
      texts.set(sf.fileName, result.code);
      generated.set(sf.fileName, result.generated);
    }
  }
  const next = texts.size === 0 ? program : recreate(ts, program, host, texts);
  if (diagnostics.length > 0 || generated.size > 0) {
    // The generated sweeps are checked by pullback's own tests; the user's style options (noUnusedLocals,
    // noUncheckedIndexedAccess...) are not theirs to satisfy, and their positions are not in the user's file.
    const inGenerated = (d: TS.Diagnostic) => d.file !== undefined && d.start !== undefined &&
      (generated.get(d.file.fileName) ?? []).some(([a, b]) => d.start! >= a && d.start! < b);
    const semantic = next.getSemanticDiagnostics.bind(next);
    next.getSemanticDiagnostics = (sf, token) => [
      ...diagnostics.filter((d) => !sf || d.file?.fileName === sf.fileName),
      ...semantic(sf, token).filter((d) => !inGenerated(d)),
    ];
  }
  return next;
}

function recreate(ts: Ts, program: TS.Program, host: TS.CompilerHost | undefined, texts: Map<string, string>): TS.Program {
  const options = program.getCompilerOptions();
  const base = host ?? ts.createCompilerHost(options);
  const overlay: TS.CompilerHost = Object.create(base);
  const parse = (fileName: string, languageVersion: TS.ScriptTarget | TS.CreateSourceFileOptions) => {
    const text = texts.get(fileName);
    if (text === undefined) return undefined;
    const sf = ts.createSourceFile(fileName, text, languageVersion);
    // Builder programs (--incremental, --watch) insist on a version for every file.
    (sf as { version?: string }).version = base.createHash?.(text) ?? ts.sys.createHash?.(text) ?? text;
    return sf;
  };
  overlay.getSourceFile = (fileName, languageVersion, ...rest) =>
    parse(fileName, languageVersion) ?? base.getSourceFile(fileName, languageVersion, ...rest);
  if (base.getSourceFileByPath) {
    const byPath = base.getSourceFileByPath.bind(base);
    overlay.getSourceFileByPath = (fileName, path, languageVersion, ...rest) =>
      parse(fileName, languageVersion) ?? byPath(fileName, path, languageVersion, ...rest);
  }
  return ts.createProgram({
    rootNames: program.getRootFileNames(),
    options,
    host: overlay,
    oldProgram: program,
    projectReferences: program.getProjectReferences(),
    configFileParsingDiagnostics: program.getConfigFileParsingDiagnostics(),
  });
}

/** Source transformer: each changed file's new text, re-parsed, replaces its statements at emit time. */
export function sourceTransformers(
  program: TS.Program, config: TscPluginConfig, extras: TransformerExtras, compiler: Compiler,
): { before: TS.TransformerFactory<TS.SourceFile> } {
  const { ts } = extras;
  const wanted = new Set(sourcesToTransform(program, config).map((sf) => sf.fileName));
  return {
    before: (context) => (sf) => {
      if (!wanted.has(sf.fileName)) return sf;
      const result = compiler.transform(sf.fileName, sf.text);
      for (const d of result.diagnostics) extras.addDiagnostic(toTsDiagnostic(ts, d, program, sf));
      if (!result.changed || errorsOf(result.diagnostics).length > 0) return sf;
      return context.factory.updateSourceFile(sf, reparse(ts, sf, result.code));
    },
  };
}

/**
 * The statements of `code`: those whose text is unchanged from `sf` are sf's own (bound) nodes, so
 * tsc's checker still decides e.g. which imports are types only; new ones are parsed and marked as
 * synthesized, which makes tsc's transforms treat them syntactically and print them without `sf`'s text.
 */
function reparse(ts: Ts, sf: TS.SourceFile, code: string): TS.Statement[] {
  const textOf = (s: TS.Statement, file: TS.SourceFile) => file.text.slice(s.getStart(file), s.end);
  const originals = new Map<string, TS.Statement[]>();
  for (const s of sf.statements) originals.set(textOf(s, sf), [...(originals.get(textOf(s, sf)) ?? []), s]);
  const fresh = ts.createSourceFile(sf.fileName, code, sf.languageVersion, true, ts.ScriptKind.TS);
  return fresh.statements.map((s) => originals.get(textOf(s, fresh))?.shift() ?? synthesize(ts, s));
}

function synthesize<T extends TS.Node>(ts: Ts, node: T): T {
  type Mutable = { pos: number; end: number; flags: number };
  const visit = (n: TS.Node): void => {
    const m = n as unknown as Mutable;
    m.pos = -1;
    m.end = -1;
    m.flags |= ts.NodeFlags.Synthesized;
    ts.forEachChild(n, visit, (list) => {
      (list as unknown as Mutable).pos = -1;
      (list as unknown as Mutable).end = -1;
      list.forEach(visit);
    });
  };
  visit(node);
  return node;
}
