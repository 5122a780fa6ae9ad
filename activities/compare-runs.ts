import type { S3Client } from '@aws-sdk/client-s3';
import { parseRunSpec } from './config/run-spec';
import {
  type Comparison,
  type RunRecord,
  appendRun,
  compareRuns,
  previousRun,
  runRecord,
} from './heads/compare';
import type { RouteSummary } from './heads/route-result';
import { keys } from './storage/keys';
import { getJson, isNotFound, putJson } from './storage/objects';

export interface CompareWithPreviousInput {
  runId: string;
  scheduleId: string;
  /** ISO start time of this run's execution. */
  startedAt: string;
  /** The run spec as the workflow received it (its `regression` block holds the rule). */
  spec: unknown;
  routes: RouteSummary[];
}

export interface CompareWithPreviousResult {
  /** Absent for the schedule's first successful run. */
  comparison?: Comparison;
  /** The schedule's last successful runs, oldest first, this one last (at most 30). */
  history: RunRecord[];
}

/** `schedules/<id>/last-success.json`: the schedule's newest successful run is history's last. */
interface LastSuccessPointer {
  scheduleId: string;
  history: RunRecord[];
}

/**
 * Activity (cpu queue), called after summarizeRun by scheduled runs: compares this run's metrics
 * with the schedule's previous successful run, writes runs/<runId>/comparison.json, and only
 * then advances the schedule's pointer to this run, so a run that fails before this point never
 * becomes the baseline. Idempotent: a retry compares with the same previous run.
 */
export function compareWithPreviousActivity(deps: { s3: S3Client; bucket: string }) {
  return async function compareWithPrevious(
    input: CompareWithPreviousInput,
  ): Promise<CompareWithPreviousResult> {
    const pointerKey = keys.scheduleLastSuccess(input.scheduleId);
    const pointer = await readPointer(deps, pointerKey, input.scheduleId);
    const current = runRecord(input.runId, input.startedAt, input.routes);
    const previous = previousRun(pointer.history, input.runId);
    const comparison = previous
      ? compareRuns(previous, current, parseRunSpec(input.spec).regression)
      : undefined;
    if (comparison)
      await putJson(deps.s3, deps.bucket, keys.runComparison(input.runId), comparison);
    const history = appendRun(pointer.history, current);
    await putJson(deps.s3, deps.bucket, pointerKey, {
      scheduleId: input.scheduleId,
      history,
    } satisfies LastSuccessPointer);
    return { ...(comparison ? { comparison } : {}), history };
  };
}

async function readPointer(
  deps: { s3: S3Client; bucket: string },
  key: string,
  scheduleId: string,
): Promise<LastSuccessPointer> {
  try {
    return await getJson<LastSuccessPointer>(deps.s3, deps.bucket, key);
  } catch (err) {
    if (isNotFound(err)) return { scheduleId, history: [] };
    throw err;
  }
}
