import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../activities/config/env';
import { parseRunSpec } from '../../activities/config/run-spec';
import { startEvaluation, waitForRun } from '../../cli/evaluations';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy';
import {
  putObjects,
  startWorkers,
  stopWorkers,
  testEnv,
  tinyPng,
  uniqueId,
  uploadTinyBundle,
} from '../helpers/stack';

// Workers talk to S3 through a proxy that answers 503 SlowDown to every 5th object read and
// resets the connection on every 7th: the SDK's retries (and Temporal's, past them) carry the run.
let env: ClipevalEnv;
let proxy: FaultProxy;
let client: Client;
let workers: Awaited<ReturnType<typeof startWorkers>>;

beforeAll(async () => {
  const direct = testEnv();
  proxy = await startFaultProxy(direct.s3.endpoint!, { every503: 5, everyReset: 7 });
  env = {
    ...direct,
    s3: { ...direct.s3, endpoint: proxy.endpoint },
    bundleCache: `${direct.bundleCache}-faults-${Date.now()}`,
  };
  workers = await startWorkers(env);
  client = new Client({
    connection: await Connection.connect({ address: env.temporal.address }),
    namespace: env.temporal.namespace,
  });
});
afterAll(async () => {
  await stopWorkers(workers);
  await client.connection.close();
  await proxy.close();
});

describe('S3 faults', () => {
  it('retries transient 503s and connection resets with backoff; the run completes', async () => {
    const direct = testEnv();
    const prefix = `${uniqueId('faults')}/`;
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`train/${i % 2 ? 'a' : 'b'}/${i}.png`] = await tinyPng(i);
    await putObjects(direct, direct.s3.bucket, prefix, files); // uploads bypass the proxy
    const bundle = await uploadTinyBundle(direct);
    const spec = parseRunSpec({
      dataset: { uri: `s3://${env.s3.bucket}/${prefix}` },
      model: { bundle },
      shardSize: 16,
    });
    const { runId } = await startEvaluation(client, env, spec, uniqueId('faults-run'));
    const outcome = await waitForRun(client, runId);
    if (outcome.status !== 'COMPLETED')
      expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
    expect(outcome.summary.extraction).toMatchObject({ imagesDone: 40, imagesFailed: 0 });
    console.log(
      `injected ${proxy.injected.slowDown} x 503 SlowDown and ${proxy.injected.reset} connection resets`,
    );
    expect(proxy.injected.slowDown).toBeGreaterThanOrEqual(5);
    expect(proxy.injected.reset).toBeGreaterThanOrEqual(3);
  });
});
