import { heartbeat } from '@temporalio/activity';
import type { RouteDeps, RouteInput } from '../core/routes/route-inputs';
import type { RouteSummary } from '../core/routes/route-result';
import { runZeroShot } from '../core/routes/zero-shot/run-zero-shot';

/**
 * Activity `zeroShot` (cpu queue): zero-shot classification of the test split
 * (core/routes/zero-shot/run-zero-shot.ts). Heartbeats per prompt batch, then before scoring.
 */
export function zeroShotActivity(deps: RouteDeps) {
  return function zeroShot(input: RouteInput): Promise<RouteSummary> {
    return runZeroShot(deps, input, { heartbeat: (details) => heartbeat(details) });
  };
}
