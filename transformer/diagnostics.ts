// SPDX-License-Identifier: MIT
// The transformer's own error, raised at the offending node and turned into a diagnostic with file:line:col.
import { Node } from 'ts-morph';
import type { PullbackDiagnostic } from './compiler.js';

export class Diagnostics {
  readonly list: PullbackDiagnostic[] = [];

  at(node: Node, message: string, category: 'error' | 'warning' = 'error'): void {
    const sf = node.getSourceFile();
    const start = node.getStart();
    const { line, column } = sf.getLineAndColumnAtPos(start);
    this.list.push({ file: sf.getFilePath(), line, column, start, length: node.getWidth(), category, message });
  }

  /** `<construct> is not differentiable: <reason>; <what to do>`: the one shape of every rejection. */
  unsupported(node: Node, construct: string, reason: string, todo: string): void {
    this.at(node, `${construct} is not differentiable: ${reason}; ${todo}`);
  }

  get hasErrors(): boolean {
    return this.list.some((d) => d.category === 'error');
  }
}

/** Thrown inside a pass to abandon one function after its diagnostic has been recorded. */
export class Abandon extends Error {}
