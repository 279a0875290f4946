// SPDX-License-Identifier: MIT
// safetensors: a file as the Python library writes it (test/fixtures-bin, made by make_safetensors.py
// from the format's specification) loads with the right names, shapes and values and is rewritten
// byte for byte; save -> load is bit-identical; every kind of corrupt file fails with its own message.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSafetensors, saveSafetensors, SafetensorsError, type LoadedTensor, type TensorToSave } from '../../sdk/io/safetensors.js';
import { bf16ToF32, f16ToF32, f32ToF16 } from '../../runtime-gpu/float16.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const fixture = join(root, 'test/fixtures-bin/python-written.safetensors');

/** A file from a header (object or raw text) and a data section, with the length field filled in. */
function file(header: object | string, data: Uint8Array | number = 0, pad = true): Uint8Array {
  let json = typeof header === 'string' ? header : JSON.stringify(header);
  if (pad) json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const h = Buffer.from(json, 'utf8');
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8); out.set(d, 8 + h.length);
  return out;
}

function throwsWith(f: () => unknown, pattern: RegExp): void {
  try { f(); } catch (e) {
    assert.instance(e, SafetensorsError);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
}

const bytesOf = (t: LoadedTensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
const f32 = (xs: number[]) => xs.map(Math.fround);

test('the Python-written fixture: names, dtypes, shapes, values and metadata', () => {
  const { tensors, metadata } = loadSafetensors(fixture);
  assert.equal(metadata, { format: 'pt' });
  // File order is the library's: widest dtype first, then by name.
  assert.equal(Object.keys(tensors), ['steps', 'double', 'empty', 'linear.bias', 'linear.weight', 'counts', 'embed.bf16', 'embed.half', 'mask']);
  const t = tensors;
  assert.equal([t['linear.weight']!.dtype, t['linear.weight']!.shape], ['F32', [2, 3]]);
  assert.instance(t['linear.weight']!.data, Float32Array);
  assert.equal([...t['linear.weight']!.data as Float32Array], f32([0.5, -1.25, 3.0, 1e-3, -0.0, 123456.789]));
  assert.ok(Object.is((t['linear.weight']!.data as Float32Array)[4], -0), '-0 keeps its sign');
  assert.equal([...t['linear.bias']!.data as Float32Array], f32([0.1, 0.2, 0.3]));
  const half = t['embed.half']!;
  assert.equal([half.dtype, half.shape], ['F16', [2, 2]]);
  // Python's struct 'e' rounded 0.1 to the f16 0.0999755859375 (bits 0x2e66).
  assert.equal([...half.data as Uint16Array], [0x3c00, 0xc100, 0x2e66, 0x7bff]);
  assert.equal([...f16ToF32(half.data as Uint16Array)], [1, -2.5, 0.0999755859375, 65504]);
  assert.equal([...bf16ToF32(t['embed.bf16']!.data as Uint16Array)], [1, -3.140625, 0.10009765625]);
  assert.equal([t['steps']!.dtype, t['steps']!.shape, [...t['steps']!.data as BigInt64Array]], ['I64', [], [1234567890123n]]);
  assert.equal([...t['counts']!.data as Int32Array], [-2147483648, -1, 0, 2147483647]);
  assert.equal([...t['mask']!.data as Uint8Array], [0, 1, 255, 7, 128]);
  assert.equal([...t['double']!.data as Float64Array], [3.141592653589793, -1e-300]);
  assert.equal([t['empty']!.dtype, t['empty']!.shape, t['empty']!.data.length], ['F32', [0, 4], 0]);
});

test('saving what was loaded from the fixture rewrites it byte for byte, whatever the input order', () => {
  const original = new Uint8Array(readFileSync(fixture));
  const { tensors, metadata } = loadSafetensors(original);
  assert.equal(saveSafetensors(undefined, tensors, metadata), original);
  const reversed = Object.fromEntries(Object.entries(tensors).reverse());
  assert.equal(saveSafetensors(undefined, reversed, metadata), original);
});

test('save -> load through a file is bit-identical for every dtype (NaN payloads, -0, odd sizes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pullback-st-'));
  try {
    const nan = new Float32Array(new Uint32Array([0x7fc00001, 0xffa00000, 0x80000000, 0x00000001]).buffer);
    const tensors: Record<string, TensorToSave> = {
      'a.w': { dtype: 'F32', shape: [3, 5, 7], data: Float32Array.from({ length: 105 }, (_, i) => Math.sin(i) * 1e3) },
      'a.nan': { dtype: 'F32', shape: [4], data: nan },
      'b': { dtype: 'F64', shape: [3], data: new Float64Array([Math.PI, -Number.MIN_VALUE, Number.MAX_VALUE]) },
      'c': { dtype: 'F16', shape: [3], data: f32ToF16([0.1, -7, 1e-6]) },
      'd': { dtype: 'BF16', shape: [1, 1], data: new Uint16Array([0x3f81]) },
      'e': { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
      'f': { dtype: 'I32', shape: [], data: new Int32Array([42]) },
      'g': { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) }, // 3 bytes: the end is not 8-aligned
      'h': { dtype: 'F32', shape: [2], data: new Uint8Array(new Float32Array([1.5, -2]).buffer) }, // raw bytes
      'ünïcødé 名前 🙂': { dtype: 'U8', shape: [0], data: new Uint8Array(0) },
    };
    const path = join(dir, 'x.safetensors');
    const bytes = saveSafetensors(path, tensors, { step: '7', note: 'quote " and \\ and \n' });
    assert.equal(new Uint8Array(readFileSync(path)), bytes);
    assert.equal(readdirSync(dir), ['x.safetensors'], 'no temporary file left behind');
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.is(headerLen % 8, 0, 'header padded to a multiple of 8');
    const back = loadSafetensors(path);
    assert.equal(back.metadata, { step: '7', note: 'quote " and \\ and \n' });
    assert.equal(Object.keys(back.tensors).sort(), Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const got = back.tensors[name]!;
      assert.is(got.dtype, t.dtype, name);
      assert.equal(got.shape, [...t.shape], name);
      assert.equal(bytesOf(got), new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), name);
    }
    assert.instance(back.tensors['h']!.data, Float32Array);
    assert.equal([...back.tensors['h']!.data as Float32Array], [1.5, -2]);
    // Loaded data is a copy: changing it does not change the source buffer.
    (back.tensors['a.w']!.data as Float32Array)[0] = 99;
    assert.equal(loadSafetensors(bytes).tensors['a.w']!.data[0], 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('known answers from the Rust library\'s own serialization tests', () => {
  // One F32 tensor [1, 1, 2, 3] holding 0..5: a 65-byte JSON header padded with 7 spaces to 72.
  const json = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
  const bytes = saveSafetensors(undefined, { attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
  assert.equal([...bytes.subarray(0, 8)], [72, 0, 0, 0, 0, 0, 0, 0]);
  assert.is(Buffer.from(bytes.subarray(8, 80)).toString('latin1'), json + ' '.repeat(7));
  assert.equal([...bytes.subarray(80, 88)], [0, 0, 0, 0, 0, 0, 128, 63]);
  // Metadata only: {"__metadata__":{"framework":"pt"}} is 35 bytes, padded to 40.
  const meta = saveSafetensors(undefined, {}, { framework: 'pt' });
  assert.equal([...meta.subarray(0, 8)], [40, 0, 0, 0, 0, 0, 0, 0]);
  assert.is(Buffer.from(meta.subarray(8)).toString('latin1'), '{"__metadata__":{"framework":"pt"}}     ');
  // An ArrayBuffer is read as well as a Uint8Array.
  assert.equal([...loadSafetensors(bytes.slice().buffer).tensors['attn0']!.data], [0, 1, 2, 3, 4, 5]);
});

test('no tensors and no metadata: "{}" padded to 8 bytes', () => {
  const bytes = saveSafetensors(undefined, {});
  assert.equal([...bytes], [8, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from('{}      ')]);
  assert.equal(loadSafetensors(bytes), { tensors: {}, metadata: {} });
});

const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

test('corrupt: truncated before the length, length beyond the file, header over the limit', () => {
  throwsWith(() => loadSafetensors(new Uint8Array(5)), /truncated: the file has 5 bytes, fewer than the 8-byte header length/);
  const good = new Uint8Array(readFileSync(fixture));
  throwsWith(() => loadSafetensors(good.subarray(0, 100)), /header length 592 goes beyond the end of the file \(92 bytes/);
  const huge = new Uint8Array(8 + 100_000_008);
  new DataView(huge.buffer).setBigUint64(0, 100_000_001n, true);
  throwsWith(() => loadSafetensors(huge), /header length 100000001 is larger than the 100000000-byte limit/);
  const whole = file({ w: ok }, 8);
  throwsWith(() => loadSafetensors(whole.subarray(0, whole.length - 8)), /tensor 'w': data_offsets \[0, 8\] go beyond the data section, which has 0 bytes \(truncated file\?\)/);
});

test('corrupt: a data section cut short names the tensor that no longer fits', () => {
  const good = new Uint8Array(readFileSync(fixture));
  throwsWith(() => loadSafetensors(good.subarray(0, good.length - 3)), /tensor 'mask': data_offsets \[90, 95\] go beyond the data section, which has 92 bytes/);
});

test('corrupt: header not UTF-8, not an object, not JSON, duplicate names', () => {
  const latin1 = file('{"a":"x"}');
  latin1[8 + 6] = 0xff; // the 'x': 0xff never occurs in UTF-8
  throwsWith(() => loadSafetensors(latin1), /the header is not valid UTF-8/);
  throwsWith(() => loadSafetensors(file('[1, 2]')), /must be a JSON object starting with '\{', found "\[1, 2\]/);
  throwsWith(() => loadSafetensors(file('{"a": {"dtype": "F32",')), /the header is not valid JSON: /);
  throwsWith(() => loadSafetensors(file('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8)), /duplicate key "w" in the header/);
  throwsWith(() => loadSafetensors(file('{"__metadata__":{"k":"1","k":"2"}}')), /duplicate key "k"/);
  throwsWith(() => loadSafetensors(file('{"a\\"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a\\u0022b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8)), /duplicate key "a\\"b"/);
  // Keys inside arrays and values that look like keys are not duplicates.
  assert.not.throws(() => loadSafetensors(file('{"__metadata__":{"w":"w"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4)));
});

test('corrupt: metadata that is not string to string', () => {
  throwsWith(() => loadSafetensors(file({ __metadata__: { epoch: 3 } })), /__metadata__ 'epoch' must be a string, found 3/);
  throwsWith(() => loadSafetensors(file({ __metadata__: ['x'] })), /__metadata__ must be an object of strings/);
});

test('corrupt: unknown dtype, and a valid safetensors dtype this reader does not support', () => {
  throwsWith(() => loadSafetensors(file({ w: { ...ok, dtype: 'F12' } }, 8)), /tensor 'w': unknown dtype "F12" \(supported: /);
  throwsWith(() => loadSafetensors(file({ w: { ...ok, dtype: 'I8', shape: [8] } }, 8)), /tensor 'w': dtype I8 is valid safetensors but not supported here/);
  throwsWith(() => loadSafetensors(file({ w: { shape: [2], data_offsets: [0, 8] } }, 8)), /tensor 'w': missing dtype/);
  throwsWith(() => loadSafetensors(file({ w: 5 }, 8)), /tensor 'w': expected an object with dtype, shape and data_offsets, found 5/);
});

test('corrupt: bad shapes and bad offsets', () => {
  throwsWith(() => loadSafetensors(file({ w: { ...ok, shape: [2, -1] } }, 8)), /tensor 'w': shape \[2,-1\] must hold non-negative integers/);
  throwsWith(() => loadSafetensors(file({ w: { ...ok, shape: [1.5] } }, 8)), /must hold non-negative integers/);
  throwsWith(() => loadSafetensors(file({ w: { ...ok, shape: 2 } }, 8)), /tensor 'w': shape must be an array/);
  throwsWith(() => loadSafetensors(file({ w: { ...ok, data_offsets: [0] } }, 8)), /tensor 'w': data_offsets must be \[begin, end\], two non-negative integers, found \[0\]/);
  throwsWith(() => loadSafetensors(file({ w: { ...ok, data_offsets: [8, 0] } }, 8)), /tensor 'w': data_offsets \[8, 0\] end before they begin/);
});

test('corrupt: shape × dtype size does not match the offsets', () => {
  throwsWith(() => loadSafetensors(file({ w: { ...ok, shape: [3] } }, 8)), /tensor 'w': shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] hold 8/);
  throwsWith(() => loadSafetensors(file({ w: { ...ok, dtype: 'F64' } }, 8)), /shape \[2\] of F64 needs 16 bytes but data_offsets \[0, 8\] hold 8/);
});

test('corrupt: overlapping tensors, a gap, bytes after the last tensor', () => {
  const a = { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b = { dtype: 'F32', shape: [2], data_offsets: [4, 12] };
  throwsWith(() => loadSafetensors(file({ a, b }, 12)), /tensors 'a' and 'b' overlap \(bytes 4 to 8 of the data section\)/);
  throwsWith(() => loadSafetensors(file({ a, c: { ...b, data_offsets: [12, 20] } }, 20)), /bytes 8 to 12 of the data section belong to no tensor \(gap before 'c'\)/);
  throwsWith(() => loadSafetensors(file({ b: { ...b, data_offsets: [4, 12] } }, 12)), /bytes 0 to 4 of the data section belong to no tensor \(gap before 'b'\)/);
  throwsWith(() => loadSafetensors(file({ a }, 11)), /the tensors cover 8 bytes but the data section has 11 \(3 bytes belong to no tensor\)/);
});

test('save refuses what it cannot write, with the tensor name and the fix', () => {
  const f = (x: unknown, m?: unknown) => () => saveSafetensors(undefined, x as Record<string, TensorToSave>, m as Record<string, string>);
  throwsWith(f({ __metadata__: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }), /'__metadata__' is reserved/);
  throwsWith(f({ w: { dtype: 'F31', shape: [1], data: new Float32Array(1) } }), /tensor 'w': unknown dtype "F31"/);
  throwsWith(f({ w: { dtype: 'F32', shape: [2], data: new Float64Array(2) } }), /tensor 'w': dtype F32 needs a Float32Array or raw bytes in a Uint8Array, got Float64Array/);
  throwsWith(f({ w: { dtype: 'F16', shape: [2], data: new Float32Array(2) } }), /dtype F16 needs a Uint16Array .* got Float32Array \(convert with f32ToF16\)/);
  throwsWith(f({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }), /tensor 'w': data has 3 elements but shape \[2, 2\] has 4/);
  throwsWith(f({ w: { dtype: 'I64', shape: [2], data: new Uint8Array(12) } }), /raw data has 12 bytes but shape \[2\] of I64 needs 2 × 8 = 16/);
  throwsWith(f({ w: { dtype: 'F32', shape: [-1], data: new Float32Array(0) } }), /tensor 'w': shape \[-1\] must hold non-negative integers/);
  throwsWith(f({}, { epoch: 3 }), /metadata 'epoch' must be a string, got number/);
  // A Node Buffer is a Uint8Array and is accepted for U8.
  assert.not.throws(f({ w: { dtype: 'U8', shape: [2], data: Buffer.from([1, 2]) } }));
});

test.run();
