import { type Client, WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec } from '../../core/config/run-spec';
import type { Plan } from '../../core/dataset/plan';
import { syntheticDataset } from '../../core/dataset/synthetic';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { failureMessage } from '../../core/util/failure-message';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import { progressQuery } from '../../contract/progress';
import { putObjects, startPipeline, type TestPipeline, tinyPng, uniqueId } from '../helpers/stack';

// The evaluation workflow (planning, then extraction) against the real Temporal dev server and
// versitygw, with the tiny model bundle.
let env: ClipevalEnv;
let client: Client;
let bundle: string;
let pipeline: TestPipeline;

beforeAll(async () => {
  pipeline = await startPipeline();
  ({ env, client, bundle } = pipeline);
});
afterAll(() => pipeline.close());

async function runPlan(dataset: Record<string, unknown>, shardSize = 1024) {
  const spec = parseRunSpec({ dataset, shardSize, model: { bundle }, ...EXTRACTION_ONLY });
  const { runId } = await startEvaluation(client, env, spec, uniqueId('plan'));
  return { runId, outcome: await waitForRun(client, runId) };
}

async function readPlan(runId: string): Promise<Plan> {
  return ObjectStore.connect(env.s3).requireJson<Plan>(keys.plan(runId));
}

describe('evaluateDataset: planning', () => {
  it('plans an ImageFolder dataset with split folders and writes plan.json', async () => {
    const prefix = `${uniqueId('ds')}/`;
    const images = await syntheticDataset({ perSplit: { train: 5, val: 2, test: 3 }, size: 64 });
    await putObjects(env, env.s3.bucket, prefix, {
      ...Object.fromEntries(images.map((i) => [i.path, i.body])),
      'train/red_circle/labels.txt': 'not an image',
    });
    const { runId, outcome } = await runPlan({ uri: `s3://${env.s3.bucket}/${prefix}` }, 8);
    expect(outcome.status).toBe('COMPLETED');
    if (outcome.status !== 'COMPLETED') return;
    expect(outcome.summary.plan).toMatchObject({
      planUri: `s3://${env.s3.bucket}/runs/${runId}/plan.json`,
      images: 30,
      classes: 3,
      bySplit: { train: 15, val: 6, test: 9 },
      skipped: 1,
    });

    const plan = await readPlan(runId);
    expect(plan.runId).toBe(runId);
    expect(plan.classes).toEqual(['blue-triangle', 'greenSquare', 'red_circle']);
    expect(plan.dataset).toMatchObject({
      kind: 'image-folder',
      layout: 'split-folders',
      skipped: { count: 1, byReason: { 'not an image file extension': 1 } },
    });
    expect(plan.counts.byClass.red_circle).toEqual({ train: 5, val: 2, test: 3 });
    expect(plan.shards.every((s) => s.count <= 8 && s.count === s.items.length)).toBe(true);
    const items = plan.shards.flatMap((s) => s.items);
    expect(items).toHaveLength(30);
    const one = items.find((i) => i.uri.endsWith('train/greenSquare/0000.png'))!;
    expect(one).toMatchObject({
      label: 1,
      split: 'train',
      size: images.find((i) => i.path === 'train/greenSquare/0000.png')!.body.length,
    });
    expect(one.etag).toMatch(/^[0-9a-f]{32}$/);
    expect(plan.spec.shardSize).toBe(8);
    expect(outcome.summary.plan.shards).toBe(plan.shards.length);

    // Progress is queryable after completion too.
    expect(await client.workflow.getHandle(runId).query(progressQuery)).toMatchObject({
      runId,
      stage: 'completed',
      plan: { images: 30 },
    });

    // Every image was encoded once into content-addressed shards.
    expect(outcome.summary.extraction).toMatchObject({
      shards: plan.shards.length,
      shardsDone: plan.shards.length,
      imagesDone: 30,
      imagesFailed: 0,
    });
    expect(new Set(outcome.summary.extraction.shardKeys).size).toBe(plan.shards.length);

    // Planning the same data again gives the same fingerprint and shards, and encodes nothing.
    const second = await runPlan({ uri: `s3://${env.s3.bucket}/${prefix}` }, 8);
    const plan2 = await readPlan(second.runId);
    expect(plan2.dataset.fingerprint).toBe(plan.dataset.fingerprint);
    expect(plan2.shards.map((s) => s.id)).toEqual(plan.shards.map((s) => s.id));
    if (second.outcome.status !== 'COMPLETED') expect.fail('the second run must complete');
    expect(second.outcome.summary.extraction.shardsReused).toBe(plan.shards.length);
    expect(second.outcome.summary.extraction.shardKeys).toEqual(
      outcome.summary.extraction.shardKeys,
    );
  });

  it('plans a class-folder dataset with a seeded split', async () => {
    const prefix = `${uniqueId('flat')}/`;
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`${i % 2 ? 'cat' : 'dog'}/${i}.png`] = await tinyPng(i);
    const { runId, outcome } = await runPlan({
      uri: `s3://${env.s3.bucket}/${prefix}`,
      splitRatio: { train: 0.5, val: 0, test: 0.5 },
      splitSeed: 3,
    });
    expect(outcome.status).toBe('FAILED'); // nothing uploaded yet: empty prefix
    if (outcome.status === 'FAILED')
      expect(outcome.error).toMatch(/is empty: no objects under this prefix/);

    await putObjects(env, env.s3.bucket, prefix, files);
    const again = await runPlan({
      uri: `s3://${env.s3.bucket}/${prefix}`,
      splitRatio: { train: 0.5, val: 0, test: 0.5 },
      splitSeed: 3,
    });
    expect(again.outcome.status).toBe('COMPLETED');
    const plan = await readPlan(again.runId);
    expect(plan.dataset.layout).toBe('class-folders');
    expect(plan.counts.bySplit.val).toBe(0);
    expect(plan.counts.bySplit.train + plan.counts.bySplit.test).toBe(40);
    expect(plan.counts.bySplit.train).toBeGreaterThan(5);
    expect(runId).not.toBe(again.runId);
  });

  it('plans a manifest dataset (JSONL with relative keys and s3:// URIs, and CSV)', async () => {
    const prefix = `${uniqueId('manifest')}/`;
    const other = `${uniqueId('elsewhere')}/`;
    const png = [await tinyPng(1), await tinyPng(2), await tinyPng(3), await tinyPng(4)];
    await putObjects(env, env.s3.bucket, prefix, {
      'img/a.png': png[0]!,
      'img/b.png': png[1]!,
      'img/c.png': png[2]!,
    });
    await putObjects(env, env.s3.bucket, other, { 'd.png': png[3]! });
    const lines = [
      { key: 'img/a.png', label: 'cat', split: 'train' },
      { key: 'img/b.png', label: 'dog', split: 'train' },
      { key: 'img/c.png', label: 'cat', split: 'test' },
      { key: `s3://${env.s3.bucket}/${other}d.png`, label: 'dog', split: 'val' },
    ];
    await putObjects(env, env.s3.bucket, prefix, {
      'list.jsonl': lines.map((l) => JSON.stringify(l)).join('\n'),
      'list.csv':
        'key,label,split\n' + lines.map((l) => `${l.key},${l.label},${l.split}`).join('\n'),
    });
    for (const file of ['list.jsonl', 'list.csv']) {
      const { runId, outcome } = await runPlan({
        uri: `s3://${env.s3.bucket}/${prefix}${file}`,
        classes: ['dog', 'cat'],
      });
      expect(outcome.status).toBe('COMPLETED');
      const plan = await readPlan(runId);
      expect(plan.dataset.kind).toBe('manifest');
      expect(plan.classes).toEqual(['dog', 'cat']);
      const items = plan.shards.flatMap((s) => s.items);
      expect(items.map((i) => [i.uri.split('/').pop(), i.label, i.split, i.size])).toEqual([
        ['d.png', 0, 'val', png[3]!.length],
        ['a.png', 1, 'train', png[0]!.length],
        ['b.png', 0, 'train', png[1]!.length],
        ['c.png', 1, 'test', png[2]!.length],
      ]);
    }
  });

  it('fails a run clearly, without retries or a plan, on bad manifests and missing buckets', async () => {
    const prefix = `${uniqueId('badmanifest')}/`;
    await putObjects(env, env.s3.bucket, prefix, {
      'img/a.png': 'a',
      'list.jsonl': [
        '{"key":"img/a.png","label":"cat","split":"train"}',
        '{"key":"img/a.png","label":"cat","split":"train"}',
        '{"key":"../x.png","label":"cat","split":"train"}',
        '{"key":"img/missing.png","label":"cat","split":"train"}',
      ].join('\n'),
      'missing.jsonl': '{"key":"img/nope.png","label":"cat","split":"train"}',
    });
    const bad = await runPlan({ uri: `s3://${env.s3.bucket}/${prefix}list.jsonl` });
    expect(bad.outcome.status).toBe('FAILED');
    if (bad.outcome.status === 'FAILED') {
      expect(bad.outcome.error).toMatch(/row 2: duplicate key/);
      expect(bad.outcome.error).toMatch(/row 3: key "..\/x.png" escapes/);
    }
    const missing = await runPlan({ uri: `s3://${env.s3.bucket}/${prefix}missing.jsonl` });
    if (missing.outcome.status === 'FAILED')
      expect(missing.outcome.error).toMatch(/row 1: object s3:\/\/.*nope.png does not exist/);
    else expect.fail('a manifest row pointing at a missing object must fail the run');

    const nobucket = await runPlan({ uri: 's3://no-such-bucket-clipeval/data/' });
    if (nobucket.outcome.status === 'FAILED')
      expect(nobucket.outcome.error).toMatch(/bucket "no-such-bucket-clipeval" does not exist/);
    else expect.fail('a missing bucket must fail the run');

    // Non-retryable: one attempt, and no plan object was written.
    const history = await client.workflow.getHandle(bad.runId).fetchHistory();
    const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
    expect(started.map((e) => e.activityTaskStartedEventAttributes?.attempt)).toEqual([1]);
    await expect(readPlan(bad.runId)).rejects.toThrow();
  });

  it('validates the run spec inside the workflow too (started by other clients)', async () => {
    const runId = uniqueId('badspec');
    const handle = await client.workflow.start('evaluateDataset', {
      taskQueue: env.queues.cpu,
      workflowId: runId,
      args: [{ runId, spec: { dataset: { uri: 'not-s3' } } }],
    });
    const err: unknown = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(failureMessage(err)).toMatch(/dataset\.uri: expected s3:\/\/bucket\/prefix/);
  });
});
