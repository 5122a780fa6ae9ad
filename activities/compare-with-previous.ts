import {
  type CompareWithPreviousInput,
  type CompareWithPreviousResult,
  compareWithPreviousRun,
} from '../core/runs/compare-with-previous';
import type { ObjectStore } from '../core/storage/object-store';

/**
 * Activity `compareWithPrevious` (cpu queue), called after summarizeRun by scheduled runs:
 * compares this run's metrics with the schedule's previous successful run, writes
 * runs/<runId>/comparison.json, then advances the schedule's pointer to this run
 * (core/runs/compare-with-previous.ts). Idempotent.
 */
export function compareWithPreviousActivity(deps: { store: ObjectStore }) {
  return function compareWithPrevious(
    input: CompareWithPreviousInput,
  ): Promise<CompareWithPreviousResult> {
    return compareWithPreviousRun(deps, input);
  };
}
