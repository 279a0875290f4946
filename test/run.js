// SPDX-License-Identifier: MIT
// Runs every compiled test file (dist/test/**/*.test.js) in its own Node process, two at a time,
// so that a file that holds native handles (Dawn) or crashes cannot take the others with it.
// Prints a closing line "N passed, N failed, N skipped" counted over individual uvu tests.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filter = process.argv[2] ? new RegExp(process.argv[2]) : null;
const jobs = Number(process.env.PULLBACK_TEST_JOBS ?? 2);
const timeoutMs = Number(process.env.PULLBACK_TEST_TIMEOUT_MS ?? 10 * 60_000);

function walk(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = walk(join(root, 'dist/test')).filter((f) => !filter || filter.test(f)).sort();
let passed = 0, failed = 0, skipped = 0;
const failures = [];

function runOne(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--expose-gc', join(root, 'test/support/one.js'), file], {
      cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => { out += `\n[test/run] timed out after ${timeoutMs} ms\n`; child.kill('SIGKILL'); }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const m = /PULLBACK_SUMMARY (\{.*\})/.exec(out);
      const s = m ? JSON.parse(m[1]) : { total: 0, passed: 0, skipped: 0 };
      const ok = code === 0 && m !== null;
      const name = relative(root, file);
      passed += s.passed;
      skipped += s.skipped;
      const bad = ok ? 0 : Math.max(1, s.total - s.passed - s.skipped);
      failed += bad;
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${name} (${s.passed}/${s.total}, ${secs}s)\n`);
      if (!ok) { failures.push(name); process.stdout.write(out.replace(/PULLBACK_SUMMARY .*\n?/, '') + '\n'); }
      resolve();
    });
  });
}

const queue = [...files];
await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
  while (queue.length) await runOne(queue.shift());
}));
if (files.length === 0) { console.error('no test files found under dist/test (did the build run?)'); process.exit(1); }
if (failures.length) console.log(`\nfailed files:\n  ${failures.join('\n  ')}`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
