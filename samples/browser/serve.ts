// SPDX-License-Identifier: MIT
// Builds the browser sample (build.ts) and serves samples/browser on localhost. Run: npm run serve
//   --port N     the port (default 8080; 0: any free port)   --no-build   serve what dist/ holds
// WebGPU needs a secure context: localhost is one, so open the printed address on this machine.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { build, here } from './build.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json',
  '.ts': 'text/plain; charset=utf-8', '.bin': 'application/octet-stream',
};

const { values } = parseArgs({ options: { port: { type: 'string', default: '8080' }, 'no-build': { type: 'boolean', default: false } } });
const port = Number(values.port);
if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
  console.error(`samples/browser/serve.ts: --port must be an integer in 0..65535, got ${values.port}`);
  process.exit(2);
}
if (!values['no-build']) await build();

const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  const file = normalize(join(here, path === '/' ? 'index.html' : path));
  let size = -1;
  try { if (file.startsWith(here + sep)) { const s = statSync(file); if (s.isFile()) size = s.size; } } catch { /* not found */ }
  if (size < 0) { res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}\n`); return; }
  res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': size, 'cache-control': 'no-store' });
  createReadStream(file).pipe(res);
});
server.listen(port, '127.0.0.1', () => {
  const addr = server.address();
  console.log(`serving samples/browser at http://localhost:${typeof addr === 'object' && addr ? addr.port : port}/  (Ctrl-C stops)`);
});
