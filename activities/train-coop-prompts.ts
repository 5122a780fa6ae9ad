import { Context, heartbeat, log } from '@temporalio/activity';
import { type CoopInput, runCoop } from '../core/routes/coop/run-coop';
import type { RouteDeps } from '../core/routes/route-inputs';
import type { RouteSummary } from '../core/routes/route-result';
import type { CoopHeartbeat } from '../contract/progress';

/**
 * Activity `trainCoopPrompts` (gpu queue): trains CoOp's context and scores the test split
 * (core/routes/coop/run-coop.ts). Heartbeats every step with the CoopHeartbeat details that
 * `clipeval status` reads; counts steps in the clipeval_coop_steps metric.
 */
export function trainCoopPromptsActivity(deps: RouteDeps) {
  return function trainCoopPrompts(input: CoopInput): Promise<RouteSummary> {
    const context = Context.current();
    const steps = context.metricMeter.createCounter(
      'clipeval_coop_steps',
      'steps',
      'CoOp training steps',
    );
    return runCoop(deps, input, {
      heartbeat: (details: CoopHeartbeat) => heartbeat(details),
      signal: context.cancellationSignal,
      log,
      countStep: () => steps.add(1),
    });
  };
}
