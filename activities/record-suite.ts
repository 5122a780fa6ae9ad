import type { ObjectStore } from '../core/storage/object-store';
import { recordSuite as writeSuiteRecord } from '../core/suites/suite-record';

/**
 * Activity `recordSuite` (cpu queue): validates the suite spec and every cell's run spec (an
 * invalid one fails the suite permanently before any child starts) and writes
 * suites/<suiteId>/suite.json (core/suites/suite-record.ts). Idempotent.
 */
export function recordSuiteActivity(deps: { store: ObjectStore }) {
  return function recordSuite(input: {
    suiteId: string;
    spec: unknown;
  }): Promise<{ cells: number; suiteUri: string }> {
    return writeSuiteRecord(deps, input);
  };
}
