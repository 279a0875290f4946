// SPDX-License-Identifier: MIT
// Entry point of a rank's progress thread (the role of NCCL's proxy thread): it runs the ring
// algorithms of ring.ts for its training thread, which only posts requests and copies data, so it can
// keep computing (a synchronous backward pass, say) while the collective runs. One request at a time,
// synchronously, in the order posted; requests that arrive meanwhile queue as messages.
// The same file runs as a Node worker_threads Worker or as a module Web Worker.
import { CommMemory, Ring, RingAborted, describe, sharedNow, type ProgressReply, type ProgressRequest } from './ring.js';

interface Port { post(message: ProgressReply): void; listen(handler: (message: ProgressRequest) => void): void }

async function openPort(): Promise<Port> {
  if (typeof process !== 'undefined' && process.versions?.node) {
    const { parentPort } = await import('node:worker_threads');
    if (!parentPort) throw new Error('pullback progress-worker.js must run in a worker thread');
    return { post: (m) => parentPort.postMessage(m), listen: (h) => parentPort.on('message', h) };
  }
  const scope = globalThis as unknown as { postMessage(m: unknown): void; addEventListener(type: 'message', h: (e: { data: unknown }) => void): void };
  return { post: (m) => scope.postMessage(m), listen: (h) => scope.addEventListener('message', (e) => h(e.data as ProgressRequest)) };
}

const port = await openPort();
let ring: Ring | null = null;
let mem: CommMemory | null = null;
port.listen((request) => {
  if (request.t === 'init') {
    mem = new CommMemory(request.sab);
    ring = new Ring(mem, request.rank, request.timeoutMs);
    port.post({ t: 'ready' });
    return;
  }
  if (!ring || !mem) throw new Error('pullback progress thread: an op arrived before init');
  const started = sharedNow();
  try {
    ring.run({ seq: request.seq, kind: request.kind, extra: request.extra, data: new Float32Array(request.buffer, request.offset, request.length) });
    const ended = sharedNow();
    port.post({ t: 'done', seq: request.seq, ms: ended - started, startedAt: started, endedAt: ended });
  } catch (e) {
    // Anything but an abort is a bug here; it still must end the step on every rank, not hang them.
    if (!(e instanceof RingAborted)) mem.fail(ring.rank, `rank ${ring.rank}'s progress thread failed in call #${request.seq}: ${describe(e)}`);
    port.post({ t: 'failed', seq: request.seq, ms: sharedNow() - started });
  }
});
