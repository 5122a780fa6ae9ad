/**
 * @file How a shard's images divide into pixel-cache blocks, and what names a block. A block is
 * consecutive plan items of one shard holding at most PIXEL_BLOCK_ROWS crops (an item with
 * augmented views holds 1 + views): small enough that packing, hashing or unpacking one on the
 * event loop stays short (32 x 147 KiB = 4.6 MiB at 224 px: ~10 ms; 128-crop blocks held the
 * gpu worker's loop for up to 118 ms with ViT-B/32, bench/extract.ts), large enough that reading
 * one is a single efficient GET. A block's key names its images (URI + ETag) and their views,
 * not their labels or splits, so every run and model whose shard starts the same way finds the
 * same blocks.
 */
import { createHash } from 'node:crypto';
import type { PlanItem } from '../dataset/plan';
import { keys } from '../storage/keys';

export const PIXEL_BLOCK_ROWS = 32;

export interface PixelBlock {
  /** Position of the block in its shard. */
  index: number;
  items: readonly PlanItem[];
  /** Augmented views of each item (train items only), besides its center crop. */
  views: readonly number[];
  /** Crops the block holds when every image decodes: sum of 1 + views. */
  rows: number;
  key: string;
  manifestKey: string;
}

/** The shard's items cut into blocks, in order. */
export function pixelBlocks(
  items: readonly PlanItem[],
  augment: { views: number; seed: number },
  geometry: string,
): PixelBlock[] {
  const blocks: PixelBlock[] = [];
  let start = 0;
  while (start < items.length) {
    let end = start;
    let rows = 0;
    while (end < items.length) {
      const r = 1 + viewsOf(items[end]!, augment);
      if (end > start && rows + r > PIXEL_BLOCK_ROWS) break;
      rows += r;
      end++;
    }
    const part = items.slice(start, end);
    const views = part.map((i) => viewsOf(i, augment));
    const content = blockContentHash(part, views, augment.seed);
    blocks.push({
      index: blocks.length,
      items: part,
      views,
      rows,
      key: keys.pixelBlock(geometry, content),
      manifestKey: keys.pixelBlockManifest(geometry, content),
    });
    start = end;
  }
  return blocks;
}

/** Augmentation is for training only (extraction's rule, core/embeddings/extract-shard.ts). */
export function viewsOf(item: PlanItem, augment: { views: number }): number {
  return item.split === 'train' ? augment.views : 0;
}

/**
 * The block's images and views; the seed only when some image has views (center crops do not
 * depend on it, so runs with different seeds share them).
 */
function blockContentHash(
  items: readonly PlanItem[],
  views: readonly number[],
  seed: number,
): string {
  const seeded = views.some((v) => v > 0) ? `seed=${seed}\n` : '';
  const lines = items.map((i, k) => `${i.uri}\t${i.etag}\t${views[k]}`);
  return createHash('sha256')
    .update(`clipeval-pixels/1\n${seeded}${lines.join('\n')}`)
    .digest('hex')
    .slice(0, 32);
}
