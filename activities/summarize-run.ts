import type { ObjectStore } from '../core/storage/object-store';
import { type FewShotTable, type SummarizeRunInput, writeRunSummary } from '../core/runs/summary';

/**
 * Activity `summarizeRun` (cpu queue): writes runs/<runId>/summary.json (every route's metrics,
 * the few-shot table) and returns the few-shot table (core/runs/summary.ts). Idempotent.
 */
export function summarizeRunActivity(deps: { store: ObjectStore }) {
  return function summarizeRun(
    input: SummarizeRunInput,
  ): Promise<{ summaryUri: string; fewShot: FewShotTable }> {
    return writeRunSummary(deps, input);
  };
}
