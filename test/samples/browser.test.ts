// SPDX-License-Identifier: MIT
// The browser sample end to end, as a user runs it: `serve.ts` (what `npm run serve` runs) bundles the page with the
// pullback Rollup plugin and serves it; headless Chromium opens it with WebGPU on SwiftShader; the page trains the MLP a
// few dozen steps through its window.pullbackSample hook, the loss must fall, and a '1' drawn with the mouse on the
// canvas must come back as a prediction whose ten probabilities sum to 1. The page is saved to out/browser/screenshot.png.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const SWIFTSHADER = ['/usr/lib/chromium/libvk_swiftshader.so', '/usr/lib/chromium/vk_swiftshader_icd.json'];
// shared/WEBGPU.md: what gives headless Chromium a SwiftShader WebGPU adapter on a machine without a GPU.
const FLAGS = [
  '--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--disable-gpu-sandbox', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
];
const STEPS = 40;

interface Prediction { label: number; probabilities: number[] }
interface Hook {
  ready: Promise<{ backend: string; train: number; test: number }>;
  train(steps: number): Promise<number[]>;
  accuracy: { steps: number[]; values: number[] };
  prediction: Prediction | null;
}
declare const window: { pullbackSample: Hook };

const missing = [CHROMIUM, ...SWIFTSHADER].filter((p) => !existsSync(p));

/** Starts serve.ts on a free port; resolves with the address it prints. */
function serve(): { child: ChildProcess; url: Promise<string>; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'pullback/register', 'samples/browser/serve.ts', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const url = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve.ts printed no address in 60 s:\n${out}`)), 60_000);
    const look = (d: Buffer) => {
      out += d;
      const m = /serving samples\/browser at (http:\/\/localhost:\d+\/)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve.ts exited with ${code}:\n${out}`)); });
  });
  return { child, url, output: () => out };
}

if (missing.length > 0) {
  console.log(`test/samples/browser: skipped, ${missing.join(' and ')} missing (Debian: apt-get install -y chromium; .ci/run does this)`);
  test.skip('browser sample in headless Chromium (chromium or its SwiftShader files are missing: see the message above)', () => {});
} else {
  let server: ReturnType<typeof serve> | undefined, browser: Browser | undefined, page: Page | undefined;
  const errors: string[] = [];
  process.on('exit', () => server?.child.kill());

  test.before(async () => {
    const started = Date.now();
    server = serve();
    const url = await server.url;
    const built = Date.now();
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 560 } });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    await page.goto(`${url}?steps=0`);
    console.log(`  serve.ts built and served in ${((built - started) / 1000).toFixed(1)} s; page loaded ${((Date.now() - built) / 1000).toFixed(1)} s later`);
  });

  test.after(async () => {
    await browser?.close();
    server?.child.kill();
  });

  test('serve.ts bundles the page with the pullback plugin: adjoints inside, no Node-only imports left', () => {
    const js = readFileSync(join(root, 'samples/browser/dist/main.js'), 'utf8');
    assert.match(js, /function mlpLoss\$vjp\(/, 'the adjoint of mlpLoss is in the bundle');
    assert.not.match(js, /^import .* from ['"]node:/m, 'a static node: import would stop the page from loading');
    assert.ok(existsSync(join(root, 'samples/browser/dist/digits.bin')));
    assert.match(server!.output(), /built samples\/browser\/dist\/main\.js/);
  });

  test('the page starts WebGPU and loads the digits', async () => {
    const info = await page!.evaluate(() => window.pullbackSample.ready);
    assert.match(info.backend, /^webgpu/);
    assert.equal([info.train, info.test], [4000, 500]);
    assert.equal(errors, []);
  });

  test(`the page trains ${STEPS} steps on WebGPU: the loss falls and the held-out accuracy rises`, async () => {
    const started = Date.now();
    const losses = await page!.evaluate((n) => window.pullbackSample.train(n), STEPS);
    const ms = (Date.now() - started) / STEPS;
    const acc = await page!.evaluate(() => window.pullbackSample.accuracy);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const first = mean(losses.slice(0, 5)), last = mean(losses.slice(-5));
    console.log(`  ${STEPS} steps in ${((Date.now() - started) / 1000).toFixed(1)} s (${ms.toFixed(0)} ms/step); loss ${first.toFixed(2)} → ${last.toFixed(2)}; ` +
      `accuracy ${acc.values.map((v) => `${v.toFixed(1)}%`).join(' → ')}`);
    assert.is(losses.length, STEPS);
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    // Cross-entropy starts near ln 10 ≈ 2.3.
    assert.ok(first > 1.5, `first losses ${losses.slice(0, 5)}`);
    assert.ok(last < first / 2, `loss went from ${first} to ${last}`);
    assert.equal(acc.steps, [0, 25, STEPS]);
    assert.ok(acc.values[0]! < 30, `accuracy before training ${acc.values[0]}%`);
    assert.ok(acc.values.at(-1)! > 70, `accuracy after ${STEPS} steps ${acc.values.at(-1)}%`);
    assert.match(await page!.textContent('#status') ?? '', new RegExp(`${STEPS} steps`));
  });

  test('a 1 drawn with the mouse is classified: a label and ten probabilities that sum to 1', async () => {
    const box = (await page!.locator('#pad').boundingBox())!;
    const at = (x: number, y: number) => [box.x + (x * box.width) / 280, box.y + (y * box.height) / 280] as const;
    // A slightly slanted stroke down the middle, with a short flag at the top, as people write a 1.
    await page!.mouse.move(...at(122, 80));
    await page!.mouse.down();
    await page!.mouse.move(...at(150, 50), { steps: 4 });
    await page!.mouse.move(...at(140, 230), { steps: 12 });
    await page!.mouse.up();
    await page!.waitForFunction(() => window.pullbackSample.prediction !== null);
    // The last stroke's classification may still be queued: wait until the page is idle, then read.
    const p = await page!.evaluate(async () => { await new Promise((r) => setTimeout(r, 300)); return window.pullbackSample.prediction!; });
    const sum = p.probabilities.reduce((a, b) => a + b, 0);
    console.log(`  drawn 1 → predicted ${p.label} (${(100 * p.probabilities[p.label]!).toFixed(1)}%)`);
    assert.is(p.probabilities.length, 10);
    assert.ok(p.probabilities.every((v) => v >= 0 && v <= 1), String(p.probabilities));
    assert.ok(Math.abs(sum - 1) < 1e-4, `probabilities sum to ${sum}`);
    assert.is(p.label, p.probabilities.indexOf(Math.max(...p.probabilities)));
    assert.is(await page!.textContent('#label'), String(p.label));
    assert.is(p.label, 1, `the drawn 1 was read as ${p.label}: ${p.probabilities.map((v) => v.toFixed(3))}`);
    mkdirSync(join(root, 'out/browser'), { recursive: true });
    await page!.screenshot({ path: join(root, 'out/browser/screenshot.png') });
    assert.equal(errors, []);
  });

  test('with ?backend=cpu the page trains on the Wasm SIMD CPU backend, in the browser', async () => {
    const cpuPage = await browser!.newPage();
    const cpuErrors: string[] = [];
    cpuPage.on('pageerror', (e) => cpuErrors.push(`pageerror: ${e.message}`));
    try {
      await cpuPage.goto(`${await server!.url}?steps=0&backend=cpu`);
      const info = await cpuPage.evaluate(() => window.pullbackSample.ready);
      assert.match(info.backend, /^cpu \(Wasm (relaxed|simd)/);
      const losses = await cpuPage.evaluate(() => window.pullbackSample.train(20));
      const mean = (a: number[]) => a.reduce((t, v) => t + v, 0) / a.length;
      assert.ok(mean(losses.slice(-5)) < mean(losses.slice(0, 5)) * 0.75, `cpu losses ${losses.map((v) => v.toFixed(2))}`);
      assert.equal(cpuErrors, []);
    } finally {
      await cpuPage.close();
    }
  });
}

test.run();
