// SPDX-License-Identifier: MIT
// Small helpers the four front ends share: which files are TypeScript sources, how a relative
// import written for the emitted JavaScript (`./x.js`) or without extension (`./x`) finds its `.ts`
// file, and how diagnostics split into errors and warnings.
import { statSync } from 'node:fs';
import type { PullbackDiagnostic } from '../compiler.js';

/** `.ts` and `.mts` sources (ES modules); declaration files are not sources. */
export function isTsSource(path: string): boolean {
  return /\.m?ts$/.test(path) && !/\.d\.m?ts$/.test(path);
}

export function isRelativeSpecifier(specifier: string): boolean {
  return specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..';
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

/**
 * The TypeScript file an import of `path` means, or undefined: `x.js` → `x.ts`, `x.mjs` → `x.mts`,
 * `x` → `x.ts` or `x/index.ts`. `path` is absolute, without query or hash.
 */
export function tsFileFor(path: string): string | undefined {
  const js = /\.(m?)js$/.exec(path);
  const candidates = js
    ? [path.slice(0, -js[0].length) + `.${js[1]}ts`]
    : /\.m?ts$/.test(path) ? [] : [`${path}.ts`, `${path}.mts`, `${path}/index.ts`];
  return candidates.find(isFile);
}

export const errorsOf = (ds: readonly PullbackDiagnostic[]) => ds.filter((d) => d.category === 'error');
export const warningsOf = (ds: readonly PullbackDiagnostic[]) => ds.filter((d) => d.category === 'warning');
