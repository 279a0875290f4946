// SPDX-License-Identifier: MIT
// Runs one uvu test file and prints a machine-readable summary line for test/run.js.
// uvu is told to defer (UVU_DEFER) so that we can await exec() and then exit explicitly:
// Dawn's native handles would otherwise keep the process alive after the last test.
import { pathToFileURL } from 'node:url';
globalThis.UVU_DEFER = 1;
globalThis.UVU_QUEUE = [[process.argv[2]]];
const uvu = await import('uvu');
let total = 0, passed = 0, skipped = 0;
const origWrite = process.stdout.write.bind(process.stdout);
let captured = '';
process.stdout.write = (chunk, ...rest) => { captured += String(chunk); return origWrite(chunk, ...rest); };
await import(pathToFileURL(process.argv[2]).href);
await uvu.exec();
process.stdout.write = origWrite;
const plain = captured.replace(/\x1b\[[0-9;]*m/g, '');
total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
console.log(`PULLBACK_SUMMARY ${JSON.stringify({ total, passed, skipped })}`);
process.exit(process.exitCode ?? 0);
