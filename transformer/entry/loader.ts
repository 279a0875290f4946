// SPDX-License-Identifier: MIT
// Module hooks installed by `pullback/register` (`node --import pullback/register script.ts`).
// resolve: a relative `./x.js` or `./x` that does not exist but whose `./x.ts` does, becomes `./x.ts`.
// load: a .ts/.mts file is read, run through the compiler (one instance per hooks thread) and turned
// into an ES module; compile errors throw an Error that lists them as file:line:col.
import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  createCompiler, formatDiagnostic, transpileToJs, PullbackCompileError, type Compiler, type CompilerOptions,
} from '../compiler.js';
import { errorsOf, isRelativeSpecifier, isTsSource, tsFileFor, warningsOf } from './shared.js';

// The hook signatures, narrowed to what we use (Node's own types for them are not exported in @types/node 20).
export interface ResolveContext { parentURL?: string; conditions?: string[]; importAttributes?: Record<string, string> }
export interface ResolveResult { url: string; format?: string | null; shortCircuit?: boolean }
export interface LoadContext { format?: string | null; conditions?: string[]; importAttributes?: Record<string, string> }
export interface LoadResult { format: string; source?: string | ArrayBuffer | Uint8Array | null; shortCircuit?: boolean }
export type NextResolve = (specifier: string, context?: ResolveContext) => ResolveResult | Promise<ResolveResult>;
export type NextLoad = (url: string, context?: LoadContext) => LoadResult | Promise<LoadResult>;

export interface LoaderHooks {
  resolve(specifier: string, context: ResolveContext, nextResolve: NextResolve): Promise<ResolveResult>;
  load(url: string, context: LoadContext, nextLoad: NextLoad): Promise<LoadResult>;
}

/** Hooks around a compiler; `getCompiler` is called at the first .ts file. Tests inject their own. */
export function createHooks(getCompiler: () => Compiler): LoaderHooks {
  return {
    async resolve(specifier, context, nextResolve) {
      try {
        return await nextResolve(specifier, context);
      } catch (error) {
        const code = (error as { code?: string }).code;
        const parent = context.parentURL;
        if ((code !== 'ERR_MODULE_NOT_FOUND' && code !== 'ERR_UNSUPPORTED_DIR_IMPORT') ||
          !isRelativeSpecifier(specifier) || !parent?.startsWith('file:')) throw error;
        const ts = tsFileFor(fileURLToPath(new URL(specifier, parent)));
        if (!ts) throw error;
        return { url: pathToFileURL(ts).href, shortCircuit: true };
      }
    },

    async load(url, context, nextLoad) {
      if (!url.startsWith('file:') || !isTsSource(new URL(url).pathname)) return nextLoad(url, context);
      const file = fileURLToPath(url);
      const result = getCompiler().transform(file, await readFile(file, 'utf8'));
      for (const d of warningsOf(result.diagnostics)) process.stderr.write(formatDiagnostic(d) + '\n');
      const errors = errorsOf(result.diagnostics);
      if (errors.length > 0) throw new PullbackCompileError(errors);
      const js = transpileToJs(result.code, file);
      const map = js.map ? `\n//# sourceMappingURL=data:application/json;base64,${Buffer.from(js.map).toString('base64')}\n` : '';
      return { format: 'module', source: js.code + map, shortCircuit: true };
    },
  };
}

let options: CompilerOptions = {};
let compiler: Compiler | undefined;

/** Receives `data` from register(): the compiler options. */
export function initialize(data?: CompilerOptions): void {
  options = { ...data };
}

export const { resolve, load } = createHooks(() => (compiler ??= createCompiler(options)));
