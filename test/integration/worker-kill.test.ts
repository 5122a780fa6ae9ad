import type { Client } from '@temporalio/client';
import { type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ClipevalEnv } from '../../core/config/env';
import { parseRunSpec } from '../../core/config/run-spec';
import { decodeShard } from '../../core/embeddings/shard-format';
import type { RouteResultFile } from '../../core/routes/route-result';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { parseS3Uri } from '../../core/storage/s3-uri';
import { connectClient, startEvaluation, waitForRun } from '../../client/evaluations';
import {
  putObjects,
  startWorkers,
  stopWorkers,
  testEnv,
  uniqueId,
  uploadTinyBundle,
  spawnGpuWorker,
  uploadShapes,
} from '../helpers/stack';

// A gpu worker process is SIGKILLed in the middle of a shard; a new one picks the shard up after
// the heartbeat timeout and the run completes with every image exactly once.
let env: ClipevalEnv;
let client: Client;
let cpu: Awaited<ReturnType<typeof startWorkers>>;
const children: ChildProcess[] = [];

function gpuWorkerProcess() {
  const child = spawnGpuWorker(env);
  children.push(child);
  return child;
}

beforeAll(async () => {
  env = testEnv();
  cpu = await startWorkers(env, ['cpu']);
  client = await connectClient(env);
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await stopWorkers(cpu);
  await client.connection.close();
});

// Each test starts and SIGKILLs worker processes and waits out a heartbeat timeout: ~30-40 s on
// an idle 2-core machine, about twice that on a loaded one; the default 60 s was too tight.
vi.setConfig({ testTimeout: 180_000 });

describe('worker killed mid-shard', () => {
  it('completes after a new worker takes over; every image appears exactly once', async () => {
    const prefix = `${uniqueId('kill')}/`;
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 120; i++) {
      // Large-ish noisy images, so decoding takes long enough to be interrupted.
      const noise = Buffer.from(
        Array.from({ length: 64 * 64 * 3 }, (_, j) => (j * 31 + i * 17) % 256),
      );
      // Every fourth image is a test image, so the routes have something to score.
      files[`${i % 4 === 0 ? 'test' : 'train'}/${i % 2 ? 'a' : 'b'}/${i}.png`] = await sharp(
        noise,
        {
          raw: { width: 64, height: 64, channels: 3 },
        },
      )
        .resize(900, 700)
        .png()
        .toBuffer();
    }
    await putObjects(env, env.s3.bucket, prefix, files);
    const bundle = await uploadTinyBundle(env);
    const spec = parseRunSpec({
      dataset: { uri: `s3://${env.s3.bucket}/${prefix}` },
      model: { bundle },
      shardSize: 1024,
      extraction: { batchSize: 4, concurrency: 1, parallelism: 1, heartbeatTimeoutSeconds: 4 },
      coop: { epochs: 3, nCtx: 2 },
      fewShot: { shots: [4], seeds: [1] },
    });
    const first = gpuWorkerProcess();
    const { runId } = await startEvaluation(client, env, spec, uniqueId('kill-run'));
    const handle = client.workflow.getHandle(runId);

    // Kill the worker once it is inside the shard (the activity has started and heartbeated).
    const deadline = Date.now() + 60_000;
    for (;;) {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      if (pending.some((a) => a.activityType?.name === 'extractShardImages' && a.lastHeartbeatTime))
        break;
      if (Date.now() > deadline) expect.fail('the extraction activity never started');
      await sleep(100);
    }
    first.kill('SIGKILL');
    const pendingAfterKill = (await handle.describe()).raw.pendingActivities ?? [];
    expect(pendingAfterKill).toHaveLength(1); // the shard was not finished

    gpuWorkerProcess();
    const outcome = await waitForRun(client, runId);
    if (outcome.status !== 'COMPLETED')
      expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
    expect(outcome.summary.extraction).toMatchObject({
      imagesDone: 120,
      imagesFailed: 0,
    });

    const store = ObjectStore.connect(env.s3);
    const seen: string[] = [];
    for (const key of outcome.summary.extraction.shardKeys)
      seen.push(...decodeShard(await store.requireBytes(key)).rows.map((row) => row.key));
    expect(new Set(seen).size).toBe(120);
    expect(seen).toHaveLength(120);

    const history = await handle.fetchHistory();
    const attempts = (history.events ?? []).flatMap((e) =>
      e.activityTaskStartedEventAttributes
        ? [e.activityTaskStartedEventAttributes.attempt ?? 0]
        : [],
    );
    expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);

    // An uninterrupted run of the same data and seeds, with other shard boundaries (so nothing is
    // reused and every image is encoded again), scores exactly the same on every route.
    const { runId: plain } = await startEvaluation(
      client,
      env,
      { ...spec, shardSize: 7 },
      uniqueId('kill-plain-run'),
    );
    const uninterrupted = await waitForRun(client, plain);
    if (uninterrupted.status !== 'COMPLETED') expect.fail(`run ${uninterrupted.status}`);
    expect(uninterrupted.summary.extraction.shardsReused).toBe(0);
    const metrics = (o: typeof outcome) =>
      o.status === 'COMPLETED'
        ? o.summary.routes.map((r) => [r.route, r.variant, r.acc1, r.macroF1]).sort()
        : [];
    expect(metrics(uninterrupted)).toEqual(metrics(outcome));
    expect(metrics(outcome)).toHaveLength(4); // zero-shot, probe all, probe and CoOp 4-shot
  });
});

describe('worker killed mid-CoOp', () => {
  it('resumes from the last epoch checkpoint and ends exactly as an uninterrupted run', async () => {
    const { uri } = await uploadShapes(
      env,
      { train: 16, val: 0, test: 4 },
      { size: 32, label: 'coop-kill' },
    );
    const bundle = await uploadTinyBundle(env);
    const spec = parseRunSpec({
      dataset: { uri },
      model: { bundle },
      extraction: { heartbeatTimeoutSeconds: 4 },
      zeroShot: { enabled: false },
      probe: { enabled: false },
      coop: { epochs: 200, nCtx: 4, batchSize: 8, heartbeatTimeoutSeconds: 5 },
      fewShot: { shots: [16], seeds: [1] },
    });
    for (const c of children) c.kill('SIGKILL'); // no gpu worker left from the test above
    const first = gpuWorkerProcess();
    const { runId } = await startEvaluation(client, env, spec, uniqueId('coop-kill-run'));
    const store = ObjectStore.connect(env.s3);
    const checkpointKey = keys.coopCheckpoint(runId, '16shot-seed1');
    const epochOf = () =>
      store.requireJson<{ epoch: number }>(checkpointKey).then(
        (c) => c.epoch,
        () => 0,
      );
    const deadline = Date.now() + 120_000;
    while ((await epochOf()) < 5) {
      if (Date.now() > deadline) expect.fail('CoOp never reached epoch 5');
      await sleep(50);
    }
    first.kill('SIGKILL');
    await sleep(500);
    const epochAtKill = await epochOf();
    expect(epochAtKill).toBeLessThan(200);

    const second = gpuWorkerProcess();
    const outcome = await waitForRun(client, runId);
    if (outcome.status !== 'COMPLETED')
      expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
    const [coop] = outcome.summary.routes;
    const { bucket, key } = parseS3Uri(coop!.metricsUri);
    const result = await store.inBucket(bucket).requireJson<RouteResultFile>(key);
    expect(result.details.resumedFromEpoch).toBe(epochAtKill);
    expect(result.details.losses).toHaveLength(200); // one curve: epochs before and after the kill
    expect(readFileSync(second.logPath, 'utf8')).toMatch(/CoOp resumes from checkpoint/);

    // The same spec without a kill (embeddings reused) learns the same context and metrics.
    const { runId: plain } = await startEvaluation(client, env, spec, uniqueId('coop-plain-run'));
    const uninterrupted = await waitForRun(client, plain);
    if (uninterrupted.status !== 'COMPLETED') expect.fail(`run ${uninterrupted.status}`);
    expect(uninterrupted.summary.routes[0]!.acc1).toBe(coop!.acc1);
    const ctxOf = (id: string) =>
      store.requireJson<{ ctx: string; losses: number[] }>(keys.coopContext(id, '16shot-seed1'));
    expect(await ctxOf(plain)).toEqual(await ctxOf(runId));
  });
});
