import type { Client } from '@temporalio/client';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec, type RunSpecInput } from '../../core/config/run-spec';
import type { Comparison } from '../../core/runs/compare';
import { uploadBundle } from '../../core/model/bundle';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import {
  cancelEvaluation,
  listEvaluations,
  runStatus,
  startEvaluation,
  waitForRun,
  type RunOutcome,
} from '../../client/evaluations';
import { describeSchedule, triggerSchedule } from '../../client/schedules';
import type { EvaluationSummary } from '../../contract/progress';
import { TINY_BUNDLE } from '../helpers/fixtures';
import {
  putObjects,
  startPipeline,
  type TestPipeline,
  uniqueId,
  runCli,
  uploadShapes,
} from '../helpers/stack';

// Operations on the real stack: resume after a failure and after a cancellation, run listing,
// schedules (trigger, overlap skip) and the nightly comparison with its regression exit code.
let env: ClipevalEnv;
let client: Client;
let bundle: string;
let pipeline: TestPipeline;

beforeAll(async () => {
  pipeline = await startPipeline();
  ({ env, client, bundle } = pipeline);
});
afterAll(() => pipeline.close());

const cli = (args: string[]) => runCli(args, { env, bundle });

const SMALL: Partial<RunSpecInput> = {
  coop: { epochs: 2, nCtx: 2 },
  fewShot: { shots: [2], seeds: [1] },
  shardSize: 8,
};

function completed(o: RunOutcome): EvaluationSummary {
  if (o.status !== 'COMPLETED')
    expect.fail(`run ${o.runId} ${o.status}: ${'error' in o ? o.error : ''}`);
  return o.summary;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('resume', () => {
  it('continues a run that failed on a missing bundle once the bundle is uploaded', async () => {
    const { uri } = await uploadShapes(
      env,
      { train: 3, val: 0, test: 2 },
      { size: 48, label: 'ops' },
    );
    const missing = `s3://${env.s3.bucket}/models/${uniqueId('later')}/`;
    const spec = parseRunSpec({ dataset: { uri }, model: { bundle: missing }, ...SMALL });
    const runId = uniqueId('resume-failed');
    await startEvaluation(client, env, spec, runId);
    expect((await waitForRun(client, runId)).status).toBe('FAILED');

    const store = ObjectStore.connect(env.s3);
    await uploadBundle(store, TINY_BUNDLE, missing);
    store.client.destroy();
    const resumed = await cli(['resume', runId, '--wait', '--json']);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    const outcome = JSON.parse(resumed.stdout) as RunOutcome;
    const summary = completed(outcome);
    expect(summary.runId).toBe(runId);
    expect(summary.bundle).toBe(missing);

    const again = await cli(['resume', runId]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/completed, nothing to resume/);
    expect((await cli(['resume', uniqueId('nope')])).code).toBe(2);
  }, 240_000);

  it('cancels a run mid-extraction promptly, then resumes it reusing the finished shards', async () => {
    const { uri } = await uploadShapes(
      env,
      { train: 40, val: 0, test: 40 },
      { size: 48, label: 'ops' },
    );
    const spec = parseRunSpec({
      dataset: { uri },
      model: { bundle },
      shardSize: 4,
      extraction: { parallelism: 1, concurrency: 1, batchSize: 1 },
      ...EXTRACTION_ONLY,
    });
    const runId = uniqueId('resume-cancel');
    await startEvaluation(client, env, spec, runId);
    await until('two shards', async () => {
      const o = await runStatus(client, runId);
      const done = o.status === 'RUNNING' ? (o.progress?.extraction?.shardsDone ?? 0) : 0;
      return done >= 2 ? done : undefined;
    });

    const running = await cli(['resume', runId]);
    expect(running.code).toBe(0);
    expect(running.stdout).toMatch(/still running/);

    const before = await runStatus(client, runId);
    const t0 = Date.now();
    await cancelEvaluation(client, runId);
    const cancelled = await waitForRun(client, runId);
    expect(cancelled.status).toBe('CANCELLED');
    expect(Date.now() - t0).toBeLessThan(5_000);
    const doneAtCancel =
      before.status === 'RUNNING' ? (before.progress?.extraction?.shardsDone ?? 0) : 0;

    const resumed = await cli(['resume', runId, '--wait', '--json']);
    expect(resumed.code).toBe(0);
    const summary = completed(JSON.parse(resumed.stdout) as RunOutcome);
    const { shards, shardsDone, shardsReused } = summary.extraction;
    expect(doneAtCancel).toBeLessThan(shards);
    expect(shardsDone).toBe(shards);
    // Shards finished before the cancellation are reused; the one in flight may have finished
    // too (its activity learns of the cancellation at its next heartbeat, between batches).
    expect(shardsReused).toBeGreaterThanOrEqual(Math.max(doneAtCancel, 1));
    expect(shardsReused).toBeLessThanOrEqual(doneAtCancel + 2);
    expect(shardsReused).toBeLessThan(shards);
  }, 300_000);
});

describe('schedules and the nightly comparison', () => {
  it('triggers runs, skips an overlapping trigger, compares runs and flags a regression', async () => {
    const data = await uploadShapes(env, { train: 6, val: 0, test: 4 }, { size: 48, label: 'ops' });
    const specFile = join(mkdtempSync(join(tmpdir(), 'ops-spec-')), 'run.json');
    writeFileSync(
      specFile,
      JSON.stringify({ dataset: { uri: data.uri }, ...SMALL, coop: { enabled: false } }),
    );
    const scheduleId = uniqueId('nightly');

    const invalid = join(mkdtempSync(join(tmpdir(), 'ops-spec-')), 'bad.json');
    writeFileSync(
      invalid,
      JSON.stringify({ dataset: { uri: data.uri }, regression: { maxDrop: 2 } }),
    );
    const bad = await cli([
      'schedule',
      'create',
      scheduleId,
      '--cron',
      '0 0 1 1 *',
      '--spec',
      invalid,
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/regression\.maxDrop/);
    expect((await cli(['schedule', 'describe', scheduleId])).code).toBe(2);

    const created = await cli([
      'schedule',
      'create',
      scheduleId,
      '--cron',
      '0 0 1 1 *',
      '--spec',
      specFile,
      '--timezone',
      'Europe/Paris',
      '--catchup-window',
      '1h',
    ]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);

    /** Triggers and returns the new run's id (the schedule's newest recent action). */
    const trigger = async (seen: number) => {
      await triggerSchedule(client, scheduleId);
      return until('the triggered run', async () => {
        const d = await describeSchedule(client, scheduleId);
        return d.recentRuns.length > seen ? d.recentRuns.at(-1)!.runId : undefined;
      });
    };

    const first = await trigger(0);
    expect(first).toMatch(new RegExp(`^${scheduleId}-\\d{4}-\\d\\d-\\d\\dT`));
    const a = completed(await waitForRun(client, first));
    expect(a.schedule).toEqual({ id: scheduleId });
    expect(a.comparison).toBeUndefined();

    // A second trigger while the run is going is skipped (overlap skip) and counted.
    const second = await trigger(1);
    await triggerSchedule(client, scheduleId);
    const described = await cli(['schedule', 'describe', scheduleId, '--json']);
    expect(described.code).toBe(0);
    const info = JSON.parse(described.stdout) as {
      overlap: string;
      skippedOverlap: number;
      catchupWindowMs: number;
    };
    expect(info).toMatchObject({ overlap: 'SKIP', skippedOverlap: 1, catchupWindowMs: 3_600_000 });
    const b = completed(await waitForRun(client, second));
    expect(b.comparison?.previousRunId).toBe(first);
    expect(b.comparison?.deltas.length).toBe(b.routes.length);
    expect(b.comparison?.regression).toBe(false);
    const store = ObjectStore.connect(env.s3);
    expect(await store.requireJson<Comparison>(keys.runComparison(second))).toEqual(b.comparison);

    // The test images change class (each class's images under the next class's folder): the
    // probe, trained on unchanged train images, now gets most of them wrong.
    const test = data.images.filter((i) => i.split === 'test');
    const classes = [...new Set(test.map((i) => i.className))];
    await putObjects(
      env,
      env.s3.bucket,
      data.prefix,
      Object.fromEntries(
        test.map((i) => {
          const next = classes[(classes.indexOf(i.className) + 1) % classes.length]!;
          return [i.path.replace(`/${i.className}/`, `/${next}/`), i.body];
        }),
      ),
    );
    const third = await trigger(2);
    const c = completed(await waitForRun(client, third));
    expect(c.comparison?.previousRunId).toBe(second);
    expect(c.comparison?.regression).toBe(true);
    const status = await cli(['status', third]);
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(/compared with run .*REGRESSION/);
    expect(status.stdout).toMatch(/probe all\s+acc1\s+-\d/);
    const pointer = await store.requireJson<{ history: { runId: string }[] }>(
      keys.scheduleLastSuccess(scheduleId),
    );
    store.client.destroy();
    expect(pointer.history.map((h) => h.runId)).toEqual([first, second, third]);

    // `list` shows the scheduled runs with their schedule (visibility is eventually consistent).
    await until('the runs in visibility', async () => {
      const runs = await listEvaluations(client, { limit: 100 });
      const mine = runs.filter((r) => r.scheduleId === scheduleId && r.status === 'COMPLETED');
      return mine.length === 3 ? mine : undefined;
    });
    const list = await cli(['list', '--limit', '100']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(
      new RegExp(`${third}\\s+COMPLETED\\s+\\S+\\s+\\S+\\s+${scheduleId}`),
    );

    expect((await cli(['schedule', 'delete', scheduleId])).code).toBe(0);
  }, 420_000);
});
