import { describe, expect, it } from 'vitest';
import { failFastOnPermanentErrors } from '../../activities/permanent-errors';
import { parseRunSpec } from '../../core/config/run-spec';
import { buildPlan } from '../../core/dataset/plan';
import { DatasetError } from '../../core/dataset/types';
import { trainProbe } from '../../core/routes/probe';
import { InvalidKeyError, assertRunId, assertScheduleId, keys } from '../../core/storage/keys';
import { PermanentError } from '../../core/util/errors';

// Failures that no retry can fix are PermanentErrors, which the activity layer turns into
// non-retryable failures in one place (activities/permanent-errors.ts). Issue 12: these were
// plain Errors, retried under the stage's policy (up to 10 or 20 attempts).

/** What the activity wrapper makes of an error thrown by core code. */
async function asActivityFailure(fn: () => unknown): Promise<unknown> {
  return failFastOnPermanentErrors(async () => {
    await fn();
  })().catch((err: unknown) => err);
}

describe('deterministic failures are permanent', () => {
  it('keys: invalid run ids, schedule ids, variants, hashes and shard keys', async () => {
    const bad: [string, () => unknown][] = [
      ['run id', () => assertRunId('../x')],
      ['schedule id', () => assertScheduleId('a/b')],
      ['variant', () => keys.routeResult('r', 'coop', '../all', 'metrics.json')],
      ['content hash', () => keys.embeddingShard('NOTHEX', 'abcdef0123')],
      ['shard key', () => keys.manifestOfShard('runs/r/plan.json')],
    ];
    for (const [what, fn] of bad) {
      expect(fn, what).toThrow(InvalidKeyError);
      expect(fn, what).toThrow(PermanentError);
      expect(await asActivityFailure(fn), what).toMatchObject({
        type: 'InvalidKeyError',
        nonRetryable: true,
      });
    }
  });

  it('planning: a dataset without train images when CoOp or the probe is on', async () => {
    const spec = parseRunSpec({ dataset: { uri: 's3://bkt/ds/' } });
    const items = ['a', 'b'].map((c, i) => ({
      uri: `s3://bkt/ds/test/${c}/${i}.jpg`,
      size: 1,
      etag: `e${i}`,
      className: c,
      split: 'test' as const,
    }));
    const plan = () => buildPlan({ runId: 'r', spec, kind: 'image-folder', items, skipped: [] });
    expect(plan).toThrow(DatasetError);
    expect(await asActivityFailure(plan)).toMatchObject({
      type: 'DatasetError',
      nonRetryable: true,
    });
  });

  it('the probe: no usable train image (all skipped or undecodable)', async () => {
    const empty = { x: new Float32Array(0), labels: new Int32Array(0), n: 0, dim: 4 };
    const fit = () =>
      trainProbe({
        train: empty,
        numClasses: 2,
        recipe: { kind: 'lbfgs', maxIterations: 10 },
        seed: 0,
      });
    await expect(fit()).rejects.toThrow(DatasetError);
    expect(await asActivityFailure(fit)).toMatchObject({
      type: 'DatasetError',
      nonRetryable: true,
    });
  });
});
