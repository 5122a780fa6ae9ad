import { describe, expect, it } from 'vitest';
import type { Plan } from '../../core/dataset/plan';
import {
  embeddingSpace,
  planShardKeys,
  preprocessFingerprint,
  spaceOf,
} from '../../core/embeddings/shard-key';
import { loadBundle } from '../../core/model/bundle';
import { TINY_BUNDLE } from '../helpers/fixtures';

const item = { uri: 's3://b/d/cat/1.jpg', size: 10, etag: '"e"', label: 0, split: 'test' as const };
const plan = (extraction: Record<string, unknown>) =>
  ({
    spec: { extraction },
    shards: [{ index: 0, id: 'x', count: 1, items: [item] }],
  }) as unknown as Plan;

describe('embedding space key', () => {
  it('is unchanged for exact / fp32 (the keys of shards written before modes and graphs)', async () => {
    const bundle = await loadBundle(TINY_BUNDLE);
    // Pinned: computed by the code before this change (sha256 of {implementation:
    // 'sharp-decode+pillow-bicubic/1', ...preprocessing}, then of hash + '\n' + fingerprint).
    const pp = preprocessFingerprint(bundle.manifest.preprocessing);
    expect(pp).toBe(OLD_PP);
    // The tiny bundle's hash before its uint8/fp16 graphs were added (sha256 of that bundle.json).
    expect(embeddingSpace(OLD_BUNDLE_HASH, pp)).toBe(OLD_SPACE);
    const old = { ...bundle, hash: OLD_BUNDLE_HASH };
    expect(planShardKeys(plan({}), old)[0]).toContain(`/${OLD_SPACE}/`);
    const keys = planShardKeys(plan({}), bundle);
    expect(planShardKeys(plan({ preprocessing: 'exact', imageGraph: 'fp32' }), bundle)).toEqual(
      keys,
    );
  });

  it('differs for fast vs exact and for each image graph', async () => {
    const bundle = await loadBundle(TINY_BUNDLE);
    const spaces = ['exact', 'fast'].flatMap((preprocessing) =>
      ['fp32', 'fp16', 'int8'].map(
        (imageGraph) => planShardKeys(plan({ preprocessing, imageGraph }), bundle)[0],
      ),
    );
    expect(new Set(spaces).size).toBe(6);
    const fast = spaceOf(bundle, { preprocessing: 'fast', imageGraph: 'fp32' });
    expect(fast.preprocessFingerprint).not.toBe(OLD_PP);
  });
});

const OLD_PP = '5150c4508120357c';
const OLD_SPACE = '31f714ab842966daeedc1a5f';
const OLD_BUNDLE_HASH = 'c268b0abd296d78bcf2ef51b3f0cbe1bec80ecd89f2061ac227ba7cd3c317249';
