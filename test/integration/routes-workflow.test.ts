import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCpuActivities, createGpuActivities } from '../../activities';
import type { ClipevalEnv } from '../../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec, type RunSpecInput } from '../../core/config/run-spec';
import type { Plan } from '../../core/dataset/plan';
import { syntheticDataset } from '../../core/dataset/synthetic';
import { readMatrix } from '../../core/embeddings/reader';
import { planShardKeys } from '../../core/embeddings/shard-key';
import type { CoopCheckpointFile } from '../../core/routes/coop/checkpoint';
import { computeMetrics } from '../../core/routes/metrics';
import { decodePredictions } from '../../core/routes/predictions';
import type { RouteResultFile } from '../../core/routes/route-result';
import { DEFAULT_TEMPLATES } from '../../core/routes/zero-shot/templates';
import { loadBundle, uploadBundle } from '../../core/model/bundle';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { parseS3Uri } from '../../core/storage/s3-uri';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import type { EvaluationSummary } from '../../contract/progress';
import { TINY_BUNDLE } from '../helpers/fixtures';
import { directZeroShotScores } from '../helpers/zero-shot-reference';
import {
  asWorkflow,
  putObjects,
  startPipeline,
  type TestPipeline,
  uniqueId,
  uploadShapes,
} from '../helpers/stack';

// The three decision routes after extraction, through Temporal on the real stack: results in
// S3, zero-shot equal to a direct computation, the few-shot grid, and the bad inputs of the heads.
let env: ClipevalEnv;
let client: Client;
let bundle: string;
let pipeline: TestPipeline;

beforeAll(async () => {
  pipeline = await startPipeline();
  ({ env, client, bundle } = pipeline);
});
afterAll(() => pipeline.close());

const shapes = async (perSplit: { train: number; val: number; test: number }) =>
  (await uploadShapes(env, perSplit)).uri;

async function run(uri: string, extra: Partial<RunSpecInput> = {}, runId = uniqueId('routes')) {
  const spec = parseRunSpec({ dataset: { uri }, model: { bundle }, shardSize: 16, ...extra });
  await startEvaluation(client, env, spec, runId);
  const outcome = await waitForRun(client, runId);
  return { runId, outcome };
}

const storeIn = (bucket = env.s3.bucket) => ObjectStore.connect({ ...env.s3, bucket });
const readResult = (uri: string) => {
  const { bucket, key } = parseS3Uri(uri);
  return storeIn(bucket).requireJson<RouteResultFile>(key);
};

describe('evaluation with the three routes', () => {
  let summary: EvaluationSummary;
  let runId: string;
  let uri: string;

  beforeAll(async () => {
    uri = await shapes({ train: 6, val: 2, test: 4 });
    const r = await run(uri, {
      coop: { epochs: 3, nCtx: 4 },
      fewShot: { shots: [2, 8], seeds: [1, 2] },
    });
    if (r.outcome.status !== 'COMPLETED')
      expect.fail(`run ${r.outcome.status}: ${'error' in r.outcome ? r.outcome.error : ''}`);
    summary = r.outcome.summary;
    runId = r.runId;
  }, 300_000);

  it('runs zero-shot once and CoOp and the probe per (shots, seed), plus the full-data probe', () => {
    const names = summary.routes.map((r) => `${r.route}/${r.variant ?? ''}`).sort();
    expect(names).toEqual(
      [
        'zero-shot/',
        'probe/all',
        ...['coop', 'probe'].flatMap((route) =>
          ['2shot-seed1', '2shot-seed2', '8shot-seed1', '8shot-seed2'].map((v) => `${route}/${v}`),
        ),
      ].sort(),
    );
    for (const r of summary.routes) {
      expect(r.n).toBe(12); // 3 classes x 4 test images
      expect(r.acc1).toBeGreaterThanOrEqual(0);
      expect(r.acc1).toBeLessThanOrEqual(1);
      expect(r.acc5).toBeNull(); // fewer than 5 classes
    }
  });

  it('writes metrics, the CLIP_benchmark layout and per-image predictions for every route', async () => {
    for (const r of summary.routes) {
      const file = await readResult(r.metricsUri);
      expect(file.summary.acc1).toBe(r.acc1);
      // Sparse: one [true, predicted, count] cell per non-zero count, covering every test image.
      expect(file.metrics.confusionCells.reduce((n, c) => n + c[2], 0)).toBe(file.metrics.n);
      const { bucket, key } = parseS3Uri(r.metricsUri);
      const bench = await storeIn(bucket).requireJson<Record<string, unknown>>(
        key.replace('metrics.json', 'clip-benchmark.json'),
      );
      expect(Object.keys(bench).sort()).toEqual([
        'dataset',
        'language',
        'metrics',
        'model',
        'pretrained',
        'task',
      ]);
      const predictions = decodePredictions(
        await storeIn(bucket).requireBytes(key.replace('metrics.json', 'predictions.arrow')),
      );
      expect(predictions.rows).toHaveLength(12);
      expect(predictions.k).toBe(3);
    }
  });

  it('says when a class has fewer train images than k (8-shot of 6)', () => {
    const eight = summary.routes.filter((r) => r.variant === '8shot-seed1');
    for (const r of eight) expect(r.notes.join('\n')).toMatch(/has 6 train images, fewer than 8/);
  });

  it('reports mean and spread over seeds per route and shot count', () => {
    const rows = summary.fewShot.map((f) => `${f.route} ${f.shots} ${f.seeds.join(',')}`).sort();
    expect(rows).toEqual(
      ['coop 2 1,2', 'coop 8 1,2', 'probe 2 1,2', 'probe 8 1,2', 'probe all 0'].sort(),
    );
    const coop2 = summary.routes
      .filter((r) => r.route === 'coop' && r.shots === 2)
      .map((r) => r.acc1);
    const row = summary.fewShot.find((f) => f.route === 'coop' && f.shots === 2)!;
    expect(row.acc1.mean).toBeCloseTo((coop2[0]! + coop2[1]!) / 2, 12);
    expect(row.acc1.std).toBeCloseTo(Math.abs(coop2[0]! - coop2[1]!) / 2, 12);
  });

  it('zero-shot equals a direct computation on the same shards', async () => {
    const plan = await storeIn().requireJson<Plan>(keys.plan(runId));
    const local = await loadBundle(TINY_BUNDLE);
    const test = await readMatrix(storeIn(), planShardKeys(plan, local), {
      bundleHash: local.hash,
      split: 'test',
      view: 0,
    });
    const scores = await directZeroShotScores(
      local,
      test.embeddings,
      plan.classNames,
      DEFAULT_TEMPLATES,
    );
    const direct = computeMetrics(
      scores,
      Int32Array.from(test.rows, (r) => r.label),
      plan.classes,
    );
    const zs = summary.routes.find((r) => r.route === 'zero-shot')!;
    expect(zs.acc1).toBe(direct.acc1);
    expect((await readResult(zs.metricsUri)).metrics).toEqual(direct);
    expect(plan.classNames).toEqual(['blue triangle', 'green Square', 'red circle']);
  });

  it('keeps the learned context with its config and the loss curve', async () => {
    const ctx = await storeIn().requireJson<{
      config: { epochs: number };
      losses: number[];
      dims: number[];
    }>(keys.coopContext(runId, '2shot-seed1'));
    expect(ctx.config.epochs).toBe(3);
    expect(ctx.losses).toHaveLength(3);
    expect(ctx.dims).toEqual([1, 4, 32]);
  });
});

describe('bad input for the routes', () => {
  it('without a val split, the probe falls back to a validation set carved from train and says so', async () => {
    const uri = await shapes({ train: 6, val: 0, test: 2 });
    const r = await run(uri, {
      zeroShot: { enabled: false },
      coop: { enabled: false },
      fewShot: { shots: [4], seeds: [1] },
    });
    if (r.outcome.status !== 'COMPLETED') expect.fail(`run ${r.outcome.status}`);
    for (const probe of r.outcome.summary.routes) {
      const file = await readResult(probe.metricsUri);
      expect((file.details.selected as { validation: string }).validation).toBe(
        'carved-from-train',
      );
      expect(probe.notes.join('\n')).toMatch(/val/i);
    }
  });

  it('one class only: the run fails before extraction and says how to run zero-shot alone', async () => {
    const prefix = `${uniqueId('one-class')}/`;
    const images = (
      await syntheticDataset({ perSplit: { train: 2, val: 0, test: 2 }, size: 32 })
    ).filter((i) => i.className === 'red_circle');
    await putObjects(
      env,
      env.s3.bucket,
      prefix,
      Object.fromEntries(images.map((i) => [i.path, i.body])),
    );
    const r = await run(`s3://${env.s3.bucket}/${prefix}`);
    expect(r.outcome.status).toBe('FAILED');
    expect('error' in r.outcome ? r.outcome.error : '').toMatch(
      /one class .*coop.enabled and probe.enabled/,
    );
    const alone = await run(`s3://${env.s3.bucket}/${prefix}`, {
      coop: { enabled: false },
      probe: { enabled: false },
    });
    if (alone.outcome.status !== 'COMPLETED') expect.fail(`run ${alone.outcome.status}`);
    expect(alone.outcome.summary.routes.map((x) => [x.route, x.acc1])).toEqual([['zero-shot', 1]]);
  });

  it("refuses embeddings of another bundle found under this bundle's keys", async () => {
    const uri = await shapes({ train: 2, val: 0, test: 2 });
    const first = await run(uri, EXTRACTION_ONLY);
    if (first.outcome.status !== 'COMPLETED') expect.fail(`run ${first.outcome.status}`);
    // Bundle B: the same graphs under another name, so another hash and other shard keys.
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-bundle-b-'));
    cpSync(TINY_BUNDLE, dir, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8')) as { name: string };
    writeFileSync(join(dir, 'bundle.json'), JSON.stringify({ ...manifest, name: 'bundle-b' }));
    const other = await uploadBundle(
      storeIn(),
      dir,
      `s3://${env.s3.bucket}/models/${uniqueId('b')}/`,
    );
    const plan = await storeIn().requireJson<Plan>(keys.plan(first.runId));
    const mine = planShardKeys(plan, await loadBundle(TINY_BUNDLE));
    const theirs = planShardKeys(plan, other);
    for (const [i, key] of mine.entries())
      await storeIn().putBytes(theirs[i]!, await storeIn().requireBytes(key));
    const { activities, resources } = createCpuActivities(env);
    const failure = await new MockActivityEnvironment(asWorkflow(first.runId))
      .run(activities.zeroShot, {
        runId: first.runId,
        planUri: `s3://${env.s3.bucket}/${keys.plan(first.runId)}`,
        bundle: dir,
        augment: { views: 0, seed: 0 },
      })
      .catch((err: unknown) => err);
    await resources.close();
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).type).toBe('EmbeddingSpaceError');
    expect((failure as ApplicationFailure).nonRetryable).toBe(true);
    expect((failure as Error).message).toMatch(/embeddings from different models cannot be mixed/);
  });

  it('NaN in a CoOp checkpoint fails clearly and the checkpoint is left as it was', async () => {
    const uri = await shapes({ train: 4, val: 0, test: 2 });
    const spec: Partial<RunSpecInput> = {
      coop: { epochs: 4, nCtx: 2 },
      fewShot: { shots: [2], seeds: [1] },
    };
    const r = await run(uri, { ...spec, zeroShot: { enabled: false }, probe: { enabled: false } });
    if (r.outcome.status !== 'COMPLETED') expect.fail(`run ${r.outcome.status}`);
    // Corrupt the last checkpoint and drop the result, as if training had diverged before finishing.
    const key = keys.coopCheckpoint(r.runId, '2shot-seed1');
    const ckpt = await storeIn().requireJson<CoopCheckpointFile>(key);
    const ctx = new Float32Array(Buffer.from(ckpt.ctx, 'base64').buffer.slice(0));
    ctx[1] = Number.NaN;
    const corrupt = { ...ckpt, epoch: 2, ctx: Buffer.from(ctx.buffer).toString('base64') };
    await storeIn().putJson(key, corrupt);
    const resultKey = keys.routeResult(r.runId, 'coop', '2shot-seed1', 'metrics.json');
    await storeIn().putBytes(resultKey, '{}');
    const { activities, resources } = createGpuActivities(env);
    const failure = await new MockActivityEnvironment(asWorkflow(r.runId))
      .run(activities.trainCoopPrompts, {
        runId: r.runId,
        planUri: `s3://${env.s3.bucket}/${keys.plan(r.runId)}`,
        bundle,
        augment: { views: 0, seed: 0 },
        shots: 2,
        seed: 1,
      })
      .catch((err: unknown) => err);
    await resources.close();
    expect((failure as ApplicationFailure).type).toBe('CoopDivergedError');
    expect((failure as ApplicationFailure).nonRetryable).toBe(true);
    expect((failure as Error).message).toMatch(
      /CoOp diverged at s3:\/\/.*checkpoint.json: context value 1 is NaN/,
    );
    expect(await storeIn().requireJson(key)).toEqual(corrupt);
  });
});
