import { createHash } from 'node:crypto';
import type { ItemPart } from './types';

/**
 * Cuts a sorted item list into shards of at most `maxSize` items with content-defined
 * boundaries: an item ends a shard when a hash of its URI hits 0 modulo ~maxSize/2 (or the
 * shard is full). Boundaries depend on the items themselves, not on their positions, so adding
 * or removing images changes only the shard(s) around them; fixed-size chunks by position
 * would shift every later shard and force re-encoding the whole dataset. Each shard's id is a
 * hash of exactly what it covers (URIs and ETags), which is what later stages reuse work by.
 *
 * A Parquet row group is read whole by every shard that holds one of its rows (its image column
 * is one compressed chunk), so a cut never falls inside one: a hash hit inside a row group ends
 * the shard after the group's last row, and a group that would overflow the shard starts the
 * next one. Only a row group larger than `maxSize` is split. Every other item is a group of its
 * own, so ImageFolder, manifest and WebDataset cuts are what they were before row groups
 * counted (pinned in test/unit/dataset.test.ts).
 */
export function cutShards<T extends { uri: string; etag: string; part?: ItemPart }>(
  sortedItems: readonly T[],
  maxSize: number,
): { id: string; items: T[] }[] {
  const modulus = Math.max(1, Math.ceil(maxSize / 2));
  const shards: { id: string; items: T[] }[] = [];
  let current: T[] = [];
  let hit = false;
  const close = () => {
    if (current.length > 0) shards.push({ id: shardId(current), items: current });
    [current, hit] = [[], false];
  };
  for (const group of rowGroupRuns(sortedItems)) {
    if (current.length + group.length > maxSize) close();
    for (const item of group) {
      current.push(item);
      if (uriHash(item.uri) % modulus === 0) hit = true;
      if (current.length >= maxSize) close();
    }
    if (hit) close();
  }
  close();
  return shards;
}

/** Consecutive items of one Parquet row group, and every other item alone, in order. */
function* rowGroupRuns<T extends { part?: ItemPart }>(items: readonly T[]): Generator<T[]> {
  let run: T[] = [];
  let runKey: string | undefined;
  for (const item of items) {
    const part = item.part;
    const key = part?.kind === 'parquet' ? `${part.object}\n${part.rowGroup}` : undefined;
    if (run.length > 0 && (key === undefined || key !== runKey)) {
      yield run;
      run = [];
    }
    run.push(item);
    runKey = key;
  }
  if (run.length > 0) yield run;
}

function uriHash(uri: string): number {
  return createHash('sha256').update(uri).digest().readUInt32BE(0);
}

function shardId(items: readonly { uri: string; etag: string }[]): string {
  const h = createHash('sha256');
  for (const i of items) h.update(`${i.uri}\t${i.etag}\n`);
  return h.digest('hex').slice(0, 32);
}
