// SPDX-License-Identifier: MIT
// The parameter trees of the benchmark models (bench/programs/models.ts) built from the specs the peers share
// (bench/peers.ts), so that every library starts from the same values.
import { tensor, type Tensor } from 'pullback';
import type * as m from './programs/models.js';
import { BLOCK_PARAMS, type ModelCase } from './peers.js';

/** The parameter tree of bench/programs/models.ts built from the shared specs. */
export function paramTree(c: ModelCase): m.Dense[] | m.Block[] {
  const t = c.params.map((p) => tensor(p.data, p.shape));
  if (c.kind === 'mlp') return Array.from({ length: t.length / 2 }, (_, i): m.Dense => ({ w: t[2 * i]!, b: t[2 * i + 1]! }));
  return Array.from({ length: c.blocks }, (_, i): m.Block => {
    const p = Object.fromEntries(BLOCK_PARAMS.map((name, j) => [name, t[12 * i + j]!])) as Record<(typeof BLOCK_PARAMS)[number], Tensor>;
    return {
      ln1: { g: p['ln1.g'], b: p['ln1.b'] }, ln2: { g: p['ln2.g'], b: p['ln2.b'] },
      wq: p.wq, wk: p.wk, wv: p.wv, wo: p.wo, fc1: { w: p['fc1.w'], b: p['fc1.b'] }, fc2: { w: p['fc2.w'], b: p['fc2.b'] },
    };
  });
}
