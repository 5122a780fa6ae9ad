import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RESOURCE_LIMITS, loadEnv } from '../../core/config/env';
import {
  type EmbeddedBatch,
  embedImages,
  type ImageLimits,
  type ImageSource,
  imageConcurrency,
} from '../../core/model/image/embed-images';
import { decodeMemoryEstimate } from '../../core/model/image/preprocess';
import { ObjectTooLargeError } from '../../core/storage/object-store';
import { ByteBudget, OverBudgetError } from '../../core/util/byte-budget';
import { solidPng } from '../helpers/bombs';
import { MemoryS3 } from '../helpers/memory-s3';
import { standInEncoder } from '../helpers/stand-in-encoder';

// Issue 12, item 5: what one image may cost a worker, as configuration: bytes per file (checked
// before reading), pixels (from the header), and a per-worker byte budget for images in flight
// (charged from the header before any pixel is decoded). Each refusal is a failed image with a
// reason, like any other bad image.

const PARAMS = {
  imageSize: 32,
  mean: [0.5, 0.5, 0.5] as [number, number, number],
  std: [0.5, 0.5, 0.5] as [number, number, number],
  rescale: 1 / 255,
};
const MiB = 1024 ** 2;

/** An encoder that returns zeros (these tests are about what reaches it). */
const fakeEncoder = standInEncoder(4, PARAMS.imageSize);

async function embedAll(
  sources: ImageSource[],
  opts: { limits?: ImageLimits; concurrency?: number } = {},
): Promise<{ ids: string[]; failed: EmbeddedBatch['failed'] }> {
  const ids: string[] = [];
  const failed: EmbeddedBatch['failed'] = [];
  for await (const b of embedImages(sources, fakeEncoder, PARAMS, {
    batchSize: 4,
    concurrency: opts.concurrency ?? 4,
    ...(opts.limits ? { limits: opts.limits } : {}),
  })) {
    ids.push(...b.ids);
    failed.push(...b.failed);
  }
  return { ids, failed };
}

describe('ByteBudget', () => {
  it('grants in order, waits while the budget is spent, and refuses what can never fit', async () => {
    const budget = new ByteBudget(100);
    const a = await budget.acquire(60);
    const order: string[] = [];
    const b = budget.acquire(50).then((l) => (order.push('b'), l));
    const c = budget.acquire(10).then((l) => (order.push('c'), l)); // fits, but waits behind b
    await sleep(5);
    expect(order).toEqual([]);
    a.release();
    const [lb, lc] = await Promise.all([b, c]);
    expect(order).toEqual(['b', 'c']);
    expect(budget.inUse).toBe(60);
    lb.release();
    lc.release();
    lc.release(); // idempotent
    expect(budget.inUse).toBe(0);
    expect(budget.peak).toBeLessThanOrEqual(100);
    await expect(budget.acquire(101)).rejects.toBeInstanceOf(OverBudgetError);
    await expect(budget.acquire(101)).rejects.toThrow(/needs 101 B, more than the whole budget/);
  });

  it('resize never waits while holding bytes, so holders cannot deadlock', async () => {
    const budget = new ByteBudget(100);
    // Four holders of 20 each all want to grow to 60: only one fits at a time.
    const leases = await Promise.all([1, 2, 3, 4].map(() => budget.acquire(20)));
    const grown = leases.map(async (l) => {
      await l.resize(60);
      expect(budget.inUse).toBeLessThanOrEqual(100);
      await sleep(1);
      l.release();
    });
    await Promise.all(grown);
    expect(budget.inUse).toBe(0);
    expect(budget.peak).toBeLessThanOrEqual(100);
  });

  it('stops waiting when the signal aborts', async () => {
    const budget = new ByteBudget(10);
    const held = await budget.acquire(10);
    const ac = new AbortController();
    const waiting = budget.acquire(5, ac.signal);
    ac.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    held.release();
    expect(budget.inUse).toBe(0);
    await expect(budget.acquire(10)).resolves.toBeDefined();
  });
});

describe('image limits in embedImages', () => {
  it('refuses an image whose decode needs more than the whole budget (it decoded before)', async () => {
    // 4000x4000 16-bit grey: ~150 KB on disk, ~100 MB to decode.
    const png = await solidPng({ width: 4000, height: 4000, depth: 16, channels: 1 });
    const small = await sharp({
      create: { width: 40, height: 30, channels: 3, background: 'red' },
    })
      .png()
      .toBuffer();
    const budget = new ByteBudget(64 * MiB);
    const r = await embedAll(
      [
        { id: 'bomb', bytes: png, size: png.length },
        { id: 'ok', bytes: small },
      ],
      { limits: { budget } },
    );
    expect(r.ids).toEqual(['ok']);
    expect(r.failed).toEqual([
      {
        id: 'bomb',
        reason: expect.stringMatching(
          /^too-large: decoding it needs \d+(\.\d)? MiB, more than the whole budget of 64 MiB for images in flight \(CLIPEVAL_IMAGE_MEMORY_BUDGET\)$/,
        ) as string,
      },
    ]);
    expect(budget.inUse).toBe(0);
  });

  it('decodes large images one at a time when only one fits the budget', async () => {
    const png = await solidPng({ width: 3000, height: 3000, depth: 16, channels: 1 });
    const need = decodeMemoryEstimate(
      { width: 3000, height: 3000, channels: 1, depth: 'ushort', space: 'grey16', format: 'png' },
      { imageSize: PARAMS.imageSize },
    );
    const budget = new ByteBudget(Math.floor(need * 1.5) + png.length);
    const sources = [1, 2, 3, 4].map((i) => ({ id: `big-${i}`, bytes: png, size: png.length }));
    const r = await embedAll(sources, { limits: { budget }, concurrency: 4 });
    expect(r.failed).toEqual([]);
    expect(r.ids).toEqual(['big-1', 'big-2', 'big-3', 'big-4']);
    expect(budget.peak).toBeLessThanOrEqual(budget.capacity);
    expect(budget.peak).toBeLessThan(2 * need); // never two decodes at once
    expect(budget.inUse).toBe(0);
  });

  it('refuses a file over maxBytes from its planned size, without fetching it', async () => {
    let fetched = 0;
    const png = await solidPng({ width: 8, height: 8, depth: 8, channels: 3 });
    const r = await embedAll(
      [
        { id: 'huge', size: 3 * 1024 ** 3, bytes: () => (fetched++, Promise.resolve(png)) },
        { id: 'inline', bytes: new Uint8Array(2 * MiB) },
        { id: 'ok', size: png.length, bytes: () => Promise.resolve(png) },
      ],
      { limits: { maxBytes: MiB, budget: new ByteBudget(64 * MiB) } },
    );
    expect(fetched).toBe(0); // 'huge' was never fetched
    expect(r.ids).toEqual(['ok']);
    expect(r.failed).toEqual([
      {
        id: 'huge',
        reason:
          'too-large: the file is 3 GiB, over the limit of 1 MiB per image (CLIPEVAL_MAX_IMAGE_BYTES)',
      },
      {
        id: 'inline',
        reason:
          'too-large: the file is 2 MiB, over the limit of 1 MiB per image (CLIPEVAL_MAX_IMAGE_BYTES)',
      },
    ]);
  });

  it('takes maxPixels from the limits', async () => {
    const png = await solidPng({ width: 200, height: 100, depth: 8, channels: 3 });
    const r = await embedAll([{ id: 'a', bytes: png }], { limits: { maxPixels: 19_999 } });
    expect(r.failed[0]?.reason).toMatch(/^too-large: .*20000 pixels > 19999$/);
  });

  it('caps concurrency so the largest files allowed fit the budget together', () => {
    const budget = new ByteBudget(DEFAULT_RESOURCE_LIMITS.imageMemoryBudget);
    const maxBytes = DEFAULT_RESOURCE_LIMITS.maxImageBytes;
    expect(imageConcurrency(256, { budget, maxBytes })).toBe(16);
    expect(imageConcurrency(8, { budget, maxBytes })).toBe(8);
    expect(imageConcurrency(8, { budget: new ByteBudget(10 * MiB), maxBytes })).toBe(1);
    expect(imageConcurrency(256, undefined)).toBe(256);
  });

  it('estimates more for 16-bit than 8-bit, and fits a 100 MP 16-bit RGB image in 1 GiB', () => {
    const base = { width: 10000, height: 10000, channels: 3, format: 'png' } as const;
    const eight = decodeMemoryEstimate(
      { ...base, depth: 'uchar', space: 'srgb' },
      { imageSize: 224 },
    );
    const sixteen = decodeMemoryEstimate(
      { ...base, depth: 'ushort', space: 'rgb16' },
      { imageSize: 224 },
    );
    // Measured peaks of decoding these (RSS): 8-bit ~330 MB, 16-bit ~940 MB.
    expect(eight).toBeGreaterThan(330e6);
    expect(sixteen).toBeGreaterThan(940e6);
    expect(sixteen).toBeLessThan(DEFAULT_RESOURCE_LIMITS.imageMemoryBudget);
  });
});

describe('ObjectStore reads with maxBytes', () => {
  const big = new Uint8Array(1024 * 1024).fill(7);

  it('refuses from Content-Length and aborts the body unread', async () => {
    const s3 = new MemoryS3();
    s3.put('bkt', 'big.jpg', big);
    const err = await s3
      .store('bkt')
      .getBytes('big.jpg', { maxBytes: 1000 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ObjectTooLargeError);
    expect((err as Error).message).toBe(
      's3://bkt/big.jpg is 1048576 bytes, more than the limit of 1000',
    );
    await sleep(5);
    expect(s3.reads[0]).toMatchObject({ destroyed: true });
    expect(s3.reads[0]!.consumed).toBeLessThanOrEqual(65536);
  });

  it('enforces the limit while streaming a body without Content-Length', async () => {
    const s3 = new MemoryS3();
    s3.put('bkt', 'big.jpg', { body: big, noLength: true });
    await expect(s3.store('bkt').getBytes('big.jpg', { maxBytes: 200_000 })).rejects.toBeInstanceOf(
      ObjectTooLargeError,
    );
    await sleep(5);
    expect(s3.reads[0]!.consumed).toBeLessThan(big.length);
    expect(s3.reads[0]).toMatchObject({ destroyed: true });
  });

  it('reads objects within the limit whole, with or without a length', async () => {
    const s3 = new MemoryS3();
    s3.put('bkt', 'a', big);
    s3.put('bkt', 'b', { body: big, noLength: true });
    expect(
      Buffer.from((await s3.store('bkt').getBytes('a', { maxBytes: big.length }))!).equals(big),
    ).toBe(true);
    expect(
      Buffer.from((await s3.store('bkt').getBytes('b', { maxBytes: big.length }))!).equals(big),
    ).toBe(true);
    expect(Buffer.from((await s3.store('bkt').getBytes('b'))!).equals(big)).toBe(true);
  });

  it('fails (retryably) on a body shorter than its Content-Length', async () => {
    const s3 = new MemoryS3();
    s3.put('bkt', 'a', { body: big, announce: big.length + 10 });
    await expect(s3.store('bkt').getBytes('a')).rejects.toThrow(
      /body ended after 1048576 of 1048586 bytes/,
    );
  });
});

describe('limit settings', () => {
  it('has safe defaults and reads sizes with units', () => {
    expect(loadEnv({ CLIPEVAL_BUCKET: 'bkt' }).limits).toEqual({
      maxImageBytes: 64 * MiB,
      maxImagePixels: 100_000_000,
      imageMemoryBudget: 1024 * MiB,
      maxBundleFileBytes: 2048 * MiB,
    });
    expect(
      loadEnv({
        CLIPEVAL_BUCKET: 'bkt',
        CLIPEVAL_MAX_IMAGE_BYTES: '16MiB',
        CLIPEVAL_MAX_IMAGE_PIXELS: '50000000',
        CLIPEVAL_IMAGE_MEMORY_BUDGET: '512MiB',
        CLIPEVAL_MAX_BUNDLE_FILE_BYTES: '1073741824',
      }).limits,
    ).toEqual({
      maxImageBytes: 16 * MiB,
      maxImagePixels: 50_000_000,
      imageMemoryBudget: 512 * MiB,
      maxBundleFileBytes: 1024 * MiB,
    });
  });

  it('names a bad setting', () => {
    expect(() => loadEnv({ CLIPEVAL_BUCKET: 'bkt', CLIPEVAL_IMAGE_MEMORY_BUDGET: '1 GB' })).toThrow(
      /CLIPEVAL_IMAGE_MEMORY_BUDGET: expected a size in bytes, e\.g\. 67108864, 64MiB/,
    );
    expect(() => loadEnv({ CLIPEVAL_BUCKET: 'bkt', CLIPEVAL_MAX_IMAGE_BYTES: '0' })).toThrow(
      /CLIPEVAL_MAX_IMAGE_BYTES: expected a positive size/,
    );
  });
});
