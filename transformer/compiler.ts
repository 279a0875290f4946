// SPDX-License-Identifier: MIT
// The one entry into the transformer that every front end (tsc plugin, rollup plugin, CLI, register hook)
// goes through, so that all four produce byte-identical code for the same input.
import { Project, ts } from 'ts-morph';
import { transformSourceFile } from './module.js';

export interface PullbackDiagnostic {
  file: string;
  /** 1-based line and column of the offending node. */
  line: number;
  column: number;
  /** 0-based character offset and length in the original text, for tools that want spans. */
  start: number;
  length: number;
  category: 'error' | 'warning';
  message: string;
}

export interface TransformResult {
  /** TypeScript text of the module with every marked function's adjoint and its registration appended. */
  code: string;
  /** True when the file had at least one marked function (otherwise `code` is the input text). */
  changed: boolean;
  diagnostics: PullbackDiagnostic[];
  /** Readable text of the generated adjoints only (what `--emit-adjoint` writes and `adjointSource` returns). */
  adjointSource: string;
  /**
   * Character ranges [start, end) of `code` that the transformer wrote. A type checker run with the user's
   * style options (noUnusedLocals, noUncheckedIndexedAccess...) should not report on them.
   */
  generated: [number, number][];
  /**
   * Other files whose code the module's Wasm holds (their marked functions that this file calls): a build that
   * watches files must transform this one again when one of them changes.
   */
  dependencies?: string[];
}

export interface CompilerOptions {
  /**
   * Lower scalar adjoints to WebAssembly through AssemblyScript. Off by default (or PULLBACK_WASM=1): the Wasm
   * sweeps are rarely much faster than the JS adjoint they are printed from (0.92-1.36x on bench:scalar's rows).
   */
  wasm?: boolean;
  /** A tsconfig to resolve imports and types with; without one, defaults suited to ES modules are used. */
  tsConfigFilePath?: string;
  /** Where compiled Wasm modules are cached by content hash (default node_modules/.cache/pullback, or $PULLBACK_CACHE_DIR). */
  cacheDir?: string;
  /**
   * Write each scalar function's directional derivative, which hvp, hessian and grad(grad(f)) run (default true,
   * or PULLBACK_SECOND_ORDER=0 for false). Off, a compiled module is about half the size (bench/programs/scalar.ts:
   * 216 -> 125 KB, built with --wasm) and second order throws.
   */
  secondOrder?: boolean;
}

export interface Compiler {
  readonly project: Project;
  /** Transforms one file. `text` overrides what is on disk (a bundler or loader passes what it read). */
  transform(fileName: string, text?: string): TransformResult;
}

/** `file:line:col: message`, the format every front end prints. */
export function formatDiagnostic(d: PullbackDiagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.category === 'warning' ? 'warning: ' : ''}${d.message}`;
}

/** Thrown by front ends that cannot report diagnostics any other way (CLI, rollup, register hook). */
export class PullbackCompileError extends Error {
  constructor(readonly diagnostics: PullbackDiagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'PullbackCompileError';
  }
}

/** TypeScript → ES module JavaScript, with relative `.ts` imports rewritten to `.js`. */
export function transpileToJs(code: string, fileName: string): { code: string; map?: string } {
  const out = ts.transpileModule(code, {
    fileName,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      sourceMap: true,
      inlineSources: true,
      rewriteRelativeImportExtensions: true,
      verbatimModuleSyntax: false,
      isolatedModules: true,
      useDefineForClassFields: true,
      experimentalDecorators: false,
    },
  });
  return { code: out.outputText.replace(/\n\/\/# sourceMappingURL=.*$/m, ''), map: out.sourceMapText };
}

export function createCompiler(options: CompilerOptions = {}): Compiler {
  // Opt-in for now: the Wasm sweeps are correct but rarely much faster than the JS adjoint (see issue 4's note).
  const wasm = options.wasm ?? (typeof process !== 'undefined' && process.env.PULLBACK_WASM === '1');
  const secondOrder = options.secondOrder ?? !(typeof process !== 'undefined' && process.env.PULLBACK_SECOND_ORDER === '0');
  const project = options.tsConfigFilePath
    ? new Project({ tsConfigFilePath: options.tsConfigFilePath, skipAddingFilesFromTsConfig: true })
    : new Project({
        compilerOptions: {
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.NodeNext,
          moduleResolution: ts.ModuleResolutionKind.NodeNext,
          strict: true,
          allowImportingTsExtensions: true,
          noEmit: true,
          skipLibCheck: true,
        },
      });
  return {
    project,
    transform(fileName: string, text?: string): TransformResult {
      const existing = project.getSourceFile(fileName);
      const sf = text !== undefined
        ? (existing && existing.getFullText() === text ? existing : project.createSourceFile(fileName, text, { overwrite: true }))
        : existing ?? project.addSourceFileAtPath(fileName);
      // Callees in other modules must be visible to the type checker.
      sf.getImportDeclarations().forEach((d) => { try { d.getModuleSpecifierSourceFile(); } catch { /* unresolved: reported by tsc */ } });
      project.resolveSourceFileDependencies();
      return transformSourceFile(sf, { wasm, cacheDir: options.cacheDir, secondOrder });
    },
  };
}
