import type { Client } from '@temporalio/client';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../core/config/env';
import { parseRunSpec } from '../../core/config/run-spec';
import type { ShardManifest } from '../../core/embeddings/extract-shard';
import { decodeShard } from '../../core/embeddings/shard-format';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { connectClient, startEvaluation, waitForRun } from '../../client/evaluations';
import {
  putObjects,
  spawnGpuWorker,
  startWorkers,
  stopWorkers,
  testEnv,
  tinyPng,
  uniqueId,
  uploadShapes,
  uploadTinyBundle,
} from '../helpers/stack';

// Issue 12, item 2 and the acceptance "a worker process never dies on input": one shard of
// hostile keys (every Unicode line terminator, control characters, percent-escapes, dot runs,
// a name at the store's length limit) goes to a real gpu worker process. Keys that cannot be read
// (here: control characters, which versitygw's listing spells as U+FFFD) are counted failures;
// the run completes, and the same worker process then completes a second, ordinary run.
const LINE_TERMINATORS = {
  lf: '\n',
  cr: '\r',
  crlf: '\r\n',
  vt: '\u000b',
  ff: '\u000c',
  nel: '\u0085',
  ls: '\u2028',
  ps: '\u2029',
};
const HOSTILE_NAMES = [
  ...Object.entries(LINE_TERMINATORS).map(([name, t]) => `line${t}${name}.png`),
  'ctl\u0001soh.png',
  'esc\u001b[31mred.png',
  'del\u007f.png',
  'csi\u009b2J.png',
  'bidi\u202eevil.png',
  '%2e%2e%2f%2e%2e%2fescape.png',
  'pct%0A%00%2F.png',
  '...png',
  'a..b.png',
  `${'l'.repeat(246)}.png`, // 250 bytes: the longest name versitygw's file system holds
  'quote"\'`$&$1.png',
  'caf\u00e9.png',
  'cafe\u0301.png',
  'CASE.png',
  'case.png',
];

let env: ClipevalEnv;
let client: Client;
let cpu: Awaited<ReturnType<typeof startWorkers>>;
let gpu: ChildProcess & { logPath: string };
let bundle: string;

beforeAll(async () => {
  env = testEnv();
  bundle = await uploadTinyBundle(env);
  cpu = await startWorkers(env, ['cpu']);
  client = await connectClient(env);
  gpu = spawnGpuWorker(env);
});
afterAll(async () => {
  gpu?.kill('SIGKILL');
  await stopWorkers(cpu);
  await client?.connection.close();
});

const spec = (uri: string) =>
  parseRunSpec({
    dataset: { uri },
    model: { bundle },
    shardSize: 4096, // one shard: every hostile key reaches the same worker in one activity
    extraction: { batchSize: 4, concurrency: 4, parallelism: 1, heartbeatTimeoutSeconds: 20 },
    coop: { enabled: false },
    probe: { enabled: false },
  });

describe('a gpu worker process given a shard of hostile keys', () => {
  it('counts the unreadable ones, completes the run, and keeps serving', async () => {
    const prefix = `${uniqueId('hostile-keys')}/`;
    const files: Record<string, Buffer> = {};
    let n = 0;
    for (const split of ['train', 'test'])
      for (const cls of ['plain', 'other']) {
        for (let i = 0; i < 2; i++) files[`${split}/${cls}/${i}.png`] = await tinyPng(n++);
      }
    for (const name of HOSTILE_NAMES) files[`test/plain/${name}`] = await tinyPng(n++);
    await putObjects(env, env.s3.bucket, prefix, files);

    const uri = `s3://${env.s3.bucket}/${prefix}`;
    const { runId } = await startEvaluation(client, env, spec(uri), uniqueId('hostile-run'));
    const outcome = await waitForRun(client, runId);
    if (outcome.status !== 'COMPLETED')
      expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
    const x = outcome.summary.extraction;
    expect(x.shards).toBe(1);
    expect(x.imagesDone + x.imagesFailed).toBe(Object.keys(files).length);

    // What was embedded and what failed, from the shard and its manifest.
    const store = ObjectStore.connect(env.s3);
    const shardKey = x.shardKeys[0]!;
    const rows = decodeShard(await store.requireBytes(shardKey)).rows.map((r) => r.key);
    const manifest = await store.requireJson<ShardManifest>(keys.manifestOfShard(shardKey));
    store.client.destroy();
    expect(rows.length + manifest.failed.length).toBe(Object.keys(files).length);
    // versitygw lists C0 controls as U+FFFD: those keys cannot be read back, and are counted.
    expect(manifest.failed.some((f) => f.uri.includes('ctl\ufffdsoh'))).toBe(true);
    for (const f of manifest.failed) expect(f.reason).toMatch(/^unreadable: .* does not exist/);
    expect(x.imagesFailed).toBe(manifest.failed.length);
    // Every line terminator XML can carry survived as the key it is (the case: U+2028);
    // VT and FF cannot be spelled in versitygw's XML listing, so those two keys come back as
    // U+FFFD and are counted as unreadable instead: embedded or counted, never a crash.
    const failed = manifest.failed.map((f) => f.uri);
    for (const [name, t] of Object.entries(LINE_TERMINATORS)) {
      const key = `${uri}test/plain/line${t}${name}.png`;
      if (name === 'vt' || name === 'ff')
        expect(rows.includes(key) || failed.some((f) => f.includes(`line\ufffd${name}`))).toBe(
          true,
        );
      else expect(rows).toContain(key);
    }
    for (const name of ['%2e%2e%2f%2e%2e%2fescape.png', '...png', 'CASE.png', 'case.png'])
      expect(rows).toContain(`${uri}test/plain/${name}`);
    expect(rows).toContain(`${uri}test/plain/${'l'.repeat(246)}.png`);

    // Still the same process, still polling: a second, ordinary run completes on it.
    expect(gpu.exitCode).toBeNull();
    const shapes = await uploadShapes(env, { train: 2, val: 0, test: 2 }, { label: 'after' });
    const second = await startEvaluation(client, env, spec(shapes.uri), uniqueId('after-run'));
    const after = await waitForRun(client, second.runId);
    if (after.status !== 'COMPLETED')
      expect.fail(`second run ${after.status}: ${'error' in after ? after.error : ''}`);
    expect(after.summary.extraction.imagesDone).toBe(shapes.images.length);
    expect(gpu.exitCode).toBeNull();
    expect(gpu.signalCode).toBeNull();
    const log = readFileSync(gpu.logPath, 'utf8');
    expect(log).not.toMatch(/is not an S3 URI/);
  }, 400_000);
});
