import { heartbeat } from '@temporalio/activity';
import * as planning from '../core/dataset/plan-dataset';
import type { PlanningLimits } from '../core/config/run-limits';
import type { SourcePolicy } from '../core/config/allowed-sources';
import type { ImageGraph } from '../core/config/run-spec';
import type { PlanSummary } from '../core/dataset/plan';
import type { ObjectStore } from '../core/storage/object-store';

export type { PlanDatasetInput } from '../core/dataset/plan-dataset';

/**
 * Activity (cpu queue): lists or reads the dataset, builds the run plan and writes it to
 * runs/<runId>/plan.json (core/dataset/plan-dataset.ts). Idempotent: a retry rewrites identical
 * bytes. Heartbeats the core's progress (listing pages, manifest objects checked, the plan's
 * write); bad data fails without retries (a PermanentError). `limits`: the deployment's
 * planning limits (environment), the defaults when absent; `sources`: where datasets may be;
 * `imageGraph`: CLIPEVAL_IMAGE_GRAPH, the graph of runs whose spec names none.
 */
export function planDatasetActivity(deps: {
  store: ObjectStore;
  limits?: PlanningLimits;
  sources?: SourcePolicy;
  imageGraph?: ImageGraph;
}) {
  return async function planDataset(input: planning.PlanDatasetInput): Promise<PlanSummary> {
    return planning.planDataset(deps.store, input, {
      onProgress: (p) => heartbeat(p),
      ...(deps.limits ? { limits: deps.limits } : {}),
      ...(deps.sources ? { sources: deps.sources } : {}),
      ...(deps.imageGraph ? { imageGraph: deps.imageGraph } : {}),
    });
  };
}
