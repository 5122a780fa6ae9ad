import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PixelCacheMode } from '../../core/config/run-spec';
import type { PlanItem } from '../../core/dataset/plan';
import { extractShard, type ExtractResult } from '../../core/embeddings/extract-shard';
import { PIXEL_BLOCK_ROWS, pixelBlocks } from '../../core/embeddings/pixel-blocks';
import { decodeShard } from '../../core/embeddings/shard-format';
import { pixelGeometry } from '../../core/embeddings/shard-key';
import { loadBundle, type ModelBundle } from '../../core/model/bundle';
import { DecodePool } from '../../core/model/image/decode-pool';
import { ImageEncoder } from '../../core/model/onnx/encoders';
import type { PreprocessingMode } from '../../core/config/run-spec';
import { Claims } from '../../core/util/claims';
import { MemoryS3 } from '../helpers/memory-s3';
import { TINY_BUNDLE } from '../helpers/fixtures';

// Issue 23, item 2: the decode-once pixel cache. Against an in-memory S3 with the tiny bundle's
// real image graphs (uint8 and float32 inputs): crops read back from the cache embed
// byte-identically to decoding afresh; a missing, corrupt or foreign block is ignored and
// rebuilt; a bundle of another geometry never reads it; two extractions of one shard on one
// worker decode it once.

const OUT = 'out-bucket';
const AUGMENT = { views: 2, seed: 7 };
let bundle: ModelBundle;
let renamed: ModelBundle;
let halfEven: ModelBundle;
let u8: ImageEncoder;
let f32: ImageEncoder;
let pool: DecodePool;

/** A small photo-like JPEG, different for each n (noise, so crops differ). */
async function jpeg(n: number): Promise<Buffer> {
  const [w, h] = [60 + (n % 7) * 9, 44 + (n % 5) * 11];
  const noise = Buffer.alloc(w * h * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761 + n * 40503) % 251;
  return sharp(noise, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

/** `n` images (every third a train image, so views add rows; one undecodable) and their items. */
async function dataset(n: number): Promise<{ s3: MemoryS3; items: PlanItem[] }> {
  const s3 = new MemoryS3([OUT]);
  const items: PlanItem[] = [];
  for (let i = 0; i < n; i++) {
    const key = `data/${String(i).padStart(4, '0')}.jpg`;
    const body = i === 5 ? Buffer.from('not an image') : await jpeg(i);
    s3.put('bkt', key, body);
    items.push({
      uri: `s3://bkt/${key}`,
      size: body.length,
      etag: s3.etagOf('bkt', key),
      label: i % 3,
      split: i % 3 === 0 ? 'train' : 'test',
    });
  }
  return { s3, items };
}

function copyBundle(name: string, edit: (m: Record<string, unknown>) => void): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'pixel-cache-')), name);
  cpSync(TINY_BUNDLE, dir, { recursive: true });
  const m = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8')) as Record<string, unknown>;
  edit(m);
  writeFileSync(join(dir, 'bundle.json'), JSON.stringify(m));
  return dir;
}

beforeAll(async () => {
  bundle = await loadBundle(TINY_BUNDLE);
  renamed = await loadBundle(copyBundle('renamed', (m) => (m.name = 'tiny-renamed')));
  halfEven = await loadBundle(
    copyBundle('half-even', (m) => {
      (m.preprocessing as Record<string, unknown>).cropRounding = 'half-even';
    }),
  );
  u8 = await ImageEncoder.create(bundle, { threads: 1 });
  f32 = await ImageEncoder.create(bundle, { threads: 1, inputFormat: 'float32-nchw' });
  pool = new DecodePool(2);
});

afterAll(async () => {
  await Promise.all([u8.close(), f32.close(), pool.close()]);
});

interface Extracted {
  result: ExtractResult;
  embeddings: Float32Array;
  keys: string[];
  failed: unknown;
}

async function extract(
  s3: MemoryS3,
  items: PlanItem[],
  mode: PixelCacheMode,
  opts: {
    b?: ModelBundle;
    encoder?: ImageEncoder;
    preprocessing?: PreprocessingMode;
    pooled?: boolean;
    claims?: Claims;
  } = {},
): Promise<Extracted> {
  const store = s3.store(OUT);
  const b = opts.b ?? bundle;
  const result = await extractShard(
    {
      store,
      bundle: b,
      encoder: opts.encoder ?? u8,
      ...(opts.pooled ? { pool } : {}),
      ...(opts.claims ? { claims: opts.claims } : {}),
    },
    { items, datasetFingerprint: 'fp' },
    {
      batchSize: 5,
      concurrency: 4,
      augment: AUGMENT,
      pixelCache: mode,
      space: { preprocessing: opts.preprocessing ?? 'exact', imageGraph: 'fp32' },
    },
  );
  const shard = decodeShard(await store.requireBytes(result.shardKey));
  const manifest = await store.requireJson<{ failed: unknown }>(
    result.shardKey.replace(/\.arrow$/, '.json'),
  );
  // The next extraction of the same shard must encode again, not reuse this shard.
  await store.delete(result.shardKey);
  await store.delete(result.shardKey.replace(/\.arrow$/, '.json'));
  return {
    result,
    embeddings: shard.embeddings,
    keys: shard.rows.map((r) => `${r.key}#${r.view}`),
    failed: manifest.failed,
  };
}

const imageReads = (s3: MemoryS3) => s3.reads.filter((r) => r.bucket === 'bkt').length;
const pixelObjects = async (s3: MemoryS3) =>
  (await s3.store(OUT).list('pixels/')).map((o) => o.key);

describe('the pixel cache', () => {
  it('cuts a shard into blocks of at most PIXEL_BLOCK_ROWS crops, named by images and views only', async () => {
    const { items } = await dataset(150);
    const geometry = pixelGeometry(bundle.manifest.preprocessing);
    const blocks = pixelBlocks(items, AUGMENT, geometry);
    expect(blocks.length).toBeGreaterThan(1);
    expect(blocks.every((b) => b.rows <= PIXEL_BLOCK_ROWS)).toBe(true);
    expect(blocks.flatMap((b) => b.items)).toEqual(items);
    // Labels and splits of other runs do not matter; views (and so the seed) do.
    const relabelled = items.map((i) => ({ ...i, label: 0 }));
    expect(pixelBlocks(relabelled, AUGMENT, geometry).map((b) => b.key)).toEqual(
      blocks.map((b) => b.key),
    );
    const reseeded = pixelBlocks(items, { ...AUGMENT, seed: 8 }, geometry);
    expect(reseeded[0]!.key).not.toBe(blocks[0]!.key);
    const centerOnly = (seed: number) => pixelBlocks(items, { views: 0, seed }, geometry)[0]!.key;
    expect(centerOnly(1)).toBe(centerOnly(2));
    // The geometry is the bundle's crop, not its model or normalisation.
    expect(pixelGeometry(renamed.manifest.preprocessing)).toBe(geometry);
    expect(pixelGeometry({ ...bundle.manifest.preprocessing, mean: [0, 0, 0] })).toBe(geometry);
    expect(pixelGeometry(halfEven.manifest.preprocessing)).not.toBe(geometry);
    expect(pixelGeometry(bundle.manifest.preprocessing, 'fast')).not.toBe(geometry);
  });

  for (const [name, opts] of [
    ['exact, uint8 graph, main thread', {}],
    ['exact, uint8 graph, decode pool', { pooled: true }],
    ['exact, float32 graph, decode pool', { pooled: true, encoder: 'f32' }],
    ['fast, uint8 graph', { preprocessing: 'fast' }],
  ] as const) {
    it(`embeds cached crops byte-identically to decoding afresh (${name})`, async () => {
      const { s3, items } = await dataset(150);
      const o = {
        ...opts,
        ...('encoder' in opts ? { encoder: f32 } : {}),
      } as Parameters<typeof extract>[3];
      const fresh = await extract(s3, items, 'off', o);
      expect(await pixelObjects(s3)).toEqual([]);
      const writing = await extract(s3, items, 'readwrite', o);
      expect(writing.result).toMatchObject({ decoded: 150, fromPixelCache: 0 });
      const reads = imageReads(s3);
      const cached = await extract(s3, items, 'read', o);
      expect(cached.result).toMatchObject({ decoded: 0, fromPixelCache: 150, failed: 1 });
      expect(imageReads(s3)).toBe(reads); // not one image fetched
      for (const run of [writing, cached]) {
        expect(run.keys).toEqual(fresh.keys);
        expect(run.failed).toEqual(fresh.failed);
        expect(
          Buffer.from(run.embeddings.buffer).equals(Buffer.from(fresh.embeddings.buffer)),
        ).toBe(true);
      }
      expect(fresh.keys).toHaveLength(149 + 2 * 50 - 2 * Number(items[5]!.split === 'train'));
    });
  }

  it('rebuilds a missing, corrupt or foreign block and never trusts it', async () => {
    const { s3, items } = await dataset(200);
    const store = s3.store(OUT);
    const baseline = await extract(s3, items, 'readwrite');
    const geometry = pixelGeometry(bundle.manifest.preprocessing);
    const [b0, b1, b2] = pixelBlocks(items, AUGMENT, geometry);
    // Fast mode's blocks: the same images cut with another geometry.
    await extract(s3, items, 'readwrite', { preprocessing: 'fast' });
    const fastBlock = pixelBlocks(
      items,
      AUGMENT,
      pixelGeometry(bundle.manifest.preprocessing, 'fast'),
    )[1]!;
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      await store.putBytes(b0!.key, new Uint8Array(1000)); // corrupt: not the manifest's sha256
      // foreign: another geometry's block and manifest under this block's keys
      await store.putBytes(b1!.key, await store.requireBytes(fastBlock.key));
      await store.putBytes(b1!.manifestKey, await store.requireBytes(fastBlock.manifestKey));
      await store.delete(b2!.key); // missing block, manifest still there
      const rebuilt = await extract(s3, items, 'readwrite');
      const rebuiltImages = b0!.items.length + b1!.items.length + b2!.items.length;
      expect(rebuilt.result).toMatchObject({
        decoded: rebuiltImages,
        fromPixelCache: 200 - rebuiltImages,
      });
      expect(
        Buffer.from(rebuilt.embeddings.buffer).equals(Buffer.from(baseline.embeddings.buffer)),
      ).toBe(true);
      const warned = warn.mock.calls.map((c) => String(c[0])).join('\n');
      expect(warned).toMatch(/does not match the manifest's sha256/);
      expect(warned).toMatch(/another geometry/);
      expect(warned).toMatch(/block is missing/);
      // A block whose manifest lies about its rows, and one holding another block's images.
      warn.mockClear();
      const m = await store.requireJson<{ rows: number }>(b0!.manifestKey);
      await store.putJson(b0!.manifestKey, { ...m, rows: m.rows - 1 });
      await store.putBytes(b1!.key, await store.requireBytes(b2!.key));
      await store.putBytes(b1!.manifestKey, await store.requireBytes(b2!.manifestKey));
      await store.putBytes(b2!.manifestKey, '{not json');
      const again = await extract(s3, items, 'readwrite');
      expect(again.result.decoded).toBe(rebuiltImages);
      expect(
        Buffer.from(again.embeddings.buffer).equals(Buffer.from(baseline.embeddings.buffer)),
      ).toBe(true);
      const warned2 = warn.mock.calls.map((c) => String(c[0])).join('\n');
      expect(warned2).toMatch(/rows do not match|holds \d+ crops/);
      expect(warned2).toMatch(/not JSON/);
      // Rebuilt for good: the next run reads every image from the cache.
      expect((await extract(s3, items, 'read')).result).toMatchObject({
        decoded: 0,
        fromPixelCache: 200,
      });
    } finally {
      warn.mockRestore();
    }
  });

  it('is shared by bundles of one geometry and never read by another geometry', async () => {
    const { s3, items } = await dataset(40);
    await extract(s3, items, 'readwrite');
    expect((await extract(s3, items, 'readwrite', { b: renamed })).result).toMatchObject({
      decoded: 0,
      fromPixelCache: 40,
    });
    const other = await extract(s3, items, 'readwrite', { b: halfEven });
    expect(other.result).toMatchObject({ decoded: 40, fromPixelCache: 0 });
  });

  it('follows the mode: off writes nothing, read never writes, write never reads', async () => {
    const { s3, items } = await dataset(20);
    await extract(s3, items, 'off');
    await extract(s3, items, 'read');
    expect(await pixelObjects(s3)).toEqual([]);
    expect((await extract(s3, items, 'write')).result.decoded).toBe(20);
    expect((await pixelObjects(s3)).length).toBeGreaterThan(0);
    const manifestReads = () => s3.reads.filter((r) => r.key.startsWith('pixels/')).length;
    const before = manifestReads();
    expect((await extract(s3, items, 'write')).result).toMatchObject({
      decoded: 20,
      fromPixelCache: 0,
    });
    expect(manifestReads()).toBe(before);
  });

  it('decodes a shard once when two extractions on one worker need it at the same time', async () => {
    const { s3, items } = await dataset(150);
    const claims = new Claims();
    const [a, b] = await Promise.all([
      extract(s3, items, 'readwrite', { claims }),
      extract(s3, items, 'readwrite', { b: renamed, claims }),
    ]);
    expect(a.result.decoded + b.result.decoded).toBe(150);
    expect(a.result.fromPixelCache + b.result.fromPixelCache).toBe(150);
    expect(imageReads(s3)).toBe(150);
    expect(
      claims.isHeld(
        pixelBlocks(items, AUGMENT, pixelGeometry(bundle.manifest.preprocessing))[0]!.key,
      ),
    ).toBe(false);
  });
});
