/**
 * @file Reads a shard's images out of WebDataset tars. The shard's members are known up front, so
 * adjacent ones (gaps up to MAX_GAP) are coalesced into blocks of up to MAX_BLOCK bytes, each
 * fetched by one ranged GET (If-Match the planned ETag) when one of its members is first asked
 * for, and let go once all its members were read: memory holds the blocks in flight, never a
 * whole tar. A member larger than MAX_BLOCK is a block of its own.
 */
import { ObjectTooLargeError, type ObjectStore } from '../../storage/object-store';
import { shown } from '../../util/text';
import { PartUnreadableError, type PartReader, type PartReadOptions } from '../parts';
import type { PlanItem } from '../plan';

/** Bytes between two members read through rather than starting another GET. */
export const MAX_GAP = 256 * 1024;
/** Bytes one block (one GET) covers at most. */
export const MAX_BLOCK = 16 * 1024 * 1024;

interface Block {
  object: string;
  etag: string;
  start: number;
  end: number;
  /** Members not read yet: at 0 the bytes are let go. */
  unread: number;
  bytes?: Promise<Uint8Array>;
}

interface Member {
  block: Block;
  offset: number;
  length: number;
  read: boolean;
}

export function tarPartReader(store: ObjectStore, items: readonly PlanItem[]): PartReader {
  const members = planBlocks(items);
  const fetchBlock = (block: Block, signal: AbortSignal | undefined): Promise<Uint8Array> => {
    if (!block.bytes) {
      const { store: tarStore, key } = store.at(block.object);
      const p = tarStore.getRange(key, block.start, block.end, {
        ifMatch: block.etag,
        ...(signal ? { signal } : {}),
      });
      // A failed fetch is not kept: the next member's read tries again.
      p.catch(() => {
        if (block.bytes === p) block.bytes = undefined;
      });
      block.bytes = p;
    }
    return block.bytes;
  };
  return {
    async read(item: PlanItem, opts: PartReadOptions = {}): Promise<Uint8Array> {
      const m = members.get(item.uri);
      if (!m) throw new Error(`${item.uri} was not given to this shard's tar reader`);
      if (opts.maxBytes !== undefined && m.length > opts.maxBytes) {
        throw new ObjectTooLargeError(item.uri, m.length, opts.maxBytes);
      }
      const bytes = await fetchBlock(m.block, opts.signal);
      const at = m.offset - m.block.start;
      if (bytes.length < at + m.length) {
        throw new PartUnreadableError(
          `${shown(item.uri)}: the tar ends before this member (bytes ${m.offset}..${m.offset + m.length})`,
        );
      }
      const out = bytes.slice(at, at + m.length); // a copy: the block can be let go
      if (!m.read) {
        m.read = true;
        if (--m.block.unread === 0) m.block.bytes = undefined;
      }
      return out;
    },
  };
}

/** Each item's member, its tar's members coalesced into blocks in offset order. */
function planBlocks(items: readonly PlanItem[]): Map<string, Member> {
  const byTar = new Map<string, PlanItem[]>();
  for (const item of items) {
    if (item.part?.kind !== 'tar') continue;
    const key = `${item.part.object}\n${item.etag}`;
    const list = byTar.get(key) ?? [];
    byTar.set(key, list);
    list.push(item);
  }
  const members = new Map<string, Member>();
  for (const list of byTar.values()) {
    const parts = list
      .map((item) => ({ item, part: item.part as Extract<PlanItem['part'], { kind: 'tar' }> }))
      .sort((a, b) => a.part.offset - b.part.offset);
    let block: Block | undefined;
    for (const { item, part } of parts) {
      const end = part.offset + part.length;
      if (!block || part.offset - block.end > MAX_GAP || end - block.start > MAX_BLOCK) {
        block = { object: part.object, etag: item.etag, start: part.offset, end, unread: 0 };
      }
      block.end = Math.max(block.end, end);
      block.unread++;
      members.set(item.uri, { block, offset: part.offset, length: part.length, read: false });
    }
  }
  return members;
}
