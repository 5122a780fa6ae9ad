/**
 * @file The REAL workflow code (evaluateDataset, evaluateSuite, bundled from workflows/ as
 * workers/create-workers.ts bundles it) on workers whose activities are stand-ins
 * (test/helpers/stub-activities.ts), the way samples-typescript's workflows-mocks.test.ts tests
 * workflows: the orchestration's own contracts (stage order, failure, cancellation, resume,
 * continue-as-new, run identity) in seconds, without models, images or S3. The activities have
 * their own tests on the real stack (routes-workflow, extraction-workflow, suite-workflow...).
 *
 * The server: `@temporalio/testing`'s TestWorkflowEnvironment.createFromExistingServer, connected
 * to the Temporal dev server the vitest global setup already runs (TEMPORAL_ADDRESS). createLocal
 * and createTimeSkipping download their server by default (this project's machines may be
 * offline); createLocal could be given the stack's CLI (infra/local-stack/tools.ts resolveTool) as
 * an `existing-path` executable, but that would start a second dev server for nothing. Time skipping needs the Java test server, which is
 * not part of the stack (createTimeSkipping accepts an `existing-path` too, but there is no binary
 * to point it at), so nothing here waits on a timer: failing stubs fail non-retryably (no retry
 * backoff), hanging stubs heartbeat every 100 ms and the workers flush heartbeats within a second.
 * Task queues are private to this file, so the stubs never serve other files' workflows.
 */
import {
  ApplicationFailure,
  CancelledFailure,
  type WorkflowHandle,
  WorkflowFailedError,
} from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cancelEvaluation,
  resumeEvaluation,
  startEvaluation,
  waitForRun,
} from '../../client/evaluations';
import { startSuite, waitForSuite } from '../../client/suites';
import type { ClipevalEnv } from '../../core/config/env';
import { type RunSpec, parseRunSpec } from '../../core/config/run-spec';
import { parseSuiteSpec } from '../../core/config/suite-spec';
import { failureMessage } from '../../core/util/failure-message';
import { suiteCellRunId } from '../../core/util/suite-cells';
import { evaluateDataset } from '../../workflows/evaluate-dataset';
import { evaluateSuite } from '../../workflows/evaluate-suite';
import {
  ACTIVITY_STAGES,
  type ActivityName,
  type EvaluationSummary,
  progressQuery,
} from '../../contract/progress';
import { testEnv, uniqueId } from '../helpers/stack';
import { type StubCall, StubActivities } from '../helpers/stub-activities';

let env: ClipevalEnv;
let temporal: TestWorkflowEnvironment;
let workers: Worker[];
let running: Promise<unknown>;
const stubs = new StubActivities(() => temporal.client);
const client = () => temporal.client;

beforeAll(async () => {
  env = testEnv();
  temporal = await TestWorkflowEnvironment.createFromExistingServer({
    address: env.temporal.address,
    namespace: env.temporal.namespace,
  });
  const common = {
    connection: temporal.nativeConnection,
    namespace: env.temporal.namespace,
    // A hanging stub's heartbeats reach the server within a second: cancellation is seen fast.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '200ms',
  } as const;
  workers = [
    await Worker.create({
      ...common,
      taskQueue: env.queues.cpu,
      workflowsPath: join(__dirname, '..', '..', 'workflows'),
      activities: stubs.cpu(),
    }),
    await Worker.create({ ...common, taskQueue: env.queues.gpu, activities: stubs.gpu() }),
  ];
  running = Promise.all(workers.map((w) => w.run()));
});

afterAll(async () => {
  for (const w of workers ?? []) w.shutdown();
  await running;
  await temporal?.teardown();
});

const runSpec = (label: string): RunSpec =>
  parseRunSpec({
    dataset: { uri: `s3://stub-bucket/${label}/` },
    model: { bundle: 's3://stub-bucket/models/tiny/' },
  });

/** The run's failure as the workflow threw it (the ApplicationFailure under WorkflowFailedError). */
async function failureOf(workflowId: string): Promise<ApplicationFailure> {
  const err: unknown = await client()
    .workflow.getHandle(workflowId)
    .result()
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

async function until(what: string, done: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ROUTE_ACTIVITIES: ActivityName[] = [
  'zeroShot',
  'fitLinearProbe',
  'trainCoopPrompts',
  'fitTipAdapter',
];
const routeCalls = (runId: string) =>
  stubs.callsOf(runId).filter((c) => ROUTE_ACTIVITIES.includes(c.activity));
// The stub plan's grid (2 shot counts x 1 seed): zero-shot, probe all + 2, coop 2, tip-adapter 2.
const ROUTE_JOBS = 8;
const ROUTE_RESULTS = 10; // a tip-adapter job returns Tip-Adapter and Tip-Adapter-F

describe('evaluateDataset on stub activities', () => {
  it('reports its stages in order, passes only URIs and small summaries, returns the summary', async () => {
    const runId = uniqueId('wf-happy');
    stubs.scenario(runId, { shards: 5, queryStages: true });
    await startEvaluation(client(), env, runSpec('happy'), runId);
    const outcome = await waitForRun(client(), runId);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));
    const summary = outcome.summary;

    const calls = stubs.callsOf(runId);
    for (const c of calls) expect(c.stage, c.activity).toBe(ACTIVITY_STAGES[c.activity]);
    const order = calls.map((c) => c.stage).filter((s, i, all) => s !== all[i - 1]);
    expect(order).toEqual(['planning', 'extracting', 'routes', 'summarizing', 'reporting']);
    const handle = client().workflow.getHandle(runId);
    const final = await handle.query(progressQuery);
    expect(final.stage).toBe('completed');
    expect(final.routes).toEqual({ done: ROUTE_JOBS, total: ROUTE_JOBS, failed: [] });

    // Extraction and CoOp on the gpu queue, everything else on the cpu queue.
    for (const c of calls) {
      const gpu = ['extractShardImages', 'trainCoopPrompts', 'retrieveZeroShot'].includes(
        c.activity,
      );
      expect(c.taskQueue, c.activity).toBe(gpu ? env.queues.gpu : env.queues.cpu);
    }
    expect(stubs.callsOf(runId, 'extractShardImages')).toHaveLength(5);
    expect(routeCalls(runId)).toHaveLength(ROUTE_JOBS);

    expect(summary.extraction).toMatchObject({
      shards: 5,
      shardsDone: 5,
      shardsReused: 0,
      imagesDone: 20,
      imagesDecoded: 20,
    });
    // Shard keys in shard order, whatever order the window finished them in.
    expect(summary.extraction.shardKeys).toEqual(
      [0, 1, 2, 3, 4].map((i) => `s3://stub-bucket/runs/${runId}/shards/${i}.arrow`),
    );
    expect(summary.routes).toHaveLength(ROUTE_RESULTS);
    expect(summary.routes.map((r) => r.route).sort()).toEqual(
      [
        'coop',
        'coop',
        'probe',
        'probe',
        'probe',
        'tip-adapter',
        'tip-adapter',
        'tip-adapter-f',
        'tip-adapter-f',
        'zero-shot',
      ].sort(),
    );
    expect(summary.report.htmlUri).toBe(`s3://stub-bucket/runs/${runId}/report.html`);
    const [summarized] = stubs.callsOf(runId, 'summarizeRun');
    expect(summarized!.input).toEqual({
      runId,
      planUri: summary.plan.planUri,
      routes: summary.routes,
      extraction: {
        shards: 5,
        shardsReused: 0,
        imagesDone: 20,
        imagesFailed: 0,
        imagesDecoded: 20,
        imagesFromPixelCache: 0,
      },
    });

    // Routes find the shards through the plan: their inputs name no shard, whatever the shard count.
    for (const c of routeCalls(runId)) expect(JSON.stringify(c.input)).not.toContain('.arrow');
    // Every payload in the run's history (inputs, results) is a small JSON document.
    const sizes = payloadSizes(await handle.fetchHistory());
    expect(sizes.length).toBeGreaterThan(2 * calls.length);
    expect(Math.max(...sizes)).toBeLessThan(8 * 1024);
  });

  it('runs zero-shot retrieval beside the routes when the plan has captions, and reports it', async () => {
    const runId = uniqueId('wf-retrieval');
    stubs.scenario(runId, { shards: 1, queryStages: true, retrieval: true });
    await startEvaluation(client(), env, runSpec('retrieval'), runId);
    const outcome = await waitForRun(client(), runId);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));
    const [call, ...more] = stubs.callsOf(runId, 'retrieveZeroShot');
    expect(more).toEqual([]);
    expect(call!.taskQueue).toBe(env.queues.gpu);
    expect(call!.stage).toBe('routes');
    const final = await client().workflow.getHandle(runId).query(progressQuery);
    expect(final.routes).toEqual({ done: ROUTE_JOBS + 1, total: ROUTE_JOBS + 1, failed: [] });
    const retrieval = outcome.summary.retrieval;
    expect(retrieval?.imageToText).toEqual({ '1': 0.5 });
    for (const activity of ['summarizeRun', 'writeReport'] as const)
      expect(stubs.callsOf(runId, activity)[0]!.input, activity).toMatchObject({ retrieval });
    // Retrieval is not a classification route: the route results are the same 10.
    expect(outcome.summary.routes).toHaveLength(ROUTE_RESULTS);
  });

  it('compares a scheduled run with its schedule before the report', async () => {
    const scheduleId = uniqueId('wf-sched');
    const runId = `${scheduleId}-2026-01-01T02:00:00Z`;
    stubs.scenario(runId, { shards: 1, queryStages: true });
    await client().workflow.execute(evaluateDataset, {
      taskQueue: env.queues.cpu,
      workflowId: runId,
      args: [
        {
          spec: runSpec('sched'),
          bundle: 's3://stub-bucket/models/tiny/',
          queues: { gpu: env.queues.gpu },
          schedule: { id: scheduleId },
        },
      ],
    });
    const stages = stubs.callsOf(runId).map((c) => c.stage);
    expect(stages.slice(-2)).toEqual(['comparing', 'reporting']);
    const [compare] = stubs.callsOf(runId, 'compareWithPrevious');
    expect(compare!.input).toMatchObject({ runId, scheduleId });
  });

  it('fails with RouteFailed naming the route, after every other route finished', async () => {
    const runId = uniqueId('wf-route-fails');
    const message = 'Class names are missing for 3 classes';
    stubs.scenario(runId, {
      failRoute: { activity: 'zeroShot', message },
      routeDelayMs: 300,
    });
    await startEvaluation(client(), env, runSpec('route-fails'), runId);
    const failure = await failureOf(runId);
    expect(failure.type).toBe('RouteFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`1 of ${ROUTE_JOBS} route(s) failed`);
    expect(failure.message).toContain(`zero-shot: ${message}`);

    const others = routeCalls(runId).filter((c) => c.activity !== 'zeroShot');
    expect(others).toHaveLength(ROUTE_JOBS - 1);
    for (const c of others) expect(c.outcome, c.activity).toBe('completed');
    expect(stubs.callsOf(runId, 'summarizeRun')).toEqual([]);
    const progress = await client().workflow.getHandle(runId).query(progressQuery);
    expect(progress.stage).toBe('routes');
    expect(progress.routes).toEqual({
      done: ROUTE_JOBS,
      total: ROUTE_JOBS,
      failed: [`zero-shot: ${message}`],
    });
  });

  it('fails with NoValidImages when no image of any shard decodes', async () => {
    const runId = uniqueId('wf-no-images');
    stubs.scenario(runId, { shards: 3, imagesPerShard: 4, failedPerShard: 4 });
    await startEvaluation(client(), env, runSpec('no-images'), runId);
    const failure = await failureOf(runId);
    expect(failure.type).toBe('NoValidImages');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('No image of 12 could be decoded (12 failed)');
    expect(stubs.callsOf(runId, 'extractShardImages')).toHaveLength(3);
    expect(routeCalls(runId)).toEqual([]);
  });

  it("surfaces the planning activity's own message", async () => {
    const runId = uniqueId('wf-plan-fails');
    const planError = 'Invalid run spec: dataset.uri: no objects under s3://stub-bucket/empty/';
    stubs.scenario(runId, { planError });
    await startEvaluation(client(), env, runSpec('plan-fails'), runId);
    const err: unknown = await client()
      .workflow.getHandle(runId)
      .result()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(failureMessage(err)).toBe(planError);
    expect(await waitForRun(client(), runId)).toEqual({
      runId,
      status: 'FAILED',
      error: planError,
    });
    expect(stubs.callsOf(runId).map((c) => c.activity)).toEqual(['planDataset']);
  });

  it('closes CANCELLED when cancelled during the routes, which see the cancellation; resume completes it', async () => {
    const runId = uniqueId('wf-cancel');
    stubs.scenario(runId, { shards: 2, hangRoutes: true });
    await startEvaluation(client(), env, runSpec('cancel'), runId);
    await until('every route job to start', () => routeCalls(runId).length === ROUTE_JOBS);
    await cancelEvaluation(client(), runId);

    const outcome = await waitForRun(client(), runId);
    expect(outcome.status).toBe('CANCELLED');
    const err: unknown = await client()
      .workflow.getHandle(runId)
      .result()
      .catch((e: unknown) => e);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    // Every hanging route learns of it from a heartbeat response and stops. TRY_CANCEL: the run
    // closed in the workflow task that requested the cancellations, so the heartbeat finds the
    // activity gone (NOT_FOUND), which the SDK delivers as a cancellation (not a worker shutdown).
    await until('every route to see the cancellation', () =>
      routeCalls(runId).every((c) => c.outcome === 'cancelled'),
    );
    for (const c of routeCalls(runId)) expect(c.cancelReason).toBe('NOT_FOUND');
    expect(stubs.callsOf(runId, 'summarizeRun')).toEqual([]);

    // A cancelled run is resumable: the new execution reuses both shards and completes.
    stubs.scenario(runId, { shards: 2 });
    expect(await resumeEvaluation(client(), runId)).toMatchObject({
      resumed: true,
      previousStatus: 'CANCELLED',
    });
    const resumed = await waitForRun(client(), runId);
    if (resumed.status !== 'COMPLETED') expect.fail(JSON.stringify(resumed));
    expect(resumed.summary.extraction).toMatchObject({ shardsReused: 2, imagesDecoded: 0 });
  });

  it('resumes a failed run with the same activity inputs, so finished work is reused', async () => {
    const runId = uniqueId('wf-resume');
    const message = 'L-BFGS diverged';
    stubs.scenario(runId, {
      shards: 3,
      failRoute: { activity: 'fitLinearProbe', shots: 2, message, calls: 1 },
    });
    await startEvaluation(client(), env, runSpec('resume'), runId);
    const first = await waitForRun(client(), runId);
    expect(first).toMatchObject({ status: 'FAILED' });
    expect((first as { error: string }).error).toContain(`probe 2-shot seed 1: ${message}`);

    expect(await resumeEvaluation(client(), runId)).toMatchObject({
      resumed: true,
      previousStatus: 'FAILED',
    });
    const second = await waitForRun(client(), runId);
    if (second.status !== 'COMPLETED') expect.fail(JSON.stringify(second));

    // The resumed execution runs every stage again with byte-identical inputs: reuse is the
    // activities' (content-addressed) job, and the workflow's is to ask for the same work.
    const executions = [...new Set(stubs.callsOf(runId).map((c) => c.execution))];
    expect(executions).toHaveLength(2);
    const inputsOf = (execution: string) =>
      stubs
        .callsOf(runId)
        .filter((c) => c.execution === execution && c.activity !== 'summarizeRun')
        .filter((c) => c.activity !== 'writeReport')
        .map((c) => `${c.activity} ${JSON.stringify(c.input)}`)
        .sort();
    expect(inputsOf(executions[1]!)).toEqual(inputsOf(executions[0]!));

    const { extraction, routes } = second.summary;
    expect(extraction).toMatchObject({
      shards: 3,
      shardsReused: 3,
      imagesDone: 12,
      imagesDecoded: 0,
    });
    const fresh = routes.filter((r) => !r.reused);
    expect(fresh.map((r) => `${r.route} ${r.variant}`)).toEqual(['probe 2shot-seed1']);
    expect(routes.filter((r) => r.reused)).toHaveLength(ROUTE_RESULTS - 1);
    const summarized = stubs.callsOf(runId, 'summarizeRun').at(-1)!;
    expect(summarized.input).toMatchObject({ routes, extraction: { shardsReused: 3 } });
  });

  it('refuses a run id other than its workflow id, and a schedule it was not started by', async () => {
    const runId = uniqueId('wf-identity');
    stubs.scenario(runId, {});
    const input = {
      spec: runSpec('identity'),
      bundle: 's3://stub-bucket/models/tiny/',
      queues: { gpu: env.queues.gpu },
    };
    await client().workflow.start(evaluateDataset, {
      taskQueue: env.queues.cpu,
      workflowId: runId,
      args: [{ ...input, runId: 'someone-elses-run' }],
    });
    const failure = await failureOf(runId);
    expect(failure.type).toBe('RunIdentity');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(
      `run id "someone-elses-run" is not this workflow's id "${runId}"`,
    );

    const scheduled = uniqueId('wf-identity-sched');
    await client().workflow.start(evaluateDataset, {
      taskQueue: env.queues.cpu,
      workflowId: scheduled,
      args: [{ ...input, schedule: { id: 'another-schedule' } }],
    });
    expect((await failureOf(scheduled)).type).toBe('RunIdentity');
    expect([...stubs.callsOf(runId), ...stubs.callsOf(scheduled)]).toEqual([]);
  });
});

describe('evaluateSuite on stub activities', () => {
  const models = ['a', 'b'].map((name) => ({ name, bundle: `s3://stub-bucket/models/${name}/` }));
  const suiteSpec = (datasets: string[]) =>
    parseSuiteSpec({
      models,
      datasets: datasets.map((name) => ({ name, uri: `s3://stub-bucket/${name}/` })),
      concurrency: 2,
      run: {},
    });
  const cellIds = (suiteId: string, datasets: string[]) =>
    datasets.flatMap((d) => models.map((m) => suiteCellRunId(suiteId, m.name, d)));
  const childCalls = (suiteId: string, activity: ActivityName): StubCall[] =>
    stubs.calls.filter((c) => c.activity === activity && c.workflowId.startsWith(`${suiteId}--`));

  it('continues as new every two children and runs every cell exactly once', async () => {
    const suiteId = uniqueId('wf-suite');
    const datasets = ['d1', 'd2', 'd3'];
    const cells = cellIds(suiteId, datasets); // dataset-major: d1/a, d1/b, d2/a, ...
    const finished = cells[1]!;
    const failing = cells[4]!;
    stubs.scenario(suiteId, { shards: 1, finished: [finished], failPlanningOf: [failing] });
    await startSuite(client(), env, suiteSpec(datasets), suiteId, { childrenPerExecution: 2 });
    const outcome = await waitForSuite(client(), suiteId);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));

    // One record, then one execution per slice of two cells, each checking only its own slice.
    expect(stubs.callsOf(suiteId, 'recordSuite')).toHaveLength(1);
    const slices = stubs.callsOf(suiteId, 'findFinishedRuns');
    expect(slices.map((c) => (c.input as { runIds: string[] }).runIds)).toEqual([
      cells.slice(0, 2),
      cells.slice(2, 4),
      cells.slice(4, 6),
    ]);
    const executions = slices.map((c) => c.execution);
    expect(new Set(executions).size).toBe(3);
    for (const e of executions.slice(0, 2)) {
      const { status } = await client().workflow.getHandle(suiteId, e).describe();
      expect(status.name).toBe('CONTINUED_AS_NEW');
    }

    // Every cell but the finished one planned exactly once; only the failing one did not report.
    const planned = childCalls(suiteId, 'planDataset').map((c) => c.workflowId);
    expect(planned.sort()).toEqual(cells.filter((c) => c !== finished).sort());
    const reported = childCalls(suiteId, 'writeReport').map((c) => c.workflowId);
    expect(reported.sort()).toEqual(cells.filter((c) => c !== finished && c !== failing).sort());

    expect(outcome.summary).toMatchObject({ suiteId, cells: 6, completed: 4, reused: 1 });
    expect(outcome.summary.failed).toEqual([
      { model: 'a', dataset: 'd3', runId: failing, error: `no images under ${failing}` },
    ]);
    expect(stubs.callsOf(suiteId, 'writeLeaderboard').map((c) => c.input)).toEqual([
      { suiteId, failed: [{ runId: failing, error: `no images under ${failing}` }] },
    ]);
  });

  it("continues as new once the children's results reach the byte bound", async () => {
    const suiteId = uniqueId('wf-suite-bytes');
    const datasets = ['d1', 'd2'];
    const cells = cellIds(suiteId, datasets);
    stubs.scenario(suiteId, { shards: 1 });
    // Any result reaches a 1-byte bound: each execution runs its first `concurrency` children.
    await startSuite(client(), env, suiteSpec(datasets), suiteId, { resultBytesPerExecution: 1 });
    const outcome = await waitForSuite(client(), suiteId);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));
    const slices = stubs.callsOf(suiteId, 'findFinishedRuns');
    expect(slices.map((c) => (c.input as { runIds: string[] }).runIds)).toEqual([
      cells,
      cells.slice(2),
    ]);
    const planned = childCalls(suiteId, 'planDataset').map((c) => c.workflowId);
    expect(planned.sort()).toEqual([...cells].sort());
    expect(outcome.summary).toMatchObject({ cells: 4, completed: 4, reused: 0, failed: [] });
    const children = await Promise.all(
      cells.map((id) => client().workflow.getHandle(id).result() as Promise<EvaluationSummary>),
    );
    expect(children.map((c) => c.runId)).toEqual(cells);
  });

  it('refuses a suite id other than its workflow id', async () => {
    const suiteId = uniqueId('wf-suite-identity');
    stubs.scenario(suiteId, {});
    await client().workflow.start(evaluateSuite, {
      taskQueue: env.queues.cpu,
      workflowId: suiteId,
      args: [
        { suiteId: 'another-suite', spec: suiteSpec(['d1']), queues: { gpu: env.queues.gpu } },
      ],
    });
    const failure = await failureOf(suiteId);
    expect(failure.type).toBe('RunIdentity');
    expect(failure.nonRetryable).toBe(true);
    expect(stubs.callsOf(suiteId)).toEqual([]);
  });
});

/** The size in bytes of every payload in a history (inputs, results, query answers excluded). */
function payloadSizes(history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>>): number[] {
  const sizes: number[] = [];
  for (const e of history.events ?? []) {
    const payloads = [
      e.workflowExecutionStartedEventAttributes?.input,
      e.workflowExecutionCompletedEventAttributes?.result,
      e.activityTaskScheduledEventAttributes?.input,
      e.activityTaskCompletedEventAttributes?.result,
    ].flatMap((p) => p?.payloads ?? []);
    for (const p of payloads) sizes.push(p.data?.length ?? 0);
  }
  return sizes;
}
