// SPDX-License-Identifier: MIT
// The Rollup plugin behind `pullback/rollup`:
//
//   import pullback from 'pullback/rollup';
//   export default { input: 'src/main.ts', plugins: [pullback()], output: { dir: 'out', format: 'es' } };
//
// Every TypeScript module goes through the compiler (one instance, so imported marked functions are
// seen with their types) and then to JavaScript with a source map. A relative import of `./x.js` or
// `./x` from a TypeScript module resolves to `./x.ts` when that file exists, as tsc resolves it.
import { dirname, resolve } from 'node:path';
import type { Plugin, PluginContext, RollupLog } from 'rollup';
import { createFilter, type FilterPattern } from '@rollup/pluginutils';
import {
  createCompiler, formatDiagnostic, transpileToJs, PullbackCompileError, type Compiler, type PullbackDiagnostic,
} from '../compiler.js';
import { errorsOf, isRelativeSpecifier, isTsSource, tsFileFor, warningsOf } from './shared.js';

export interface PullbackRollupOptions {
  /** Modules to transform (default: `.ts` and `.mts` files). */
  include?: FilterPattern;
  /** Modules to leave alone (default: anything under node_modules). */
  exclude?: FilterPattern;
  /** Passed to the compiler (default: its own default). */
  wasm?: boolean;
  /** Passed to the compiler: false leaves out the code second order needs (about half of each module). */
  secondOrder?: boolean;
  /** A tsconfig for the compiler to resolve imports and types with. */
  tsconfig?: string;
  /** Use this compiler instead of creating one (tests inject one that reports diagnostics). */
  compiler?: Compiler;
}

function log(d: PullbackDiagnostic): RollupLog {
  return { message: formatDiagnostic(d), id: d.file, pos: d.start, loc: { file: d.file, line: d.line, column: d.column } };
}

export default function pullback(options: PullbackRollupOptions = {}): Plugin {
  const filter = createFilter(options.include ?? /\.m?ts$/, options.exclude ?? /[\\/]node_modules[\\/]/);
  let compiler = options.compiler;
  return {
    name: 'pullback',

    resolveId(source, importer) {
      if (!importer || !isRelativeSpecifier(source) || !isTsSource(importer)) return null;
      return tsFileFor(resolve(dirname(importer), source)) ?? null;
    },

    transform(this: PluginContext, code, id) {
      if (!isTsSource(id) || !filter(id)) return null;
      compiler ??= createCompiler({ wasm: options.wasm, secondOrder: options.secondOrder, tsConfigFilePath: options.tsconfig });
      const result = compiler.transform(id, code);
      for (const f of result.dependencies ?? []) this.addWatchFile(f);
      for (const d of warningsOf(result.diagnostics)) this.warn(log(d));
      const errors = errorsOf(result.diagnostics);
      if (errors.length > 0) this.error({ ...log(errors[0]), message: new PullbackCompileError(errors).message });
      const js = transpileToJs(result.code, id);
      return { code: js.code, map: js.map ?? null };
    },
  };
}
