/**
 * Runs fn(0..n-1) with at most `limit` in flight, starting the next as soon as one finishes:
 * a sliding window, so a slow shard never holds back the rest and pending activities stay far
 * below Temporal's per-execution limit. Deterministic: safe in workflow code.
 */
export async function forEachWindowed(
  n: number,
  limit: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, lane));
}
