import { heartbeat } from '@temporalio/activity';
import * as planning from '../core/dataset/plan-dataset';
import type { PlanSummary } from '../core/dataset/plan';
import type { ObjectStore } from '../core/storage/object-store';

export type { PlanDatasetInput } from '../core/dataset/plan-dataset';

/**
 * Activity (cpu queue): lists or reads the dataset, builds the run plan and writes it to
 * runs/<runId>/plan.json (core/dataset/plan-dataset.ts). Idempotent: a retry rewrites identical
 * bytes. Heartbeats per listing page; bad data fails without retries (a PermanentError).
 */
export function planDatasetActivity(deps: { store: ObjectStore }) {
  return async function planDataset(input: planning.PlanDatasetInput): Promise<PlanSummary> {
    return planning.planDataset(deps.store, input, (n) => heartbeat({ objectsListed: n }));
  };
}
