/**
 * @file Stand-in activities for workflow tests (test/integration/workflows-mocks.test.ts): plain
 * functions under the names activities/index.ts registers (typed as CpuActivities / GpuActivities,
 * so a renamed or missing activity fails to compile), each recording its call, the queue it ran on
 * and the workflow's stage at that moment, and doing what the test's scenario asks: fail, hang until
 * cancelled, or return a small S3-URI result. Reuse is modelled as the real activities do it:
 * content-addressed by the activity's input, so a result is `reused` only when an earlier execution
 * of the run sent the very same input.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { CpuActivities, GpuActivities } from '../../activities';
import { parseRunSpec } from '../../core/config/run-spec';
import { parseSuiteSpec } from '../../core/config/suite-spec';
import { suiteCells } from '../../core/util/suite-cells';
import type { PlanSummary } from '../../core/dataset/plan';
import type { RouteSummary } from '../../core/routes/route-result';
import type { Route } from '../../core/storage/keys';
import { type ActivityName, progressQuery, suiteProgressQuery } from '../../contract/progress';

const BUCKET = 's3://stub-bucket';

/** What a workflow's stubs do; keyed by workflow id (a suite's scenario also covers its children). */
export interface Scenario {
  shards?: number;
  imagesPerShard?: number;
  /** Images of each shard that fail to decode (imagesPerShard of them: none decodes). */
  failedPerShard?: number;
  /** planDataset fails non-retryably with this message. */
  planError?: string;
  /** The route activity (and, for the probe, shot count) that fails, its message, on which calls. */
  failRoute?: { activity: ActivityName; shots?: number | 'all'; message: string; calls?: number };
  /** Route activities other than the failing one take this long (ms) before completing. */
  routeDelayMs?: number;
  /** Route activities heartbeat until cancelled. */
  hangRoutes?: boolean;
  /** The suite's cells (run ids) an earlier execution finished: findFinishedRuns reports them. */
  finished?: string[];
  /** Planning of these child runs fails (suite cells). */
  failPlanningOf?: string[];
  /** Query the workflow's progress at each call (the stage the workflow reports then). */
  queryStages?: boolean;
  /** The plan says the dataset has captions: zero-shot retrieval runs beside the routes. */
  retrieval?: boolean;
}

export interface StubCall {
  activity: ActivityName;
  workflowId: string;
  /** The workflow execution (a resumed or continued run has a new one). */
  execution: string;
  taskQueue: string;
  input: unknown;
  /** The workflow's reported stage when the activity started (with queryStages). */
  stage?: string;
  outcome?: 'completed' | 'failed' | 'cancelled';
  /** CancelledFailure's message: why the activity was cancelled (CANCELLED, WORKER_SHUTDOWN...). */
  cancelReason?: string;
}

export class StubActivities {
  readonly calls: StubCall[] = [];
  private readonly scenarios = new Map<string, Scenario>();
  /** Inputs already served per run: what the real activities find in S3 and reuse. */
  private readonly done = new Set<string>();

  constructor(private readonly client: () => Client) {}

  /** Registers what the stubs do for workflow `id` (and for `<id>--*`, a suite's children). */
  scenario(id: string, s: Scenario): void {
    this.scenarios.set(id, s);
  }

  callsOf(workflowId: string, activity?: ActivityName): StubCall[] {
    return this.calls.filter(
      (c) => c.workflowId === workflowId && (!activity || c.activity === activity),
    );
  }

  private scenarioOf(workflowId: string): Scenario {
    const own = this.scenarios.get(workflowId) ?? this.scenarios.get(workflowId.split('--')[0]!);
    if (!own) throw ApplicationFailure.nonRetryable(`no stub scenario for ${workflowId}`);
    return own;
  }

  /** Records the call around `body` and rethrows what it throws. */
  private async run<T>(
    activity: ActivityName,
    input: unknown,
    body: (s: Scenario, call: StubCall, reused: boolean) => T | Promise<T>,
  ): Promise<T> {
    const { workflowExecution, taskQueue } = Context.current().info;
    if (!workflowExecution) throw ApplicationFailure.nonRetryable(`${activity} outside a workflow`);
    const s = this.scenarioOf(workflowExecution.workflowId);
    const call: StubCall = {
      activity,
      workflowId: workflowExecution.workflowId,
      execution: workflowExecution.runId,
      taskQueue,
      input,
    };
    this.calls.push(call);
    if (s.queryStages) call.stage = await this.stageOf(activity, workflowExecution);
    const key = `${call.workflowId} ${activity} ${JSON.stringify(input)}`;
    try {
      const result = await body(s, call, this.done.has(key));
      call.outcome = 'completed';
      this.done.add(key);
      return result;
    } catch (err) {
      call.outcome = err instanceof CancelledFailure ? 'cancelled' : 'failed';
      if (err instanceof CancelledFailure) call.cancelReason = err.message;
      throw err;
    }
  }

  private async stageOf(
    activity: ActivityName,
    execution: { workflowId: string; runId: string },
  ): Promise<string> {
    const handle = this.client().workflow.getHandle(execution.workflowId, execution.runId);
    const suite = ['recordSuite', 'findFinishedRuns', 'writeLeaderboard'].includes(activity);
    return suite
      ? (await handle.query(suiteProgressQuery)).stage
      : (await handle.query(progressQuery)).stage;
  }

  /** A route job: fails, hangs or waits as the scenario says, else a small result. */
  private async route(
    s: Scenario,
    call: StubCall,
    reused: boolean,
    route: Route,
    job: { shots?: number | 'all'; seed?: number; runId: string },
  ): Promise<RouteSummary> {
    const fail = s.failRoute;
    const attempts = this.callsOf(call.workflowId, call.activity).filter(
      (c) => JSON.stringify(c.input) === JSON.stringify(call.input),
    ).length;
    if (
      fail?.activity === call.activity &&
      (fail.shots === undefined || fail.shots === job.shots) &&
      attempts <= (fail.calls ?? Infinity)
    ) {
      throw ApplicationFailure.nonRetryable(fail.message, 'StubRouteError');
    }
    const ctx = Context.current();
    if (s.hangRoutes) {
      for (;;) {
        ctx.heartbeat();
        await ctx.sleep(100);
      }
    }
    if (s.routeDelayMs) await ctx.sleep(s.routeDelayMs);
    const variant = job.shots === undefined ? undefined : `${job.shots}shot-seed${job.seed ?? 0}`;
    return {
      route,
      ...(variant ? { variant, shots: job.shots!, seed: job.seed ?? 0 } : {}),
      n: 12,
      acc1: 0.5,
      acc5: null,
      meanPerClassRecall: 0.5,
      macroF1: 0.5,
      notes: [],
      metricsUri: `${BUCKET}/runs/${job.runId}/routes/${route}/${variant ?? 'all'}/metrics.json`,
      ...(reused ? { reused: true } : {}),
    };
  }

  cpu(): CpuActivities {
    return {
      planDataset: (input) =>
        this.run('planDataset', input, (s) => {
          if (s.planError) throw ApplicationFailure.nonRetryable(s.planError, 'ConfigError');
          if (s.failPlanningOf?.includes(input.runId))
            throw ApplicationFailure.nonRetryable(`no images under ${input.runId}`, 'ConfigError');
          return stubPlan(input.runId, input.spec, s);
        }),
      zeroShot: (input) =>
        this.run('zeroShot', input, (s, c, r) => this.route(s, c, r, 'zero-shot', input)),
      fitLinearProbe: (input) =>
        this.run('fitLinearProbe', input, (s, c, r) => this.route(s, c, r, 'probe', input)),
      fitTipAdapter: (input) =>
        this.run('fitTipAdapter', input, async (s, c, r) => [
          await this.route(s, c, r, 'tip-adapter', input),
          await this.route(s, c, r, 'tip-adapter-f', input),
        ]),
      summarizeRun: (input) =>
        this.run('summarizeRun', input, () => ({
          summaryUri: `${BUCKET}/runs/${input.runId}/summary.json`,
          fewShot: [],
        })),
      compareWithPrevious: (input) =>
        this.run('compareWithPrevious', input, () => ({ history: [] })),
      writeReport: (input) =>
        this.run('writeReport', input, () => ({
          reportUri: `${BUCKET}/runs/${input.runId}/report.json`,
          htmlUri: `${BUCKET}/runs/${input.runId}/report.html`,
        })),
      recordSuite: (input) =>
        this.run('recordSuite', input, () => ({
          cells: suiteCells(parseSuiteSpec(input.spec)).length,
          suiteUri: `${BUCKET}/suites/${input.suiteId}/suite.json`,
        })),
      findFinishedRuns: (input) =>
        this.run('findFinishedRuns', input, (s) =>
          input.runIds.map((id) => s.finished?.includes(id) ?? false),
        ),
      writeLeaderboard: (input) =>
        this.run('writeLeaderboard', input, () => {
          const uri = `${BUCKET}/suites/${input.suiteId}/leaderboard`;
          const completed = new Set(
            this.calls
              .filter(
                (c) =>
                  c.activity === 'writeReport' &&
                  c.outcome === 'completed' &&
                  c.workflowId.startsWith(`${input.suiteId}--`),
              )
              .map((c) => c.workflowId),
          ).size;
          return {
            jsonUri: `${uri}.json`,
            csvUri: `${uri}.csv`,
            htmlUri: `${uri}.html`,
            completed,
            failed: input.failed.length,
          };
        }),
    };
  }

  gpu(): GpuActivities {
    return {
      extractShardImages: (input) =>
        this.run('extractShardImages', input, (s, _c, reused) => {
          const images = s.imagesPerShard ?? 4;
          const failed = s.failedPerShard ?? 0;
          return {
            shardKey: `${input.planUri.replace(/plan\.json$/, '')}shards/${input.shardIndex}.arrow`,
            rows: images - failed,
            images: images - failed,
            failed,
            reused,
            decoded: reused ? 0 : images,
            fromPixelCache: 0,
          };
        }),
      trainCoopPrompts: (input) =>
        this.run('trainCoopPrompts', input, (s, c, r) => this.route(s, c, r, 'coop', input)),
      retrieveZeroShot: (input) =>
        this.run('retrieveZeroShot', input, (_s, _c, reused) => ({
          imageToText: { '1': 0.5 },
          textToImage: { '1': 0.25 },
          images: 6,
          captions: 12,
          notes: [],
          metricsUri: `${BUCKET}/runs/${input.runId}/results/retrieval/metrics.json`,
          ...(reused ? { reused: true } : {}),
        })),
    };
  }
}

/** The plan a planning activity would return: the spec's extraction settings, a small grid. */
function stubPlan(runId: string, spec: unknown, s: Scenario): PlanSummary {
  const shards = s.shards ?? 3;
  const images = shards * (s.imagesPerShard ?? 4);
  return {
    planUri: `${BUCKET}/runs/${runId}/plan.json`,
    fingerprint: 'stub-fingerprint',
    images,
    classes: 3,
    shards,
    bySplit: { train: images / 2, val: 0, test: images / 2 },
    skipped: 0,
    extraction: { ...parseRunSpec(spec).extraction, parallelism: 2 },
    routes: {
      zeroShot: true,
      coop: true,
      probe: true,
      probeFullData: true,
      tipAdapter: true,
      retrieval: s.retrieval ?? false,
      zeroShotProtocol: 'all-classes',
      coopProtocol: 'all-classes',
      shots: [1, 2],
      seeds: [1],
      coopHeartbeatTimeoutSeconds: 30,
    },
  };
}
