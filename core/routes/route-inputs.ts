import type { Plan } from '../dataset/plan';
import type { Split } from '../dataset/types';
import { type EmbeddingMatrix, readMatrix } from '../embeddings/reader';
import type { WorkerResources } from '../worker-resources';
import { planShardKeys, planSpaceChoice, spaceOf } from '../embeddings/shard-key';
import type { RouteContext } from './route-result';
import type { ModelBundle } from '../model/bundle';
import type { ObjectStore } from '../storage/object-store';

/** What every decision-route activity receives: references only, never embeddings. */
export interface RouteInput {
  runId: string;
  planUri: string;
  /** Model bundle reference (local folder or s3:// prefix). */
  bundle: string;
  /** The augmentation the shards were extracted with: part of their keys. */
  augment: { views: number; seed: number };
}

/** What a route reads and writes through: the output bucket, and the worker's cached models. */
export interface RouteDeps {
  store: ObjectStore;
  resources: WorkerResources;
}

export interface RouteInputs {
  plan: Plan;
  bundle: ModelBundle;
  /** Rows of one split (and view) from the run's shards, refusing shards of another space. */
  read: (split: Split, view?: number) => Promise<EmbeddingMatrix>;
  provenance: RouteContext['provenance'];
}

/** Loads the plan and bundle of a route activity and locates the run's embedding shards. */
export async function loadRouteInputs(deps: RouteDeps, input: RouteInput): Promise<RouteInputs> {
  const [plan, bundle] = await Promise.all([
    deps.resources.plan(input.planUri),
    deps.resources.bundle(input.bundle),
  ]);
  const shardKeys = planShardKeys(plan, bundle, input.augment);
  const choice = planSpaceChoice(plan);
  const space = { ...choice, preprocessFingerprint: spaceOf(bundle, choice).preprocessFingerprint };
  return {
    plan,
    bundle,
    read: (split, view) =>
      readMatrix(deps.store, shardKeys, {
        bundleHash: bundle.hash,
        space,
        split,
        ...(view !== undefined ? { view } : {}),
      }),
    provenance: {
      dataset: plan.dataset.uri,
      model: bundle.manifest.name,
      pretrained: bundle.hash.slice(0, 16),
    },
  };
}
