import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PlanItem } from '../../core/dataset/plan';
import { extractShard, type ShardManifest } from '../../core/embeddings/extract-shard';
import { decodeShard } from '../../core/embeddings/shard-format';
import { loadBundle, type ModelBundle } from '../../core/model/bundle';
import { ByteBudget } from '../../core/util/byte-budget';
import { MemoryS3 } from '../helpers/memory-s3';
import { TINY_BUNDLE } from '../helpers/fixtures';
import { standInEncoder } from '../helpers/stand-in-encoder';

// Issue 12, item 10: a shard's key is a hash of its images' URIs and ETags, so extraction must
// embed exactly the versions that were planned: every image read carries If-Match with the
// planned ETag, and an object changed since planning (HTTP 412) is that image's counted failure
// ("changed since planning: re-plan the run"), not an error that retries the whole shard.
// Module level, against an in-memory S3; test/integration/changed-objects.test.ts does the same
// against versitygw (which honours If-Match).

let bundle: ModelBundle;
const encoder = standInEncoder(16, 224, 0.25);

const png = (n: number) =>
  sharp({ create: { width: 20 + n, height: 20, channels: 3, background: { r: n, g: 0, b: 0 } } })
    .png()
    .toBuffer();

beforeAll(async () => {
  bundle = await loadBundle(TINY_BUNDLE);
});

/** Three images in an in-memory bucket and their plan items (as planning lists them). */
async function planned(): Promise<{ s3: MemoryS3; items: PlanItem[] }> {
  const s3 = new MemoryS3(['out-bucket']);
  const items: PlanItem[] = [];
  for (const n of [1, 2, 3]) {
    const body = await png(n);
    s3.put('bkt', `data/${n}.png`, body);
    items.push({
      uri: `s3://bkt/data/${n}.png`,
      size: body.length,
      etag: s3.etagOf('bkt', `data/${n}.png`),
      label: n % 2,
      split: 'test',
    });
  }
  return { s3, items };
}

describe('image reads insist on the planned version', () => {
  it('sends If-Match with every image read', async () => {
    const { s3, items } = await planned();
    const r = await extractShard(
      { store: s3.store('out-bucket'), bundle, encoder },
      { items, datasetFingerprint: 'fp' },
      { batchSize: 2, concurrency: 2 },
    );
    expect(r).toMatchObject({ images: 3, failed: 0 });
    const imageReads = s3.reads.filter((x) => x.key.startsWith('data/'));
    expect(imageReads.map((x) => [x.key, x.ifMatch])).toEqual(
      items.map((i) => [i.uri.slice('s3://bkt/'.length), `"${i.etag}"`]),
    );
  });

  it('counts an object replaced since planning as a failed image, with the reason (it was embedded before)', async () => {
    const { s3, items } = await planned();
    s3.put('bkt', 'data/2.png', await png(9)); // replaced after planning: a new ETag
    const r = await extractShard(
      { store: s3.store('out-bucket'), bundle, encoder },
      { items, datasetFingerprint: 'fp' },
      { batchSize: 2, concurrency: 2 },
    );
    expect(r).toMatchObject({ images: 2, failed: 1, reused: false });
    const manifest = await s3
      .store('out-bucket')
      .requireJson<ShardManifest>(r.shardKey.replace(/\.arrow$/, '.json'));
    expect(manifest.failed).toEqual([
      {
        uri: 's3://bkt/data/2.png',
        reason: `changed since planning: re-plan the run (the object no longer has ETag ${items[1]!.etag})`,
      },
    ]);
    const shard = decodeShard(await s3.store('out-bucket').requireBytes(r.shardKey));
    expect(shard.rows.map((row) => row.key)).toEqual([
      's3://bkt/data/1.png',
      's3://bkt/data/3.png',
    ]);
    // One read of the changed object: a counted failure, not a retry storm.
    expect(s3.reads.filter((x) => x.key === 'data/2.png')).toHaveLength(1);
  });

  it('refuses an object over the size limit from its Content-Length, leaving its body unread', async () => {
    const { s3, items } = await planned();
    const big = new Uint8Array(4 * 1024 * 1024).fill(1);
    s3.put('bkt', 'data/big.jpg', big);
    // Planned with a size that hides it (a manifest's stale size): the read's length catches it.
    items.push({
      uri: 's3://bkt/data/big.jpg',
      size: 100,
      etag: s3.etagOf('bkt', 'data/big.jpg'),
      label: 0,
      split: 'test',
    });
    const r = await extractShard(
      {
        store: s3.store('out-bucket'),
        bundle,
        encoder,
        limits: { maxBytes: 1024 * 1024, budget: new ByteBudget(256 * 1024 * 1024) },
      },
      { items, datasetFingerprint: 'fp' },
      { batchSize: 2, concurrency: 2 },
    );
    expect(r).toMatchObject({ images: 3, failed: 1 });
    const manifest = await s3
      .store('out-bucket')
      .requireJson<ShardManifest>(r.shardKey.replace(/\.arrow$/, '.json'));
    expect(manifest.failed).toEqual([
      {
        uri: 's3://bkt/data/big.jpg',
        reason:
          'too-large: the file is 4 MiB, over the limit of 1 MiB per image (CLIPEVAL_MAX_IMAGE_BYTES)',
      },
    ]);
    expect(s3.reads.find((x) => x.key === 'data/big.jpg')!.consumed).toBeLessThanOrEqual(65536);
  });
});
