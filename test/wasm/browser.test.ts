// SPDX-License-Identifier: MIT
// A scalar gradient through Wasm in a browser: test/wasm/browser/main.ts is bundled by Rollup with the pullback plugin
// and `wasm: true` (the module's bytes travel inside the bundle), loaded in headless Chromium, and must report
// explain(f).backend === 'wasm' and Rosenbrock's gradient as written out by hand.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rollup, type Plugin } from 'rollup';
import pullback from '../../transformer/entry/rollup.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * `pullback` and `pullback/runtime` resolve to the package's entries under dist/, as a bundler finds them in
 * node_modules; Node built-ins (reached only on Node code paths of the runtime) become modules that throw when used.
 */
function browserResolve(): Plugin {
  const STUB = '\0stub';
  return {
    name: 'browser-resolve',
    resolveId: (source) => (/^pullback(\/|$)/.test(source) ? fileURLToPath(import.meta.resolve(source))
      : source.startsWith('node:') || source === 'webgpu' ? `${STUB}:${source}` : null),
    load(id) {
      if (!id.startsWith(STUB)) return null;
      const names = ['Worker', 'parentPort', 'workerData', 'readFileSync', 'writeFileSync', 'renameSync', 'existsSync', 'readFile', 'create', 'globals'];
      return `const fail = () => { throw new Error('${id.slice(STUB.length + 1)} is not available in the browser'); };\n` +
        `${names.map((n) => `export const ${n} = fail;`).join('\n')}\nexport default {};\n`;
    },
  };
}

if (!existsSync(CHROMIUM)) {
  console.log(`test/wasm/browser: skipped, ${CHROMIUM} is missing (Debian: apt-get install -y chromium; .ci/run does this)`);
  test.skip('a Wasm gradient in headless Chromium (chromium is missing: see the message above)', () => {});
} else {
  test('a rollup bundle built with wasm: true computes a gradient through Wasm in headless Chromium', async () => {
    const started = Date.now();
    const bundle = await rollup({ input: join(root, 'test/wasm/browser/main.ts'), plugins: [browserResolve(), pullback({ wasm: true })], logLevel: 'silent' });
    const { output } = await bundle.generate({ format: 'es', inlineDynamicImports: true });
    await bundle.close();
    const js = output[0].code;
    assert.match(js, /wasmModule\([^)]*"AGFzbQ/, 'the bundle carries the Wasm module');
    const built = Date.now();
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.setContent('<!doctype html><title>pullback wasm</title>');
      await page.addScriptTag({ content: js, type: 'module' });
      await page.waitForFunction(() => (globalThis as { result?: unknown }).result !== undefined || document.title === 'failed', undefined, { timeout: 20_000 }).catch(() => {});
      const r = await page.evaluate(() => (globalThis as { result?: unknown }).result) as { backend: string; reason: string | null; gradient: number[]; want: number[] } | undefined;
      assert.equal(errors, []);
      assert.ok(r, 'the page left no result');
      assert.is(r!.backend, 'wasm', `explain says ${r!.backend}: ${r!.reason}`);
      const want = r!.want; // the hand-written gradient, computed in plain JS on the page
      const scale = Math.max(...want.map(Math.abs));
      r!.gradient.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= 1e-12 * scale, `∂/∂x[${i}]: ${g} vs ${want[i]}`));
      console.log(`  bundled in ${((built - started) / 1000).toFixed(1)} s (${(js.length / 1024).toFixed(0)} KB); gradient in Chromium ${((Date.now() - built) / 1000).toFixed(1)} s later`);
    } finally {
      await browser.close();
    }
  });
}

test.run();
