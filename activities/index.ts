/**
 * @file The activity sets of the two worker kinds. Each activity is registered under the name of
 * its file (activities/<kebab-name>.ts exports <name>Activity) and of its stub in
 * workflows/activity-stubs.ts, and every one goes through `registered`: withRunIdentity (an
 * input's runId / scheduleId must be the calling workflow's own) and withPermanentErrors, the one
 * way an activity fails permanently.
 */
import type { ClipevalEnv } from '../core/config/env';
import { ObjectStore } from '../core/storage/object-store';
import { WorkerResources } from '../core/worker-resources';
import { compareWithPreviousActivity } from './compare-with-previous';
import { extractShardImagesActivity } from './extract-shard-images';
import { findFinishedRunsActivity } from './find-finished-runs';
import { fitLinearProbeActivity } from './fit-linear-probe';
import { fitTipAdapterActivity } from './fit-tip-adapter';
import { withPermanentErrors } from './permanent-errors';
import { planDatasetActivity } from './plan-dataset';
import { recordSuiteActivity } from './record-suite';
import { retrieveZeroShotActivity } from './retrieve-zero-shot';
import { withRunIdentity } from './run-identity';
import { summarizeRunActivity } from './summarize-run';
import { trainCoopPromptsActivity } from './train-coop-prompts';
import { writeLeaderboardActivity } from './write-leaderboard';
import { writeReportActivity } from './write-report';
import { zeroShotActivity } from './zero-shot';

/** What every registered activity is wrapped in (outermost first). */
function registered<T extends Record<string, (...args: never[]) => Promise<unknown>>>(set: T): T {
  return withPermanentErrors(withRunIdentity(set));
}

/**
 * What a worker's activities share: the output bucket, and `resources`, the worker's bundles and
 * ONNX Runtime sessions (close it when the worker stops).
 */
function workerDeps(env: ClipevalEnv) {
  const store = ObjectStore.connect(env.s3);
  const resources = new WorkerResources(
    store,
    env.bundleCache,
    env.onnx,
    env.sources,
    env.limits,
    env.decode.threads,
  );
  return { store, resources };
}

/**
 * Activities served by `cpu` workers: planning, zero-shot, the linear probe, Tip-Adapter, the summary, the
 * comparison of scheduled runs and the report; and for suites, their record, the check for
 * finished children and the leaderboard.
 */
export function createCpuActivities(env: ClipevalEnv) {
  const { store, resources } = workerDeps(env);
  return {
    activities: registered({
      planDataset: planDatasetActivity({
        store,
        limits: env.planning,
        sources: env.sources,
        ...(env.imageGraph ? { imageGraph: env.imageGraph } : {}),
      }),
      zeroShot: zeroShotActivity({ store, resources }),
      fitLinearProbe: fitLinearProbeActivity({ store, resources, onnx: env.onnx }),
      fitTipAdapter: fitTipAdapterActivity({ store, resources }),
      summarizeRun: summarizeRunActivity({ store }),
      compareWithPrevious: compareWithPreviousActivity({ store }),
      writeReport: writeReportActivity({ store, resources }),
      recordSuite: recordSuiteActivity({ store }),
      findFinishedRuns: findFinishedRunsActivity({ store }),
      writeLeaderboard: writeLeaderboardActivity({ store }),
    }),
    resources,
  };
}

/** Activities served by `gpu` workers: embedding extraction, CoOp training and zero-shot retrieval. */
export function createGpuActivities(env: ClipevalEnv) {
  const { store, resources } = workerDeps(env);
  return {
    activities: registered({
      extractShardImages: extractShardImagesActivity({ store, resources }),
      trainCoopPrompts: trainCoopPromptsActivity({ store, resources }),
      retrieveZeroShot: retrieveZeroShotActivity({ store, resources }),
    }),
    resources,
  };
}

export type CpuActivities = ReturnType<typeof createCpuActivities>['activities'];
export type GpuActivities = ReturnType<typeof createGpuActivities>['activities'];
