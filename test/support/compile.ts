// SPDX-License-Identifier: MIT
// Compiles test programs the way a user's build would (through the transformer's single entry) into
// .cache/, inside the package so that 'pullback' and 'pullback/runtime' resolve by self-reference.
import { mkdirSync, writeFileSync, readdirSync, renameSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createCompiler, transpileToJs, formatDiagnostic, type TransformResult } from '../../transformer/compiler.js';

export const root = fileURLToPath(new URL('../../..', import.meta.url));
// Without the Wasm lowering: these tests pin the JS adjoints, and asc's seconds per file would add up;
// test/wasm/ runs every scalar program through the Wasm path and compares it with these.
const compiler = createCompiler({ wasm: false });

export function transformProgram(rel: string, text?: string): TransformResult {
  return compiler.transform(join(root, rel), text);
}

/** Compiles `test/programs/...ts` (and the files it imports) and imports the result. */
export async function load<T = Record<string, any>>(rel: string): Promise<T> {
  const dir = dirname(join(root, rel));
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.ts')) continue;
    const file = join(dir, f);
    const r = compiler.transform(file);
    const errors = r.diagnostics.filter((d) => d.category === 'error');
    if (errors.length) throw new Error(errors.map(formatDiagnostic).join('\n'));
    const out = join(root, '.cache', relative(root, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(out), { recursive: true });
    // Test files run in parallel processes and compile the same directories: write whole files only (a rename
    // replaces the old one at once), or a worker thread importing the module meanwhile may read it half written.
    const tmp = `${out}.${process.pid}.tmp`;
    writeFileSync(tmp, transpileToJs(r.code, file).code);
    renameSync(tmp, out);
  }
  const out = join(root, '.cache', rel).replace(/\.ts$/, '.js');
  return import(pathToFileURL(out).href) as Promise<T>;
}
