// SPDX-License-Identifier: MIT
// Reading and writing safetensors files (https://github.com/huggingface/safetensors), the format
// PyTorch and Hugging Face use for weights, so that a model trained here opens in Python and back.
//
// Layout: an 8-byte little-endian unsigned length N; N bytes of UTF-8 JSON mapping each tensor name to
// { "dtype", "shape", "data_offsets": [begin, end] } (offsets relative to the data section, which
// follows the header), plus an optional "__metadata__" of string → string; then the data section,
// every tensor little-endian, row-major, packed back to back with no gaps and no trailing bytes.
//
// The writer does byte for byte what the Python library (Rust `safetensors::serialize`) does: tensors
// sorted by dtype, widest first in the library's dtype order, then by name, so every tensor stays
// aligned to its element size; compact JSON with "__metadata__" first and each entry's keys in the
// order dtype, shape, data_offsets; the header padded with spaces to a multiple of 8 bytes.
// The reader checks everything before it builds anything, so a bad file never gives half a result.
/** node:fs, looked up when a path is given (a static import would keep browser bundles from loading). */
function fs(op: string): typeof import('node:fs') {
  const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  if (!get) throw new SafetensorsError(`${op}: reading and writing files needs Node 20.16 or later; pass the bytes instead`);
  return get('node:fs') as typeof import('node:fs');
}

/** The safetensors dtypes this module reads and writes. F16 and BF16 data are raw bits (see float16.ts). */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8';

/** How each dtype's elements are held in memory once loaded. */
export interface SafetensorsArrays {
  F64: Float64Array; F32: Float32Array; F16: Uint16Array; BF16: Uint16Array;
  I64: BigInt64Array; I32: Int32Array; U8: Uint8Array;
}

/** A loaded tensor: `data` is a fresh, aligned array of the dtype's element type, row-major. */
export type LoadedTensor = { [D in SafetensorsDtype]: { dtype: D; shape: number[]; data: SafetensorsArrays[D] } }[SafetensorsDtype];

/**
 * A tensor to save: `data` is the dtype's element array (Float32Array for F32, Uint16Array bits for
 * F16/BF16, ...) or, for any dtype, its raw little-endian bytes as a Uint8Array.
 */
export interface TensorToSave {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: SafetensorsArrays[SafetensorsDtype] | Uint8Array;
}

/** What {@link loadSafetensors} returns: tensors by name (in file order) and the `__metadata__` strings. */
export interface SafetensorsContents {
  tensors: Record<string, LoadedTensor>;
  metadata: Record<string, string>;
}

/** A safetensors file or buffer that cannot be read, or tensors that cannot be written. */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
}

interface DtypeInfo { bytes: number; rank: number; make: (buf: ArrayBuffer) => SafetensorsArrays[SafetensorsDtype] }

// `rank` is the position in the Rust library's `Dtype` enum (BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16,
// F16, BF16, I32, U32, F32, F64, I64, U64); only the relative order matters: the writer sorts by it.
const DTYPES: Record<SafetensorsDtype, DtypeInfo> = {
  U8: { bytes: 1, rank: 1, make: (b) => new Uint8Array(b) },
  F16: { bytes: 2, rank: 7, make: (b) => new Uint16Array(b) },
  BF16: { bytes: 2, rank: 8, make: (b) => new Uint16Array(b) },
  I32: { bytes: 4, rank: 9, make: (b) => new Int32Array(b) },
  F32: { bytes: 4, rank: 11, make: (b) => new Float32Array(b) },
  F64: { bytes: 8, rank: 12, make: (b) => new Float64Array(b) },
  I64: { bytes: 8, rank: 13, make: (b) => new BigInt64Array(b) },
};
const SPEC_DTYPES = ['BOOL', 'U8', 'I8', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64', 'F8_E5M2', 'F8_E4M3'];
const ARRAY_OF: Record<SafetensorsDtype, string> = {
  F64: 'Float64Array', F32: 'Float32Array', F16: 'Uint16Array', BF16: 'Uint16Array', I64: 'BigInt64Array', I32: 'Int32Array', U8: 'Uint8Array',
};
/** The Rust library refuses headers above 100 MB; so do we (a corrupt length would otherwise allocate). */
const MAX_HEADER = 100_000_000;
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const isDtype = (d: unknown): d is SafetensorsDtype => typeof d === 'string' && Object.hasOwn(DTYPES, d);
const fmtShape = (s: readonly number[]) => `[${s.join(', ')}]`;
const utf8 = new TextEncoder();

function elementCount(shape: readonly number[], where: () => string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new SafetensorsError(`${where()}: shape ${JSON.stringify(shape)} must hold non-negative integers`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new SafetensorsError(`${where()}: shape ${fmtShape(shape)} has too many elements`);
  return n;
}

/** Rust compares names as UTF-8 bytes; JS's `<` compares UTF-16 units, which differ above U+FFFF. */
function compareUtf8(a: string, b: string): number {
  const x = utf8.encode(a), y = utf8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/**
 * Serializes tensors (and optional string metadata) to safetensors bytes, exactly as the Python
 * `safetensors` library would write them; with a `path`, also writes the file (through a temporary
 * file and a rename, so that an existing file is replaced whole or not at all).
 * @example
 * const bytes = saveSafetensors('model.safetensors', {
 *   'fc.weight': { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
 *   'fc.bias': { dtype: 'F16', shape: [2], data: f32ToF16([0.5, -1]) },
 * }, { format: 'pt' });
 */
export function saveSafetensors(
  path: string | undefined,
  tensors: Record<string, TensorToSave>,
  metadata?: Record<string, string>,
): Uint8Array {
  if (!littleEndian) throw new SafetensorsError('saveSafetensors: this machine is big-endian; safetensors data is little-endian');
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; bytes: Uint8Array }[] = [];
  for (const name of Object.keys(tensors)) {
    const t = tensors[name]!;
    const where = () => `saveSafetensors: tensor '${name}'`;
    if (name === '__metadata__') throw new SafetensorsError(`${where()}: the name '__metadata__' is reserved for the metadata; rename the tensor`);
    if (!isDtype(t.dtype)) throw new SafetensorsError(`${where()}: unknown dtype ${JSON.stringify(t.dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`);
    const n = elementCount(t.shape, where);
    const info = DTYPES[t.dtype];
    const d = t.data;
    let bytes: Uint8Array;
    if (d instanceof Uint8Array && t.dtype !== 'U8') {
      if (d.byteLength !== n * info.bytes) {
        throw new SafetensorsError(`${where()}: raw data has ${d.byteLength} bytes but shape ${fmtShape(t.shape)} of ${t.dtype} needs ${n} × ${info.bytes} = ${n * info.bytes}`);
      }
      bytes = d;
    } else {
      // The typed array's own name (a Buffer says Uint8Array), which also works across realms.
      const kind: unknown = ArrayBuffer.isView(d) ? (d as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined;
      if (kind !== ARRAY_OF[t.dtype]) {
        const hint = (t.dtype === 'F16' || t.dtype === 'BF16') && kind === 'Float32Array' ? ` (convert with f32To${t.dtype === 'F16' ? 'F16' : 'Bf16'})` : '';
        throw new SafetensorsError(`${where()}: dtype ${t.dtype} needs a ${ARRAY_OF[t.dtype]} or raw bytes in a Uint8Array, got ${kind ?? typeof d}${hint}`);
      }
      if (d.length !== n) throw new SafetensorsError(`${where()}: data has ${d.length} elements but shape ${fmtShape(t.shape)} has ${n}`);
      bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    }
    entries.push({ name, dtype: t.dtype, shape: [...t.shape], bytes });
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SafetensorsError(`saveSafetensors: metadata '${k}' must be a string, got ${typeof v} (safetensors metadata maps strings to strings)`);
    }
  }

  // Widest dtype first, then by name: keeps every tensor aligned to its element size.
  entries.sort((a, b) => DTYPES[b.dtype].rank - DTYPES[a.dtype].rank || compareUtf8(a.name, b.name));
  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const e of entries) {
    const end = offset + e.bytes.byteLength;
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = utf8.encode(`{${parts.join(',')}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let at = 8 + headerLen;
  for (const e of entries) { out.set(e.bytes, at); at += e.bytes.byteLength; }
  if (path !== undefined) {
    // Write beside the target and rename: a crash mid-write leaves the old file, never half a new one.
    const tmp = `${path}.${process.pid}.tmp`;
    const { writeFileSync, renameSync } = fs('saveSafetensors');
    writeFileSync(tmp, out);
    renameSync(tmp, path);
  }
  return out;
}

/**
 * Reads a safetensors file (a path) or buffer. Everything is validated first (header length, JSON,
 * dtypes, shapes, offsets that tile the data section exactly, no duplicate names); a problem throws
 * a {@link SafetensorsError} that names it, and nothing is returned. Each tensor's `data` is a copy.
 * @example
 * const { tensors, metadata } = loadSafetensors('model.safetensors');
 * const w = tensors['fc.weight']; // { dtype: 'F32', shape: [2, 3], data: Float32Array(6) }
 * if (w.dtype === 'F16') console.log(f16ToF32(w.data));
 */
export function loadSafetensors(bytesOrPath: Uint8Array | ArrayBuffer | string): SafetensorsContents {
  const source = typeof bytesOrPath === 'string' ? bytesOrPath : 'buffer';
  const fail = (msg: string): never => { throw new SafetensorsError(`loadSafetensors(${source}): ${msg}`); };
  if (!littleEndian) fail('this machine is big-endian; safetensors data is little-endian');
  const bytes = typeof bytesOrPath === 'string' ? fs('loadSafetensors').readFileSync(bytesOrPath)
    : bytesOrPath instanceof Uint8Array ? bytesOrPath : new Uint8Array(bytesOrPath);

  if (bytes.byteLength < 8) fail(`truncated: the file has ${bytes.byteLength} bytes, fewer than the 8-byte header length`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n64 > BigInt(bytes.byteLength - 8)) fail(`header length ${n64} goes beyond the end of the file (${bytes.byteLength - 8} bytes after the length field; truncated?)`);
  const n = Number(n64);
  if (n > MAX_HEADER) fail(`header length ${n} is larger than the ${MAX_HEADER}-byte limit`);
  const dataStart = 8 + n;
  const dataLen = bytes.byteLength - dataStart;

  let text: string;
  try { text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)); }
  catch { return fail('the header is not valid UTF-8'); }
  if (!text.startsWith('{')) fail(`the header must be a JSON object starting with '{', found ${JSON.stringify(text.slice(0, 20))}`);
  let header: unknown;
  try { header = JSON.parse(text); }
  catch (e) { return fail(`the header is not valid JSON: ${(e as Error).message}`); }
  const dup = findDuplicateKey(text);
  if (dup) fail(`duplicate key ${JSON.stringify(dup)} in the header`);
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header must be a JSON object');

  const metadata: [string, string][] = [];
  const infos: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ '${k}' must be a string, found ${JSON.stringify(v)}`);
        metadata.push([k, v as string]);
      }
      continue;
    }
    const where = `tensor '${name}'`;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where}: expected an object with dtype, shape and data_offsets, found ${JSON.stringify(value)}`);
    const { dtype, shape, data_offsets: off } = value as Record<string, unknown>;
    if (typeof dtype !== 'string') fail(`${where}: missing dtype`);
    if (!isDtype(dtype)) {
      fail(SPEC_DTYPES.includes(dtype as string)
        ? `${where}: dtype ${dtype} is valid safetensors but not supported here (supported: ${Object.keys(DTYPES).join(', ')})`
        : `${where}: unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`);
    }
    if (!Array.isArray(shape)) fail(`${where}: shape must be an array of non-negative integers, found ${JSON.stringify(shape)}`);
    const count = elementCount(shape as number[], () => `loadSafetensors(${source}): ${where}`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0)) {
      fail(`${where}: data_offsets must be [begin, end], two non-negative integers, found ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as [number, number];
    if (end < begin) fail(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) fail(`${where}: data_offsets [${begin}, ${end}] go beyond the data section, which has ${dataLen} bytes (truncated file?)`);
    const need = count * DTYPES[dtype as SafetensorsDtype].bytes;
    if (end - begin !== need) {
      fail(`${where}: shape ${fmtShape(shape as number[])} of ${dtype} needs ${need} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    infos.push({ name, dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], begin, end });
  }

  // The tensors must tile the data section: sorted by offset, each begins where the previous ends.
  const byOffset = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0, prev = '';
  for (const t of byOffset) {
    if (t.begin < covered) fail(`tensors '${prev}' and '${t.name}' overlap (bytes ${t.begin} to ${covered} of the data section)`);
    if (t.begin > covered) fail(`bytes ${covered} to ${t.begin} of the data section belong to no tensor (gap before '${t.name}')`);
    covered = t.end; prev = t.name;
  }
  if (covered !== dataLen) fail(`the tensors cover ${covered} bytes but the data section has ${dataLen} (${dataLen - covered} bytes belong to no tensor)`);

  // Only now build the result; copies are aligned (file offsets need not be) and do not alias the file.
  const tensors: [string, LoadedTensor][] = byOffset.map((t) => {
    const buf = new ArrayBuffer(t.end - t.begin);
    new Uint8Array(buf).set(bytes.subarray(dataStart + t.begin, dataStart + t.end));
    return [t.name, { dtype: t.dtype, shape: t.shape, data: DTYPES[t.dtype].make(buf) } as LoadedTensor];
  });
  return { tensors: Object.fromEntries(tensors), metadata: Object.fromEntries(metadata) };
}

/**
 * The first key that appears twice in one object of a JSON text, or undefined. JSON.parse keeps the
 * last duplicate silently; the Rust library rejects them. Assumes `text` is valid JSON.
 */
function findDuplicateKey(text: string): string | undefined {
  const stack: (Set<string> | null)[] = []; // one entry per open container; null for arrays
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{') { stack.push(new Set()); expectKey = true; }
    else if (c === '[') { stack.push(null); expectKey = false; }
    else if (c === '}' || c === ']') { stack.pop(); expectKey = false; }
    else if (c === ',') expectKey = stack[stack.length - 1] !== null;
  }
  return undefined;
}
