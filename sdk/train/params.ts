// SPDX-License-Identifier: MIT
// Parameter trees (and optimizer state) to and from safetensors files. A tensor's name is its path in the tree,
// keys and array indices joined by dots: { layers: [{ w }] } saves `layers.0.w`; loading builds arrays again from
// names whose segments are 0, 1, 2, ... The tree is plain objects and arrays, as valueAndGrad takes it; other
// leaves (numbers, strings, class instances) are not saved. Loading checks everything (the file, and every name,
// shape and dtype against `like`) before it makes the first tensor, so an error never leaves half a model loaded.
import { Tensor, currentBackend, upload, type TensorBackend } from '../tensor/engine.js';
import { mapTree } from '../tensor/ad.js';
import { treeLeaves } from '../optim/optimizers.js';
import { loadSafetensors, saveSafetensors, type LoadedTensor, type SafetensorsDtype, type TensorToSave } from '../io/safetensors.js';
import { bf16ToF32, f16ToF32, f32ToF16 } from '../../runtime-gpu/float16.js';
import type { DType } from '../../runtime-gpu/shape.js';

const fmtShape = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * The Tensors of a tree with their names (`layers.0.w`), in tree order. A Tensor (or a sub-tree) at several
 * places is listed under each name. Throws when a key cannot be part of a name (it contains '.', or is empty).
 * @example namedTensors({ fc: { w, b } }); // [['fc.w', w], ['fc.b', b]]
 */
export function namedTensors(tree: unknown, fn = 'namedTensors'): [string, Tensor][] {
  if (tree instanceof Tensor) throw new Error(`${fn}: pass a tree (an object or array) of Tensors, not a bare Tensor: the names come from the keys, e.g. { weight: t }`);
  return treeLeaves(tree, (k, path) => {
    if (k === '' || k.includes('.')) {
      throw new Error(`${fn}: the key ${JSON.stringify(k)}${path ? ` under '${path}'` : ''} ${k === '' ? 'is empty' : "contains '.'"}, but names join keys with '.'; rename it`);
    }
  });
}

/** An engine dtype's safetensors dtype. */
const FILE_DTYPE: Record<DType, SafetensorsDtype> = { f32: 'F32', f16: 'F16', i32: 'I32' };

/**
 * Saves every Tensor of a tree (parameters, an optimizer's state, or both: `{ params, opt: opt.state }`) as
 * safetensors, named by their paths; f32 as F32, f16 as F16, i32 as I32. Returns the bytes, and with a path also
 * writes the file (replaced whole or not at all). Reads the tensors back from the device.
 * @example
 * await saveParams('ckpt.safetensors', { params, opt: opt.state });
 */
export async function saveParams(path: string | undefined, tree: unknown, metadata?: Record<string, string>): Promise<Uint8Array> {
  const named = namedTensors(tree, 'saveParams');
  const datas = await Promise.all(named.map(([name, t]) => {
    if (t.disposed) throw new Error(`saveParams: tensor '${name}' (${t.dtype}${fmtShape(t.shape)}) was disposed`);
    return t.data();
  }));
  const tensors: Record<string, TensorToSave> = {};
  named.forEach(([name, t], i) => {
    const d = datas[i]!;
    const data = t.dtype === 'i32' ? Int32Array.from(d) : t.dtype === 'f16' ? f32ToF16(d) : d instanceof Float32Array ? d : Float32Array.from(d);
    tensors[name] = { dtype: FILE_DTYPE[t.dtype], shape: t.shape, data };
  });
  return saveSafetensors(path, tensors, metadata);
}

/** Options of {@link loadParams}. */
export interface LoadParamsOptions {
  /** Load only the names for which this is true (the others are ignored). */
  filter?: (name: string) => boolean;
  /**
   * Without `like`: round F64 tensors to f32 (the engine has no f64 tensors). Off by default, so that a lossy
   * conversion is asked for. (BF16 → f32 and U8 → i32 are exact and always done; I64 → i32 when every value fits.)
   */
  roundF64?: boolean;
  /** Where to make the tensors. Default: the current backend. */
  backend?: TensorBackend;
}

/** Host values and the engine dtype for one loaded tensor, or a reason it cannot be one. */
function convert(name: string, t: LoadedTensor, roundF64: boolean): { dtype: DType; values: ArrayLike<number> } | string {
  switch (t.dtype) {
    case 'F32': return { dtype: 'f32', values: t.data };
    case 'F16': return { dtype: 'f16', values: f16ToF32(t.data) };
    case 'I32': return { dtype: 'i32', values: t.data };
    case 'BF16': return { dtype: 'f32', values: bf16ToF32(t.data) };
    case 'U8': return { dtype: 'i32', values: t.data };
    case 'I64': {
      const out = new Int32Array(t.data.length);
      for (let i = 0; i < out.length; i++) {
        const v = t.data[i]!;
        if (v < -2147483648n || v > 2147483647n) return `'${name}' is I64 and its element ${i} (${v}) does not fit in i32, the engine's integer type; leave it out with { filter }`;
        out[i] = Number(v);
      }
      return { dtype: 'i32', values: out };
    }
    case 'F64': return roundF64 ? { dtype: 'f32', values: t.data } : `'${name}' is F64, which the engine holds as f32 at most; pass { roundF64: true } to round it, or leave it out with { filter }`;
    default: {
      const never: never = t;
      return `'${name}' has the unsupported dtype ${(never as LoadedTensor).dtype}`;
    }
  }
}

/** Nested objects from dotted names; a node whose keys are exactly 0..n-1 becomes an array. */
function treeFromNames<T>(fail: (msg: string) => never, entries: readonly [string, T][]): Record<string, unknown> {
  type Node = { leaf?: T; name?: string; kids: Map<string, Node> };
  const root: Node = { kids: new Map() };
  for (const [name, v] of entries) {
    const parts = name.split('.');
    if (parts.some((p) => p === '')) fail(`the name '${name}' has an empty segment, so it is not a tree path; leave it out with { filter }, or load the file with loadSafetensors`);
    let node = root;
    for (const p of parts) {
      if (node.leaf !== undefined) fail(`'${node.name}' is a tensor and also the prefix of '${name}'; a tree cannot hold both (load the file with loadSafetensors)`);
      let next = node.kids.get(p);
      if (!next) { next = { kids: new Map() }; node.kids.set(p, next); }
      node = next;
    }
    if (node.kids.size) fail(`'${name}' is a tensor and also the prefix of other names; a tree cannot hold both (load the file with loadSafetensors)`);
    node.leaf = v; node.name = name;
  }
  const build = (n: Node): unknown => {
    if (n.leaf !== undefined) return n.leaf;
    const keys = [...n.kids.keys()];
    const isArray = keys.length > 0 && keys.every((k) => /^(0|[1-9]\d*)$/.test(k) && Number(k) < keys.length);
    if (isArray) return Array.from({ length: keys.length }, (_, i) => build(n.kids.get(String(i))!));
    return Object.fromEntries(keys.map((k) => [k, build(n.kids.get(k)!)]));
  };
  return build(root) as Record<string, unknown>;
}

/** Uploads every entry, or none: if one upload fails, the tensors made before it are freed. */
function uploadAll(be: TensorBackend, items: readonly { values: ArrayLike<number>; shape: readonly number[]; dtype: DType }[]): Tensor[] {
  const made: Tensor[] = [];
  try {
    for (const it of items) made.push(upload(it.values, it.shape, it.dtype, be));
    return made;
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  }
}

/**
 * Loads a safetensors file (a path or its bytes) as a tree of Tensors on the current backend.
 *
 * With `like` (a tree such as the model's parameters or `opt.state`), the result has like's structure and every
 * name, shape and dtype must match like's exactly: a missing, extra or mismatched tensor throws an Error naming
 * each one, before any tensor is made. Without it, the tree is built from the names (`layers.0.w` gives
 * `{ layers: [{ w }] }`). A corrupt or truncated file throws a SafetensorsError. The caller owns the new tensors.
 * @example
 * const bytes = await saveParams(undefined, params);
 * const copy = loadParams(bytes, params);         // same structure, checked
 * const tree = loadParams('model.safetensors');   // structure from the names
 */
export function loadParams<T = Record<string, unknown>>(source: Uint8Array | ArrayBuffer | string, like?: T, options: LoadParamsOptions = {}): T {
  const where = typeof source === 'string' ? source : 'buffer';
  const fail = (msg: string): never => { throw new Error(`loadParams(${where}): ${msg}`); };
  const { filter, roundF64 = false } = options;
  const file = loadSafetensors(source).tensors;
  const names = Object.keys(file).filter((n) => !filter || filter(n));
  const be = options.backend ?? currentBackend();

  if (like === undefined) {
    const problems: string[] = [];
    const items = names.map((name) => {
      const c = convert(name, file[name]!, roundF64);
      if (typeof c === 'string') problems.push(c);
      return typeof c === 'string' ? null : { ...c, shape: file[name]!.shape };
    });
    if (problems.length) fail(listOf(problems));
    const tree = treeFromNames(fail, names.map((n, i) => [n, i]));
    const made = uploadAll(be, items as NonNullable<(typeof items)[number]>[]);
    return mapIndices(tree, made) as T;
  }

  const wanted = namedTensors(like, 'loadParams');
  const problems: string[] = [];
  const inFile = new Set(names);
  const known = new Set<string>();
  for (const [name, t] of wanted) {
    known.add(name);
    const f = inFile.has(name) ? file[name]! : undefined;
    if (!f) { problems.push(`'${name}' (${t.dtype}${fmtShape(t.shape)}) is missing from the file`); continue; }
    if (f.dtype !== FILE_DTYPE[t.dtype]) problems.push(`'${name}' is ${f.dtype} in the file but ${t.dtype} (${FILE_DTYPE[t.dtype]}) in the tree`);
    if (fmtShape(f.shape) !== fmtShape(t.shape)) problems.push(`'${name}' has shape ${fmtShape(f.shape)} in the file but ${fmtShape(t.shape)} in the tree`);
  }
  const extra = names.filter((n) => !known.has(n));
  if (extra.length) problems.push(`the file has tensors the tree has no place for: ${extra.slice(0, 10).map((n) => `'${n}'`).join(', ')}${extra.length > 10 ? `, and ${extra.length - 10} more` : ''} (leave them out with { filter })`);
  if (problems.length) fail(listOf(problems));

  // A Tensor at several places of `like` (tied weights) stays one Tensor: loaded from its first name.
  const first = new Map<Tensor, string>();
  for (const [name, t] of wanted) if (!first.has(t)) first.set(t, name);
  const order = [...first.entries()];
  const made = uploadAll(be, order.map(([t, name]) => {
    // The dtypes match exactly (F32, F16 or I32), so the conversion cannot fail.
    const c = convert(name, file[name]!, false) as Exclude<ReturnType<typeof convert>, string>;
    return { values: c.values, shape: t.shape, dtype: t.dtype };
  }));
  const byLeaf = new Map(order.map(([t], i) => [t, made[i]!]));
  return mapTree(like, (t) => byLeaf.get(t)!) as T;
}

function listOf(problems: string[]): string {
  return problems.length === 1 ? problems[0]! : `${problems.length} problems:\n  ${problems.join('\n  ')}`;
}

/** The tree of indices with each index replaced by its tensor. */
function mapIndices(tree: unknown, made: readonly Tensor[]): unknown {
  if (typeof tree === 'number') return made[tree]!;
  if (Array.isArray(tree)) return tree.map((v) => mapIndices(v, made));
  return Object.fromEntries(Object.entries(tree as object).map(([k, v]) => [k, mapIndices(v, made)]));
}
