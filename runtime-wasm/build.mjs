#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Compiles the AssemblyScript CPU kernels (runtime-wasm/assembly/) into runtime-wasm/build/:
//   kernels.scalar.wasm   no SIMD (parity tests, and engines without Wasm SIMD)
//   kernels.simd.wasm     Wasm SIMD 128 (what Node 20 runs)
//   kernels.relaxed.wasm  SIMD + relaxed SIMD (fused multiply-add; current Chromium, newer Node)
//   kernels.simd-mt.wasm  SIMD with a shared memory, for the multi-threaded mode
// One asc compilation per variant, the variants in parallel worker threads. Skips all
// work when the sources, this script and the compiler version hash to what the last build wrote
// into build/manifest.json, so chaining it after tsc costs a few milliseconds when up to date.
// Usage: node runtime-wasm/build.mjs [--force]
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, 'assembly');
const outDir = join(here, 'build');
const manifestPath = join(outDir, 'manifest.json');
const require_ = (p) => JSON.parse(readFileSync(p, 'utf8'));

const common = ['-O3', '--runtime', 'stub', '--importMemory', '--noAssert', '--disableWarning', '112'];
export const variants = {
  scalar: [],
  simd: ['--enable', 'simd'],
  relaxed: ['--enable', 'simd', '--enable', 'relaxed-simd'],
  // shared memory for the multi-threaded mode (worker_threads over one WebAssembly.Memory)
  'simd-mt': ['--enable', 'simd', '--enable', 'threads', '--sharedMemory', '--maximumMemory', '65536'],
};

function sourceHash() {
  const h = createHash('sha256');
  for (const name of readdirSync(srcDir).filter((n) => n.endsWith('.ts')).sort()) {
    h.update(name).update('\0').update(readFileSync(join(srcDir, name))).update('\0');
  }
  h.update(readFileSync(fileURLToPath(import.meta.url)));
  const ascPkg = join(here, '..', 'node_modules', 'assemblyscript', 'package.json');
  h.update(existsSync(ascPkg) ? require_(ascPkg).version : 'unknown');
  return h.digest('hex');
}

/** Worker side: compiles one variant and reports { name, log, error, bytes }. */
async function compileVariant({ name, out }) {
  const { default: asc } = await import('assemblyscript/asc');
  let log = '';
  const sink = { write: (t) => { log += t; return true; } };
  const { error } = await asc.main([join(srcDir, 'index.ts'), ...common, ...variants[name], '-o', out], { stdout: sink, stderr: sink });
  parentPort.postMessage({ name, log, error: error ? error.message : null, bytes: error ? 0 : readFileSync(out).length });
}

function runWorker(name, out) {
  return new Promise((resolve, reject) => {
    const w = new Worker(fileURLToPath(import.meta.url), { workerData: { name, out } });
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => { if (code !== 0) reject(new Error(`runtime-wasm/build.mjs: the ${name} compile worker exited with code ${code}`)); });
  });
}

async function main() {
  const force = process.argv.includes('--force');
  const hash = sourceHash();
  const outputs = Object.keys(variants).map((v) => join(outDir, `kernels.${v}.wasm`));
  if (!force && existsSync(manifestPath) && outputs.every(existsSync)) {
    try {
      if (require_(manifestPath).hash === hash) return;
    } catch { /* unreadable manifest: rebuild */ }
  }
  mkdirSync(outDir, { recursive: true });
  const started = Date.now();
  const results = await Promise.all(Object.keys(variants).map((name) => runWorker(name, join(outDir, `kernels.${name}.wasm`))));
  const sizes = {};
  for (const r of results) {
    if (r.log.trim()) process.stderr.write(r.log);
    if (r.error) throw new Error(`runtime-wasm/build.mjs: asc failed for the ${r.name} variant: ${r.error}`);
    sizes[r.name] = r.bytes;
  }
  writeFileSync(manifestPath, JSON.stringify({ hash, sizes, builtAt: new Date().toISOString() }, null, 2) + '\n');
  console.log(`runtime-wasm: built ${Object.keys(variants).join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (isMainThread) await main();
else await compileVariant(workerData);
