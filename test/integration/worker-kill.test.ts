import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../activities/config/env';
import { parseRunSpec } from '../../activities/config/run-spec';
import { decodeShard } from '../../activities/embeddings/shard-format';
import { createS3Client } from '../../activities/storage/s3-client';
import { startEvaluation, waitForRun } from '../../cli/evaluations';
import {
  putObjects,
  startWorkers,
  stopWorkers,
  testEnv,
  uniqueId,
  uploadTinyBundle,
} from '../helpers/stack';

// A gpu worker process is SIGKILLed in the middle of a shard; a new one picks the shard up after
// the heartbeat timeout and the run completes with every image exactly once.
let env: ClipevalEnv;
let client: Client;
let cpu: Awaited<ReturnType<typeof startWorkers>>;
const children: ChildProcess[] = [];

function gpuWorkerProcess(): ChildProcess {
  const log = openSync(join(mkdtempSync(join(tmpdir(), 'clipeval-gpu-')), 'worker.log'), 'a');
  // node itself, not the tsx wrapper: SIGKILL must hit the worker process, not a parent of it.
  const child = spawn(process.execPath, ['--import', 'tsx', join('workers', 'gpu.ts')], {
    env: {
      ...process.env,
      CLIPEVAL_GPU_QUEUE: env.queues.gpu,
      CLIPEVAL_BUNDLE_CACHE: mkdtempSync(join(tmpdir(), 'clipeval-bundles-')),
    },
    stdio: ['ignore', log, log],
  });
  children.push(child);
  return child;
}

beforeAll(async () => {
  env = testEnv();
  cpu = await startWorkers(env, ['cpu']);
  client = new Client({
    connection: await Connection.connect({ address: env.temporal.address }),
    namespace: env.temporal.namespace,
  });
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await stopWorkers(cpu);
  await client.connection.close();
});

describe('worker killed mid-shard', () => {
  it('completes after a new worker takes over; every image appears exactly once', async () => {
    const prefix = `${uniqueId('kill')}/`;
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 120; i++) {
      // Large-ish noisy images, so decoding takes long enough to be interrupted.
      const noise = Buffer.from(
        Array.from({ length: 64 * 64 * 3 }, (_, j) => (j * 31 + i * 17) % 256),
      );
      files[`train/${i % 2 ? 'a' : 'b'}/${i}.png`] = await sharp(noise, {
        raw: { width: 64, height: 64, channels: 3 },
      })
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

    const s3 = createS3Client(env.s3);
    const keys: string[] = [];
    for (const key of outcome.summary.extraction.shardKeys) {
      const r = await s3.send(new GetObjectCommand({ Bucket: env.s3.bucket, Key: key }));
      keys.push(...decodeShard(await r.Body!.transformToByteArray()).rows.map((row) => row.key));
    }
    expect(new Set(keys).size).toBe(120);
    expect(keys).toHaveLength(120);

    const history = await handle.fetchHistory();
    const attempts = (history.events ?? []).flatMap((e) =>
      e.activityTaskStartedEventAttributes
        ? [e.activityTaskStartedEventAttributes.attempt ?? 0]
        : [],
    );
    expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
  });
});
