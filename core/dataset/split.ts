import { createHash } from 'node:crypto';
import type { Split } from './types';

/**
 * Assigns a split to an item that has none, from a seeded hash of its URI. Each item's split
 * depends only on (seed, uri), so adding images never moves existing images between splits:
 * a shuffled split would, and would silently leak test images into training across runs.
 */
export function seededSplit(
  uri: string,
  seed: number,
  ratio: { train: number; val: number; test: number },
): Split {
  const h = createHash('sha256').update(`${seed}\0${uri}`).digest();
  const u = h.readUInt32BE(0) / 2 ** 32;
  if (u < ratio.train) return 'train';
  if (u < ratio.train + ratio.val) return 'val';
  return 'test';
}
