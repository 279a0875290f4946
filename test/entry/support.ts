// SPDX-License-Identifier: MIT
// Shared by the entry-point tests: a scratch workspace laid out like a user's project, a process
// runner, and a compiler that wraps the real one to report known diagnostics and change known files.
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCompiler, type Compiler, type CompilerOptions, type PullbackDiagnostic } from '../../transformer/compiler.js';

export const repo = fileURLToPath(new URL('../../../', import.meta.url));
export const tspc = join(repo, 'node_modules/.bin/tspc');
export const bin = join(repo, 'bin/pullback.js');

/**
 * A temp folder that looks like a project depending on pullback: node_modules/pullback links to this
 * repository (so `pullback/transformer`, `pullback/register` and `pullback/runtime` resolve as for a
 * user), package.json says ES modules, and fixture/ is a copy of test/programs/entry.
 */
export function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pullback-entry-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(repo, join(dir, 'node_modules/pullback'), 'dir');
  writeFileSync(join(dir, 'package.json'), '{ "private": true, "type": "module" }\n');
  cpSync(join(repo, 'test/programs/entry'), join(dir, 'fixture'), { recursive: true });
  return dir;
}

export interface Ran { code: number | null; stdout: string; stderr: string }

/** Runs `node args` in `cwd`; at most two at a time, this machine has two cores. */
export function node(args: string[], cwd: string): Promise<Ran> {
  return limit(() => new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  }));
}

let running = 0;
const waiting: (() => void)[] = [];
async function limit<T>(job: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await job();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** Parses the driver's one JSON line, with the process's output in the error when it is missing. */
export function driverOutput(ran: Ran): unknown {
  const line = ran.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`driver printed no JSON (exit ${ran.code}):\n${ran.stdout}\n${ran.stderr}`);
  }
}

/** 1-based line and column of `offset` in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

const MARKED = /\/\*\*\s*@differentiable\s*\*\//;

/**
 * The real compiler, plus, in files with marked functions, an error at every `try {`
 * ("fake: try/catch ...") and a warning at every `Math.log`: known diagnostics at known places.
 */
export function fakeCompiler(options: CompilerOptions = {}): Compiler {
  const real = createCompiler(options);
  return {
    project: real.project,
    transform(fileName, text) {
      const result = real.transform(fileName, text);
      const source = text ?? readFileSync(fileName, 'utf8');
      if (!MARKED.test(source)) return result;
      const at = (pattern: RegExp, category: 'error' | 'warning', message: string): PullbackDiagnostic[] =>
        [...source.matchAll(pattern)].map((m) =>
          ({ file: fileName, ...lineColumn(source, m.index!), start: m.index!, length: m[0].length, category, message }));
      const diagnostics = [
        ...result.diagnostics,
        ...at(/\btry(?=\s*\{)/g, 'error', 'fake: try/catch is not differentiable; move it out of the marked function'),
        ...at(/\bMath\.log\b/g, 'warning', 'fake: warning at Math.log'),
      ];
      return { ...result, diagnostics };
    },
  };
}

/** A compiler that changes nothing and loads no TypeScript: for tests of a front end's own logic. */
export function identityCompiler(): Compiler {
  return {
    get project(): never {
      throw new Error('identityCompiler has no project');
    },
    transform: (fileName, text) =>
      ({ code: text ?? readFileSync(fileName, 'utf8'), changed: false, diagnostics: [], adjointSource: '', generated: [] }),
  };
}
