/**
 * @file The activity stubs of the evaluation and suite workflows, one per stage, with timeouts and retries
 * chosen for each stage's nature, each named as its activity is registered (activities/index.ts).
 * Errors no retry can fix are failed as non-retryable by the activities themselves
 * (activities/permanent-errors.ts), so the retry policies below only meet transient faults.
 *
 * Cancellation uses the default TRY_CANCEL: a cancelled run closes as soon as Temporal records
 * the request, and the running activities learn it from their next heartbeat response (at most
 * 0.8 x their heartbeat timeout later) and stop between batches without writing anything; what
 * they had finished is saved and a resumed run reuses it.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { CpuActivities, GpuActivities } from '../activities';
import type { ActivityName } from '../contract/progress';

// One name per activity: the registered activities are exactly those ACTIVITY_STAGES
// (progress.ts) gives a stage to, or this fails to compile.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Expect<T extends true> = T;
export type RegisteredActivitiesHaveStages = Expect<
  Same<keyof CpuActivities | keyof GpuActivities, ActivityName>
>;

/** Exponential backoff (x2) between attempts. */
const backoff = (initialInterval: string, maximumInterval: string, maximumAttempts: number) => ({
  initialInterval,
  backoffCoefficient: 2,
  maximumInterval,
  maximumAttempts,
});

// Planning lists the dataset (can be 100k+ objects): generous start-to-close, heartbeats per
// listing page so a dead worker is noticed in a minute.
export const { planDataset } = proxyActivities<CpuActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: backoff('2s', '1 minute', 10),
});

// Extraction (gpu queue): a shard can take minutes (bundle fetch, session creation, 1024
// images): the heartbeat timeout from the run spec, not start-to-close, detects a dead worker,
// and a retry re-encodes only that shard. The queue and heartbeat timeout come with each run:
// `const { extractShardImages } = extractShardImagesOn(queue, seconds)`.
export const extractShardImagesOn = (taskQueue: string, heartbeatSeconds: number) =>
  proxyActivities<Pick<GpuActivities, 'extractShardImages'>>({
    taskQueue,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: heartbeatSeconds * 1000,
    retry: backoff('5s', '5 minutes', 8),
  });

// Zero-shot (cpu): encodes classes x templates prompts (heartbeat per batch) then scores the
// test split; minutes even for 1,000 classes x 80 templates on CPU.
export const { zeroShot } = proxyActivities<CpuActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '5 minutes',
  retry: backoff('5s', '2 minutes', 5),
});

// The probe (cpu): L-BFGS or AdamW over the train features, heartbeats per iteration; a retry
// starts the fit again (minutes), so a few attempts suffice.
export const { fitLinearProbe } = proxyActivities<CpuActivities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '5 minutes',
  retry: backoff('5s', '2 minutes', 5),
});

// Tip-Adapter and Tip-Adapter-F (cpu): a grid search over the few-shot val features and, for -F,
// epochs over the k-shot cache: minutes for 100 classes, hours for 1,000 (docs/routes.md);
// heartbeats per search row and training step. A retry starts again (a finished result is reused).
export const { fitTipAdapter } = proxyActivities<CpuActivities>({
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '5 minutes',
  retry: backoff('5s', '2 minutes', 5),
});

// CoOp (gpu queue): hours for 200 epochs on many classes; heartbeats every step. A retry resumes
// from the last epoch checkpoint, so retries are cheap and many are allowed. The queue and
// heartbeat timeout come with each run: `const { trainCoopPrompts } = trainCoopPromptsOn(...)`.
export const trainCoopPromptsOn = (taskQueue: string, heartbeatSeconds: number) =>
  proxyActivities<Pick<GpuActivities, 'trainCoopPrompts'>>({
    taskQueue,
    startToCloseTimeout: '24 hours',
    heartbeatTimeout: heartbeatSeconds * 1000,
    retry: backoff('10s', '5 minutes', 20),
  });

// Zero-shot retrieval (gpu queue): encodes every caption (heartbeat per batch; content-addressed
// blocks, so a retry re-encodes at most one block) then ranks the test images against all captions
// in blocks (heartbeat per block): minutes for 5,000 images x 25,000 captions.
export const retrieveZeroShotOn = (taskQueue: string) =>
  proxyActivities<Pick<GpuActivities, 'retrieveZeroShot'>>({
    taskQueue,
    startToCloseTimeout: '4 hours',
    heartbeatTimeout: '5 minutes',
    retry: backoff('5s', '2 minutes', 5),
  });

// The run summary and, for scheduled runs, the comparison with the schedule's previous success
// (cpu): small JSON reads and writes, seconds.
export const { summarizeRun, compareWithPrevious } = proxyActivities<CpuActivities>({
  startToCloseTimeout: '10 minutes',
  retry: backoff('2s', '1 minute', 10),
});

// The report (cpu): reads the routes' results and every shard manifest (failed images), renders
// the charts to SVG and writes report.html and report.json; about a second plus the reads.
export const { writeReport } = proxyActivities<CpuActivities>({
  startToCloseTimeout: '20 minutes',
  heartbeatTimeout: '2 minutes',
  retry: backoff('2s', '1 minute', 10),
});

// A suite's record (validates every cell, writes suite.json) and the check for children an
// earlier execution finished (one HEAD per child of the execution's slice): small, seconds.
export const { recordSuite, findFinishedRuns } = proxyActivities<CpuActivities>({
  startToCloseTimeout: '10 minutes',
  retry: backoff('2s', '1 minute', 10),
});

// The leaderboard (cpu): reads every cell's summary and predictions and bootstraps each cell and
// pair, one dataset at a time: seconds for a few cells, tens of minutes for 100 models x 40 large
// datasets (docs/operations.md); heartbeats per cell read and per dataset scored.
export const { writeLeaderboard } = proxyActivities<CpuActivities>({
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '5 minutes',
  retry: backoff('5s', '2 minutes', 5),
});
