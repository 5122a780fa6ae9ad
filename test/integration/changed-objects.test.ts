import { describe, expect, it } from 'vitest';
import type { PlanItem } from '../../core/dataset/plan';
import { extractShard, type ShardManifest } from '../../core/embeddings/extract-shard';
import { decodeShard } from '../../core/embeddings/shard-format';
import { loadBundle } from '../../core/model/bundle';
import { ImageEncoder } from '../../core/model/onnx/encoders';
import { ObjectStore } from '../../core/storage/object-store';
import { TINY_BUNDLE } from '../helpers/fixtures';
import { testEnv, tinyPng, uniqueId } from '../helpers/stack';

// Issue 12, item 10, on the real S3 server (versitygw honours If-Match on GetObject): an image
// replaced between planning and extraction is not embedded under the planned shard key; it is
// counted as a failed image with the reason, and the rest of the shard is extracted.
describe('objects changed since planning', () => {
  it('fail as "changed since planning" and the shard completes', async () => {
    const env = testEnv();
    const store = ObjectStore.connect(env.s3);
    const prefix = `${uniqueId('changed')}/`;
    for (let i = 0; i < 4; i++) await store.putBytes(`${prefix}${i}.png`, await tinyPng(i));
    const items: PlanItem[] = (await store.list(prefix)).map((o, i) => ({
      uri: store.uri(o.key),
      size: o.size,
      etag: o.etag,
      label: i % 2,
      split: 'test',
    }));
    // Replaced after planning, with other bytes (a new ETag).
    await store.putBytes(`${prefix}2.png`, await tinyPng(40));

    const bundle = await loadBundle(TINY_BUNDLE);
    const encoder = await ImageEncoder.create(bundle, { threads: 1 });
    try {
      const r = await extractShard(
        { store, bundle, encoder },
        { items, datasetFingerprint: 'fp' },
        { batchSize: 2, concurrency: 2 },
      );
      expect(r).toMatchObject({ images: 3, failed: 1, reused: false });
      const manifest = await store.requireJson<ShardManifest>(
        r.shardKey.replace(/\.arrow$/, '.json'),
      );
      expect(manifest.failed).toEqual([
        {
          uri: store.uri(`${prefix}2.png`),
          reason: `changed since planning: re-plan the run (the object no longer has ETag ${items[2]!.etag})`,
        },
      ]);
      const shard = decodeShard(await store.requireBytes(r.shardKey));
      expect(shard.rows.map((row) => row.key)).toEqual(
        [0, 1, 3].map((i) => store.uri(`${prefix}${i}.png`)),
      );
    } finally {
      await encoder.close();
    }
  });
});
