// SPDX-License-Identifier: MIT
// The op table: every op's families merged; registering a name twice throws, a missing op is a compile error.
import type { OpName, OpRule, OpTable } from './types.js';
import { elementwiseOps } from './elementwise.js';
import { reduceOps } from './reduce.js';
import { matmulOps } from './matmul.js';
import { softmaxOps } from './softmax.js';
import { normOps } from './norm.js';
import { convOps } from './conv.js';
import { attentionOps } from './attention.js';
import { gatherOps } from './gather.js';
import { layoutOps } from './layout.js';

const families = [elementwiseOps, reduceOps, matmulOps, softmaxOps, normOps, convOps, attentionOps, gatherOps, layoutOps] as const;
type Merged = typeof elementwiseOps & typeof reduceOps & typeof matmulOps & typeof softmaxOps & typeof normOps & typeof convOps
  & typeof attentionOps & typeof gatherOps & typeof layoutOps;

function register(families: readonly object[]): Merged {
  const table: Record<string, OpRule<OpName>> = {};
  for (const fam of families) {
    for (const [name, rule] of Object.entries(fam) as [string, OpRule<OpName>][]) {
      if (name in table) throw new Error(`pullback: op '${name}' is registered twice`);
      if (rule.name !== name) throw new Error(`pullback: op table key '${name}' holds rule '${rule.name}'`);
      table[name] = rule;
    }
  }
  return table as unknown as Merged;
}

export const ops: OpTable = register(families) satisfies OpTable;
export const opNames = Object.keys(ops) as OpName[];
export { register as registerFamilies };
export type * from './types.js';
