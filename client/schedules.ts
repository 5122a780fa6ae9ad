/**
 * @file Nightly (or any cron) re-evaluation with Temporal Schedules. Each action starts
 * `evaluateDataset` with the validated spec; Temporal names the run `<schedule id>-<time>`, and
 * the workflow compares it with the schedule's previous successful run.
 */
import {
  type Client,
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  type ScheduleOverlapPolicy,
} from '@temporalio/client';
import type { ClipevalEnv } from '../core/config/env';
import type { RunSpec } from '../core/config/run-spec';
import type { SuiteSpec } from '../core/config/suite-spec';
import { MAX_SUITE_SCHEDULE_ID, assertScheduleId, assertSuiteId } from '../core/storage/keys';
import { evaluateDataset, evaluateSuite } from '../workflows';
import type { EvaluateDatasetInput } from '../workflows/evaluate-dataset';
import type { EvaluateSuiteInput } from '../workflows/evaluate-suite';
import { UsageError } from './errors';
import { SCHEDULE_MEMO } from './evaluations';

/** The CLI's names for Temporal's overlap policies (what happens when a run is still going). */
export const OVERLAP_POLICIES = {
  skip: 'SKIP',
  'buffer-one': 'BUFFER_ONE',
  'allow-all': 'ALLOW_ALL',
} as const satisfies Record<string, ScheduleOverlapPolicy>;
export type OverlapOption = keyof typeof OVERLAP_POLICIES;

export interface CreateScheduleOptions {
  scheduleId: string;
  /** Standard 5-field cron, e.g. "0 2 * * *". */
  cron: string;
  /** IANA name, e.g. Europe/Paris (default UTC). */
  timezone?: string;
  /** How late a missed run may still start after an outage: "1h", "10 minutes" (default 1h). */
  catchupWindow?: string;
  /** Default skip: a run still going makes the next one skip. */
  overlap?: OverlapOption;
  paused?: boolean;
}

/** Creates the schedule; `spec` must already be validated (loadRunSpec / parseRunSpec). */
export async function createSchedule(
  client: Client,
  env: ClipevalEnv,
  spec: RunSpec,
  opts: CreateScheduleOptions,
): Promise<{ scheduleId: string }> {
  const scheduleId = usageCheck(() => assertScheduleId(opts.scheduleId));
  const input: EvaluateDatasetInput = {
    spec,
    bundle: spec.model.bundle ?? env.defaultBundle,
    queues: { gpu: env.queues.gpu },
    schedule: { id: scheduleId },
  };
  return createWith(client, env, opts, {
    workflow: evaluateDataset,
    input,
    dataset: spec.dataset.uri,
  });
}

/**
 * Creates a schedule of suites (`clipeval schedule create --suite`): each action starts
 * `evaluateSuite`, whose id (and suite id) Temporal names `<schedule id>-<time>`, so every night
 * is its own suite and leaderboard; content-addressed shards make later nights encode only new
 * images. The schedule id is shorter than a run's: a suite id is at most 60 characters.
 */
export async function createSuiteSchedule(
  client: Client,
  env: ClipevalEnv,
  spec: SuiteSpec,
  opts: CreateScheduleOptions,
): Promise<{ scheduleId: string }> {
  const scheduleId = usageCheck(() => assertScheduleId(opts.scheduleId));
  if (scheduleId.length > MAX_SUITE_SCHEDULE_ID)
    throw new UsageError(
      `Suite schedule id "${scheduleId}" is too long: at most ${MAX_SUITE_SCHEDULE_ID} characters (each night's suite id is "<id>-<time>", at most 60).`,
    );
  usageCheck(() => assertSuiteId(`${scheduleId}-2026-01-01T02:00:00Z`));
  const input: EvaluateSuiteInput = { spec, queues: { gpu: env.queues.gpu } };
  const what = `suite: ${spec.models.length} models x ${spec.datasets.length} datasets`;
  return createWith(client, env, opts, { workflow: evaluateSuite, input, dataset: what });
}

async function createWith(
  client: Client,
  env: ClipevalEnv,
  opts: CreateScheduleOptions,
  action:
    | { workflow: typeof evaluateDataset; input: EvaluateDatasetInput; dataset: string }
    | { workflow: typeof evaluateSuite; input: EvaluateSuiteInput; dataset: string },
): Promise<{ scheduleId: string }> {
  const { scheduleId } = opts;
  try {
    await client.schedule.create({
      scheduleId,
      spec: {
        cronExpressions: [opts.cron],
        ...(opts.timezone ? { timezone: opts.timezone } : {}),
      },
      action: {
        type: 'startWorkflow',
        // By name: the two workflows' inputs differ, and the name is what Temporal records.
        workflowType: action.workflow.name,
        args: [action.input],
        taskQueue: env.queues.cpu,
        // Temporal appends `-<RFC 3339 time>` to each run's id; the workflow and its activities
        // accept `schedule.id` only from such a run (core/util/run-identity.ts).
        workflowId: scheduleId,
        memo: { [SCHEDULE_MEMO]: scheduleId },
      },
      policies: {
        overlap: OVERLAP_POLICIES[opts.overlap ?? 'skip'],
        catchupWindow: opts.catchupWindow ?? '1h',
      },
      memo: { cron: opts.cron, dataset: action.dataset },
      state: { paused: opts.paused ?? false },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning)
      throw new UsageError(`Schedule "${scheduleId}" already exists.`);
    // Temporal rejects a bad cron, time zone or catch-up window: the user's input.
    throw new UsageError(`Cannot create schedule "${scheduleId}": ${(err as Error).message}`);
  }
  return { scheduleId };
}

export interface ScheduleInfo {
  scheduleId: string;
  cron?: string;
  timezone?: string;
  dataset?: string;
  overlap: string;
  catchupWindowMs: number;
  paused: boolean;
  note?: string;
  nextRuns: string[];
  /** Runs started, oldest first (Temporal keeps the last few), with the runs still going. */
  recentRuns: { runId: string; scheduledAt: string; startedAt: string }[];
  running: string[];
  actionsTaken: number;
  /** Actions the overlap policy skipped because a run was still going. */
  skippedOverlap: number;
  missedCatchupWindow: number;
}

export async function describeSchedule(client: Client, scheduleId: string): Promise<ScheduleInfo> {
  const d = await withSchedule(scheduleId, () => client.schedule.getHandle(scheduleId).describe());
  const memo = d.memo ?? {};
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const cron = text(memo.cron);
  const dataset = text(memo.dataset);
  return {
    scheduleId,
    ...(cron ? { cron } : {}),
    ...(d.spec.timezone ? { timezone: d.spec.timezone } : {}),
    ...(dataset ? { dataset } : {}),
    overlap: d.policies.overlap ?? 'SKIP',
    catchupWindowMs: d.policies.catchupWindow,
    paused: d.state.paused,
    ...(d.state.note ? { note: d.state.note } : {}),
    nextRuns: d.info.nextActionTimes.map((t) => t.toISOString()),
    recentRuns: d.info.recentActions.map((a) => ({
      runId: a.action.workflow.workflowId,
      scheduledAt: a.scheduledAt.toISOString(),
      startedAt: a.takenAt.toISOString(),
    })),
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
    actionsTaken: d.info.numActionsTaken,
    skippedOverlap: d.info.numActionsSkippedOverlap,
    missedCatchupWindow: d.info.numActionsMissedCatchupWindow,
  };
}

export async function listSchedules(
  client: Client,
): Promise<{ scheduleId: string; paused: boolean; nextRun?: string }[]> {
  const out: { scheduleId: string; paused: boolean; nextRun?: string }[] = [];
  for await (const s of client.schedule.list()) {
    const type = s.action?.workflowType;
    if (type !== 'evaluateDataset' && type !== 'evaluateSuite') continue;
    const next = s.info.nextActionTimes[0];
    out.push({
      scheduleId: s.scheduleId,
      paused: s.state.paused,
      ...(next ? { nextRun: next.toISOString() } : {}),
    });
  }
  return out;
}

/**
 * Starts a run now. Unlike Temporal's trigger (which allows overlaps by default), this keeps the
 * schedule's own overlap policy, so with `skip` a trigger during a run is skipped and counted.
 */
export async function triggerSchedule(client: Client, scheduleId: string): Promise<void> {
  const handle = client.schedule.getHandle(scheduleId);
  await withSchedule(scheduleId, async () => {
    const { policies } = await handle.describe();
    await handle.trigger(policies.overlap ?? 'SKIP');
  });
}

export function pauseSchedule(client: Client, scheduleId: string, note?: string): Promise<void> {
  return withSchedule(scheduleId, () => client.schedule.getHandle(scheduleId).pause(note));
}

export function unpauseSchedule(client: Client, scheduleId: string, note?: string): Promise<void> {
  return withSchedule(scheduleId, () => client.schedule.getHandle(scheduleId).unpause(note));
}

/** Deletes the schedule; its runs and their results stay. */
export function deleteSchedule(client: Client, scheduleId: string): Promise<void> {
  return withSchedule(scheduleId, () => client.schedule.getHandle(scheduleId).delete());
}

/** An unknown schedule id is the user's input: exit 2 with a message that names it. */
async function withSchedule<T>(scheduleId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError)
      throw new UsageError(`No schedule with id "${scheduleId}".`);
    throw err;
  }
}

function usageCheck<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
