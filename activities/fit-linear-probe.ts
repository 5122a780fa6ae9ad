import { Context, heartbeat } from '@temporalio/activity';
import type { RouteSummary } from '../core/routes/route-result';
import { type ProbeDeps, type ProbeInput, runProbe } from '../core/routes/probe/run-probe';

/**
 * Activity `fitLinearProbe` (cpu queue): fits the linear probe and scores the test split
 * (core/routes/probe/run-probe.ts). Heartbeats every iteration; stops when the run is cancelled.
 */
export function fitLinearProbeActivity(deps: ProbeDeps) {
  return function fitLinearProbe(input: ProbeInput): Promise<RouteSummary> {
    return runProbe(deps, input, {
      heartbeat: (details) => heartbeat(details),
      signal: Context.current().cancellationSignal,
    });
  };
}
