import { Client, Connection } from '@temporalio/client';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec } from '../../core/config/run-spec';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import { stopProcess } from '../../infra/local-stack/processes';
import { startTemporal } from '../../infra/local-stack/servers';
import { stackHome, stackUp } from '../../infra/local-stack/stack';
import { resolveTool } from '../../infra/local-stack/tools';
import {
  putObjects,
  startWorkers,
  stopWorkers,
  testEnv,
  uniqueId,
  tinyPng,
  uploadTinyBundle,
  uploadShapes,
} from '../helpers/stack';

/** A Temporal dev server of the test's own (SQLite file in a temp folder), and an env using it. */
async function ownTemporal(label: string) {
  const dir = mkdtempSync(join(tmpdir(), `clipeval-${label}-`));
  const serverOpts = {
    bin: (await resolveTool('temporal', { install: false })).path,
    dbFile: join(dir, 'temporal.db'),
    logFile: join(dir, 'temporal.log'),
    namespace: 'default',
  };
  const server = await startTemporal(serverOpts);
  const env = {
    ...testEnv(),
    temporal: { address: server.address, namespace: 'default', tls: false },
  };
  return { serverOpts, server, env };
}

describe('local stack', () => {
  it('reuses a running stack and writes every variable to stack.env', async () => {
    const again = await stackUp(stackHome());
    expect(again.started).toBe(false);
    expect(again.env.TEMPORAL_ADDRESS).toBe(process.env.TEMPORAL_ADDRESS);
    const file = parseEnvFile(readFileSync(again.envFile, 'utf8'));
    expect(Object.keys(file).sort()).toEqual([
      'AWS_ACCESS_KEY_ID',
      'AWS_REGION',
      'AWS_SECRET_ACCESS_KEY',
      'CLIPEVAL_BUCKET',
      'CLIPEVAL_S3_ENDPOINT',
      'TEMPORAL_ADDRESS',
      'TEMPORAL_NAMESPACE',
    ]);
    expect(file.CLIPEVAL_S3_ENDPOINT).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('keeps completed runs across a Temporal server restart (SQLite state)', async () => {
    const own = await ownTemporal('restart');
    const { serverOpts } = own;
    let { server } = own;
    const { env } = own;
    const prefix = `${uniqueId('restart')}/`;
    await putObjects(env, env.s3.bucket, prefix, { 'cat/1.png': await tinyPng(1) });
    const bundle = await uploadTinyBundle(env);

    const worker = await startWorkers(env);
    let connection = await Connection.connect({ address: server.address });
    const runId = uniqueId('restart-run');
    await startEvaluation(
      new Client({ connection }),
      env,
      parseRunSpec({
        dataset: { uri: `s3://${env.s3.bucket}/${prefix}` },
        model: { bundle },
        ...EXTRACTION_ONLY,
      }),
      runId,
    );
    expect((await waitForRun(new Client({ connection }), runId)).status).toBe('COMPLETED');
    await stopWorkers(worker);
    await connection.close();
    await stopProcess(server.pid, 'temporal');

    server = await startTemporal(serverOpts);
    try {
      connection = await Connection.connect({ address: server.address });
      const handle = new Client({ connection }).workflow.getHandle(runId);
      expect((await handle.describe()).status.name).toBe('COMPLETED');
      expect(await handle.result()).toMatchObject({ runId, plan: { images: 1 } });
      await connection.close();
    } finally {
      await stopProcess(server.pid, 'temporal');
    }
  });

  it('completes a run whose Temporal server stops and restarts in the middle of it', async () => {
    const own = await ownTemporal('midrun');
    const { serverOpts } = own;
    let { server } = own;
    const port = Number(server.address.split(':')[1]);
    const { env } = own;
    const { uri } = await uploadShapes(
      env,
      { train: 8, val: 0, test: 2 },
      { size: 32, label: 'midrun' },
    );
    const spec = parseRunSpec({
      dataset: { uri },
      model: { bundle: await uploadTinyBundle(env) },
      zeroShot: { enabled: false },
      probe: { enabled: false },
      coop: { epochs: 300, nCtx: 2, batchSize: 4 },
      fewShot: { shots: [8], seeds: [1] },
    });
    const worker = await startWorkers(env);
    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    const runId = uniqueId('midrun-run');
    try {
      await startEvaluation(client, env, spec, runId);
      // Wait until CoOp is training (a checkpoint exists), then take the server away.
      const store = ObjectStore.connect(env.s3);
      const key = keys.coopCheckpoint(runId, '8shot-seed1');
      const deadline = Date.now() + 60_000;
      while (
        !(await store.requireJson(key).then(
          () => true,
          () => false,
        ))
      ) {
        if (Date.now() > deadline) expect.fail('CoOp never started');
        await sleep(100);
      }
      await stopProcess(server.pid, 'temporal');
      await sleep(2000);
      server = await startTemporal({ ...serverOpts, port });
      const outcome = await waitForRun(client, runId);
      if (outcome.status !== 'COMPLETED')
        expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
      expect(outcome.summary.routes.map((r) => r.variant)).toEqual(['8shot-seed1']);
    } finally {
      await stopWorkers(worker);
      await connection.close();
      await stopProcess(server.pid, 'temporal');
    }
  });
});
