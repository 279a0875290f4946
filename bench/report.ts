// SPDX-License-Identifier: MIT
// Shared output of every `npm run bench:<name>`: a readable table on stdout and
// bench/results/<name>.json as an array of rows (see DEVELOPERS.md for the row format).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export interface BenchRow {
  case: string;
  unit: string;
  pullback: number;
  peer: number | null;
  peerName: string;
  /** How many times better pullback is than the peer (below 1 means worse); null without a peer. */
  ratio: number | null;
  better: 'lower' | 'higher';
  adapter: string;
}

/** Builds a row and computes its ratio from the direction in which the unit is better. */
export function row(r: Omit<BenchRow, 'ratio'>): BenchRow {
  const ratio = r.peer === null || !Number.isFinite(r.peer) || r.pullback === 0
    ? null
    : r.better === 'lower' ? r.peer / r.pullback : r.pullback / r.peer;
  return { ...r, ratio };
}

/** Median of repeated timings; benchmarks report medians because these machines are noisy. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmt(x: number | null): string {
  if (x === null) return '-';
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1000 ? x.toFixed(0) : a >= 1 ? x.toPrecision(4) : x.toPrecision(3);
}

export function report(name: string, rows: BenchRow[]): void {
  const header = ['case', 'unit', 'pullback', 'peer', 'peerName', 'ratio', 'better', 'adapter'];
  const cells = rows.map((r) => [r.case, r.unit, fmt(r.pullback), fmt(r.peer), r.peerName, r.ratio === null ? '-' : r.ratio.toFixed(2) + 'x', r.better, r.adapter]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((s, i) => s.padEnd(widths[i]!)).join('  ');
  console.log(`\n${name}\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const c of cells) console.log(line(c));
  const dir = join(repoRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(rows, null, 2) + '\n');
  console.log(`\nwrote bench/results/${name}.json`);
}

/** The repository root: the nearest folder above this file with a package.json (bench/ from source, dist/bench built). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}
