import type { RunOutcome } from './evaluations';

/**
 * clipeval's exit codes: 0 success (or still running), 1 the run failed (or was cancelled,
 * terminated, timed out), 2 bad input or an unreachable service (also: resume of a completed
 * run, an unknown run or schedule id), 3 the run completed but its comparison with the
 * schedule's previous successful run is a regression.
 */
export const EXIT = { ok: 0, runFailed: 1, usage: 2, regression: 3 } as const;

/** The exit code a run's outcome maps to (see EXIT). */
export function exitCodeOf(o: RunOutcome): number {
  if (o.status === 'RUNNING') return EXIT.ok;
  if (o.status !== 'COMPLETED') return EXIT.runFailed;
  return o.summary.comparison?.regression ? EXIT.regression : EXIT.ok;
}
