import { describe, expect, it } from 'vitest';
import { decodeShard, encodeShard, type ShardRow } from '../../core/embeddings/shard-format';

describe('embedding shard format (Arrow IPC file)', () => {
  const rows: ShardRow[] = [
    { key: 's3://b/train/cat/1.jpg', imageId: 'a1', label: 0, split: 'train', view: 0 },
    { key: 's3://b/train/cat/1.jpg', imageId: 'a1', label: 0, split: 'train', view: 1 },
    { key: 's3://b/test/dog/2.jpg', imageId: 'b2', label: 1, split: 'test', view: 0 },
  ];
  const meta = {
    bundleHash: 'h'.repeat(64),
    preprocessFingerprint: 'pp1',
    preprocessing: 'fast',
    imageGraph: 'int8',
    datasetFingerprint: 'ds1',
    clipevalVersion: '0.1.0',
  };

  it('round-trips rows, embeddings and metadata', () => {
    const emb = Float32Array.from({ length: 3 * 4 }, (_, i) => i / 10);
    const bytes = encodeShard(rows, emb, 4, meta);
    expect(Buffer.from(bytes.subarray(0, 6)).toString()).toBe('ARROW1');
    const back = decodeShard(bytes);
    expect(back.rows).toEqual(rows);
    expect(back.dim).toBe(4);
    expect(Array.from(back.embeddings)).toEqual(Array.from(emb));
    expect(back.metadata).toEqual(meta);
  });

  // Regression (found by the chaos soak): the split column's dictionary id came from Arrow JS's
  // per-process counter, so the same shard encoded in two workers differed, and two workers
  // racing on one shard left its bytes and its manifest's sha256 from different writers.
  it('encodes the same shard to the same bytes, whatever was encoded before', () => {
    const emb = Float32Array.from({ length: 3 * 4 }, (_, i) => i / 10);
    const first = encodeShard(rows, emb, 4, meta);
    encodeShard(rows, emb, 4, meta); // another shard in between moves any per-process counter
    expect(Buffer.from(encodeShard(rows, emb, 4, meta)).equals(Buffer.from(first))).toBe(true);
  });

  it('writes an empty shard (every image failed) that still reads back', () => {
    const back = decodeShard(encodeShard([], new Float32Array(0), 4, meta));
    expect(back.rows).toEqual([]);
    expect(back.dim).toBe(4);
  });

  it('refuses mismatched embedding sizes', () => {
    expect(() => encodeShard(rows, new Float32Array(5), 4, meta)).toThrow(
      /expected 3x4 embeddings/,
    );
  });
});
