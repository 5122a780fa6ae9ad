import { Context, heartbeat } from '@temporalio/activity';
import type { RouteDeps, RouteInput } from '../core/routes/route-inputs';
import type { RetrievalSummary } from '../core/routes/retrieval/retrieval-result';
import { type RetrievalProgress, runRetrieval } from '../core/routes/retrieval/run-retrieval';

/**
 * Activity `retrieveZeroShot` (gpu queue: it encodes every caption with the text tower):
 * zero-shot retrieval recall@k of the test split (core/routes/retrieval/run-retrieval.ts).
 * Heartbeats per caption batch, then per block of images ranked.
 */
export function retrieveZeroShotActivity(deps: RouteDeps) {
  return function retrieveZeroShot(input: RouteInput): Promise<RetrievalSummary> {
    return runRetrieval(deps, input, {
      heartbeat: (details: RetrievalProgress) => heartbeat(details),
      signal: Context.current().cancellationSignal,
    });
  };
}
