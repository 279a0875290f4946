// SPDX-License-Identifier: MIT
// Double buffering: while the consumer works on item k, item k+1 is already being prepared (for the
// GPU backend: copied to the device), so the device does not wait for the copy.

/** Options for {@link prefetch}. */
export interface PrefetchOptions<T, U> {
  /** Prepares one item, e.g. uploads a host batch to the device. May be async; it is awaited in order. */
  upload: (item: T, index: number) => U | Promise<U>;
  /** Items prepared ahead of the one being consumed: 1 is double buffering. Default 1. */
  depth?: number;
  /**
   * Called for every prepared item that will never be handed out (the consumer stopped early or an
   * error ended the stream), so that device buffers can be freed.
   */
  discard?: (prepared: U) => void | Promise<void>;
}

/**
 * Iterates `upload(item)` for each item of `source`, starting the upload of the next `depth` items
 * before handing out the current one. Items come out in order; an error from the source or from an
 * upload is thrown where that item would have come out (in-flight uploads are discarded first).
 * The source itself is read on the consumer's thread (for `batches`, that is where rows are copied):
 * item k+depth is pulled when the consumer asks for item k, and its upload then runs meanwhile.
 * @example
 * for await (const b of prefetch(batches(train, { batchSize: 128 }), { upload: (b) => toDevice(b), discard: (d) => d.free() })) {
 *   step(b); // the next batch is uploading meanwhile
 * }
 */
export async function* prefetch<T, U>(source: Iterable<T> | AsyncIterable<T>, options: PrefetchOptions<T, U>): AsyncGenerator<U, void, undefined> {
  const { upload, discard } = options;
  const depth = options.depth ?? 1;
  if (!Number.isSafeInteger(depth) || depth < 1) throw new RangeError(`prefetch: depth must be a positive integer, got ${depth}`);
  if (typeof upload !== 'function') throw new TypeError('prefetch: options.upload must be a function (item, index) => prepared item');
  const it: Iterator<T> | AsyncIterator<T> = Symbol.asyncIterator in source
    ? (source as AsyncIterable<T>)[Symbol.asyncIterator]()
    : (source as Iterable<T>)[Symbol.iterator]();
  // The source is pulled strictly in order (each pull waits for the previous one, and none follows the
  // end); the uploads may overlap. Each slot settles to its prepared item or to `done`. Rejections are
  // observed at once (no unhandled rejection while the consumer is busy) and rethrown in order.
  type Slot = Promise<{ done: true } | { done: false; value: U }>;
  let pulled: Promise<IteratorResult<T> | undefined> = Promise.resolve(undefined);
  let index = 0;
  const startSlot = (): Slot => {
    const i = index++;
    const pull = pulled.then((prev) => (prev?.done ? prev : it.next()));
    pulled = pull;
    const slot: Slot = pull.then(async (r) => (r.done ? { done: true as const } : { done: false as const, value: await upload(r.value, i) }));
    slot.catch(() => {});
    return slot;
  };
  const queue: Slot[] = [];
  let finished = false;
  try {
    for (;;) {
      // The item to hand out and the `depth` behind it; topped up only when the consumer asks for the
      // next item, so that no more than `depth` are prepared while one is in use.
      while (queue.length <= depth) queue.push(startSlot());
      const r = await queue.shift()!;
      if (r.done) { finished = true; return; }
      yield r.value;
    }
  } finally {
    if (!finished) {
      for (const slot of queue) {
        try {
          const r = await slot;
          if (!r.done && discard) await discard(r.value);
        } catch { /* an error already ends the stream; a later one adds nothing */ }
      }
      await it.return?.();
    }
  }
}
