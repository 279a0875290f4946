// Prints the fixture's results as one JSON line, the same way through every entry point.
// Gradients come from the SDK when it is built.
import * as main from './main.js';
import * as poly from './lib/poly.js';
import * as vec from './lib/vec.js';
import * as net from './lib/net.js';

type Fn = (...args: never[]) => unknown;
// @ts-ignore: until the SDK is built, tsc cannot find 'pullback' (and the import fails: no gradients).
const sdk = (await import('pullback').catch(() => null)) as { grad?: (f: Fn, argnums?: number[]) => Fn } | null;
const plain = (v: unknown): unknown =>
  v instanceof Float64Array ? Array.from(v) : Array.isArray(v) ? v.map(plain) : v;

const cases: [string, Fn, unknown[]][] = [
  ['energy', main.energy as Fn, [0.3, 2]],
  ['energy', main.energy as Fn, [1.7, -0.5]],
  ['rosenbrock', main.rosenbrock as Fn, [new Float64Array([0.5, -1.25, 2, 0.75])]],
  ['horner', poly.horner as Fn, [0.9, 1, 2, 3]],
  ['sumSquares', vec.sumSquares as Fn, [new Float64Array([3, -4])]],
];
const values = cases.map(([name, f, args]) => [name, plain(f(...(args as never[])))]);
values.push(['springForce', main.springForce({ k: 3, rest: 1 }, 1.5)]);

const grads = sdk?.grad === undefined ? null : cases.map(([name, f, args]) => {
  try {
    return [name, plain(sdk.grad!(f, args.map((_, i) => i))(...(args as never[])))];
  } catch (e) {
    return [name, `error: ${(e as Error).message}`];
  }
});

// A tensor gradient on the reference backend (f64), when the SDK is built.
type Sdk = { useBackend(b: unknown): void; referenceTensorBackend: unknown; tensor(d: number[], s: number[]): { data(): Promise<ArrayLike<number>> } };
const tsdk = sdk as unknown as Sdk | null;
let tensorGrads: unknown = null;
if (tsdk?.referenceTensorBackend) {
  tsdk.useBackend(tsdk.referenceTensorBackend);
  const p = { w: tsdk.tensor([0.5, -0.25, 1, 0.75], [2, 2]), b: tsdk.tensor([0.1, -0.2], [2]) };
  const g = sdk!.grad!(net.regression as Fn)(p as never, tsdk.tensor([1, 2, -1, 0.5], [2, 2]) as never, tsdk.tensor([0.3, 0.1, 0, 1], [2, 2]) as never) as { w: { data(): Promise<ArrayLike<number>> }; b: { data(): Promise<ArrayLike<number>> } };
  tensorGrads = { w: Array.from(await g.w.data()), b: Array.from(await g.b.data()) };
}

// What each module exports (functions by name only), so code that a front end adds or loses shows.
const exports = Object.fromEntries(Object.entries({ main, poly, vec, net }).map(([name, mod]) => [name,
  Object.fromEntries(Object.entries(mod).sort().map(([k, v]) => [k, typeof v === 'function' ? 'function' : v]))]));

console.log(JSON.stringify({ values, grads, tensorGrads, exports }));
