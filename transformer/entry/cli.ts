// SPDX-License-Identifier: MIT
// `pullback compile <files or folders> --outDir <dir> [--emit-adjoint] [--wasm]`: one ES module .js
// (with its source map) per input .ts, laid out under outDir as the inputs are laid out under their
// common folder. All inputs go through ONE compiler, so a marked function imported from another
// input is seen with its types. Diagnostics print as file:line:col; any error makes the exit status 1.
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { ts } from 'ts-morph';
import { createCompiler, formatDiagnostic, transpileToJs, type CompilerOptions, type Compiler } from '../compiler.js';
import { errorsOf, isRelativeSpecifier, isTsSource, tsFileFor } from './shared.js';

export const USAGE = `Usage: pullback compile <files or folders...> --outDir <dir> [--emit-adjoint] [--wasm] [--no-second-order]

Differentiates every @differentiable function in the given TypeScript files (folders are searched
for .ts files, skipping node_modules) and writes one ES module .js per input under <dir>.

Options:
  --outDir <dir>    where the .js files go (the inputs' folder structure is kept)
  --emit-adjoint    also write the generated adjoints as <name>.adjoint.ts next to each .js
  --wasm            also lower scalar adjoints to WebAssembly (opt-in; --no-wasm: off, the default)
  --no-second-order do not write the code hvp, hessian and grad(grad(f)) need (about half the output)
  -h, --help        print this help
`;

export interface CliIo {
  cwd: string;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Tests inject a compiler that reports diagnostics. */
  createCompiler: (options: CompilerOptions) => Compiler;
}

const defaultIo: CliIo = {
  cwd: process.cwd(),
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  createCompiler,
};

/** Runs the command line `args` (without `node` and the script) and returns the exit status. */
export async function main(args: string[], io: CliIo = defaultIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args, allowPositionals: true, strict: true,
      options: {
        outDir: { type: 'string' }, 'emit-adjoint': { type: 'boolean' }, wasm: { type: 'boolean' }, 'no-wasm': { type: 'boolean' }, 'no-second-order': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    io.err(`pullback: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    (values.help ? io.out : io.err)(USAGE);
    return values.help ? 0 : 2;
  }
  const [command, ...inputs] = positionals;
  if (command !== 'compile' || inputs.length === 0 || !values.outDir) {
    io.err(`pullback: ${command !== 'compile' ? `unknown command '${command}'` : inputs.length === 0 ? 'no input files' : '--outDir is required'}\n\n${USAGE}`);
    return 2;
  }
  const outDir = resolve(io.cwd, values.outDir);
  let files: string[];
  try {
    files = collectInputs(inputs.map((i) => resolve(io.cwd, i)), outDir);
  } catch (e) {
    io.err(`pullback: ${(e as Error).message}\n`);
    return 2;
  }
  const compiler = io.createCompiler({ wasm: values.wasm ? true : values['no-wasm'] ? false : undefined, ...(values['no-second-order'] ? { secondOrder: false } : {}) });
  return compile(files, commonDir(files), outDir, compiler, Boolean(values['emit-adjoint']), io);
}

function compile(files: string[], base: string, outDir: string, compiler: Compiler, emitAdjoint: boolean, io: CliIo): number {
  const inputs = new Set(files);
  let failed = 0;
  for (const file of files) {
    const result = compiler.transform(file);
    for (const d of result.diagnostics) io.err(formatDiagnostic({ ...d, file: relative(io.cwd, d.file) || d.file }) + '\n');
    if (errorsOf(result.diagnostics).length > 0) {
      failed++;
      continue;
    }
    const target = join(outDir, relative(base, file)).replace(/\.(m?)ts$/, '.$1js');
    mkdirSync(dirname(target), { recursive: true });
    const js = transpileToJs(result.code, file);
    writeFileSync(target, `${withExtensions(js.code, file, inputs).trimEnd()}\n//# sourceMappingURL=${basename(target)}.map\n`);
    if (js.map) writeFileSync(`${target}.map`, relocateMap(js.map, file, target));
    if (emitAdjoint && result.adjointSource.trim() !== '') {
      writeFileSync(target.replace(/\.m?js$/, '.adjoint.ts'), result.adjointSource);
    }
  }
  if (failed > 0) {
    io.err(`pullback: ${failed} of ${files.length} file(s) had errors and were not written\n`);
    return 1;
  }
  io.out(`pullback: compiled ${files.length} file(s) into ${relative(io.cwd, outDir) || '.'}\n`);
  return 0;
}

/** The .ts files named or found under the named folders, sorted; outDir's own files are skipped. */
export function collectInputs(paths: string[], outDir: string): string[] {
  const found = new Set<string>();
  const walk = (dir: string) => {
    if (dir === outDir) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules' && !entry.name.startsWith('.')) walk(p);
      else if (entry.isFile() && isTsSource(p) && !p.endsWith('.adjoint.ts')) found.add(p);
    }
  };
  for (const p of paths) {
    const stat = statSync(p, { throwIfNoEntry: false });
    if (!stat) throw new Error(`${p}: no such file or folder`);
    if (stat.isDirectory()) walk(p);
    else if (isTsSource(p)) found.add(p);
    else throw new Error(`${p}: not a TypeScript source (.ts or .mts)`);
  }
  if (found.size === 0) throw new Error('no TypeScript files found');
  return [...found].sort();
}

/** The deepest folder that holds every file. */
export function commonDir(files: string[]): string {
  let dir = dirname(files[0]);
  while (!files.every((f) => f.startsWith(dir.endsWith(sep) ? dir : dir + sep))) dir = dirname(dir);
  return dir;
}

/** Extensionless relative imports of other inputs (`./x` → `./x.js`), which Node's ESM loader needs. */
function withExtensions(code: string, file: string, inputs: Set<string>): string {
  const edits = ts.preProcessFile(code, true, true).importedFiles
    .filter((i) => isRelativeSpecifier(i.fileName) && !/\.[cm]?js$/.test(i.fileName))
    .map((i) => ({ ...i, ts: tsFileFor(resolve(dirname(file), i.fileName)) }))
    .filter((i) => i.ts !== undefined && inputs.has(i.ts));
  for (const i of edits.reverse()) {
    // '.js', '.mjs' or '/index.js': what the .ts file adds to the specifier, with the emitted extension.
    const added = i.ts!.slice(resolve(dirname(file), i.fileName).length).replace(/\.(m?)ts$/, '.$1js');
    const at = i.pos + 1; // pos is that of the opening quote
    if (code.slice(at, at + i.fileName.length) !== i.fileName) continue;
    code = code.slice(0, at + i.fileName.length) + added + code.slice(at + i.fileName.length);
  }
  return code;
}

/** Point the map's `sources` at the input, relative to where the map is written. */
function relocateMap(map: string, file: string, target: string): string {
  const json = JSON.parse(map) as { file?: string; sources: string[] };
  json.file = basename(target);
  json.sources = [relative(dirname(target), file).split(sep).join('/')];
  return JSON.stringify(json);
}
