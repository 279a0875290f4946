// SPDX-License-Identifier: MIT
// Reverse mode over tensors. The transformer turns a marked tensor function f into f$vjp($s, ...args), whose body
// is f's body with every tensor call routed through a Frame: the frame records each call's pullback in forward
// order and frees each intermediate right after the last use the transformer found. The backward pass runs the
// recorded pullbacks in reverse. An untransformed function gets the same ops and pullbacks recorded at run time
// (the eager tape), so that REPL experiments work; it frees intermediates only when the garbage collector finds
// them, and `explain(f)` says which path runs.
import { Session, Tensor, within, currentSession, constant, detach, reshapeTensor, collecting, readsOf, type GradFinalHook, type GradPartHook, type RecordedOp } from './engine.js';

type Fn = (...args: any[]) => any;
export type TensorVjp = (this: unknown, s: Session | null, ...args: any[]) => [any, (() => void) | null];

export interface TensorAdjoint {
  name: string;
  /** `file.ts:line` of the source function. */
  where: string;
  vjp: TensorVjp;
  /** The generated TypeScript. */
  source: string;
  /** How many intermediates the generated forward frees at their last use (for explain). */
  frees?: number;
}

const table = new WeakMap<Function, TensorAdjoint>();
const rules = new WeakMap<Function, { rule: Function; name: string; where: string }>();

export function registerTensor(f: Function, a: TensorAdjoint): void {
  if (table.has(f)) throw new Error(`pullback: ${a.name} (${a.where}) is registered twice`);
  table.set(f, a);
}
export function lookupTensor(f: Function): TensorAdjoint | undefined { return table.get(f); }

/** `/** @derivative f *\/ function rule(...args, dy)` for a tensor function: returns the gradient of each Tensor argument. */
export function registerTensorRule(f: Function, rule: Function, meta: { name: string; where: string }): void {
  rules.set(f, { rule, ...meta });
}
export function hasTensorRule(f: Function): boolean { return rules.has(f); }

/** Every Tensor in a value: itself, or the leaves of a tree of plain objects and arrays. */
export function tensorsIn(x: unknown, out: Tensor[] = [], seen = new Set<unknown>()): Tensor[] {
  if (x instanceof Tensor) { out.push(x); return out; }
  if (x === null || typeof x !== 'object' || seen.has(x) || ArrayBuffer.isView(x)) return out;
  seen.add(x);
  if (Array.isArray(x)) for (const v of x) tensorsIn(v, out, seen);
  else if (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null) for (const v of Object.values(x)) tensorsIn(v, out, seen);
  return out;
}

/** The same tree with each Tensor leaf replaced by fn(leaf) (other leaves kept). */
export function mapTree<T>(x: unknown, fn: (t: Tensor) => T): any {
  if (x instanceof Tensor) return fn(x);
  if (Array.isArray(x)) return x.map((v) => mapTree(v, fn));
  if (x !== null && typeof x === 'object' && !ArrayBuffer.isView(x) && (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null)) {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, mapTree(v, fn)]));
  }
  return x;
}

export const containsTensor = (x: unknown): boolean => tensorsIn(x).length > 0;

/**
 * A marked function's frame in generated code. `op` runs a library op (recorded), `call` a marked function (its
 * own generated pullback) or one with a custom rule, `checkpoint` a function whose forward is recomputed in
 * the backward pass; `free` releases an intermediate at its last use; `ret` frees what is left and returns.
 */
export class Frame {
  /** Tensors this call made and has not released. */
  private readonly own = new Set<Tensor>();
  /** Pullbacks in forward order. */
  readonly tape: RecordedOp[] = [];
  constructor(readonly s: Session | null) {}

  /** Tensors passed straight into a call, freed once it has run. */
  private readonly temps = new Set<Tensor>();

  /** Takes ownership of what a call made, and frees the temporaries it consumed. */
  private adopt<R>(result: R, since: number, consumed: readonly unknown[] = []): R {
    // A call that hands back a tensor this frame already owns (an identity, `x => x`) must not share it: the
    // caller frees each binding at its own last use. The result becomes a view (free, and differentiable).
    let out = result;
    const passed = (t: Tensor) => t.id < since && this.own.has(t);
    if (tensorsIn(out).some(passed)) {
      out = mapTree(out, (t) => (passed(t) ? within(this.s, this.s ? this.tape : null, () => reshapeTensor(t, t.shape)) : t));
    }
    const outs = tensorsIn(out);
    for (const t of outs) if (t.id >= since && !t.disposed) this.own.add(t);
    if (this.temps.size) for (const a of consumed) if (a instanceof Tensor && this.temps.delete(a) && !outs.includes(a)) this.free(a);
    return out;
  }

  /** Marks a tensor that goes straight into the next call as freed after it. */
  t<T>(x: T): T {
    if (x instanceof Tensor && this.own.has(x)) this.temps.add(x);
    return x;
  }
  /** `v = E`: E is computed with the old value, which is then freed (when this call made it). */
  swap<T>(old: T, value: T): T {
    if (old !== value) this.free(old);
    return value;
  }
  /** `[obj, obj[name]]`, so that a receiver expression is evaluated once. */
  bind(obj: any, name: string): [any, any] { return [obj, obj[name]]; }

  /** A library op (or any unmarked function over tensors): its ops are recorded one by one. */
  op<A extends unknown[], R>(f: (...args: A) => R, ...args: A): R {
    const since = Tensor.nextId();
    return this.adopt(within(this.s, this.s ? this.tape : null, () => f(...args)), since, args);
  }
  /** `obj.name(...args)`, recorded as op() does. */
  method(obj: any, name: string, ...args: unknown[]): any {
    const since = Tensor.nextId();
    return this.adopt(within(this.s, this.s ? this.tape : null, () => obj[name](...args)), since, [obj, ...args]);
  }

  /** A call to another differentiable function: its generated pullback, its custom rule, or its recorded ops. */
  call<A extends unknown[], R>(f: (...args: A) => R, ...args: A): R {
    return this.callWith(undefined, f, ...args);
  }
  callWith<A extends unknown[], R>(self: unknown, f: (...args: A) => R, ...args: A): R {
    const since = Tensor.nextId();
    const s = this.s;
    const adj = table.get(f);
    if (adj) {
      const [out, pb] = within(s, null, () => adj.vjp.call(self, s, ...args));
      if (pb) this.tape.push({ pb });
      return this.adopt(out, since, args);
    }
    const rule = rules.get(f);
    if (rule && s) return this.adopt(customCall(s, this.tape, self, f, rule, args), since, args);
    // An unmarked function (a helper, Array.prototype.reduce with a callback): its ops are recorded, and what it
    // made besides its result is released when it returns (the recorded pullbacks keep what they need).
    const { result, made } = collecting(() => within(s, s ? this.tape : null, () => f.apply(self, args)));
    const keep = new Set(tensorsIn(result));
    for (const t of made) if (!keep.has(t)) t.dispose();
    return this.adopt(result, since, args);
  }

  /** checkpoint(f, ...args): f's forward is not kept; the backward pass runs it again, recorded. */
  checkpoint<A extends unknown[], R>(f: (...args: A) => R, ...args: A): R {
    const since = Tensor.nextId();
    return this.adopt(checkpointCall(this.s, this.tape, f, args), since, args);
  }

  /** Releases an intermediate after its last use (only tensors this call made). */
  free(t: unknown): void {
    if (t instanceof Tensor && this.own.delete(t)) t.dispose();
  }
  /** Frees every intermediate except those in `value`, and returns `[value, pullback]`. */
  ret<R>(value: R): [R, (() => void) | null] {
    const keep = new Set(tensorsIn(value));
    for (const t of this.own) if (!keep.has(t)) t.dispose();
    this.own.clear();
    const s = this.s, tape = this.tape;
    return [value, s && tape.length ? () => s.backward(tape) : null];
  }
}

export const frame = (s: Session | null): Frame => new Frame(s);

/**
 * What a marked function's own body runs: its generated code, so that intermediates are freed at their last
 * use in plain calls too. Under an eager tape it records its pullback as one call.
 */
export function primal(vjp: TensorVjp, self: unknown, args: unknown[]): any {
  const s = currentSession();
  if (s?.record && args.some((a) => tensorsIn(a).some((t) => s.isActive(t)))) {
    const [out, pb] = within(s, null, () => vjp.call(self, s, ...args));
    if (pb) s.record.push({ pb });
    return out;
  }
  return within(null, null, () => vjp.call(self, null, ...args))[0];
}

function customCall(s: Session, tape: RecordedOp[], self: unknown, f: Function, r: { rule: Function; name: string; where: string }, args: unknown[]): any {
  // The primal of a function with a rule is plain code too: free what it made besides its result.
  const { result: out, made } = collecting(() => within(null, null, () => f.apply(self, args)));
  const keep = new Set(tensorsIn(out));
  for (const t of made) if (!keep.has(t)) t.dispose();
  const inputs = args.map((a) => (a instanceof Tensor && s.isActive(a) ? a : null));
  if (!inputs.some(Boolean)) return out;
  if (!(out instanceof Tensor)) throw new Error(`pullback: ${r.name} has a custom derivative, so it must return one Tensor`);
  const kept = args.filter((a): a is Tensor => a instanceof Tensor).map((t) => t.retain());
  out.active = s.id;
  tape.push({
    leaves: s.countUses(inputs.filter((t): t is Tensor => t !== null)),
    pb: () => {
      try {
        const g = s.take(out);
        if (!g) return;
        // The rule is plain code: what it makes and does not return is freed here; what it returns that it did not
        // make (dy itself, an argument) gets a reference of its own before going to the session.
        const { result: res, made } = collecting(() => within(null, null, () => r.rule.apply(self, [...args, g])));
        try {
          const grads: unknown[] = args.length === 1 && !Array.isArray(res) ? [res] : res;
          if (!Array.isArray(grads) || grads.length !== args.length) {
            throw new Error(`pullback: the derivative rule of ${r.name} (${r.where}) must return ${args.length === 1 ? 'the gradient of its argument' : `an array of ${args.length} gradients (null for non-Tensor arguments)`}`);
          }
          const mine = new Set(made);
          grads.forEach((gi, i) => {
            const t = inputs[i];
            if (!(gi instanceof Tensor) || !t) return;
            if (mine.delete(gi)) s.accumulate(t, gi);
            else s.accumulate(t, gi.retain());
          });
          for (const x of mine) x.dispose();
        } finally { g.release(); }
      } finally { for (const t of kept) t.release(); }
    },
  });
  return out;
}

function checkpointCall(s: Session | null, tape: RecordedOp[], f: Function, args: unknown[]): any {
  const forward = () => within(null, null, () => (table.get(f) ? primalOf(f, args) : f(...args)));
  // With a gradient-final hook, note what the forward reads: the recomputation reads the same, and until it has run
  // those leaves' gradients are not final (a whole parameter tree passed in does not hold back the leaves f never
  // reads, and a parameter f reaches through a closure is held too).
  const { result: out, read } = s?.countsUses ? readsOf(forward) : { result: forward(), read: null };
  if (!s) return out;
  const leaves = args.flatMap((a) => tensorsIn(a));
  if (!leaves.some((t) => s.isActive(t))) return out;
  for (const t of leaves) t.retain();
  const outs = tensorsIn(out);
  for (const t of outs) if (t.dtype !== 'i32') t.active = s.id;
  tape.push({
    leaves: read ? s.countUses(read) : undefined,
    pb: () => {
      try {
        // Recompute, recorded this time, and hand the cotangents of the first run's outputs to the second's.
        const inner = new Frame(s);
        const again = inner.call(f as Fn, ...args);
        const outs2 = tensorsIn(again);
        outs.forEach((o, i) => { const g = s.take(o); if (g && outs2[i]) s.accumulate(outs2[i]!, g); else g?.release(); });
        const [, pb] = inner.ret(again);
        pb?.();
        for (const t of outs2) t.dispose();
      } finally { for (const t of leaves) t.release(); }
    },
  });
  return out;
}

function primalOf(f: Function, args: unknown[]): unknown {
  return table.get(f)!.vjp.call(undefined, null, ...args)[0];
}

/**
 * checkpoint(f, ...args) = f(...args), but the forward values inside f are not kept for the backward pass:
 * they are recomputed when it needs them (less memory for one more forward of f). Nests, and works in loops.
 */
export function checkpoint<A extends unknown[], R>(f: (...args: A) => R, ...args: A): R {
  const s = currentSession();
  if (s?.record) return checkpointCall(s, s.record, f, args) as R;
  return f(...args);
}

/** The same values with no gradient flowing back through them. */
export function stopGradientTensor(x: Tensor): Tensor { return detach(x); }

// ---- the operators ----

export interface TensorGradResult { value: Tensor; grads: unknown[] }

function runForward(f: Function, self: unknown, args: unknown[], s: Session): { out: unknown; backward: () => void } {
  const adj = table.get(f);
  if (adj) {
    const [out, pb] = within(s, null, () => adj.vjp.call(self, s, ...args));
    return { out, backward: () => pb && within(s, null, pb) };
  }
  const nodes: RecordedOp[] = [];
  const out = within(s, nodes, () => f.apply(self, args));
  return { out, backward: () => within(s, null, () => s.backward(nodes)) };
}

const nameOf = (f: Function): string => table.get(f)?.name ?? (f.name || 'the function');

/**
 * The gradient of each leaf of `tree`, in its shape: the session's cotangent (zeros where none arrived). A leaf
 * that appears twice gets the same gradient tensor (`done` spans the trees of one call).
 */
function gradientTree(s: Session, tree: unknown, done: Map<Tensor, Tensor>): unknown {
  return mapTree(tree, (leaf) => {
    let g = done.get(leaf);
    if (!g) done.set(leaf, (g = s.take(leaf) ?? constant(leaf.backend, leaf.shape, 0)));
    return g;
  });
}

/** A gradient taken while another is being recorded would take over the outer one's marks: refuse, clearly. */
function noNesting(f: Function): void {
  if (currentSession()) {
    throw new Error(`pullback: grad/vjp of ${nameOf(f)} was called while another tensor gradient is being computed; ` +
      'nested differentiation of tensor functions is not supported yet: compute the inner gradient outside');
  }
}

/** Options of tensorValueAndGrad. */
export interface TensorGradOptions {
  /** The cotangent the backward pass starts from (default 1; a loss scale under mixed precision). */
  seed?: number;
  /**
   * Called once per distinct leaf of `argnums` as soon as its gradient is final, while the backward pass goes on
   * (data-parallel training starts reducing it there); leaves nothing read come after the backward pass. `grad` is
   * the tensor returned in `grads` (zeros when no gradient arrived): read it, do not dispose it. See Session.onGradFinal.
   */
  onGradFinal?: GradFinalHook;
  /**
   * With onGradFinal: the 2-D weights whose gradient is computed in blocks of rows (rows per block) when one matmul
   * completes it, each block reported to `hook` as soon as it is computed. See Session.onGradPart.
   */
  gradParts?: { rows: ReadonlyMap<Tensor, number>; hook: GradPartHook };
}

/** Runs f, seeds the cotangent of its scalar result with 1 and returns the value and the gradients of `argnums`. */
export function tensorValueAndGrad(f: Function, self: unknown, args: unknown[], argnums: readonly number[], opts: TensorGradOptions = {}): TensorGradResult {
  noNesting(f);
  const s = new Session();
  for (const i of argnums) {
    if (i < 0 || i >= args.length) throw new Error(`pullback: argnums ${i} is out of range: ${nameOf(f)} was called with ${args.length} arguments`);
    const leaves = tensorsIn(args[i]);
    if (!leaves.length) throw new Error(`pullback: argument ${i} of ${nameOf(f)} holds no Tensor to differentiate with respect to; pass a Tensor or a tree (objects, arrays) of Tensors, or choose another argnums`);
    for (const t of leaves) s.watch(t);
  }
  if (opts.onGradFinal) s.onGradFinal(opts.onGradFinal);
  if (opts.gradParts) s.onGradPart(opts.gradParts.hook, opts.gradParts.rows);
  try {
    const { out, backward } = runForward(f, self, args, s);
    if (!(out instanceof Tensor) || out.size !== 1) {
      for (const t of tensorsIn(out)) t.dispose();
      const got = out instanceof Tensor ? `a ${out.dtype}[${out.shape.join(', ')}] tensor` : typeof out;
      throw new Error(`pullback: grad needs a function that returns a scalar Tensor (one element), but ${nameOf(f)} returned ${got}; reduce it with sum() or mean(), or use vjp(f, ...args) to pull back a cotangent`);
    }
    // The seed: 1, or the loss scale (mixed precision multiplies the loss by s by seeding the backward pass with s).
    if (s.isActive(out)) s.accumulate(out, constant(out.backend, out.shape, opts.seed ?? 1));
    backward();
    s.finishGradFinal();
    const done = new Map<Tensor, Tensor>();
    return { value: out, grads: argnums.map((i) => gradientTree(s, args[i], done)) };
  } finally {
    s.end();
  }
}

/** vjp for tensor functions: `[value, pullback]`; pullback(cotangent) returns the gradients of every argument (a tree per argument; undefined where it holds no Tensor). It runs once. */
export function tensorVjp(f: Function, self: unknown, args: unknown[], argnums?: readonly number[]): [unknown, (ct: unknown) => unknown[]] {
  noNesting(f);
  const s = new Session();
  args.forEach((a, i) => { if (!argnums || argnums.includes(i)) for (const t of tensorsIn(a)) s.watch(t); });
  const { out, backward } = runForward(f, self, args, s);
  let used = false;
  const pullback = (ct: unknown) => {
    if (used) throw new Error(`pullback: the pullback of ${nameOf(f)} over tensors runs once (it frees what it kept as it goes); call vjp again for another cotangent`);
    used = true;
    try {
      const outs = tensorsIn(out), cts = tensorsIn(ct);
      if (outs.length !== cts.length) throw new Error(`pullback: the cotangent must have the structure of the output (${outs.length} tensors), got ${cts.length}`);
      outs.forEach((o, i) => {
        const c = cts[i]!;
        if (c.shape.join() !== o.shape.join()) throw new Error(`pullback: the cotangent's shape [${c.shape.join(', ')}] differs from the output's [${o.shape.join(', ')}]`);
        if (s.isActive(o)) s.accumulate(o, c.retain());
      });
      backward();
      const done = new Map<Tensor, Tensor>();
      return args.map((a, i) => (containsTensor(a) && (!argnums || argnums.includes(i)) ? gradientTree(s, a, done) : undefined));
    } finally { s.end(); }
  };
  return [out, pullback];
}

/** How f is differentiated: the transformer's generated code or the eager tape, and why. */
export function explainTensor(f: Function): string {
  const adj = table.get(f);
  if (adj) {
    return `${adj.name} (${adj.where}) is differentiated by the code pullback generated at build time: its forward frees ` +
      `${adj.frees ?? 0} intermediate(s) at their last use and keeps only what the pullbacks need. adjointSource(${adj.name}) shows it.`;
  }
  if (rules.has(f)) return `${nameOf(f)} is differentiated by its custom /** @derivative */ rule (${rules.get(f)!.where}).`;
  return `${f.name || 'this function'} was not transformed, so grad records a tape at run time: slower, and its intermediates ` +
    'are freed by the garbage collector rather than at their last use. Mark it /** @differentiable */ and build with the ' +
    'pullback transformer for generated code.';
}
