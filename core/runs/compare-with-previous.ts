/**
 * @file A scheduled run against the schedule's previous successful run: reads the schedule's
 * pointer (schedules/<id>/last-success.json), writes runs/<runId>/comparison.json, and only then
 * advances the pointer to this run, so a run that fails before this point never becomes the
 * baseline. The regression rule itself is the pure code of compare.ts.
 */
import { parseRunSpec } from '../config/run-spec';
import type { RetrievalSummary } from '../routes/retrieval/retrieval-result';
import type { RouteSummary } from '../routes/route-result';
import { keys } from '../storage/keys';
import type { ObjectStore } from '../storage/object-store';
import {
  type Comparison,
  type RunRecord,
  appendRun,
  compareRuns,
  previousRun,
  runRecord,
} from './compare';

export interface CompareWithPreviousInput {
  runId: string;
  scheduleId: string;
  /** ISO start time of this run's execution. */
  startedAt: string;
  /** The run spec as the workflow received it (its `regression` block holds the rule). */
  spec: unknown;
  routes: RouteSummary[];
  /** Zero-shot retrieval's recall@k, compared like a route's figures (compare.ts). */
  retrieval?: RetrievalSummary;
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

/** Idempotent: a retry finds its own run in the pointer and compares with the same previous run. */
export async function compareWithPreviousRun(
  deps: { store: ObjectStore },
  input: CompareWithPreviousInput,
): Promise<CompareWithPreviousResult> {
  const { store } = deps;
  const pointerKey = keys.scheduleLastSuccess(input.scheduleId);
  const pointer = await store.getJson<LastSuccessPointer>(pointerKey);
  const earlier = pointer?.history ?? []; // the schedule's first successful run
  const current = runRecord(input.runId, input.startedAt, input.routes, input.retrieval);
  const previous = previousRun(earlier, input.runId);
  const comparison = previous
    ? compareRuns(previous, current, parseRunSpec(input.spec).regression)
    : undefined;
  if (comparison) await store.putJson(keys.runComparison(input.runId), comparison);
  const history = appendRun(earlier, current);
  await store.putJson(pointerKey, {
    scheduleId: input.scheduleId,
    history,
  } satisfies LastSuccessPointer);
  return { ...(comparison ? { comparison } : {}), history };
}
