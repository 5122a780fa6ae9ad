/**
 * @file The planning stage as one function: validate the run spec, list or read the dataset,
 * build the plan and write it to runs/<runId>/plan.json in one PutObject. Idempotent: the plan is
 * a pure function of the dataset and spec, so doing it again rewrites identical bytes. Bad data
 * or a bad spec throws a DatasetError or ConfigError (both permanent).
 */
import { parseRunSpec } from '../config/run-spec';
import { keys } from '../storage/keys';
import type { ObjectStore } from '../storage/object-store';
import { loadDataset } from './load';
import { buildPlan, type PlanSummary, summarisePlan } from './plan';

export interface PlanDatasetInput {
  runId: string;
  /** The run spec as the user gave it; validated again here, since anyone can start a workflow. */
  spec: unknown;
}

/** Plans the run into `store` (the output bucket); `onListed` hears how many objects were listed. */
export async function planDataset(
  store: ObjectStore,
  input: PlanDatasetInput,
  onListed?: (objectsListed: number) => void,
): Promise<PlanSummary> {
  const spec = parseRunSpec(input.spec);
  const data = await loadDataset(store, spec.dataset, onListed);
  const plan = buildPlan({ runId: input.runId, spec, ...data });
  const key = keys.plan(input.runId);
  await store.putJson(key, plan);
  return summarisePlan(plan, store.uri(key));
}
