import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow';
import { defaultPayloadConverter } from '@temporalio/common';
import type { ClipevalEnv } from '../core/config/env';
import { connectTemporal } from './connect';
import type { RunSpec } from '../core/config/run-spec';
import { assertRunId } from '../core/storage/keys';
import { parseS3Uri } from '../core/storage/s3-uri';
import { evaluateDataset } from '../workflows';
import type { EvaluateDatasetInput } from '../workflows/evaluate-dataset';
import {
  type ActivityName,
  type CoopHeartbeat,
  type EvaluationSummary,
  type RunProgress,
  progressQuery,
} from '../contract/progress';
import { failureMessage } from '../core/util/failure-message';
import { UsageError } from './errors';

/** Connects to Temporal; an unreachable server is a UsageError that says where clipeval looked. */
export async function connectClient(env: ClipevalEnv): Promise<Client> {
  const connection = await connectTemporal(env, (options) =>
    Connection.connect({ ...options, connectTimeout: 5000 }),
  );
  return new Client({ connection, namespace: env.temporal.namespace });
}

/** The longest dataset name a default run id keeps: the id is at most 128 characters. */
const MAX_RUN_NAME = 128 - '-20260101-120000'.length;

/**
 * A readable default run id: `<dataset folder>-<UTC timestamp>`. Always a valid run id, whatever
 * the folder is called: characters outside A-Z a-z 0-9 . _ - become `-` (runs of them one), the
 * name starts with a letter or digit (`dataset` if nothing is left) and is cut to fit 128.
 */
export function defaultRunId(spec: RunSpec, now = new Date()): string {
  const { key } = parseS3Uri(spec.dataset.uri);
  const last =
    key
      .split('/')
      .filter(Boolean)
      .pop()
      ?.replace(/\.[^.]+$/, '') ?? '';
  const name = last
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, MAX_RUN_NAME);
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `${name || 'dataset'}-${stamp}`;
}

/**
 * Starts an evaluation run; the workflow id is the run id. A run id can be reused only after
 * that run failed (that is how a failed run is resumed): a completed run is never overwritten.
 */
export async function startEvaluation(
  client: Client,
  env: ClipevalEnv,
  spec: RunSpec,
  runId = defaultRunId(spec),
): Promise<{ runId: string }> {
  assertRunId(runId);
  try {
    await client.workflow.start(evaluateDataset, {
      taskQueue: env.queues.cpu,
      workflowId: runId,
      args: [
        {
          runId,
          spec,
          bundle: spec.model.bundle ?? env.defaultBundle,
          queues: { gpu: env.queues.gpu },
        },
      ],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new UsageError(
        `Run "${runId}" already exists and has not failed; choose another --run-id.`,
      );
    }
    throw err;
  }
  return { runId };
}

export type RunOutcome =
  | { runId: string; status: 'COMPLETED'; summary: EvaluationSummary }
  | { runId: string; status: 'FAILED' | 'TERMINATED' | 'CANCELLED' | 'TIMED_OUT'; error: string }
  | { runId: string; status: 'RUNNING'; progress?: RunProgress; training?: TrainingProgress[] };

/** A CoOp job's last heartbeat (CoopHeartbeat, contract/progress.ts): where its training is. */
export type TrainingProgress = Pick<CoopHeartbeat, 'variant' | 'epoch' | 'epochs' | 'loss'>;

/** The activity whose heartbeats carry CoOp's progress. */
const COOP: ActivityName = 'trainCoopPrompts';

/** Waits for a run to finish and returns its outcome (never throws for a failed run). */
export async function waitForRun(client: Client, runId: string): Promise<RunOutcome> {
  try {
    const summary = (await client.workflow.getHandle(runId).result()) as EvaluationSummary;
    return { runId, status: 'COMPLETED', summary };
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const status = (await client.workflow.getHandle(runId).describe()).status.name;
      return {
        runId,
        status: status === 'RUNNING' ? 'FAILED' : (status as 'FAILED'),
        error: failureMessage(err),
      };
    }
    throw err;
  }
}

/** Current state of a run: progress while running, the summary or error once closed. */
export async function runStatus(client: Client, runId: string): Promise<RunOutcome> {
  const handle = client.workflow.getHandle(runId);
  const { status } = await describeRun(handle, runId);
  if (status === 'RUNNING' || status === 'CONTINUED_AS_NEW') {
    let progress: RunProgress | undefined;
    try {
      progress = await handle.query(progressQuery);
    } catch {
      progress = undefined; // no worker has picked the run up yet
    }
    const training = await coopTraining(handle);
    return {
      runId,
      status: 'RUNNING',
      ...(progress ? { progress } : {}),
      ...(training.length ? { training } : {}),
    };
  }
  return waitForRun(client, runId);
}

/** CoOp's epoch and loss, from the heartbeat details of its pending activities. */
async function coopTraining(handle: WorkflowHandle): Promise<TrainingProgress[]> {
  const pending = (await handle.describe()).raw.pendingActivities ?? [];
  return pending.flatMap((a) => {
    const payload = a.heartbeatDetails?.payloads?.[0];
    if (a.activityType?.name !== COOP || !payload) return [];
    const d = defaultPayloadConverter.fromPayload<Partial<CoopHeartbeat>>(payload);
    return d.epoch !== undefined && d.variant !== undefined
      ? [{ variant: d.variant, epoch: d.epoch, epochs: d.epochs ?? 0, loss: d.loss ?? Number.NaN }]
      : [];
  });
}

/**
 * Waits for a run like waitForRun, calling `onProgress` with its status every `everyMs` while it
 * runs (the CLI draws a progress line from it on a terminal).
 */
export async function watchRun(
  client: Client,
  runId: string,
  onProgress: (o: RunOutcome) => void,
  everyMs = 1000,
): Promise<RunOutcome> {
  let done = false;
  const result = waitForRun(client, runId).finally(() => (done = true));
  while (!done) {
    await Promise.race([result, new Promise((r) => setTimeout(r, everyMs))]);
    if (done) break;
    const now = await runStatus(client, runId).catch(() => undefined);
    if (now?.status === 'RUNNING') onProgress(now);
  }
  return result;
}

/** The latest execution's status and memo; an unknown run id is a UsageError (exit 2). */
async function describeRun(
  handle: WorkflowHandle,
  runId: string,
): Promise<{ status: string; memo?: Record<string, unknown> }> {
  try {
    const d = await handle.describe();
    return { status: d.status.name, ...(d.memo ? { memo: d.memo } : {}) };
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError')
      throw new UsageError(`No run with id "${runId}".`);
    throw err;
  }
}

export type ResumeResult =
  | { runId: string; resumed: true; previousStatus: string }
  | { runId: string; resumed: false; status: 'RUNNING' };

/**
 * Continues a failed, cancelled, terminated or timed-out run as a new execution with the same
 * workflow id and the same input (read from the latest execution's first history event). The
 * activities reuse everything the earlier executions finished: shards, prototypes, CoOp
 * checkpoints, route results. A running run is left alone; a completed one is a UsageError.
 */
export async function resumeEvaluation(client: Client, runId: string): Promise<ResumeResult> {
  const handle = client.workflow.getHandle(runId);
  const { status, memo } = await describeRun(handle, runId);
  if (status === 'RUNNING') return { runId, resumed: false, status: 'RUNNING' };
  if (status === 'COMPLETED') throw new UsageError(`Run "${runId}" completed, nothing to resume.`);
  const started = (await handle.fetchHistory()).events?.[0]
    ?.workflowExecutionStartedEventAttributes;
  const taskQueue = started?.taskQueue?.name;
  if (!started || !taskQueue) throw new Error(`Run "${runId}" has no start event in its history.`);
  const [input] = await decodeArrayFromPayloads(
    client.options.loadedDataConverter,
    started.input?.payloads,
  );
  try {
    await client.workflow.start(evaluateDataset, {
      taskQueue,
      workflowId: runId,
      args: [input as EvaluateDatasetInput],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      ...(memo ? { memo } : {}),
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new UsageError(`Run "${runId}" was resumed or restarted meanwhile.`);
    throw err;
  }
  return { runId, resumed: true, previousStatus: status };
}

/**
 * Requests cancellation of a running run. The run closes as CANCELLED at once; its running
 * activities stop at their next heartbeat, and `resumeEvaluation` continues it later.
 */
export async function cancelEvaluation(client: Client, runId: string): Promise<{ runId: string }> {
  const handle = client.workflow.getHandle(runId);
  const { status } = await describeRun(handle, runId);
  if (status !== 'RUNNING')
    throw new UsageError(`Run "${runId}" is ${status.toLowerCase()}, not running.`);
  await handle.cancel();
  return { runId };
}

export interface RunListing {
  runId: string;
  status: string;
  startTime: string;
  closeTime?: string;
  /** For runs a schedule started. */
  scheduleId?: string;
}

/** Memo key naming the schedule that started a run (kept by resume). */
export const SCHEDULE_MEMO = 'clipevalSchedule';

/** Recent evaluation runs, newest first, from Temporal's visibility store (one row per execution). */
export async function listEvaluations(
  client: Client,
  opts: { limit?: number } = {},
): Promise<RunListing[]> {
  const limit = opts.limit ?? 20;
  const out: RunListing[] = [];
  if (limit <= 0) return out;
  for await (const info of client.workflow.list({ query: 'WorkflowType = "evaluateDataset"' })) {
    const scheduleId = info.memo?.[SCHEDULE_MEMO];
    out.push({
      runId: info.workflowId,
      status: info.status.name,
      startTime: info.startTime.toISOString(),
      ...(info.closeTime ? { closeTime: info.closeTime.toISOString() } : {}),
      ...(typeof scheduleId === 'string' ? { scheduleId } : {}),
    });
    if (out.length >= limit) break;
  }
  return out;
}
