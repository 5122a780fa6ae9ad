import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { encodeShard, type ShardRow } from '../../activities/embeddings/shard-format';
import { readMatrix, readShards } from '../../activities/embeddings/reader';
import { createS3Client } from '../../activities/storage/s3-client';
import { testEnv, uniqueId } from '../helpers/stack';

// Readers over shards in the real S3 server: by split and view, and refusing mixed spaces.
describe('embedding readers', () => {
  const env = testEnv();
  const s3 = createS3Client(env.s3);
  const meta = (bundleHash: string) => ({
    bundleHash,
    preprocessFingerprint: 'p',
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
    await s3.send(
      new PutObjectCommand({
        Bucket: env.s3.bucket,
        Key: key,
        Body: encodeShard(rows, emb, 2, meta(bundleHash)),
      }),
    );
    return key;
  }

  it('reads one split and view across shards as a matrix', async () => {
    const a = await put([row(1, 'train'), row(2, 'test'), row(1, 'train', 1)], 'h1');
    const b = await put([row(3, 'train'), row(4, 'val')], 'h1');
    const train = await readMatrix(s3, env.s3.bucket, [a, b], {
      bundleHash: 'h1',
      split: 'train',
      view: 0,
    });
    expect(train.rows.map((r) => r.key)).toEqual(['s3://b/1', 's3://b/3']);
    expect(Array.from(train.embeddings)).toEqual([0, 1, 0, 1]);
    const parts = [];
    for await (const p of readShards(s3, env.s3.bucket, [a, b], { bundleHash: 'h1' }))
      parts.push(p.rows.length);
    expect(parts).toEqual([3, 2]);
  });

  it('refuses a shard from a different bundle', async () => {
    const a = await put([row(1, 'train')], 'h1');
    const b = await put([row(2, 'train')], 'h2');
    await expect(readMatrix(s3, env.s3.bucket, [a, b], { bundleHash: 'h1' })).rejects.toThrow(
      /encoded with bundle h2, not h1: embeddings from different models cannot be mixed/,
    );
  });
});
