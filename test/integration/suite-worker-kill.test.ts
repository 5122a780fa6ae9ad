import type { Client } from '@temporalio/client';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../core/config/env';
import { type SuiteSpecInput, parseSuiteSpec } from '../../core/config/suite-spec';
import { keys } from '../../core/storage/keys';
import type { Leaderboard } from '../../core/suites/leaderboard';
import { suiteCellRunId } from '../../core/util/suite-cells';
import { connectClient } from '../../client/evaluations';
import { resumeSuite, startSuite, suiteStatus, waitForSuite } from '../../client/suites';
import { type EvaluationSummary, progressQuery } from '../../contract/progress';
import {
  runCli,
  spawnWorkerProcess,
  testEnv,
  testStore,
  uniqueId,
  uploadRenamedTinyBundle,
  uploadShapes,
  uploadTinyBundle,
} from '../helpers/stack';

// The worker dies twice during a suite of 2 tiny models x 3 datasets, each time while a cell is
// half-way through encoding its images. The worker is one process with both queues (workflows and
// every activity: workers/all.ts), SIGKILLed as a machine dies:
//  1. a new worker comes up and the suite carries on by itself (Temporal retries the shard that
//     was in flight once its 4 s heartbeat times out);
//  2. the operator gives up on the suite (terminates it) while no worker runs, starts a worker and
//     `clipeval suite resume`s it: the cells that finished are not run again, and the interrupted
//     cell's rerun reuses every shard it had finished.
let env: ClipevalEnv;
let client: Client;
const workers: ChildProcess[] = [];
const models: { name: string; bundle: string }[] = [];
const datasets: { name: string; uri: string }[] = [];

beforeAll(async () => {
  env = testEnv();
  client = await connectClient(env);
  models.push(
    { name: 'tiny-a', bundle: await uploadTinyBundle(env) },
    { name: 'tiny-b', bundle: await uploadRenamedTinyBundle(env, 'random-tiny-kill') },
  );
  for (const name of ['kill1', 'kill2', 'kill3']) {
    // ~10 shards of at most 3 images per cell, each its own activity: a long enough window to
    // kill the worker between two shards of one cell.
    const { uri } = await uploadShapes(
      env,
      { train: 6, val: 0, test: 3 },
      { label: name, size: 320 },
    );
    datasets.push({ name, uri });
  }
}, 300_000);
afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await client.connection.close();
});

function startWorker(): ChildProcess {
  const w = spawnWorkerProcess(env, 'all');
  workers.push(w);
  return w;
}

const cellIds = (suiteId: string) =>
  models.flatMap((m) => datasets.map((d) => suiteCellRunId(suiteId, m.name, d.name)));

async function statusOf(runId: string): Promise<string> {
  return client.workflow
    .getHandle(runId)
    .describe()
    .then(
      (d) => d.status.name,
      () => 'NONE',
    );
}

async function executionsOf(workflowId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = "${workflowId}"` }))
    out.push(w.status.name);
  return out.sort();
}

/**
 * Waits until at least `settled` cells have settled and the running cell has encoded some but not
 * nearly all of its shards, then SIGKILLs `worker`. Returns that cell, its shards done at the kill
 * and the cells completed by then.
 */
async function killMidExtraction(
  suiteId: string,
  worker: ChildProcess,
  settled: number,
): Promise<{ runId: string; shardsDone: number; finished: string[] }> {
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline) {
    const s = await suiteStatus(client, suiteId);
    if (s.status !== 'RUNNING') expect.fail(`suite closed before the kill: ${s.status}`);
    const runId = s.progress?.running[0];
    if ((s.progress?.settled ?? 0) >= settled && runId) {
      const p = await client.workflow
        .getHandle(runId)
        .query(progressQuery)
        .catch(() => undefined);
      const x = p?.extraction;
      if (p?.stage === 'extracting' && x && x.shardsDone >= 1 && x.shardsDone < x.shards - 1) {
        // Inside a shard: its activity has started on the worker (not between two shards).
        const pending = (await client.workflow.getHandle(runId).describe()).raw.pendingActivities;
        const inShard = pending?.some(
          (a) => a.activityType?.name === 'extractShardImages' && a.lastStartedTime,
        );
        if (inShard) {
          worker.kill('SIGKILL');
          const finished: string[] = [];
          for (const id of cellIds(suiteId))
            if ((await statusOf(id)) === 'COMPLETED') finished.push(id);
          return { runId, shardsDone: x.shardsDone, finished };
        }
      }
    }
    await sleep(50);
  }
  return expect.fail(`no cell was caught mid-extraction after ${settled} settled`);
}

/** The extraction activities of a run's history: how many were scheduled, completed, retried. */
async function extractionHistory(runId: string) {
  const events = (await client.workflow.getHandle(runId).fetchHistory()).events ?? [];
  const scheduled = events.filter(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'extractShardImages',
  );
  const ids = new Set(scheduled.map((e) => String(e.eventId)));
  const started = events.flatMap((e) => {
    const a = e.activityTaskStartedEventAttributes;
    return a && ids.has(String(a.scheduledEventId)) ? [a.attempt ?? 1] : [];
  });
  const completed = events.filter(
    (e) =>
      e.activityTaskCompletedEventAttributes &&
      ids.has(String(e.activityTaskCompletedEventAttributes.scheduledEventId)),
  );
  return {
    scheduled: scheduled.length,
    completed: completed.length,
    maxAttempt: Math.max(...started),
  };
}

describe('worker killed mid-suite', () => {
  it('carries on after a new worker comes up, and a terminated suite resumes without redoing finished work', async () => {
    const spec = parseSuiteSpec({
      models,
      datasets,
      concurrency: 1,
      run: {
        shardSize: 3,
        extraction: { batchSize: 1, parallelism: 1, heartbeatTimeoutSeconds: 4 },
        coop: { epochs: 1, nCtx: 2 },
        fewShot: { shots: [1], seeds: [1] },
      },
    } satisfies SuiteSpecInput);
    const suiteId = uniqueId('suite-kill');
    const first = startWorker();
    // One child per execution (a 1-byte bound on the children's results), so the kills and the
    // resume also cross continue-as-new boundaries.
    await startSuite(client, env, spec, suiteId, { resultBytesPerExecution: 1 });

    // 1. The worker dies in the second cell or later; a new one finishes that cell.
    const kill1 = await killMidExtraction(suiteId, first, 1);
    expect(kill1.finished.length).toBeGreaterThanOrEqual(1);
    const second = startWorker();

    // 2. It dies again two cells later; the operator terminates the suite while no worker runs.
    const kill2 = await killMidExtraction(suiteId, second, kill1.finished.length + 2);
    expect(kill2.finished).toContain(kill1.runId);
    await client.workflow.getHandle(suiteId).terminate('test: the operator stops the suite');
    // The interrupted cell was asked to cancel but no worker has run that yet: resuming now
    // would collide with it, so resume refuses and says why.
    await expect(resumeSuite(client, suiteId)).rejects.toThrow(
      new RegExp(`still runs .*${kill2.runId}[\\s\\S]*Start a worker`),
    );
    startWorker();
    for (let i = 0; (await statusOf(kill2.runId)) === 'RUNNING'; i++) {
      if (i > 1200) expect.fail(`${kill2.runId} never closed after the suite stopped`);
      await sleep(100);
    }
    expect(await statusOf(kill2.runId)).toBe('CANCELLED');
    const r = await runCli(['suite', 'resume', suiteId], { env });
    expect(r.code, r.stderr).toBe(0);

    const outcome = await waitForSuite(client, suiteId);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));
    expect(outcome.summary).toMatchObject({ cells: 6, completed: 6, failed: [] });
    // Every cell completed before the suite stopped was skipped by the resumed suite...
    expect(outcome.summary.reused).toBe(kill2.finished.length);
    // ...and never run again: one execution each, completed.
    for (const id of kill2.finished) expect(await executionsOf(id), id).toEqual(['COMPLETED']);
    const executions = await executionsOf(suiteId);
    expect(executions.filter((x) => x !== 'CONTINUED_AS_NEW')).toEqual(['COMPLETED', 'TERMINATED']);
    // One execution per cell that ran: 3+ before the termination, the rerun cell and the 2 after.
    expect(executions.length).toBeGreaterThanOrEqual(7);

    // The first kill: Temporal retried only the shard in flight (every shard scheduled and
    // completed once; one attempt >= 2); the cell was not restarted.
    const h1 = await extractionHistory(kill1.runId);
    const s1 = (await client.workflow.getHandle(kill1.runId).result()) as EvaluationSummary;
    expect(h1).toMatchObject({ scheduled: s1.extraction.shards, completed: s1.extraction.shards });
    expect(h1.maxAttempt).toBeGreaterThanOrEqual(2);

    // The second kill: the cell ran again under its id and reused every shard it had finished.
    expect(await executionsOf(kill2.runId)).toEqual(['CANCELLED', 'COMPLETED']);
    const s2 = (await client.workflow.getHandle(kill2.runId).result()) as EvaluationSummary;
    expect(s2.extraction.shardsReused).toBeGreaterThanOrEqual(kill2.shardsDone);
    expect(s2.extraction.shardsReused).toBeLessThan(s2.extraction.shards);
    expect(s2.extraction.imagesDone).toBe(27);

    // The leaderboard's cells are the children's own metrics.
    const store = testStore(env);
    const board = await store.requireJson<Leaderboard>(
      keys.leaderboard(suiteId, 'leaderboard.json'),
    );
    for (const m of models)
      for (const d of datasets) {
        const runId = suiteCellRunId(suiteId, m.name, d.name);
        const child = (await client.workflow.getHandle(runId).result()) as EvaluationSummary;
        const row = board.rows.find((x) => x.model === m.name)!;
        expect(row.cells[`${d.name}/zero-shot`]!.acc1).toBe(
          child.routes.find((x) => x.route === 'zero-shot')!.acc1,
        );
      }
    store.client.destroy();
  }, 1_200_000);
});
