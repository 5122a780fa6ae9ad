import { Context, heartbeat } from '@temporalio/activity';
import type { RouteDeps } from '../core/routes/route-inputs';
import type { RouteSummary } from '../core/routes/route-result';
import { type TipAdapterInput, runTipAdapter } from '../core/routes/tip-adapter/run-tip-adapter';

/**
 * Activity `fitTipAdapter` (cpu queue): Tip-Adapter and, with `tipAdapter.finetune`,
 * Tip-Adapter-F for one (shots, seed), each scored on the test split
 * (core/routes/tip-adapter/run-tip-adapter.ts). Heartbeats per search row and training step;
 * stops when the run is cancelled.
 */
export function fitTipAdapterActivity(deps: RouteDeps) {
  return function fitTipAdapter(input: TipAdapterInput): Promise<RouteSummary[]> {
    return runTipAdapter(deps, input, {
      heartbeat: (details) => heartbeat(details),
      signal: Context.current().cancellationSignal,
    });
  };
}
