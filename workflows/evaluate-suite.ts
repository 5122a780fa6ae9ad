import {
  ApplicationFailure,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  continueAsNew,
  executeChild,
  isCancellation,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { SuiteSpec } from '../core/config/suite-spec';
import { forEachLimited } from '../core/util/concurrency';
import { failureMessage } from '../core/util/failure-message';
import { runIdentityProblem } from '../core/util/run-identity';
import { cellRunSpecInput, suiteCellRunId, suiteCells } from '../core/util/suite-cells';
import { findFinishedRuns, recordSuite, writeLeaderboard } from './activity-stubs';
import { evaluateDataset } from './evaluate-dataset';
import type { EvaluateDatasetInput } from './evaluate-dataset';
import {
  type FailedCell,
  type SuiteProgress,
  type SuiteSummary,
  suiteProgressQuery,
} from '../contract/progress';

/**
 * Children one execution starts before it continues as new. Each child adds about 6 events to
 * the suite's history and its result (plan, shard keys, route summaries: up to ~100 KB for a
 * large dataset) to one of them; 100 children stay far inside Temporal's limits (50,000 events,
 * 50 MB, warnings from 10,000 events / 10 MB), and 100 x 40 cells are 40 executions.
 */
export const CHILDREN_PER_EXECUTION = 100;

/**
 * Bytes of children's results one execution collects before it starts no more children and
 * continues as new. A child's result is its EvaluationSummary, which lists its shard keys: ~5 KB
 * for a small dataset, ~350 KB at the 5,000-shard maximum, so 100 large children alone would near
 * Temporal's 50 MB history limit (the server terminates a workflow past it).
 */
export const RESULT_BYTES_PER_EXECUTION = 4_000_000;

/** A failed cell's error is cut to this many characters: the list travels through continue-as-new. */
const MAX_ERROR_CHARS = 500;

export interface EvaluateSuiteInput {
  /** The suite id: the workflow id (S3 keys live under suites/<suiteId>/). Absent for scheduled suites. */
  suiteId?: string;
  /** The validated suite spec (the client and then the recordSuite activity validate it). */
  spec: SuiteSpec;
  queues: { gpu: string };
  /** Set by continue-as-new: what the earlier executions of this suite settled. */
  carried?: { next: number; reused: number; failed: FailedCell[] };
  /** Tests lower these to exercise continue-as-new on a small suite. */
  childrenPerExecution?: number;
  resultBytesPerExecution?: number;
}

/**
 * A suite: one `evaluateDataset` child run per (model, dataset) cell, `spec.concurrency` at a
 * time, then the leaderboard. Child run ids are `<suiteId>--<model>--<dataset>`, so a resumed
 * suite (a new execution under the same id) skips children whose run completed (their
 * report.json is in S3) and restarts the others, which reuse every finished shard and route
 * result. A failed child fails only its cell: the suite completes and lists it.
 */
export async function evaluateSuite(input: EvaluateSuiteInput): Promise<SuiteSummary> {
  const suiteId = ownSuiteId(input);
  const { spec } = input;
  const cells = suiteCells(spec);
  const carried = input.carried ?? { next: 0, reused: 0, failed: [] };
  const running = new Set<string>();
  const progress: SuiteProgress = {
    suiteId,
    stage: 'recording',
    cells: cells.length,
    settled: carried.next,
    reused: carried.reused,
    failed: [...carried.failed],
    running: [],
  };
  setHandler(suiteProgressQuery, () => ({ ...progress, running: [...running] }));
  // Validates every cell before any child starts; once per suite execution chain.
  if (!input.carried) await recordSuite({ suiteId, spec });

  progress.stage = 'evaluating';
  const { from, to } = executionSlice(carried.next, cells.length, input.childrenPerExecution);
  const slice = cells.slice(from, to);
  const runIds = slice.map((c) => suiteCellRunId(suiteId, c.model, c.dataset));
  const finished = await findFinishedRuns({ suiteId, runIds });
  const maxResultBytes = input.resultBytesPerExecution ?? RESULT_BYTES_PER_EXECUTION;
  let resultBytes = 0;
  // Cells are taken in order, and once the results' bytes reach the bound every later cell of
  // the slice is left to the next execution: the first one left is where it starts.
  let leftFrom = slice.length;
  await forEachLimited(slice.length, spec.concurrency, async (i) => {
    const cell = slice[i]!;
    const runId = runIds[i]!;
    if (resultBytes >= maxResultBytes) {
      leftFrom = Math.min(leftFrom, i);
      return;
    }
    if (finished[i]) {
      progress.reused++;
      progress.settled++;
      return;
    }
    running.add(runId);
    try {
      const child: EvaluateDatasetInput = {
        runId,
        spec: cellRunSpecInput(spec, cell),
        bundle: spec.models[cell.modelIndex]!.bundle,
        queues: input.queues,
      };
      const result = await executeChild(evaluateDataset, {
        workflowId: runId,
        args: [child],
        taskQueue: workflowInfo().taskQueue,
        // A failed, cancelled or terminated child of an earlier execution runs again under its
        // id (and reuses its work); a completed one is never overwritten (findFinishedRuns
        // skipped it already).
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        // A cancelled suite cancels its children gracefully (they stop at the next heartbeat)
        // instead of terminating them mid-write.
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      });
      resultBytes += JSON.stringify(result).length;
    } catch (err) {
      if (isCancellation(err)) throw err;
      progress.failed.push({
        model: cell.model,
        dataset: cell.dataset,
        runId,
        error: failureMessage(err).slice(0, MAX_ERROR_CHARS),
      });
    } finally {
      running.delete(runId);
      progress.settled++;
    }
  });

  // Every child of this slice has closed (a parent's close policy also applies when it continues
  // as new, so none may still run): the next execution starts with a fresh history.
  const next = from + leftFrom;
  if (next < cells.length) {
    await continueAsNew<typeof evaluateSuite>({
      ...input,
      suiteId,
      carried: { next, reused: progress.reused, failed: progress.failed },
    });
  }

  progress.stage = 'leaderboard';
  const board = await writeLeaderboard({
    suiteId,
    failed: progress.failed.map((f) => ({ runId: f.runId, error: f.error })),
  });
  progress.stage = 'completed';
  return {
    suiteId,
    cells: cells.length,
    completed: board.completed,
    reused: progress.reused,
    failed: progress.failed,
    leaderboard: { jsonUri: board.jsonUri, csvUri: board.csvUri, htmlUri: board.htmlUri },
  };
}

/** The cells [from, to) one execution evaluates: at most `bound` children from `next`. */
export function executionSlice(
  next: number,
  total: number,
  bound = CHILDREN_PER_EXECUTION,
): { from: number; to: number } {
  return { from: next, to: Math.min(total, next + Math.max(1, bound)) };
}

/** The suite id is the workflow's own id (a suite writes only under suites/<its id>/). */
function ownSuiteId(input: EvaluateSuiteInput): string {
  const { workflowId } = workflowInfo();
  const problem = runIdentityProblem(workflowId, { suiteId: input.suiteId });
  if (problem) throw ApplicationFailure.nonRetryable(`Refusing to run: ${problem}.`, 'RunIdentity');
  return workflowId;
}
