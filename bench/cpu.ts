// SPDX-License-Identifier: MIT
// `npm run bench:cpu`: the Wasm SIMD CPU kernels (runtime-wasm/) against TensorFlow.js's Wasm
// backend (XNNPACK) and jax-js's Wasm backend, single-threaded, in one process. Every case runs
// the libraries interleaved (ours, TF.js, jax-js, ours, ...) and reports medians; the spread
// (min..max over the runs) is printed below the table because these machines are noisy.
// The kernels are called directly (the tensor API that will wrap them is not wired in yet).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadCpuKernels, type BufferRef } from '../runtime-wasm/kernels.js';
import { median, report, row, type BenchRow } from './report.js';

type Timed = () => Promise<void> | void;

const spreads: string[] = [];

/** Runs each library's function `reps` times, interleaved, after `warm` untimed runs; returns ms per run. */
async function interleaved(label: string, fns: Record<string, Timed>, reps: number, warm = 2): Promise<Record<string, number>> {
  const times: Record<string, number[]> = {};
  for (const name of Object.keys(fns)) {
    times[name] = [];
    for (let i = 0; i < warm; i++) await fns[name]!();
  }
  for (let r = 0; r < reps; r++) {
    for (const [name, f] of Object.entries(fns)) {
      const t0 = performance.now();
      await f();
      times[name]!.push(performance.now() - t0);
    }
  }
  const out: Record<string, number> = {};
  for (const [name, ts] of Object.entries(times)) {
    out[name] = median(ts);
    spreads.push(`${label} / ${name}: median ${median(ts).toFixed(2)} ms, min ${Math.min(...ts).toFixed(2)}, max ${Math.max(...ts).toFixed(2)} (${ts.length} runs)`);
  }
  return out;
}

// ---- peers -------------------------------------------------------------------------------

const require = createRequire(import.meta.url);
const tf = await import('@tensorflow/tfjs');
const tfWasm = await import('@tensorflow/tfjs-backend-wasm');
tfWasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
await tf.setBackend('wasm');
await tf.ready();
const jax = await import('@jax-js/jax');
await jax.init('wasm');
jax.defaultDevice('wasm');
const np = jax.numpy;

const k = await loadCpuKernels();
const adapter = `wasm-${k.variant}, 1 thread`;
const rows: BenchRow[] = [];
const TF = 'TF.js-wasm 4.22 (XNNPACK)';
const JAX = 'jax-js 0.1.25 wasm';

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

// ---- peak --------------------------------------------------------------------------------

// Peak: best of a measurement here and one at the end (the machine is shared and noisy).
let peak = k.measurePeakGflops();
const peakRow = () => rows.unshift(row({ case: 'f32 SIMD peak, 1 core (12 chains x = x*m + c)', unit: 'GFLOP/s', pullback: peak, peer: null, peerName: '-', better: 'higher', adapter }));
const achieved: [string, number][] = [];
const frac = (name: string, gflops: number) => achieved.push([name, gflops]);

// ---- matmul ------------------------------------------------------------------------------

for (const n of [256, 512, 1024]) {
  const A = rand(n * n, 1), B = rand(n * n, 2);
  const a = k.upload(A), b = k.upload(B), c = k.alloc(n * n);
  const ta = tf.tensor2d(A, [n, n]), tb = tf.tensor2d(B, [n, n]);
  const ja = np.array(A).reshape([n, n]), jb = np.array(B).reshape([n, n]);
  const reps = n === 1024 ? 7 : n === 512 ? 11 : 21;
  const t = await interleaved(`matmul ${n}`, {
    pullback: () => k.matmul(n, n, n, a, b, c),
    tfjs: async () => { const r = tf.matMul(ta, tb); await r.data(); r.dispose(); },
    jax: async () => { const r = np.matmul(ja.ref, jb.ref); await jax.blockUntilReady(r); r.dispose(); },
  }, reps);
  const gf = (ms: number) => (2 * n ** 3) / ms / 1e6;
  rows.push(row({ case: `matmul ${n}x${n}x${n}`, unit: 'GFLOP/s', pullback: gf(t.pullback!), peer: gf(t.tfjs!), peerName: TF, better: 'higher', adapter }));
  rows.push(row({ case: `matmul ${n}x${n}x${n}`, unit: 'GFLOP/s', pullback: gf(t.pullback!), peer: gf(t.jax!), peerName: JAX, better: 'higher', adapter }));
  frac(`matmul ${n}`, gf(t.pullback!));
  k.free(a); k.free(b); k.free(c);
  ta.dispose(); tb.dispose(); ja.dispose(); jb.dispose();
}

// ---- conv2d 3x3, [32, 16, 28, 28] -> 32 channels, stride 1, padding 1 ------------------------

{
  const [N, C, H, W, CO] = [32, 16, 28, 28, 32];
  const xs = [N, C, H, W], ws = [CO, C, 3, 3];
  const X = rand(N * C * H * W, 3), Wt = rand(CO * C * 9, 4), DY = rand(N * CO * H * W, 5);
  const x = k.upload(X), w = k.upload(Wt), dy = k.upload(DY);
  const y = k.alloc(N * CO * H * W), dx = k.alloc(N * C * H * W), dw = k.alloc(CO * C * 9);
  const flops = 2 * N * CO * H * W * C * 9;
  // TF.js on wasm runs NHWC with HWIO filters; the same arithmetic in its native layout.
  const tx = tf.tensor4d(rand(N * H * W * C, 3), [N, H, W, C]), tw = tf.tensor4d(rand(9 * C * CO, 4), [3, 3, C, CO]);
  const tdy = tf.tensor4d(rand(N * H * W * CO, 5), [N, H, W, CO]);
  const jx = np.array(X).reshape(xs), jw = np.array(Wt).reshape(ws), jdy = np.array(DY).reshape([N, CO, H, W]);
  const jconv = jax.jit((a: InstanceType<typeof jax.Array>, b: InstanceType<typeof jax.Array>) => jax.lax.conv(a, b, [1, 1], 'SAME'));
  const jgrad = jax.jit(jax.grad(
    (a: InstanceType<typeof jax.Array>, b: InstanceType<typeof jax.Array>, g: InstanceType<typeof jax.Array>) => jax.lax.conv(a, b, [1, 1], 'SAME').mul(g).sum(),
    { argnums: [0, 1] },
  ));
  const opts = { padding: 1 };

  const fwd = await interleaved('conv2d forward', {
    pullback: () => k.conv2d(x, xs, w, ws, y, opts),
    tfjs: async () => { const r = tf.conv2d(tx, tw, 1, 'same'); await r.data(); r.dispose(); },
    jax: async () => { const r = jconv(jx.ref, jw.ref); await jax.blockUntilReady(r); r.dispose(); },
  }, 7);
  rows.push(row({ case: 'conv2d 3x3 forward [32,16,28,28]->32', unit: 'ms', pullback: fwd.pullback!, peer: fwd.tfjs!, peerName: TF, better: 'lower', adapter }));
  rows.push(row({ case: 'conv2d 3x3 forward [32,16,28,28]->32', unit: 'ms', pullback: fwd.pullback!, peer: fwd.jax!, peerName: JAX, better: 'lower', adapter }));
  frac('conv2d forward', flops / fwd.pullback! / 1e6);

  const bin = await interleaved('conv2d backward-input', {
    pullback: () => k.conv2dBackwardInput(dy, w, dx, xs, ws, opts),
    tfjs: async () => { const r = tf.conv2dTranspose(tdy, tw, [N, H, W, C], 1, 'same'); await r.data(); r.dispose(); },
  }, 7);
  rows.push(row({ case: 'conv2d 3x3 backward-input', unit: 'ms', pullback: bin.pullback!, peer: bin.tfjs!, peerName: TF, better: 'lower', adapter }));
  frac('conv2d backward-input', flops / bin.pullback! / 1e6);

  const bf = await interleaved('conv2d backward-filter', { pullback: () => k.conv2dBackwardFilter(x, dy, dw, xs, ws, opts) }, 7);
  rows.push(row({ case: 'conv2d 3x3 backward-filter (no TF.js-wasm kernel)', unit: 'ms', pullback: bf.pullback!, peer: null, peerName: '-', better: 'lower', adapter }));
  frac('conv2d backward-filter', flops / bf.pullback! / 1e6);

  const all = await interleaved('conv2d forward + both backwards', {
    pullback: () => {
      k.conv2d(x, xs, w, ws, y, opts);
      k.conv2dBackwardInput(dy, w, dx, xs, ws, opts);
      k.conv2dBackwardFilter(x, dy, dw, xs, ws, opts);
    },
    jax: async () => { const r = jgrad(jx.ref, jw.ref, jdy.ref); await jax.blockUntilReady(r); r[0].dispose(); r[1].dispose(); },
  }, 3, 1);
  rows.push(row({ case: 'conv2d 3x3 forward + backward-input + backward-filter', unit: 'ms', pullback: all.pullback!, peer: all.jax!, peerName: JAX, better: 'lower', adapter }));
  // TF.js has no backward-filter on wasm: compare its forward + backward-input with ours.
  rows.push(row({ case: 'conv2d 3x3 forward + backward-input', unit: 'ms', pullback: fwd.pullback! + bin.pullback!, peer: fwd.tfjs! + bin.tfjs!, peerName: TF, better: 'lower', adapter }));
  frac('conv2d forward + both backwards', 3 * flops / all.pullback! / 1e6);
  for (const b of [x, w, dy, y, dx, dw]) k.free(b);
  for (const t of [tx, tw, tdy]) t.dispose();
  jx.dispose(); jw.dispose(); jdy.dispose();
}

// ---- MLP 784-256-256-10, batch 128: forward, backward, SGD step ------------------------------

{
  const B = 128, sizes = [784, 256, 256, 10], lr = 0.01;
  const Xd = rand(B * 784, 6);
  const labelsArr = Int32Array.from({ length: B }, (_, i) => (i * 7) % 10);
  const onehot = new Float32Array(B * 10);
  labelsArr.forEach((l, i) => { onehot[i * 10 + l] = 1; });
  const init = (i: number) => rand(sizes[i]! * sizes[i + 1]!, 10 + i).map((v) => v * 0.1);

  // ours: weights [in, out], activations [B, features]
  const Ws = [0, 1, 2].map((i) => k.upload(init(i)));
  const bs = [0, 1, 2].map((i) => { const b = k.alloc(sizes[i + 1]!); k.fill(b, 0); return b; });
  const dWs = [0, 1, 2].map((i) => k.alloc(sizes[i]! * sizes[i + 1]!));
  const dbs = [0, 1, 2].map((i) => k.alloc(sizes[i + 1]!));
  const x = k.upload(Xd), labels = k.uploadI32(labelsArr), loss = k.alloc(B);
  const hs = [1, 2].map((i) => k.alloc(B * sizes[i]!));
  const logits = k.alloc(B * 10);
  const dh = [1, 2, 3].map((i) => k.alloc(B * sizes[i]!));
  const step = () => {
    const inputs: BufferRef[] = [x, hs[0]!, hs[1]!];
    const outs: BufferRef[] = [hs[0]!, hs[1]!, logits];
    for (let l = 0; l < 3; l++) {
      k.matmul(B, sizes[l + 1]!, sizes[l]!, inputs[l]!, Ws[l]!, outs[l]!, { bias: bs[l]!, activation: l < 2 ? 'relu' : 'none' });
    }
    k.softmaxCrossEntropy(logits, labels, B, 10, { loss, grad: dh[2]! });
    for (let l = 2; l >= 0; l--) {
      const g = dh[l]!;
      k.matmul(sizes[l]!, sizes[l + 1]!, B, inputs[l]!, g, dWs[l]!, { transA: true });
      k.reduce('sum', g, dbs[l]!, 1, B, sizes[l + 1]!);
      if (l > 0) {
        k.matmul(B, sizes[l]!, sizes[l + 1]!, g, Ws[l]!, dh[l - 1]!, { transB: true });
        k.unaryBackward('relu', inputs[l]!, dh[l - 1]!, dh[l - 1]!);
      }
    }
    for (let l = 0; l < 3; l++) {
      k.sgd(Ws[l]!, dWs[l]!, { lr });
      k.sgd(bs[l]!, dbs[l]!, { lr });
    }
  };

  // TF.js
  const tvars = [0, 1, 2].flatMap((i) => [tf.variable(tf.tensor2d(init(i), [sizes[i]!, sizes[i + 1]!])), tf.variable(tf.zeros([sizes[i + 1]!]))]);
  const tX = tf.tensor2d(Xd, [B, 784]), tY = tf.tensor2d(onehot, [B, 10]);
  const opt = tf.train.sgd(lr);
  const tfStep = async () => {
    const l = opt.minimize(() => tf.tidy(() => {
      let h: import("@tensorflow/tfjs").Tensor = tX;
      for (let i = 0; i < 3; i++) {
        h = tf.add(tf.matMul(h, tvars[2 * i]!), tvars[2 * i + 1]!);
        if (i < 2) h = tf.relu(h);
      }
      return tf.losses.softmaxCrossEntropy(tY, h) as import("@tensorflow/tfjs").Scalar;
    }), true, tvars);
    await l!.data();
    l!.dispose();
  };

  // jax-js: jit(grad) of the same loss, then the SGD update inside the same jit
  type JArr = InstanceType<typeof jax.Array>;
  const lossFn = (p: JArr[], xb: JArr, yb: JArr) => {
    let h = xb;
    for (let i = 0; i < 3; i++) {
      h = np.matmul(h, p[2 * i]!).add(p[2 * i + 1]!);
      if (i < 2) h = jax.nn.relu(h);
    }
    return jax.nn.logSoftmax(h, -1).mul(yb).sum().mul(-1 / B);
  };
  const jstep = jax.jit((p: JArr[], xb: JArr, yb: JArr) => {
    const g = jax.grad(lossFn)(p.map((t) => t.ref), xb, yb) as JArr[];
    return p.map((t, i) => t.sub(g[i]!.mul(lr)));
  });
  let jparams: JArr[] = [0, 1, 2].flatMap((i) => [np.array(init(i)).reshape([sizes[i]!, sizes[i + 1]!]), np.zeros([sizes[i + 1]!])]);
  const jX = np.array(Xd).reshape([B, 784]), jY = np.array(onehot).reshape([B, 10]);
  const jaxStep = async () => {
    jparams = jstep(jparams, jX.ref, jY.ref) as JArr[];
    await jax.blockUntilReady(jparams);
  };

  const t = await interleaved('MLP 784-256-256-10 SGD step, batch 128', { pullback: step, tfjs: tfStep, jax: jaxStep }, 15, 3);
  const name = 'MLP 784-256-256-10 fwd+bwd+SGD, batch 128';
  rows.push(row({ case: name, unit: 'ms', pullback: t.pullback!, peer: t.tfjs!, peerName: TF, better: 'lower', adapter }));
  rows.push(row({ case: name, unit: 'ms', pullback: t.pullback!, peer: t.jax!, peerName: `${JAX} + jit`, better: 'lower', adapter }));
  const mlpFlops = 2 * B * (784 * 256 + 256 * 256 + 256 * 10) * 3 - 2 * B * 784 * 256;
  frac('MLP step (matmul flops only)', mlpFlops / t.pullback! / 1e6);
}

// ---- optional multi-threaded mode (2 threads) against our own single-threaded kernels --------

{
  const kt = await loadCpuKernels({ threads: 2 });
  const n = 1024;
  const A = rand(n * n, 1), B = rand(n * n, 2);
  const a1 = k.upload(A), b1 = k.upload(B), c1 = k.alloc(n * n);
  const a2 = kt.upload(A), b2 = kt.upload(B), c2 = kt.alloc(n * n);
  const t = await interleaved('matmul 1024, 1 vs 2 threads', {
    one: () => k.matmul(n, n, n, a1, b1, c1),
    two: () => kt.matmul(n, n, n, a2, b2, c2),
  }, 7);
  const gf = (ms: number) => (2 * n ** 3) / ms / 1e6;
  rows.push(row({ case: 'matmul 1024x1024x1024, 2 threads', unit: 'GFLOP/s', pullback: gf(t.two!), peer: gf(t.one!), peerName: 'pullback, 1 thread', better: 'higher', adapter: `wasm-simd, 2 threads` }));
  const [N, C, H, W, CO] = [32, 16, 28, 28, 32];
  const xs = [N, C, H, W], ws = [CO, C, 3, 3];
  const bufs = [k, kt].map((kk) => ({
    x: kk.upload(rand(N * C * H * W, 3)), w: kk.upload(rand(CO * C * 9, 4)), dy: kk.upload(rand(N * CO * H * W, 5)),
    y: kk.alloc(N * CO * H * W), dx: kk.alloc(N * C * H * W), dw: kk.alloc(CO * C * 9),
  }));
  const conv = (kk: typeof k, b: (typeof bufs)[0]) => () => {
    kk.conv2d(b.x, xs, b.w, ws, b.y, { padding: 1 });
    kk.conv2dBackwardInput(b.dy, b.w, b.dx, xs, ws, { padding: 1 });
    kk.conv2dBackwardFilter(b.x, b.dy, b.dw, xs, ws, { padding: 1 });
  };
  const tc = await interleaved('conv2d fwd+both bwd, 1 vs 2 threads', { one: conv(k, bufs[0]!), two: conv(kt, bufs[1]!) }, 5);
  rows.push(row({ case: 'conv2d 3x3 fwd + both backwards, 2 threads', unit: 'ms', pullback: tc.two!, peer: tc.one!, peerName: 'pullback, 1 thread', better: 'lower', adapter: `wasm-simd, 2 threads` }));
  for (const b of bufs[0] ? [bufs[0]] : []) for (const v of Object.values(b)) k.free(v);
  k.free(a1); k.free(b1); k.free(c1);
  await kt.close();
}

peak = Math.max(peak, k.measurePeakGflops());
peakRow();
for (const [name, gflops] of achieved) {
  rows.push(row({ case: `${name}: fraction of SIMD peak`, unit: '%', pullback: (100 * gflops) / peak, peer: null, peerName: '-', better: 'higher', adapter }));
}
report('cpu', rows);
console.log(`\nfraction of the measured single-core SIMD peak (${peak.toFixed(1)} GFLOP/s):`);
for (const [name, gflops] of achieved) console.log(`  ${name}: ${gflops.toFixed(1)} GFLOP/s = ${((100 * gflops) / peak).toFixed(0)}%`);
console.log('\nspread of the interleaved runs:');
for (const s of spreads) console.log(`  ${s}`);
process.exit(0);
