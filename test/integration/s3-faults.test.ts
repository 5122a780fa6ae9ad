import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec } from '../../core/config/run-spec';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy';
import {
  putObjects,
  startPipeline,
  testEnv,
  type TestPipeline,
  tinyPng,
  uniqueId,
} from '../helpers/stack';

// Workers talk to S3 through a proxy that answers 503 SlowDown to every 5th object read and
// resets the connection on every 7th: the SDK's retries (and Temporal's, past them) carry the run.
let env: ClipevalEnv;
let proxy: FaultProxy;
let client: Client;
let bundle: string;
let pipeline: TestPipeline;

beforeAll(async () => {
  const direct = testEnv();
  proxy = await startFaultProxy(direct.s3.endpoint!, { every503: 5, everyReset: 7 });
  const viaProxy = { ...direct, s3: { ...direct.s3, endpoint: proxy.endpoint } };
  pipeline = await startPipeline({
    ...viaProxy,
    bundleCache: `${direct.bundleCache}-faults-${Date.now()}`,
  });
  ({ env, client, bundle } = pipeline);
});
afterAll(async () => {
  await pipeline.close();
  await proxy.close();
});

describe('S3 faults', () => {
  it('retries transient 503s and connection resets with backoff; the run completes', async () => {
    const direct = testEnv();
    const prefix = `${uniqueId('faults')}/`;
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`train/${i % 2 ? 'a' : 'b'}/${i}.png`] = await tinyPng(i);
    await putObjects(direct, direct.s3.bucket, prefix, files); // uploads bypass the proxy
    const spec = parseRunSpec({
      dataset: { uri: `s3://${env.s3.bucket}/${prefix}` },
      model: { bundle },
      shardSize: 16,
      ...EXTRACTION_ONLY,
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
