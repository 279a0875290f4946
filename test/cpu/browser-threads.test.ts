// SPDX-License-Identifier: MIT
// The multi-threaded CPU backend in headless Chromium: in a cross-origin-isolated page (COOP same-origin, COEP
// require-corp) matmul and conv2d on Web Workers agree with the single-threaded kernels (thread-cases.ts, as in
// Node); in a page without those headers, asking for threads gives one thread and a warning that says why.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import type { ThreadsResult } from './fixtures/threads-browser.js';
import { close } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const dist = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const wasm = fileURLToPath(new URL('../../../runtime-wasm/build', import.meta.url));
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

/** Serves dist/'s modules and the kernel builds under /wasm/; `/` is the page, isolated unless the query says ?plain. */
async function serve(): Promise<{ server: Server; url: string }> {
  const page = '<!doctype html><script type="module" src="/test/cpu/fixtures/threads-browser.js"></script>';
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    // The page's own headers decide isolation; the modules it loads send them too (require-corp accepts same-origin files).
    const headers = url.searchParams.has('plain') || (req.headers.referer ?? '').includes('plain') ? {} : ISOLATION;
    if (path === '/') { res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end(page); return; }
    const [base, file] = path.startsWith('/wasm/') ? [wasm, normalize(join(wasm, path.slice(6)))] : [dist, normalize(join(dist, path))];
    if (!file.startsWith(base + sep) || !['.js', '.wasm'].includes(extname(file)) || !existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200, { ...headers, 'Content-Type': extname(file) === '.js' ? 'text/javascript' : 'application/wasm' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

if (!existsSync(CHROMIUM)) {
  console.log(`test/cpu/browser-threads: skipped, ${CHROMIUM} is missing (Debian: apt-get install -y chromium; .ci/run does this)`);
  test.skip('threaded kernels on Web Workers in headless Chromium (chromium is missing: see the message above)', () => {});
} else {
  let browser: Browser | undefined, served: { server: Server; url: string } | undefined;
  const inPage = async (query: string): Promise<ThreadsResult> => {
    if (!browser) {
      served = await serve();
      const { chromium } = await import('playwright-core');
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--no-first-run', '--disable-background-networking'] });
    }
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${served!.url}${query}`);
      await page.waitForFunction(() => (globalThis as { threadsResult?: unknown }).threadsResult !== undefined, undefined, { timeout: 60_000 });
      const r = await page.evaluate(() => (globalThis as { threadsResult?: unknown }).threadsResult) as ThreadsResult | { error: string };
      assert.equal(errors, [], 'page errors');
      if ('error' in r) assert.unreachable(`the page failed: ${r.error}`);
      return r as ThreadsResult;
    } finally {
      await page.close();
    }
  };

  test('a cross-origin-isolated page: matmul and conv2d on 2 Web Workers agree with one thread', async () => {
    const r = await inPage('?threads=3');
    assert.ok(r.isolated, 'the page is cross-origin isolated');
    assert.equal(r.warnings, []);
    assert.is(r.kernelThreads, 3);
    assert.is(r.backendThreads, 3, "setBackend('wasm', { threads: 3 }) reports 3 threads");
    assert.ok(r.cases.length >= 4);
    for (const c of r.cases) {
      c.single.forEach((want, i) => {
        const what = `${c.name}, output ${i}`;
        assert.ok(want.length > 0 && want.some((v) => v !== 0), `${what}: not empty`);
        // close(..., 0, 0) rather than assert.equal: uvu's diff of thousands of numbers takes minutes
        if (c.exact[i]) close(`${what}: bit-identical`, c.threaded[i]!, want, 0, 0);
        else close(what, c.threaded[i]!, want, 1e-5, 1e-5);
      });
    }
    // The single-threaded backend may run the relaxed-SIMD build (fused multiply-add) where the threaded one runs plain SIMD.
    close('matmul through the public API', r.api.threaded, r.api.single, 1e-5, 1e-5);
    console.log(`  isolated page, 3 threads: ${r.cases.length} cases and the API matmul in ${(r.ms / 1000).toFixed(1)} s`);
  });

  test('a page that is not isolated runs single-threaded and says why', async () => {
    const r = await inPage('?threads=2&plain');
    assert.not.ok(r.isolated);
    assert.is(r.kernelThreads, 1);
    assert.is(r.backendThreads, 1);
    assert.ok(r.warnings.length >= 1);
    for (const w of r.warnings) {
      assert.match(w, /pullback: the CPU backend runs single-threaded: 2 threads were asked for, but this page is not cross-origin isolated/);
      assert.match(w, /Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp/);
    }
    // One thread, but the best build (relaxed SIMD where Chromium has it) against the plain SIMD one.
    for (const c of r.cases) c.single.forEach((want, i) => close(`${c.name}, output ${i}`, c.threaded[i]!, want, 1e-5, 1e-5));
  });

  test.after(async () => {
    await browser?.close();
    served?.server.close();
  });
}

test.run();
