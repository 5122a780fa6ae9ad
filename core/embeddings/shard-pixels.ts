/**
 * @file A shard's DecodedImageSource (../model/image/preprocessor.ts), block by block
 * (./pixel-blocks.ts): read from the pixel cache where a valid block is there, otherwise fetched
 * and cut by the mode's Preprocessor (../model/image/decode-images.ts) and, when the mode writes,
 * stored as a block for every later run and model of the same geometry. The images come out in
 * the shard's order either way, so the encoder sees the same batches. The cache is a source of
 * whole blocks, not a per-image Preprocessor: a cached block needs no file fetched at all.
 *
 * The next block's lookup runs while the current one is consumed; consecutive blocks to decode
 * are fed to the decoder as one stream (no drain between them). A block being decoded by another
 * extraction on this worker is waited for and then read (`Claims`), so a suite's models decode a
 * dataset once; a claim is released as soon as its block is written, so waits never form a cycle.
 */
import type { PixelCacheMode } from '../config/run-spec';
import type { PlanItem } from '../dataset/plan';
import { decodeImages, type DecodeImagesOptions } from '../model/image/decode-images';
import type { DecodedImage, ImageSource } from '../model/image/preprocessor';
import type { PreprocessParams } from '../model/image/pixels';
import type { ObjectStore } from '../storage/object-store';
import type { Claims } from '../util/claims';
import { type PixelBlock, pixelBlocks } from './pixel-blocks';
import { type PixelExpectation, readPixelBlock, writePixelBlock } from './pixel-cache';

export type { PixelCacheMode } from '../config/run-spec';

/** What a shard's extraction did per image: decoded it, or took it from the cache. */
export interface PixelCounts {
  decoded: number;
  fromCache: number;
  /** Cached blocks found unusable (and decoded again), and blocks that could not be written. */
  blocksRejected: number;
  blockWritesFailed: number;
}

export interface ShardPixelsInput {
  store: ObjectStore;
  items: readonly PlanItem[];
  augment: { views: number; seed: number };
  mode: PixelCacheMode;
  expect: PixelExpectation;
  /** The encoder's params (format = its input format): what a decoder writes when not caching. */
  params: PreprocessParams;
  /** One source per item, fetching its bytes on demand. */
  sources: (items: readonly PlanItem[]) => ImageSource[];
  decode: DecodeImagesOptions;
  claims?: Claims;
  counts: PixelCounts;
}

type BlockPlan = { cached: DecodedImage[] } | { cached?: undefined; release?: () => void };
interface Tracked {
  promise: Promise<BlockPlan>;
  value?: BlockPlan;
}

const MAX_PENDING_WRITES = 2;

export async function* shardPixels(input: ShardPixelsInput): AsyncGenerator<DecodedImage> {
  const { counts, mode } = input;
  const write = mode === 'write' || mode === 'readwrite';
  const blocks = pixelBlocks(input.items, input.augment, input.expect.geometry);
  const releases: (() => void)[] = [];
  const plans: Tracked[] = [];
  const plan = (i: number): Tracked => {
    if (plans[i]) return plans[i];
    const t: Tracked = { promise: planBlock(input, blocks[i]!) };
    t.promise.then(
      (v) => {
        t.value = v;
        if (!v.cached && v.release) releases.push(v.release);
      },
      () => undefined, // observed here; the loop awaits it and sees the error
    );
    return (plans[i] = t);
  };
  const pending: Promise<void>[] = [];
  try {
    for (let i = 0; i < blocks.length;) {
      const first = await plan(i).promise;
      if (i + 1 < blocks.length) plan(i + 1);
      if (first.cached) {
        counts.fromCache += blocks[i]!.items.length;
        yield* first.cached;
        i++;
        continue;
      }
      // Blocks i, i+1, ... to decode, as one stream while the next block's plan is known to be
      // a decode too; its images come out in order, block after block.
      const run = [i];
      const sources = function* () {
        for (let r = 0; r < run.length; r++) {
          yield* input.sources(blocks[run[r]!]!.items);
          const next = run[r]! + 1;
          const known = next < blocks.length ? plan(next).value : undefined;
          if (known && !known.cached) {
            run.push(next);
            if (next + 1 < blocks.length) plan(next + 1);
          }
        }
      };
      const params = write ? { ...input.params, format: 'uint8-nhwc' as const } : input.params;
      let r = 0;
      let seen = 0;
      let held: DecodedImage[] = [];
      for await (const d of decodeImages(sources(), params, input.decode)) {
        counts.decoded++;
        if (write) held.push(d);
        yield d;
        const block = blocks[run[r]!]!;
        if (++seen < block.items.length) continue;
        if (write) {
          if (pending.length >= MAX_PENDING_WRITES) await pending.shift();
          pending.push(storeBlock(input, block, held, plans[block.index]?.value));
        }
        held = [];
        seen = 0;
        r++;
      }
      i = run[run.length - 1]! + 1;
    }
    await Promise.all(pending);
  } finally {
    await Promise.allSettled(pending);
    for (const release of releases) release();
  }
}

/** Whether block `block` comes from the cache, or is decoded (claimed, when it will be written). */
async function planBlock(input: ShardPixelsInput, block: PixelBlock): Promise<BlockPlan> {
  const { mode, claims } = input;
  if (mode === 'off' || mode === 'write') return {}; // write: always decode, never read
  for (;;) {
    await claims?.released(block.key);
    const read = await readPixelBlock(input.store, block, input.expect, input.decode.signal);
    if (read.images) return { cached: read.images };
    if (read.problem) {
      input.counts.blocksRejected++;
      console.warn(
        `clipeval: pixel-cache block ${input.store.uri(block.key)} ignored (${read.problem}); decoding its ${block.items.length} images again`,
      );
    }
    if (mode === 'read') return {};
    const release = claims ? claims.tryClaim(block.key) : () => undefined;
    if (release) return { release };
    // Another extraction claimed it while this one read: wait for its block, then read that.
  }
}

/** Writes a decoded block; a failure costs only the cache (warned, counted), never the shard. */
async function storeBlock(
  input: ShardPixelsInput,
  block: PixelBlock,
  images: DecodedImage[],
  plan: BlockPlan | undefined,
): Promise<void> {
  try {
    await writePixelBlock(input.store, block, images, input.expect);
  } catch (err) {
    input.counts.blockWritesFailed++;
    console.warn(
      `clipeval: could not write pixel-cache block ${input.store.uri(block.key)} (${err instanceof Error ? err.message : String(err)}); later runs decode its images again`,
    );
  } finally {
    if (plan && !plan.cached) plan.release?.();
  }
}
