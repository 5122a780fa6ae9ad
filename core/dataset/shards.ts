import { createHash } from 'node:crypto';

/**
 * Cuts a sorted item list into shards of at most `maxSize` items with content-defined
 * boundaries: an item ends a shard when a hash of its URI hits 0 modulo ~maxSize/2 (or the
 * shard is full). Boundaries depend on the items themselves, not on their positions, so adding
 * or removing images changes only the shard(s) around them; fixed-size chunks by position
 * would shift every later shard and force re-encoding the whole dataset. Each shard's id is a
 * hash of exactly what it covers (URIs and ETags), which is what later stages reuse work by.
 */
export function cutShards<T extends { uri: string; etag: string }>(
  sortedItems: readonly T[],
  maxSize: number,
): { id: string; items: T[] }[] {
  const modulus = Math.max(1, Math.ceil(maxSize / 2));
  const shards: { id: string; items: T[] }[] = [];
  let current: T[] = [];
  for (const item of sortedItems) {
    current.push(item);
    if (current.length >= maxSize || uriHash(item.uri) % modulus === 0) {
      shards.push({ id: shardId(current), items: current });
      current = [];
    }
  }
  if (current.length > 0) shards.push({ id: shardId(current), items: current });
  return shards;
}

function uriHash(uri: string): number {
  return createHash('sha256').update(uri).digest().readUInt32BE(0);
}

function shardId(items: readonly { uri: string; etag: string }[]): string {
  const h = createHash('sha256');
  for (const i of items) h.update(`${i.uri}\t${i.etag}\n`);
  return h.digest('hex').slice(0, 32);
}
