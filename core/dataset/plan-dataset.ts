/**
 * @file The planning stage as one function: validate the run spec, list or read the dataset,
 * build the plan and write it to runs/<runId>/plan.json in one PutObject (and, for a dataset
 * with captions, runs/<runId>/captions.json before it). Idempotent: the plan is
 * a pure function of the dataset and spec, so doing it again rewrites identical bytes. Bad data
 * or a bad spec throws a DatasetError or ConfigError, and a plan too large for one JSON file a
 * JsonTooLargeError (all permanent).
 */
import type { SourcePolicy } from '../config/allowed-sources';
import type { PlanningLimits } from '../config/run-limits';
import { ConfigError } from '../config/errors';
import { type ImageGraph, parseRunSpec } from '../config/run-spec';
import { keys } from '../storage/keys';
import type { ObjectStore } from '../storage/object-store';
import { type PlanningProgress, loadDataset } from './load';
import { buildPlan, captionsFile, type PlanSummary, summarisePlan } from './plan';

export type { PlanningProgress } from './load';

export interface PlanDatasetInput {
  runId: string;
  /** The run spec as the user gave it; validated again here, since anyone can start a workflow. */
  spec: unknown;
}

export interface PlanDatasetOptions {
  /**
   * Hears progress: after every listing page, every few hundred manifest objects checked, and
   * every few seconds while plan.json is written (the activity heartbeats it).
   */
  onProgress?: (p: PlanningProgress) => void;
  /** Deployment limits (CLIPEVAL_MAX_DATASET_OBJECTS, CLIPEVAL_MAX_CLASSES); defaults if absent. */
  limits?: PlanningLimits;
  /** Where datasets and manifest rows may be (CLIPEVAL_ALLOWED_SOURCES); unchecked if absent. */
  sources?: SourcePolicy;
  /**
   * The image graph for specs that name none (the planning worker's CLIPEVAL_IMAGE_GRAPH;
   * fp32 if absent). Resolved here, once per run, and written into the plan: see ClipevalEnv.imageGraph.
   */
  imageGraph?: ImageGraph;
}

/** While plan.json is written (one large PutObject), progress every this many ms. */
const WRITE_PROGRESS_MS = 10_000;

/** Plans the run into `store` (the output bucket). */
export async function planDataset(
  store: ObjectStore,
  input: PlanDatasetInput,
  opts: PlanDatasetOptions = {},
): Promise<PlanSummary> {
  const spec = parseRunSpec(input.spec);
  spec.extraction.imageGraph ??= opts.imageGraph ?? 'fp32';
  // A completed run (its report is the last thing it writes) is never planned over: Temporal lets
  // a client reuse a closed workflow id, and the run id is the workflow id.
  if (await store.exists(keys.report(input.runId, 'report.json'))) {
    throw new ConfigError(
      `Run "${input.runId}" already completed (${store.uri(keys.report(input.runId, 'report.json'))} exists); its results are not overwritten. Start the run under a new run id.`,
      'run id',
    );
  }
  const { onProgress, limits, sources } = opts;
  const data = await loadDataset(store, spec.dataset, {
    ...(onProgress ? { onProgress } : {}),
    ...(limits ? { limits } : {}),
    ...(sources ? { sources } : {}),
  });
  const plan = buildPlan({ runId: input.runId, spec, ...data, ...(limits ? { limits } : {}) });
  // Before the plan: a plan that names captions always has its captions.json.
  const captions = captionsFile({ runId: input.runId, items: data.items });
  if (captions) {
    await store.putJson(
      keys.captions(input.runId),
      captions,
      `The captions of ${captions.images.length} images do not fit in one captions.json: split the dataset into several runs.`,
    );
  }
  const key = keys.plan(input.runId);
  const images = plan.counts.total;
  const ticker = setInterval(
    () => onProgress?.({ objectsListed: data.items.length, writingPlan: true }),
    WRITE_PROGRESS_MS,
  );
  try {
    await store.putJson(
      key,
      plan,
      `A plan of ${images} images in ${plan.shards.length} shards does not fit in one plan.json: split the dataset into several runs (or lower CLIPEVAL_MAX_DATASET_OBJECTS so planning refuses such datasets up front).`,
    );
  } finally {
    clearInterval(ticker);
  }
  return summarisePlan(plan, store.uri(key));
}
