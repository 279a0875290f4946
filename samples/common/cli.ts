// SPDX-License-Identifier: MIT
// The command lines of the training samples: parse, check each value, and on a bad one print what is wrong with
// the usage and exit with status 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';

const BACKENDS = ['auto', 'cpu', 'webgpu', 'reference'] as const;
export type BackendName = (typeof BACKENDS)[number];

export function commandLine<O extends NonNullable<ParseArgsConfig['options']>>(script: string, usageText: string, options: O) {
  /** Prints what is wrong with the command line, and the usage, and exits. */
  const usage = (problem: string): never => {
    console.error(`${script}: ${problem}\n${usageText}`);
    process.exit(2);
  };
  let values;
  try {
    ({ values } = parseArgs({ options }));
  } catch (e) {
    usage((e as Error).message);
  }
  return {
    values: values!,
    usage,
    /** An integer option of at least `min`, or `fallback` when absent. */
    int(name: string, v: string | undefined, fallback: number, min = 1): number {
      if (v === undefined) return fallback;
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < min) usage(`--${name} must be an integer ≥ ${min}, got ${v}`);
      return n;
    },
    /** A positive finite number, or `fallback` when absent. */
    positive(name: string, v: string | undefined, fallback: number): number {
      const x = v === undefined ? fallback : Number(v);
      if (!(x > 0 && Number.isFinite(x))) usage(`--${name} must be a positive number, got ${v}`);
      return x;
    },
    /** --backend: auto, cpu, webgpu or reference. */
    backend(v: string | undefined): BackendName {
      if (!BACKENDS.includes(v as BackendName)) usage(`--backend must be one of ${BACKENDS.join(', ')}, got ${v}`);
      return v as BackendName;
    },
  };
}
