/**
 * @file The one bounded-concurrency helper set. Plain TypeScript with no Node imports, so
 * workflow code (Temporal's deterministic sandbox) uses it too. Every promise it starts is
 * observed: a rejection is either returned to the caller or marked handled, never left to
 * become an unhandled rejection that kills the process.
 */

/**
 * Runs fn(0..n-1) with at most `limit` in flight, starting the next as soon as one finishes:
 * a sliding window, so a slow item never holds back the rest. Rejects with the first error once
 * the lanes in flight have stopped; later items are not started after an error.
 */
export async function forEachLimited(
  n: number,
  limit: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (next < n && !failed) {
      try {
        await fn(next++);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const lanes = Array.from({ length: Math.max(0, Math.min(limit, n)) }, lane);
  const settled = await Promise.allSettled(lanes);
  const rejected = settled.find((s) => s.status === 'rejected');
  if (rejected) throw rejected.reason;
}

/** fn over every item with at most `limit` in flight; results in input order. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  await forEachLimited(items.length, limit, async (i) => {
    out[i] = await fn(items[i]!, i);
  });
  return out;
}

/**
 * Yields fn(item) in input order with at most `limit` calls in flight (read-ahead for a
 * pipeline). If the consumer stops early or one call fails, the calls still queued are marked
 * handled, so their rejections never escape as unhandled.
 */
export async function* mapOrdered<T, R>(
  src: AsyncIterable<T> | Iterable<T>,
  limit: number,
  fn: (t: T) => Promise<R>,
): AsyncGenerator<R> {
  const queue: Promise<R>[] = [];
  const start = (item: T) => {
    const p = Promise.resolve().then(() => fn(item));
    p.catch(() => undefined); // observed here; the error still reaches whoever awaits p
    queue.push(p);
  };
  try {
    for await (const item of src) {
      start(item);
      if (queue.length >= Math.max(1, limit)) yield await queue.shift()!;
    }
    while (queue.length > 0) yield await queue.shift()!;
  } finally {
    queue.length = 0;
  }
}
