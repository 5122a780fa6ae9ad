/**
 * @file suites/<suiteId>/suite.json, the suite's record: its validated spec and every cell's child
 * run id, written when the suite starts (after every cell's run spec validated), read by the
 * leaderboard and by `clipeval suite report`. And which cells an earlier execution finished.
 */
import { type SuiteSpec, parseSuiteSpec } from '../config/suite-spec';
import { keys } from '../storage/keys';
import type { ObjectStore } from '../storage/object-store';
import { mapLimited } from '../util/concurrency';
import { suiteCellRunId, suiteCells } from '../util/suite-cells';

export interface SuiteRecord {
  format: 'clipeval-suite/1';
  suiteId: string;
  spec: SuiteSpec;
  cells: { model: string; dataset: string; runId: string }[];
}

/**
 * Validates the spec and every cell (a ConfigError, permanent, names the cells) and writes
 * suite.json. The client validated it already; this also covers suites a schedule starts and
 * specs from other clients. Idempotent.
 */
export async function recordSuite(
  deps: { store: ObjectStore },
  input: { suiteId: string; spec: unknown },
): Promise<{ cells: number; suiteUri: string }> {
  const spec = parseSuiteSpec(input.spec, `suite spec of ${input.suiteId}`);
  const record: SuiteRecord = {
    format: 'clipeval-suite/1',
    suiteId: input.suiteId,
    spec,
    cells: suiteCells(spec).map((c) => ({
      model: c.model,
      dataset: c.dataset,
      runId: suiteCellRunId(input.suiteId, c.model, c.dataset),
    })),
  };
  const key = keys.suiteSpec(input.suiteId);
  await deps.store.putJson(key, record);
  return { cells: record.cells.length, suiteUri: deps.store.uri(key) };
}

/** Reads at once: one HEAD each. */
const PARALLEL_HEADS = 16;

/**
 * Which of these child runs completed, by their report.json: the last object a run writes, so its
 * presence means the run finished. S3, not Temporal, is asked because it outlives the namespace's
 * retention (a completed child's execution is deleted after it; its results stay).
 */
export function finishedRuns(
  deps: { store: ObjectStore },
  runIds: readonly string[],
): Promise<boolean[]> {
  return mapLimited(runIds, PARALLEL_HEADS, (runId) =>
    deps.store.exists(keys.report(runId, 'report.json')),
  );
}
