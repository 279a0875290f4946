// SPDX-License-Identifier: MIT
// Builds (and runs) a fixture through each of the four entry points, inside a workspace() folder.
import { join } from 'node:path';
import { rollup, type RollupLog } from 'rollup';
import pullback from '../../transformer/entry/rollup.js';
import { main, type CliIo } from '../../transformer/entry/cli.js';
import type { Compiler, CompilerOptions } from '../../transformer/compiler.js';
import { bin, node, repo, tspc, type Ran } from './support.js';

export const fakePlugin = join(repo, 'dist/test/entry/fake-tsc-plugin.js');
export const fakeRegister = join(repo, 'dist/test/entry/fake-register.js');

/** `tspc -p <project>` in ws, where project is a tsconfig path relative to ws. */
export function viaTspc(ws: string, project: string, outDir?: string): Promise<Ran> {
  return node([tspc, '-p', project, ...(outDir ? ['--outDir', outDir] : [])], ws);
}

/** Bundles `input` (relative to ws) into ws/outDir/<name>.js with the rollup plugin; logs are collected. */
export async function viaRollup(ws: string, input: string, outDir: string, compiler?: Compiler): Promise<RollupLog[]> {
  const logs: RollupLog[] = [];
  const bundle = await rollup({
    input: join(ws, input),
    plugins: [pullback({ compiler })],
    external: (id) => /^pullback(\/|$)/.test(id),
    onLog: (_level, log) => void logs.push(log),
  });
  await bundle.write({ dir: join(ws, outDir), format: 'es', sourcemap: true });
  await bundle.close();
  return logs;
}

/** The CLI run in this process, with its output captured (and optionally another compiler). */
export async function viaCli(ws: string, args: string[], createCompiler?: (o: CompilerOptions) => Compiler) {
  let out = '', err = '';
  const io: CliIo = {
    cwd: ws, out: (t) => void (out += t), err: (t) => void (err += t),
    createCompiler: createCompiler ?? (await import('../../transformer/compiler.js')).createCompiler,
  };
  const code = await main(args, io);
  return { code, out, err };
}

/** The real `pullback` command, as a user runs it. */
export function viaBin(ws: string, args: string[]): Promise<Ran> {
  return node([bin, ...args], ws);
}

/** `node --import <hook> file` in ws. */
export function viaRegister(ws: string, file: string, hook = 'pullback/register'): Promise<Ran> {
  return node(['--import', hook, file], ws);
}

/** A promise that is awaited later, in a test, without being reported as unhandled before that. */
export function later<T>(promise: Promise<T>): () => Promise<T> {
  const settled = promise.then((value) => ({ value }), (error: unknown) => ({ error }));
  return async () => {
    const s = await settled;
    if ('error' in s) throw s.error;
    return s.value;
  };
}

/** Fails with the process's output unless it exited with status 0. */
export function ok(ran: Ran, what: string): Ran {
  if (ran.code !== 0) throw new Error(`${what} exited with ${ran.code}:\n${ran.stdout}\n${ran.stderr}`);
  return ran;
}
