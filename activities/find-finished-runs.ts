import type { ObjectStore } from '../core/storage/object-store';
import { finishedRuns } from '../core/suites/suite-record';

/**
 * Activity `findFinishedRuns` (cpu queue): which of a suite's child runs completed in an earlier
 * execution, by their report.json in S3 (core/suites/suite-record.ts), so a resumed suite starts
 * only the others.
 */
export function findFinishedRunsActivity(deps: { store: ObjectStore }) {
  return function findFinishedRuns(input: {
    suiteId: string;
    runIds: string[];
  }): Promise<boolean[]> {
    return finishedRuns(deps, input.runIds);
  };
}
