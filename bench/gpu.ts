// SPDX-License-Identifier: MIT
// `npm run bench:gpu`: pullback's WebGPU kernels against TensorFlow.js (webgpu backend) and jax-js (webgpu), in one
// process on the same adapter. Every timing ends by reading results back (so it includes waiting for the GPU);
// each cell is the median of several interleaved runs after a warm-up. Default adapter: SwiftShader; set
// PULLBACK_GPU_ADAPTER=hardware on a machine with a GPU. PULLBACK_BENCH_REPS sets the runs per cell.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { type BenchRow, median, report, row } from './report.js';
import * as T from '../runtime-gpu/index.js';

const adapterChoice = (process.env.PULLBACK_GPU_ADAPTER as T.AdapterChoice | undefined) ?? 'swiftshader';
const REPS = Number(process.env.PULLBACK_BENCH_REPS ?? 5);
const only = process.env.PULLBACK_BENCH_ONLY ? new RegExp(process.env.PULLBACK_BENCH_ONLY) : null;

type Runner = () => Promise<void>;
interface Contender { name: string; setup(): Promise<Runner | null> }

async function timeAll(cs: { name: string; run: Runner | null }[], reps: number): Promise<Map<string, number | null>> {
  const samples = new Map<string, number[]>(cs.map((c) => [c.name, []]));
  for (const c of cs) if (c.run) await c.run(); // warm-up: pipeline compilation, allocation
  for (let r = 0; r < reps; r++) {
    for (const c of cs) {
      if (!c.run) continue;
      const t0 = performance.now();
      await c.run();
      samples.get(c.name)!.push(performance.now() - t0);
    }
  }
  return new Map(cs.map((c) => [c.name, c.run ? median(samples.get(c.name)!) : null]));
}

async function main(): Promise<void> {
  const rt = await T.initGpu({ adapter: adapterChoice });
  const adapter = T.backend().adapter ?? 'unknown';
  console.log(`adapter: ${adapter}`);

  // The peers find the same Dawn adapter through navigator.gpu.
  const { create } = (await import('webgpu')) as unknown as { create(o: string[]): GPU };
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]), userAgent: 'node', hardwareConcurrency: 2 }, configurable: true });
  let tf: any = null, jax: any = null;
  try {
    tf = await import('@tensorflow/tfjs');
    await import('@tensorflow/tfjs-backend-webgpu');
    await tf.setBackend('webgpu');
    await tf.ready();
    tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', 15);
  } catch (e) { console.error('TF.js webgpu unavailable:', (e as Error).message); tf = null; }
  try {
    jax = await import('@jax-js/jax');
    await jax.init('webgpu');
    jax.defaultDevice('webgpu');
  } catch (e) { console.error('jax-js webgpu unavailable:', (e as Error).message); jax = null; }

  const rows: BenchRow[] = [];
  const peers = ['TF.js-webgpu', 'jax-js-webgpu'] as const;
  const add = (name: string, res: Map<string, number | null>, flops?: number) => {
    const p = res.get('pullback')!;
    for (const peer of peers) {
      const q = res.get(peer) ?? null;
      rows.push(row({ case: name, unit: 'ms', pullback: p, peer: q, peerName: peer, better: 'lower', adapter }));
      if (flops) rows.push(row({ case: name, unit: 'GFLOP/s', pullback: flops / p / 1e6, peer: q === null ? null : flops / q / 1e6, peerName: peer, better: 'higher', adapter }));
    }
    console.log(`${name}: ${[...res].map(([k, v]) => `${k} ${v === null ? '-' : v.toFixed(1)} ms`).join(', ')}`);
  };
  const guard = async (name: string, f: () => Promise<Runner>): Promise<Runner | null> => {
    try { const r = await f(); await r(); return r; } catch (e) { console.error(`${name} failed:`, (e as Error).message); return null; }
  };
  const randArr = (n: number, seed: number) => { const g = new T.Rng(seed); return Float32Array.from({ length: n }, () => g.normal()); };

  // ---- square matmul ----
  for (const n of [256, 512, 1024]) {
    const name = `matmul ${n}`;
    if (only && !only.test(name)) continue;
    const A = randArr(n * n, 1), B = randArr(n * n, 2);
    const cs = [
      { name: 'pullback', run: await guard(name, async () => {
        const a = T.tensor(A, [n, n]), b = T.tensor(B, [n, n]);
        return async () => { const c = T.matmul(a, b); await c.data(); c.dispose(); };
      }) },
      { name: 'TF.js-webgpu', run: !tf ? null : await guard(name, async () => {
        const a = tf.tensor(A, [n, n]), b = tf.tensor(B, [n, n]);
        return async () => { const c = tf.matMul(a, b); await c.data(); c.dispose(); };
      }) },
      { name: 'jax-js-webgpu', run: !jax ? null : await guard(name, async () => {
        const a = jax.numpy.array(A).reshape([n, n]), b = jax.numpy.array(B).reshape([n, n]);
        return async () => { const c = jax.numpy.matmul(a.ref, b.ref); await c.data(); };
      }) },
    ];
    add(name, await timeAll(cs, n >= 1024 ? Math.max(3, REPS - 2) : REPS), 2 * n ** 3);
  }

  // ---- matmul with f16 operands (read into f32, summed in f32), against pullback's own f32 matmul ----
  // Where the adapter has shader-f16 the operands are read as f16 natively, else unpacked from u32 words.
  {
    const native = rt.nativeF16;
    const sizes = T.backend().software ? [256, 512] : [1024, 2048, 4096];
    for (const n of sizes) {
      const name = `matmul ${n}, f16 operands (${native ? 'shader-f16' : 'packed, no shader-f16'})`;
      if (only && !only.test(name)) continue;
      const A = randArr(n * n, 1), B = randArr(n * n, 2);
      const mk = (dtype: 'f16' | 'f32') => guard(name, async () => {
        const a32 = T.tensor(A, [n, n]), b32 = T.tensor(B, [n, n]);
        const a = dtype === 'f16' ? T.cast(a32, 'f16') : a32, b = dtype === 'f16' ? T.cast(b32, 'f16') : b32;
        return async () => { const c = T.matmul(a, b); await c.data(); c.dispose(); };
      });
      const res = await timeAll([{ name: 'f16', run: await mk('f16') }, { name: 'f32', run: await mk('f32') }], n >= 1024 ? Math.max(3, REPS - 2) : REPS);
      const p = res.get('f16')!, q = res.get('f32') ?? null;
      rows.push(row({ case: name, unit: 'ms', pullback: p, peer: q, peerName: 'pullback f32 operands', better: 'lower', adapter }));
      console.log(`${name}: f16 ${p === null ? '-' : p.toFixed(2)} ms, f32 ${q === null ? '-' : q.toFixed(2)} ms`);
    }
  }

  // ---- conv2d 3x3, [32, 16, 28, 28] -> 32 channels, padding 1: forward, backward to input and to filter ----
  {
    const name = 'conv2d 3x3 fwd+bwd [32,16,28,28]->32';
    if (!only || only.test(name)) {
      const X = randArr(32 * 16 * 28 * 28, 3), W = randArr(32 * 16 * 9, 4), DY = randArr(32 * 32 * 28 * 28, 5);
      const cs = [
        { name: 'pullback', run: await guard(name, async () => {
          const x = T.tensor(X, [32, 16, 28, 28]), w = T.tensor(W, [32, 16, 3, 3]), dy = T.tensor(DY, [32, 32, 28, 28]);
          return async () => {
            const outs = T.tidy(() => { const v = T.vjp('conv2d', [x, w], { padding: 1 }); return [v.outputs[0]!, ...v.pullback([dy]) as T.Tensor[]]; });
            await Promise.all(outs.slice(1).map((t) => t.data()));
            outs.forEach((t) => t.dispose());
          };
        }) },
        { name: 'TF.js-webgpu', run: !tf ? null : await guard(name, async () => {
          // TF.js convolutions are NHWC with HWIO filters.
          const x = tf.tensor(X, [32, 28, 28, 16]), w = tf.tensor(W, [3, 3, 16, 32]), dy = tf.tensor(DY, [32, 28, 28, 32]);
          const g = tf.grads((a: any, b: any) => tf.conv2d(a, b, 1, 'same'));
          return async () => { const [dx, dw] = g([x, w], dy); await Promise.all([dx.data(), dw.data()]); dx.dispose(); dw.dispose(); };
        }) },
        { name: 'jax-js-webgpu', run: !jax ? null : await guard(name, async () => {
          const np = jax.numpy;
          const x = np.array(X).reshape([32, 16, 28, 28]), w = np.array(W).reshape([32, 16, 3, 3]), dy = np.array(DY).reshape([32, 32, 28, 28]);
          const f = (a: any, b: any) => jax.lax.conv(a, b, [1, 1], 'SAME');
          return async () => {
            const [y, back] = jax.vjp(f, [x.ref, w.ref]);
            const [dx, dw] = back(dy.ref);
            await Promise.all([dx.data(), dw.data()]);
            y.dispose(); back.dispose();
          };
        }) },
      ];
      add(name, await timeAll(cs, REPS));
    }
  }

  // ---- attention fwd+bwd: batch 8, 4 heads, sequence 128, head dim 32 ----
  {
    const name = 'attention fwd+bwd b8 h4 s128 d32';
    if (!only || only.test(name)) {
      const [B, H, S, D] = [8, 4, 128, 32];
      const Q = randArr(B * H * S * D, 6), K = randArr(B * H * S * D, 7), V = randArr(B * H * S * D, 8), DO = randArr(B * H * S * D, 9);
      const cs = [
        { name: 'pullback', run: await guard(name, async () => {
          const q = T.tensor(Q, [B, H, S, D]), k = T.tensor(K, [B, H, S, D]), v = T.tensor(V, [B, H, S, D]), g = T.tensor(DO, [B, H, S, D]);
          return async () => {
            const outs = T.tidy(() => { const r = T.vjp('attention', [q, k, v], {}); return [r.outputs[0]!, ...r.pullback([g]) as T.Tensor[]]; });
            await Promise.all(outs.map((t) => t.data()));
            outs.forEach((t) => t.dispose());
          };
        }) },
        { name: 'TF.js-webgpu', run: !tf ? null : await guard(name, async () => {
          const q = tf.tensor(Q, [B * H, S, D]), k = tf.tensor(K, [B * H, S, D]), v = tf.tensor(V, [B * H, S, D]), g = tf.tensor(DO, [B * H, S, D]);
          const f = (a: any, b: any, c: any) => tf.matMul(tf.softmax(tf.mul(tf.matMul(a, b, false, true), 1 / Math.sqrt(D))), c);
          const grads = tf.grads(f);
          return async () => {
            const o = f(q, k, v);
            const gs = grads([q, k, v], g);
            await Promise.all([o.data(), ...gs.map((t: any) => t.data())]);
            o.dispose(); gs.forEach((t: any) => t.dispose());
          };
        }) },
        { name: 'jax-js-webgpu', run: !jax ? null : await guard(name, async () => {
          const np = jax.numpy;
          // jax.nn.dotProductAttention needs Iterator helpers (Node 22+); on Node 20 compose it from the same ops.
          const q = np.array(Q).reshape([B * H, S, D]), k = np.array(K).reshape([B * H, S, D]), v = np.array(V).reshape([B * H, S, D]), g = np.array(DO).reshape([B * H, S, D]);
          const f = (a: any, b: any, c: any) => np.matmul(jax.nn.softmax(np.matmul(a, np.swapaxes(b, -1, -2)).mul(1 / Math.sqrt(D)), -1), c);
          return async () => {
            const [o, back] = jax.vjp(f, [q.ref, k.ref, v.ref]);
            const gs = back(g.ref);
            await Promise.all([o.data(), ...gs.map((t: any) => t.data())]);
            back.dispose();
          };
        }) },
      ];
      add(name, await timeAll(cs, REPS));
    }
  }

  // ---- softmax cross-entropy fwd+bwd [128, 1000], mean over rows ----
  {
    const name = 'softmax-cross-entropy fwd+bwd [128,1000]';
    if (!only || only.test(name)) {
      const [N, C] = [128, 1000];
      const L = randArr(N * C, 10);
      const labels = Array.from({ length: N }, (_, i) => (i * 37) % C);
      const onehot = new Float32Array(N * C);
      labels.forEach((l, i) => (onehot[i * C + l] = 1));
      const cs = [
        { name: 'pullback', run: await guard(name, async () => {
          const x = T.tensor(L, [N, C]), y = T.tensor(labels, [N], 'i32'), g = T.full([N], 1 / N);
          return async () => {
            const outs = T.tidy(() => {
              const r = T.vjp('softmaxCrossEntropy', [x, y], {});
              const loss = T.mean(r.outputs[0]!);
              return [loss, r.pullback([g])[0]!];
            });
            await Promise.all(outs.map((t) => t.data()));
            outs.forEach((t) => t.dispose());
          };
        }) },
        { name: 'TF.js-webgpu', run: !tf ? null : await guard(name, async () => {
          const x = tf.tensor(L, [N, C]), oh = tf.tensor(onehot, [N, C]);
          const vg = tf.valueAndGrad((a: any) => tf.losses.softmaxCrossEntropy(oh, a));
          return async () => { const { value, grad } = vg(x); await Promise.all([value.data(), grad.data()]); value.dispose(); grad.dispose(); };
        }) },
        { name: 'jax-js-webgpu', run: !jax ? null : await guard(name, async () => {
          const np = jax.numpy;
          const x = np.array(L).reshape([N, C]), oh = np.array(onehot).reshape([N, C]);
          const f = (a: any) => np.mean(np.sum(np.multiply(oh.ref, jax.nn.logSoftmax(a, -1)), -1)).mul(-1);
          return async () => {
            const [loss, back] = jax.vjp(f, [x.ref]);
            const [gx] = back(np.array(1));
            await Promise.all([loss.data(), gx.data()]);
            back.dispose();
          };
        }) },
      ];
      add(name, await timeAll(cs, REPS));
    }
  }

  void rt;
  report('gpu', rows);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
