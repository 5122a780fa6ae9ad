import { describe, expect, it } from 'vitest';
import { encodeShard, type ShardRow } from '../../core/embeddings/shard-format';
import { readMatrix, readShards } from '../../core/embeddings/reader';
import { ObjectStore } from '../../core/storage/object-store';
import { testEnv, uniqueId } from '../helpers/stack';

// Readers over shards in the real S3 server: by split and view, and refusing mixed spaces.
describe('embedding readers', () => {
  const env = testEnv();
  const store = ObjectStore.connect(env.s3);
  const meta = (bundleHash: string) => ({
    bundleHash,
    preprocessFingerprint: 'p',
    preprocessing: 'exact',
    imageGraph: 'fp32',
    datasetFingerprint: 'd',
    clipevalVersion: '0.1.0',
  });
  const row = (n: number, split: ShardRow['split'], view = 0): ShardRow => ({
    key: `s3://b/${n}`,
    imageId: String(n),
    label: n % 2,
    split,
    view,
  });

  async function put(rows: ShardRow[], bundleHash: string): Promise<string> {
    const key = `${uniqueId('shards')}.arrow`;
    const emb = Float32Array.from({ length: rows.length * 2 }, (_, i) => i);
    await store.putBytes(key, encodeShard(rows, emb, 2, meta(bundleHash)));
    return key;
  }

  it('reads one split and view across shards as a matrix', async () => {
    const a = await put([row(1, 'train'), row(2, 'test'), row(1, 'train', 1)], 'h1');
    const b = await put([row(3, 'train'), row(4, 'val')], 'h1');
    const train = await readMatrix(store, [a, b], {
      bundleHash: 'h1',
      split: 'train',
      view: 0,
    });
    expect(train.rows.map((r) => r.key)).toEqual(['s3://b/1', 's3://b/3']);
    expect(Array.from(train.embeddings)).toEqual([0, 1, 0, 1]);
    const parts = [];
    for await (const p of readShards(store, [a, b], { bundleHash: 'h1' }))
      parts.push(p.rows.length);
    expect(parts).toEqual([3, 2]);
  });

  it('refuses a shard from a different bundle', async () => {
    const a = await put([row(1, 'train')], 'h1');
    const b = await put([row(2, 'train')], 'h2');
    await expect(readMatrix(store, [a, b], { bundleHash: 'h1' })).rejects.toThrow(
      /encoded with bundle h2, not h1: embeddings from different models cannot be mixed/,
    );
  });
});
