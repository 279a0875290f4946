// SPDX-License-Identifier: MIT
// Child process of transformer/wasm.ts: `node asc-run.js <input.ts> <output.wasm> [asc flags...]`.
// asc's API is asynchronous and the transformer's entry points (the tsc plugin above all) are not, so the
// transformer waits for this process instead. Exits 1 with asc's diagnostics on stderr when it fails.
const [input, output, ...flags] = process.argv.slice(2);
const specifier = 'assemblyscript/asc';
const asc = (await import(specifier)).default as { main(argv: string[], opts: object): Promise<{ error: Error | null }> };
let log = '';
const sink = { write: (t: string) => { log += t; return true; } };
const { error } = await asc.main([input!, ...flags, '-o', output!], { stdout: sink, stderr: sink });
if (error) {
  process.stderr.write(`${log}\n${error.message}\n`);
  process.exit(1);
}
