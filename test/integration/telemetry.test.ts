import type { Client } from '@temporalio/client';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec } from '../../core/config/run-spec';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { connectClient, startEvaluation, waitForRun } from '../../client/evaluations';
import {
  startWorkers,
  stopWorkers,
  testEnv,
  uniqueId,
  uploadTinyBundle,
  spawnGpuWorker,
  uploadShapes,
} from '../helpers/stack';

// A gpu worker process as deployed: JSON-lines logs carrying run id and stage, a Prometheus
// endpoint with Temporal's and clipeval's metrics, and no secret in logs, history or report.
let env: ClipevalEnv;
let client: Client;
let cpu: Awaited<ReturnType<typeof startWorkers>>;
let gpu: ReturnType<typeof spawnGpuWorker>;
let logPath: string;
let metricsAddress: string;

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

beforeAll(async () => {
  env = testEnv();
  cpu = await startWorkers(env, ['cpu']);
  client = await connectClient(env);
  metricsAddress = `127.0.0.1:${await freePort()}`;
  gpu = spawnGpuWorker(env, {
    CLIPEVAL_METRICS_ADDRESS: metricsAddress,
    CLIPEVAL_LOG_LEVEL: 'DEBUG',
  });
  logPath = gpu.logPath;
});
afterAll(async () => {
  gpu.kill('SIGKILL');
  await stopWorkers(cpu);
  await client.connection.close();
});

describe('worker telemetry', () => {
  it('logs JSON lines with run id and stage, serves metrics, and leaks no secret', async () => {
    const { uri } = await uploadShapes(
      env,
      { train: 3, val: 0, test: 1 },
      { size: 32, label: 'telemetry' },
    );
    const spec = parseRunSpec({
      dataset: { uri },
      model: { bundle: await uploadTinyBundle(env) },
      ...EXTRACTION_ONLY,
    });
    const { runId } = await startEvaluation(client, env, spec, uniqueId('telemetry-run'));
    const outcome = await waitForRun(client, runId);
    if (outcome.status !== 'COMPLETED') expect.fail(`run ${outcome.status}`);

    const lines = readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.message === 'clipeval gpu worker polling')).toBe(true);
    const ofRun = lines.filter((l) => l.runId === runId);
    expect(ofRun.length).toBeGreaterThan(0);
    expect(ofRun.every((l) => l.stage === 'extracting')).toBe(true);

    const metrics = await (await fetch(`http://${metricsAddress}/metrics`)).text();
    expect(metrics).toMatch(/^clipeval_images_embedded\S*\{[^}]*\} 12$/m); // 3 classes x 4 images
    expect(metrics).toMatch(/temporal_activity_schedule_to_start_latency/);

    // Secrets: the S3 credentials the worker holds appear neither in its logs nor in the history.
    const secrets = [process.env.AWS_SECRET_ACCESS_KEY, process.env.AWS_ACCESS_KEY_ID].filter(
      (s): s is string => s !== undefined && s.length >= 8,
    );
    expect(secrets.length).toBeGreaterThan(0);
    const history = JSON.stringify(await client.workflow.getHandle(runId).fetchHistory());
    const logs = readFileSync(logPath, 'utf8');
    const store = ObjectStore.connect(env.s3);
    const report = await Promise.all(
      (['report.json', 'report.html'] as const).map((f) =>
        store.requireText(keys.report(runId, f)),
      ),
    );
    for (const secret of secrets) {
      expect(history.includes(secret)).toBe(false);
      expect(logs.includes(secret)).toBe(false);
      for (const r of report) expect(r.includes(secret)).toBe(false);
    }
  });
});
