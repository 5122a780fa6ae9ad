import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { decodeShard } from '../../core/embeddings/shard-format';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../core/config/env';
import {
  putObjects,
  startWorkers,
  stopWorkers,
  testEnv,
  uniqueId,
  tinyPng,
  uploadTinyBundle,
  runCli,
} from '../helpers/stack';

// The `clipeval` command as a user runs it, against the real stack, with a real worker.
let env: ClipevalEnv;
let worker: Awaited<ReturnType<typeof startWorkers>>;

let bundle: string;

beforeAll(async () => {
  env = testEnv();
  bundle = await uploadTinyBundle(env);
  worker = await startWorkers(env);
});
afterAll(() => stopWorkers(worker));

const clipeval = (args: string[], extraEnv: Record<string, string> = {}) =>
  runCli(args, { env, bundle, extraEnv, timeoutMs: 60_000 });

describe('clipeval CLI', () => {
  it('runs a plan with --wait --json, then reports it with status', async () => {
    const prefix = `${uniqueId('cli')}/`;
    await putObjects(env, env.s3.bucket, prefix, {
      'train/a/1.png': await tinyPng(1),
      'train/b/3.png': await tinyPng(3),
      'test/b/2.jpg': await tinyPng(2),
    });
    const runId = uniqueId('cli-run');
    const run = await clipeval([
      'run',
      '--dataset',
      `s3://${env.s3.bucket}/${prefix}`,
      '--run-id',
      runId,
      '--wait',
      '--json',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const outcome = JSON.parse(run.stdout) as {
      status: string;
      summary: { plan: { images: number; planUri: string } };
    };
    expect(outcome.status).toBe('COMPLETED');
    expect(outcome.summary.plan.images).toBe(3);
    expect(outcome.summary.plan.planUri).toBe(`s3://${env.s3.bucket}/runs/${runId}/plan.json`);

    const status = await clipeval(['status', runId]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`run ${runId}: completed`));
    expect(status.stdout).toMatch(/images\s+3 \(train 2, val 0, test 1\)/);
    // The three routes in one table: zero-shot, the full-data probe, CoOp and the probe at 16 shots.
    for (const route of ['zero-shot', 'probe all', 'probe 16shot-seed1', 'coop 16shot-seed1'])
      expect(status.stdout).toMatch(new RegExp(`\\n  ${route}\\s+\\d+\\.\\d`));

    const out = join(mkdtempSync(join(tmpdir(), 'clipeval-export-')), 'emb.arrow');
    const exported = await clipeval([
      'embeddings',
      'export',
      runId,
      '--out',
      out,
      '--split',
      'test',
    ]);
    expect(exported.stderr).toBe('');
    expect(exported.stdout).toMatch(/emb\.arrow: 1 rows, dim 16, from \d+ shards/);
    const back = decodeShard(readFileSync(out));
    expect(back.rows.map((r) => r.split)).toEqual(['test']);

    const again = await clipeval([
      'run',
      '--dataset',
      `s3://${env.s3.bucket}/${prefix}`,
      '--run-id',
      runId,
    ]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists and has not failed/);
  });

  it('prints the run id without --wait', async () => {
    const r = await clipeval([
      'run',
      '--dataset',
      `s3://${env.s3.bucket}/${uniqueId('nowait')}/`,
      '--run-id',
      uniqueId('nowait'),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^nowait-/);
  });

  it('exits 1 with the reason when the run fails', async () => {
    const r = await clipeval([
      'run',
      '--dataset',
      `s3://${env.s3.bucket}/${uniqueId('empty')}/`,
      '--wait',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/: failed\n.*is empty: no objects under this prefix/);
  });

  it('exits 2 naming where it looked when Temporal is unreachable', async () => {
    const r = await clipeval(['run', '--dataset', `s3://${env.s3.bucket}/x/`], {
      TEMPORAL_ADDRESS: '127.0.0.1:1',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /Cannot reach Temporal at 127\.0\.0\.1:1 \(TEMPORAL_ADDRESS from the environment\)/,
    );
    const s = await clipeval(['status', 'any'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(s.code).toBe(2);
  });

  it('exits 2 naming where it looked when S3 is unreachable', async () => {
    const r = await clipeval(['run', '--dataset', `s3://${env.s3.bucket}/x/`], {
      CLIPEVAL_S3_ENDPOINT: 'http://127.0.0.1:1',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /Cannot reach S3 at http:\/\/127\.0\.0\.1:1 \(CLIPEVAL_S3_ENDPOINT from the environment\)/,
    );
  });

  it('exits 2 on bad input before starting anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-cli-'));
    writeFileSync(join(dir, 'run.yaml'), 'shardSize: -3\n');
    const spec = await clipeval([
      'run',
      '--dataset',
      `s3://${env.s3.bucket}/x/`,
      '--spec',
      join(dir, 'run.yaml'),
    ]);
    expect(spec.code).toBe(2);
    expect(spec.stderr).toMatch(/shardSize: Too small/);
    expect((await clipeval(['run', '--dataset', 'not-a-uri'])).stderr).toMatch(
      /dataset\.uri: expected s3:\/\//,
    );
    expect((await clipeval(['run', '--dataset', 's3://no-such-bucket-x/data/'])).stderr).toMatch(
      /dataset bucket "no-such-bucket-x" does not exist/,
    );
    expect(
      (
        await clipeval(['run', '--dataset', `s3://${env.s3.bucket}/x/`], {
          CLIPEVAL_BUCKET: 'Bad_Name',
        })
      ).code,
    ).toBe(2);
    expect((await clipeval(['run'])).code).toBe(2);
    const unknown = await clipeval(['status', uniqueId('never-started')]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/No run with id/);
  });
});

describe('clipeval CLI: usage errors found before any work starts (issue 12, item 14)', () => {
  it("takes the dataset from the spec's dataset.uri when --dataset is absent", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-cli-'));
    const folder = uniqueId('fromspec');
    writeFileSync(join(dir, 'run.yaml'), `dataset:\n  uri: s3://${env.s3.bucket}/${folder}/\n`);
    const r = await clipeval(['run', '--spec', join(dir, 'run.yaml')]);
    expect(r.stderr).not.toMatch(/--dataset/);
    expect(r.code).toBe(0);
    // The default run id is named after the spec's dataset folder.
    expect(r.stdout.trim()).toMatch(new RegExp(`^${folder}-\\d{8}-\\d{6}$`));

    writeFileSync(join(dir, 'no-dataset.yaml'), 'shardSize: 64\n');
    const none = await clipeval(['run', '--spec', join(dir, 'no-dataset.yaml')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/No dataset: give --dataset s3:\/\/bucket\/prefix\//);
  });

  it('exits 2 with the fix when the model bundle does not exist, before starting a run', async () => {
    const missing = `s3://${env.s3.bucket}/models/${uniqueId('none')}/`;
    const runId = uniqueId('nobundle');
    const args = [
      'run',
      '--dataset',
      `s3://${env.s3.bucket}/${uniqueId('ds')}/`,
      '--run-id',
      runId,
    ];
    const r = await clipeval(args, { CLIPEVAL_DEFAULT_BUNDLE: missing });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      `No model bundle at ${missing} (CLIPEVAL_DEFAULT_BUNDLE from the environment): ${missing}bundle.json does not exist.`,
    );
    expect(r.stderr).toContain(`clipeval model upload <bundle folder> ${missing}`);
    // Nothing was started under that id.
    expect((await clipeval(['status', runId])).stderr).toMatch(/No run with id/);

    const local = join(mkdtempSync(join(tmpdir(), 'clipeval-nobundle-')), 'bundle');
    const l = await clipeval([...args, '--bundle', local]);
    expect(l.code).toBe(2);
    expect(l.stderr).toMatch(
      /No model bundle at .*bundle \(--bundle or the spec's model\.bundle\)/,
    );
  });

  it('schedule create also checks the bundle, and creates nothing without one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-cli-'));
    writeFileSync(join(dir, 'run.yaml'), `dataset:\n  uri: s3://${env.s3.bucket}/pets/\n`);
    const id = uniqueId('nobundle-schedule');
    const missing = `s3://${env.s3.bucket}/models/${uniqueId('none')}/`;
    const r = await clipeval(
      ['schedule', 'create', id, '--cron', '0 2 * * *', '--spec', join(dir, 'run.yaml')],
      { CLIPEVAL_DEFAULT_BUNDLE: missing },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`No model bundle at ${missing}`);
    expect((await clipeval(['schedule', 'describe', id])).code).toBe(2);
  });
});
