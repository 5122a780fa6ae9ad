import { Context, heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { S3Client } from '@aws-sdk/client-s3';
import { type ExtractResult, extractShard } from './embeddings/extract-shard';
import type { WorkerResources } from './embeddings/resources';
import { BundleError } from './model/bundle';

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

/**
 * Activity (gpu queue): encodes one plan shard into its content-addressed Arrow shard, or
 * reuses it. Idempotent: the shard key is a hash of what it covers, and the manifest is written
 * last. Heartbeats carry the images done; cancellation arrives through them and stops the
 * shard between batches (nothing is written for a cancelled shard).
 */
export function extractShardActivity(deps: {
  s3: S3Client;
  bucket: string;
  resources: WorkerResources;
}) {
  return async function extractShardImages(input: ExtractShardInput): Promise<ExtractResult> {
    try {
      const [plan, bundle] = await Promise.all([
        deps.resources.plan(input.planUri),
        deps.resources.bundle(input.bundle),
      ]);
      const shard = plan.shards[input.shardIndex];
      if (!shard)
        throw ApplicationFailure.nonRetryable(
          `plan ${input.planUri} has no shard ${input.shardIndex}`,
          'PlanError',
        );
      const encoder = await deps.resources.imageEncoder(bundle);
      heartbeat({ done: 0 });
      const result = await extractShard(
        { s3: deps.s3, bucket: deps.bucket, bundle, encoder },
        { items: shard.items, datasetFingerprint: plan.dataset.fingerprint },
        {
          batchSize: input.batchSize,
          concurrency: input.concurrency,
          augment: input.augment,
          onProgress: (done) => heartbeat({ done }),
          signal: Context.current().cancellationSignal,
        },
      );
      // Prometheus (via the worker runtime): the rate of clipeval_images_embedded is images/s.
      if (!result.reused) {
        const meter = Context.current().metricMeter;
        meter
          .createCounter('clipeval_images_embedded', 'images', 'Images encoded')
          .add(result.images);
        meter
          .createCounter('clipeval_images_failed', 'images', 'Images that could not be decoded')
          .add(result.failed);
      }
      return result;
    } catch (err) {
      if (err instanceof BundleError) throw ApplicationFailure.nonRetryable(err.message, err.name);
      throw err;
    }
  };
}
