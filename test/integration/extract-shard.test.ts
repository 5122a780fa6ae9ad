import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanItem } from '../../core/dataset/plan';
import { extractShard, type ShardManifest } from '../../core/embeddings/extract-shard';
import { decodeShard } from '../../core/embeddings/shard-format';
import { loadBundle, type ModelBundle } from '../../core/model/bundle';
import { ImageEncoder } from '../../core/model/onnx/encoders';
import { preprocessImage, preprocessParams } from '../../core/model/image/preprocess';
import { cosine } from '../../core/util/vectors';
import { ObjectStore } from '../../core/storage/object-store';
import { goldenImages, TINY_BUNDLE, TINY_GOLDEN } from '../helpers/fixtures';
import { putObjects, testEnv, uniqueId } from '../helpers/stack';

// One shard, images in the real S3 server, through the real encoder: the module the gpu-queue
// activity will wrap (the workflow fan-out is not wired yet).
const env = testEnv();
const store = ObjectStore.connect(env.s3);
let bundle: ModelBundle;
let encoder: ImageEncoder;
let reference: ImageEncoder;
let items: PlanItem[];

beforeAll(async () => {
  bundle = await loadBundle(TINY_BUNDLE);
  encoder = await ImageEncoder.create(bundle, { threads: 1 });
  // The float graph, fed the JavaScript-normalised pixels: what the uint8 graph must reproduce.
  reference = await ImageEncoder.create(bundle, { threads: 1, inputFormat: 'float32-nchw' });
  const prefix = `${uniqueId('extract')}/`;
  const files: Record<string, Buffer | string> = Object.fromEntries(
    goldenImages().map((g) => [g.file, readFileSync(join(TINY_GOLDEN, g.file))]),
  );
  files['images/corrupt.jpg'] = 'this is not a jpeg';
  await putObjects(env, env.s3.bucket, prefix, files);
  const listed = await store.list(prefix);
  items = listed.map((o, i) => ({
    uri: `s3://${env.s3.bucket}/${o.key}`,
    size: o.size,
    etag: o.etag,
    label: i % 3,
    split: i % 2 ? 'train' : 'test',
  }));
});
afterAll(async () => {
  await encoder.close();
  await reference.close();
});

describe('extractShard', () => {
  it('writes an Arrow shard equal to the encoder called directly, quarantining corrupt images', async () => {
    const progress: number[] = [];
    const r = await extractShard(
      { store, bundle, encoder },
      { items, datasetFingerprint: 'fp' },
      { batchSize: 4, concurrency: 2, onProgress: (n) => progress.push(n) },
    );
    expect(r).toMatchObject({ rows: 14, failed: 1, reused: false });
    expect(progress.at(-1)).toBe(15);

    const shard = decodeShard(await store.requireBytes(r.shardKey));
    expect(shard.metadata).toMatchObject({ bundleHash: bundle.hash, datasetFingerprint: 'fp' });
    expect(shard.rows.map((row) => row.key)).toEqual(
      items.filter((i) => !i.uri.endsWith('corrupt.jpg')).map((i) => i.uri),
    );

    const p = bundle.manifest.preprocessing;
    const params = preprocessParams(p);
    const d = shard.dim;
    for (const [i, row] of shard.rows.entries()) {
      const local = join(TINY_GOLDEN, 'images', row.key.split('/').pop()!);
      const direct = await reference.encode(await preprocessImage(readFileSync(local), params), 1);
      expect(cosine(shard.embeddings.subarray(i * d, (i + 1) * d), direct)).toBeGreaterThanOrEqual(
        0.99999,
      );
      expect(row.label).toBe(items.find((it) => it.uri === row.key)!.label);
    }

    const manifest = await store.requireJson<ShardManifest>(
      r.shardKey.replace(/\.arrow$/, '.json'),
    );
    expect(manifest.failed).toEqual([
      {
        uri: items.find((i) => i.uri.endsWith('corrupt.jpg'))!.uri,
        reason: expect.stringMatching(/^not-an-image: /) as string,
      },
    ]);
    expect(manifest.rows).toBe(14);
  });

  it('reuses a finished shard, and re-encodes when what it covers changes', async () => {
    const again = await extractShard(
      { store, bundle, encoder },
      { items, datasetFingerprint: 'fp' },
      { batchSize: 4, concurrency: 2 },
    );
    expect(again.reused).toBe(true);
    const relabelled = items.map((i, n) => (n === 0 ? { ...i, label: 2 - i.label } : i));
    const changed = await extractShard(
      { store, bundle, encoder },
      { items: relabelled, datasetFingerprint: 'fp' },
      { batchSize: 4, concurrency: 2 },
    );
    expect(changed.reused).toBe(false);
    expect(changed.shardKey).not.toBe(again.shardKey);
    const manifest = await store.requireJson<{ rows: number }>(
      again.shardKey.replace(/\.arrow$/, '.json'),
    );
    expect(manifest.rows).toBe(14);
  });

  it('adds seeded augmented views for train images only, reproducibly', async () => {
    const deps = { store, bundle, encoder };
    const opts = { batchSize: 8, concurrency: 2, augment: { views: 2, seed: 5 } };
    const r = await extractShard(deps, { items, datasetFingerprint: 'fp' }, opts);
    const trainOk = items.filter(
      (i) => i.split === 'train' && !i.uri.endsWith('corrupt.jpg'),
    ).length;
    expect(r).toMatchObject({ images: 14, rows: 14 + 2 * trainOk, reused: false });
    const shard = decodeShard(await store.requireBytes(r.shardKey));
    expect(shard.rows.filter((row) => row.view > 0).every((row) => row.split === 'train')).toBe(
      true,
    );
    expect(new Set(shard.rows.map((row) => row.view))).toEqual(new Set([0, 1, 2]));

    // Same seed: the same shard (reused); another seed: other views, another shard.
    expect((await extractShard(deps, { items, datasetFingerprint: 'fp' }, opts)).reused).toBe(true);
    const other = await extractShard(
      deps,
      { items, datasetFingerprint: 'fp' },
      { ...opts, augment: { views: 2, seed: 6 } },
    );
    expect(other.shardKey).not.toBe(r.shardKey);
  });
});
