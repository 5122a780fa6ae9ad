/**
 * @file Extraction of one shard of a run's plan, as the extraction stage asks for it: the plan
 * and bundle come from the worker's resources (read once per worker), then extractShard encodes
 * the shard or reuses it. Plain hooks carry progress, cancellation and the image counts out, so
 * the Temporal adapter (activities/extract-shard-images.ts) only forwards them.
 */
import { PlanError } from '../dataset/plan';
import { BundleError } from '../model/bundle';
import type { ObjectStore } from '../storage/object-store';
import type { WorkerResources } from '../worker-resources';
import { type ExtractResult, extractShard } from './extract-shard';
import { planSpaceChoice } from './shard-key';

export interface ExtractShardInput {
  planUri: string;
  shardIndex: number;
  /** Model bundle reference (local folder or s3:// prefix). */
  bundle: string;
  batchSize: number;
  concurrency: number;
  /** Augmented views per train image and their seed (0 views: center crops only). */
  augment: { views: number; seed: number };
}

export interface ExtractionHooks {
  /** Images of the shard done so far: 0 once the encoder is ready, then after every batch. */
  onProgress?: (done: number) => void;
  /** Stops the shard between batches; nothing is written for a cancelled shard. */
  signal?: AbortSignal;
  /** Called once the shard was encoded (not when it was reused), with what it encoded. */
  onEncoded?: (counts: {
    images: number;
    failed: number;
    decoded: number;
    fromPixelCache: number;
  }) => void;
}

/** Encodes shard `shardIndex` of the plan at `planUri`, or reuses it; a missing shard is a PlanError. */
export async function extractPlanShard(
  deps: { store: ObjectStore; resources: WorkerResources },
  input: ExtractShardInput,
  hooks: ExtractionHooks = {},
): Promise<ExtractResult> {
  const [plan, bundle] = await Promise.all([
    deps.resources.plan(input.planUri),
    deps.resources.bundle(input.bundle),
  ]);
  const shard = plan.shards[input.shardIndex];
  if (!shard) throw new PlanError(`plan ${input.planUri} has no shard ${input.shardIndex}`);
  // The plan's choice, not this worker's: every shard of a run lands in one embedding space.
  const space = planSpaceChoice(plan);
  const encoder = await deps.resources
    .imageEncoder(bundle, space.imageGraph)
    .catch((err: unknown) => {
      // The error names the worker's cached copy; the user knows the bundle by the run's reference.
      throw err instanceof BundleError ? new BundleError(`${input.bundle}: ${err.message}`) : err;
    });
  hooks.onProgress?.(0);
  const result = await extractShard(
    {
      store: deps.store,
      bundle,
      encoder,
      limits: deps.resources.images,
      pool: deps.resources.decodePool(),
      claims: deps.resources.pixelClaims,
    },
    { items: shard.items, datasetFingerprint: plan.dataset.fingerprint },
    {
      batchSize: input.batchSize,
      concurrency: input.concurrency,
      augment: input.augment,
      space,
      // Plans made before the cache existed read and write it, as new runs do by default.
      pixelCache: plan.spec.extraction.pixelCache ?? 'readwrite',
      onProgress: hooks.onProgress,
      signal: hooks.signal,
    },
  );
  if (!result.reused) {
    const { images, failed, decoded, fromPixelCache } = result;
    hooks.onEncoded?.({ images, failed, decoded, fromPixelCache });
  }
  return result;
}
