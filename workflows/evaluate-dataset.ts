import { ApplicationFailure, isCancellation, setHandler, workflowInfo } from '@temporalio/workflow';
import type { PlanSummary } from '../core/dataset/plan';
import type { RouteSummary } from '../core/routes/route-result';
import type { RouteInput } from '../core/routes/route-inputs';
import type { RetrievalSummary } from '../core/routes/retrieval/retrieval-result';
import {
  compareWithPrevious,
  extractShardImagesOn,
  fitLinearProbe,
  fitTipAdapter,
  planDataset,
  retrieveZeroShotOn,
  summarizeRun,
  trainCoopPromptsOn,
  writeReport,
  zeroShot,
} from './activity-stubs';
import {
  type EvaluationSummary,
  type ExtractionProgress,
  type RoutesProgress,
  type RunProgress,
  progressQuery,
} from '../contract/progress';
import { forEachLimited } from '../core/util/concurrency';
import { failureMessage } from '../core/util/failure-message';
import { runIdentityProblem } from '../core/util/run-identity';

export interface EvaluateDatasetInput {
  /**
   * The run id (S3 keys live under runs/<runId>/): the workflow id, or the workflow refuses to run.
   * Absent for runs a schedule starts: Temporal names them `<schedule id>-<time>`, and that
   * workflow id becomes the run id.
   */
  runId?: string;
  /** The run spec (validated by the planning activity: workflow code does no I/O or parsing). */
  spec: unknown;
  /** Resolved by the client: the spec's model.bundle or the deployment's default. */
  bundle: string;
  queues: { gpu: string };
  /**
   * Set by `clipeval schedule create`: scheduled runs are compared with the previous success. The
   * workflow id must be `<id>-<time>`, the name Temporal gives the schedule's runs.
   */
  schedule?: { id: string };
}

/** The input with its run id resolved: what every stage below works with. */
type Run = EvaluateDatasetInput & { runId: string };

/**
 * One evaluation run: plan the dataset, encode its images once into embedding shards, run the
 * three decision routes on those shards (zero-shot, CoOp, linear probe), summarise, for a
 * scheduled run compare with the schedule's previous successful run, and write the report.
 */
export async function evaluateDataset(input: EvaluateDatasetInput): Promise<EvaluationSummary> {
  const run: Run = { ...input, runId: ownRunId(input) };
  let progress: RunProgress = { runId: run.runId, stage: 'planning' };
  setHandler(progressQuery, () => progress);

  const plan = await planDataset({ runId: run.runId, spec: run.spec });

  const extracted = newExtractionProgress(plan);
  progress = { ...progress, stage: 'extracting', plan, extraction: extracted };
  const shardKeys = await extractEmbeddings(run, plan, extracted);

  const routes: RoutesProgress = { done: 0, total: 0, failed: [] };
  progress = { ...progress, stage: 'routes', routes };
  const { results, retrieval } = await runRoutesAndRetrieval(run, plan, routes);

  progress = { ...progress, stage: 'summarizing' };
  const summary = await summarizeRun({
    runId: run.runId,
    planUri: plan.planUri,
    routes: results,
    ...(retrieval ? { retrieval } : {}),
    extraction: {
      shards: extracted.shards,
      shardsReused: extracted.shardsReused,
      imagesDone: extracted.imagesDone,
      imagesFailed: extracted.imagesFailed,
      imagesDecoded: extracted.imagesDecoded,
      imagesFromPixelCache: extracted.imagesFromPixelCache,
    },
  });

  // After every evaluation stage succeeded, so the schedule's baseline only ever advances to a
  // complete run. `compared.history` holds the schedule's recent runs: the report's trend.
  progress = { ...progress, stage: 'comparing' };
  const compared = run.schedule
    ? await compareWithPrevious({
        runId: run.runId,
        scheduleId: run.schedule.id,
        startedAt: workflowInfo().startTime.toISOString(),
        spec: run.spec,
        routes: results,
        ...(retrieval ? { retrieval } : {}),
      })
    : undefined;

  progress = { ...progress, stage: 'reporting' };
  const report = await writeReport({
    runId: run.runId,
    planUri: plan.planUri,
    bundle: run.bundle,
    routes: results,
    ...(retrieval ? { retrieval } : {}),
    fewShot: summary.fewShot,
    summaryUri: summary.summaryUri,
    ...(compared?.history ? { history: compared.history } : {}),
  });

  progress = { ...progress, stage: 'completed' };
  return {
    runId: run.runId,
    plan,
    bundle: run.bundle,
    extraction: { ...extracted, shardKeys },
    routes: results,
    ...(retrieval ? { retrieval } : {}),
    summaryUri: summary.summaryUri,
    fewShot: summary.fewShot,
    report,
    ...(run.schedule ? { schedule: run.schedule } : {}),
    ...(compared?.comparison ? { comparison: compared.comparison } : {}),
  };
}

/**
 * The run id is the workflow's own id, and a schedule may be claimed only by its own runs: S3 keys
 * are named after both, so a client cannot start a workflow that writes over another run's results
 * or another schedule's baseline (core/util/run-identity.ts; the activities check it again).
 */
function ownRunId(input: EvaluateDatasetInput): string {
  const { workflowId } = workflowInfo();
  const claims = { runId: input.runId, scheduleId: input.schedule?.id };
  const problem = runIdentityProblem(workflowId, claims);
  if (problem) throw ApplicationFailure.nonRetryable(`Refusing to run: ${problem}.`, 'RunIdentity');
  return workflowId;
}

/** Extraction on the gpu queue, a sliding window of shards at a time. */
async function extractEmbeddings(
  input: Run,
  plan: PlanSummary,
  progress: ExtractionProgress,
): Promise<string[]> {
  const { batchSize, concurrency, parallelism, heartbeatTimeoutSeconds } = plan.extraction;
  const { extractShardImages } = extractShardImagesOn(input.queues.gpu, heartbeatTimeoutSeconds);
  const shardKeys: string[] = new Array<string>(plan.shards);
  await forEachLimited(plan.shards, parallelism, async (shardIndex) => {
    const r = await extractShardImages({
      planUri: plan.planUri,
      shardIndex,
      bundle: input.bundle,
      batchSize,
      concurrency,
      augment: augmentOf(plan),
    });
    shardKeys[shardIndex] = r.shardKey;
    progress.shardsDone++;
    progress.shardsReused += r.reused ? 1 : 0;
    progress.imagesDone += r.images;
    progress.rows += r.rows;
    progress.imagesFailed += r.failed;
    // Absent from workers that predate the pixel cache.
    progress.imagesDecoded += r.decoded ?? 0;
    progress.imagesFromPixelCache += r.fromPixelCache ?? 0;
  });
  if (progress.imagesDone === 0) {
    throw ApplicationFailure.nonRetryable(
      `No image of ${plan.images} could be decoded (${progress.imagesFailed} failed); the shard manifests list each reason.`,
      'NoValidImages',
    );
  }
  return shardKeys;
}

/**
 * The decision routes and, for a dataset with captions, zero-shot retrieval (its own gpu
 * activity), side by side. Both are waited for even if one fails, so what finished is saved for a
 * resumed run; a cancellation closes the run as CANCELLED, any other failure fails it.
 */
async function runRoutesAndRetrieval(
  input: Run,
  plan: PlanSummary,
  progress: RoutesProgress,
): Promise<{ results: RouteSummary[]; retrieval?: RetrievalSummary }> {
  const [routes, retrieval] = await Promise.allSettled([
    runRoutes(input, plan, progress),
    plan.routes.retrieval ? runRetrieval(input, plan, progress) : Promise.resolve(undefined),
  ]);
  const failed = [routes, retrieval].filter((s) => s.status === 'rejected');
  const cancelled = failed.find((s) => isCancellation(s.reason));
  if (cancelled) throw cancelled.reason;
  if (failed.length > 0) throw failed[0]!.reason;
  return {
    results: (routes as PromiseFulfilledResult<RouteSummary[]>).value,
    ...(retrieval.status === 'fulfilled' && retrieval.value ? { retrieval: retrieval.value } : {}),
  };
}

/** Zero-shot retrieval on the gpu queue: one job in the routes' progress. */
async function runRetrieval(
  input: Run,
  plan: PlanSummary,
  progress: RoutesProgress,
): Promise<RetrievalSummary> {
  const { retrieveZeroShot } = retrieveZeroShotOn(input.queues.gpu);
  progress.total++;
  try {
    return await retrieveZeroShot({
      runId: input.runId,
      planUri: plan.planUri,
      bundle: input.bundle,
      augment: augmentOf(plan),
    });
  } catch (err) {
    if (isCancellation(err)) throw err;
    const message = `zero-shot retrieval: ${failureMessage(err)}`;
    progress.failed.push(message);
    throw ApplicationFailure.nonRetryable(
      `Zero-shot retrieval failed (finished routes are saved; resume reuses them):\n${message}`,
      'RouteFailed',
    );
  } finally {
    progress.done++;
  }
}

/**
 * The routes read the same shards and run in parallel: zero-shot, the probe and Tip-Adapter on the
 * cpu queue, CoOp on the gpu queue, one activity per (shots, seed). Every route is waited for even if
 * one fails, so finished results are saved (and reused by a resumed run); then failures fail the run.
 */
async function runRoutes(
  input: Run,
  plan: PlanSummary,
  progress: RoutesProgress,
): Promise<RouteSummary[]> {
  const ref: RouteInput = {
    runId: input.runId,
    planUri: plan.planUri,
    bundle: input.bundle,
    augment: augmentOf(plan),
  };
  const { routes } = plan;
  const grid = routes.shots.flatMap((shots) => routes.seeds.map((seed) => ({ shots, seed })));
  const { trainCoopPrompts } = trainCoopPromptsOn(
    input.queues.gpu,
    routes.coopHeartbeatTimeoutSeconds,
  );
  // A job returns one result, or several (Tip-Adapter and Tip-Adapter-F come from one activity).
  const jobs: { name: string; run: () => Promise<RouteSummary | RouteSummary[]> }[] = [
    ...(routes.zeroShot ? [{ name: 'zero-shot', run: () => zeroShot(ref) }] : []),
    ...(routes.probe && routes.probeFullData
      ? [
          {
            name: 'probe all',
            run: () => fitLinearProbe({ ...ref, shots: 'all' as const, seed: 0 }),
          },
        ]
      : []),
    ...(routes.probe
      ? grid.map((g) => ({
          name: `probe ${g.shots}-shot seed ${g.seed}`,
          run: () => fitLinearProbe({ ...ref, ...g }),
        }))
      : []),
    ...(routes.coop
      ? grid.map((g) => ({
          name: `coop ${g.shots}-shot seed ${g.seed}`,
          run: () => trainCoopPrompts({ ...ref, ...g }),
        }))
      : []),
    ...(routes.tipAdapter
      ? grid.map((g) => ({
          name: `tip-adapter ${g.shots}-shot seed ${g.seed}`,
          run: () => fitTipAdapter({ ...ref, ...g }),
        }))
      : []),
  ];
  progress.total += jobs.length;
  // This function's own failures: retrieval, beside it, adds its own to progress.failed.
  const failed: string[] = [];
  const settled = await Promise.allSettled(
    jobs.map(async (job) => {
      try {
        return await job.run();
      } catch (err) {
        if (!isCancellation(err)) {
          failed.push(`${job.name}: ${failureMessage(err)}`);
          progress.failed.push(failed[failed.length - 1]!);
        }
        throw err;
      } finally {
        progress.done++;
      }
    }),
  );
  // A cancelled run closes as CANCELLED (not as a route failure), so resume knows to continue it.
  const cancelled = settled.find((s) => s.status === 'rejected' && isCancellation(s.reason));
  if (cancelled) throw (cancelled as PromiseRejectedResult).reason;
  if (failed.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `${failed.length} of ${jobs.length} route(s) failed (finished ones are saved; resume reuses them):\n${failed.join('\n')}`,
      'RouteFailed',
    );
  }
  return settled.flatMap((s) => (s as PromiseFulfilledResult<RouteSummary | RouteSummary[]>).value);
}

function augmentOf(plan: PlanSummary) {
  return { views: plan.extraction.augmentedViews, seed: plan.extraction.augmentSeed };
}

function newExtractionProgress(plan: PlanSummary): ExtractionProgress {
  return {
    shards: plan.shards,
    shardsDone: 0,
    shardsReused: 0,
    imagesDone: 0,
    rows: 0,
    imagesFailed: 0,
    imagesDecoded: 0,
    imagesFromPixelCache: 0,
  };
}
