import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  benchmarkClassList,
  benchmarkTemplates,
} from '../../core/config/benchmark-texts/benchmark-texts';
import { parseRunSpec, type RunSpecInput } from '../../core/config/run-spec';
import type { Plan } from '../../core/dataset/plan';
import { readMatrix } from '../../core/embeddings/reader';
import { planShardKeys } from '../../core/embeddings/shard-key';
import { loadBundle } from '../../core/model/bundle';
import { computeMetrics } from '../../core/routes/metrics';
import type { RouteResultFile } from '../../core/routes/route-result';
import { keys } from '../../core/storage/keys';
import { parseS3Uri } from '../../core/storage/s3-uri';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import { TINY_BUNDLE } from '../helpers/fixtures';
import { directZeroShotScores } from '../helpers/zero-shot-reference';
import {
  putObjects,
  startPipeline,
  testStore,
  tinyPng,
  type TestPipeline,
  uniqueId,
} from '../helpers/stack';

// Built-in dataset texts through a real run: `classNames: cifar10` and `zeroShot.templates:
// cifar10` on an ImageFolder whose class folders are 1-based ids (1 ... 10), as many exports are.
// Zero-shot must use CLIP_benchmark's 18 CIFAR-10 templates and name folder k the benchmark's
// class k-1, although the plan sorts the folders as text (1, 10, 2, ...).
let pipeline: TestPipeline;
let uri: string;

beforeAll(async () => {
  pipeline = await startPipeline();
  const prefix = `${uniqueId('cifar10-ids')}/`;
  const objects: Record<string, Buffer> = {};
  for (let id = 1; id <= 10; id++) {
    for (const i of [0, 1]) objects[`test/${id}/${i}.png`] = await tinyPng(id * 2 + i);
  }
  await putObjects(pipeline.env, pipeline.env.s3.bucket, prefix, objects);
  uri = `s3://${pipeline.env.s3.bucket}/${prefix}`;
}, 120_000);
afterAll(() => pipeline.close());

async function run(extra: Partial<RunSpecInput>) {
  const runId = uniqueId('texts');
  const spec = parseRunSpec({
    dataset: { uri },
    model: { bundle: pipeline.bundle },
    shardSize: 16,
    coop: { enabled: false },
    probe: { enabled: false },
    ...extra,
  });
  await startEvaluation(pipeline.client, pipeline.env, spec, runId);
  return { runId, outcome: await waitForRun(pipeline.client, runId) };
}

describe('built-in dataset texts in a run', () => {
  it('zero-shot uses the dataset templates and names classes by the benchmark ids', async () => {
    const { runId, outcome } = await run({
      classNames: 'cifar10',
      zeroShot: { templates: 'cifar10' },
    });
    if (outcome.status !== 'COMPLETED')
      expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
    const store = testStore(pipeline.env);
    const plan = await store.requireJson<Plan>(keys.plan(runId));
    const cifar10 = benchmarkClassList('cifar10');
    expect(plan.classes.slice(0, 3)).toEqual(['1', '10', '2']);
    expect(plan.classNames).toEqual(plan.classes.map((id) => cifar10[Number(id) - 1]));
    expect(plan.classNames[1]).toBe('truck');

    const zs = outcome.summary.routes.find((r) => r.route === 'zero-shot')!;
    const { bucket, key } = parseS3Uri(zs.metricsUri);
    const result = await testStore(pipeline.env, bucket).requireJson<RouteResultFile>(key);
    const templates = benchmarkTemplates('cifar10');
    expect(templates).toHaveLength(18);
    expect(result.details.templates).toEqual(templates);
    expect(result.details.classNames).toEqual(plan.classNames);

    // The same scores computed here from those names and templates.
    const local = await loadBundle(TINY_BUNDLE);
    const test = await readMatrix(store, planShardKeys(plan, local), {
      bundleHash: local.hash,
      split: 'test',
      view: 0,
    });
    const scores = await directZeroShotScores(local, test.embeddings, plan.classNames, templates);
    const direct = computeMetrics(
      scores,
      Int32Array.from(test.rows, (r) => r.label),
      plan.classes,
    );
    expect(result.metrics).toEqual(direct);
  }, 300_000);

  it('fails at planning when the list has another class count, naming both and the fix', async () => {
    const { outcome } = await run({ classNames: 'pets' });
    expect(outcome.status).toBe('FAILED');
    expect('error' in outcome ? outcome.error : '').toMatch(
      /classNames: pets names 37 classes, but the dataset has 10 .*dataset\.classes/,
    );
  }, 120_000);
});
