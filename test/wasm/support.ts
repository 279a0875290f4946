// SPDX-License-Identifier: MIT
// Compiles test programs with the Wasm lowering on (into .cache/wasm/, apart from test/support/compile.ts's
// JS-only build), and compares a function's Wasm sweeps with its JS sweeps on the same inputs.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createCompiler, transpileToJs, formatDiagnostic, type TransformResult } from '../../transformer/compiler.js';
import { lookupAdjoint, type Adjoint } from '../../sdk/ad/registry.js';
import { Tape } from '../../sdk/ad/tape.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { root } from '../support/compile.js';

export const compiler = createCompiler({ wasm: true });
const done = new Map<string, TransformResult>();

/** Transforms `rel` and the files it imports by relative path, and imports the result. */
export async function loadWasm<T = Record<string, any>>(rel: string): Promise<T> {
  const visit = (file: string) => {
    if (done.has(file)) return;
    const r = compiler.transform(file);
    done.set(file, r);
    const errors = r.diagnostics.filter((d) => d.category === 'error');
    if (errors.length) throw new Error(errors.map(formatDiagnostic).join('\n'));
    const out = join(root, '.cache/wasm', relative(root, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, transpileToJs(r.code, file).code);
    for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)\.(?:js|ts)'/g)) visit(resolve(dirname(file), `${m[1]}.ts`));
  };
  visit(join(root, rel));
  return import(pathToFileURL(join(root, '.cache/wasm', rel).replace(/\.ts$/, '.js')).href) as Promise<T>;
}

export function adjoint(f: unknown): Adjoint | undefined {
  return typeof f === 'function' ? lookupAdjoint(f) : undefined;
}

/** Value, then every parameter's gradient flattened, from one pair of sweeps. */
export function sweepOnce(ad: Adjoint, sweeps: Pick<Adjoint, 'fwd' | 'rev'>, args: unknown[]): number[][] {
  const t = new Tape();
  t.limit = 1 << 24; // a program that does not terminate on these inputs fails fast instead of filling 8 GiB
  const shadows = ad.params.flatMap((k, i) => (k === 'arr' ? [new Float64Array((args[i] as ArrayLike<number>).length)] : []));
  const copy = args.map((a) => (typeof a === 'number' ? a : Float64Array.from(a as ArrayLike<number>)));
  const value = sweeps.fwd.call(ad.self, t, ...copy, ...shadows) as number;
  const single = sweeps.rev.call(ad.self, t, ...copy, ...shadows, 1) as number;
  const nNum = ad.params.filter((k) => k === 'num').length;
  let a = 0, j = 0;
  return [[value], ...ad.params.map((k) => (k === 'arr' ? [...shadows[a++]!] : [nNum === 1 ? single : t.d[j++]!]))];
}

/** Largest difference of `w` from `j`, relative to the largest magnitude of j's part (norm-wise). */
export function relativeError(w: number[][], j: number[][]): number {
  let worst = 0;
  w.forEach((part, p) => {
    const ref = j[p]!;
    const scale = Math.max(...ref.map(Math.abs), Number.MIN_VALUE);
    part.forEach((x, i) => {
      const d = Math.abs(x - ref[i]!);
      if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : Math.max(worst, d / scale);
    });
  });
  return worst;
}

let seed = 20251126;
export const rand = (lo: number, hi: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return lo + (hi - lo) * (seed / 2147483648); };

/**
 * Inputs for a function's parameters: numbers in (lo, hi), arrays of `len` values in (-1, 1); with `square`,
 * the array parameter of that position among the arrays holds len² values (a matrix beside its vectors, as in
 * `f(x, A, b)` with square = 1, or `f(A, v)` with 0).
 */
export function inputs(ad: Adjoint, len: number, lo: number, hi: number, square: number | false = false): unknown[] {
  let arrays = 0;
  return ad.params.map((k) => (k === 'num' ? rand(lo, hi)
    : Float64Array.from({ length: square !== false && arrays++ === square ? len * len : len }, () => rand(-1, 1))));
}

/**
 * Compares the Wasm sweeps of every Wasm-backed function of `mod` with its JS sweeps, on inputs where the JS
 * adjoint is finite (array lengths 5, 3, 8, 2, 4 are tried in turn; a function must be compared at least once).
 * Returns the names compared and the worst relative error; throws on a mismatch.
 */
export function compareModule(mod: Record<string, unknown>, file: string, tolerance = 1e-12): { compared: string[]; js: string[]; worst: number; gradients: number; integers: number } {
  const compared: string[] = [], js: string[] = [];
  let worst = 0, gradients = 0, integers = 0;
  for (const [name, f] of Object.entries(mod)) {
    const ad = adjoint(f);
    if (!ad) continue;
    if (ad.backend !== 'wasm') { js.push(name); continue; }
    let times = 0;
    /** Compares the sweeps on `args` when the JS adjoint is finite there; false when it is not. */
    const compare = (args: unknown[]): boolean => {
      let ref: number[][];
      try { ref = sweepOnce(ad, ad.js!, args); } catch { return false; }
      if (!ref.flat().every(Number.isFinite)) return false;
      const got = sweepOnce(ad, ad, args);
      const err = relativeError(got, ref);
      if (!(err <= tolerance)) throw new Error(`${file}: ${name}(${args.map(String).join('; ')}): the Wasm sweeps give ${JSON.stringify(got)}, the JS sweeps ${JSON.stringify(ref)} (relative error ${err})`);
      worst = Math.max(worst, err);
      // grad's own sweeps (number parameters held constant): the arrays' gradients must agree too.
      if (ad.grad) {
        const arrays = (x: number[][]) => ad.params.flatMap((k, i) => (k === 'arr' ? [x[i + 1]!] : []));
        const g = sweepOnce(ad, ad.grad, args), errG = relativeError(arrays(g), arrays(ref));
        if (!(errG <= tolerance)) throw new Error(`${file}: ${name}(${args.map(String).join('; ')}): the Wasm gradient sweeps give ${JSON.stringify(arrays(g))}, the JS sweeps ${JSON.stringify(arrays(ref))} (relative error ${errG})`);
        worst = Math.max(worst, errG);
        gradients++;
      }
      times++;
      return true;
    };
    // Numbers above 1 first (some programs loop until a value grows past a bound), small ones last (step sizes).
    for (const square of [false, 1, 0] as const) for (const [lo, hi] of [[1.05, 1.6], [0.2, 0.9], [0.01, 0.1]] as const) for (const len of [5, 3, 8, 2, 4]) {
      if (times >= 4) break;
      compare(inputs(ad, len, lo, hi, square));
    }
    // Integer values for every number parameter, as grid sizes and step counts are: a function that reads one
    // in an index or a loop test has an integer version of its sweeps, which runs only then.
    for (const int of [2, 3]) for (const len of [5, 9, 4]) {
      if (compare(inputs(ad, len, 0, 1).map((a) => (typeof a === 'number' ? int : a)))) integers++;
    }
    if (!times) throw new Error(`${file}: ${name} runs on Wasm but no input tried gave a finite JS gradient to compare with`);
    compared.push(name);
  }
  return { compared, js, worst, gradients, integers };
}

/**
 * One test per scalar test program: every function that runs on Wasm agrees with its JS adjoint. The programs
 * are split over several files so that a cold asc cache (one asc run per program, seconds each) keeps each
 * file within about a minute.
 */
export async function parityTests(names: readonly string[]): Promise<void> {
  for (const name of names) {
    const file = `test/programs/scalar/${name}.ts`;
    const mod = await loadWasm(file);
    test(`${name}.ts: every function that runs on Wasm agrees with its JS adjoint`, () => {
      const r = compareModule(mod, file);
      assert.ok(r.compared.length > 0, `${file}: no function runs on Wasm (on JS: ${r.js.join(', ')})`);
      console.log(`  ${name}.ts: ${r.compared.length} on Wasm (worst relative difference ${r.worst.toExponential(1)}, ${r.gradients} comparisons of the gradient sweeps, ${r.integers} with integer number arguments), ${r.js.length} on JS`);
    });
  }
}
