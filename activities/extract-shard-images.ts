import { Context, heartbeat } from '@temporalio/activity';
import { type ExtractShardInput, extractPlanShard } from '../core/embeddings/extract-plan-shard';
import type { ExtractResult } from '../core/embeddings/extract-shard';
import type { ObjectStore } from '../core/storage/object-store';
import type { WorkerResources } from '../core/worker-resources';
import type { ExtractionHeartbeat } from '../contract/progress';

export type { ExtractShardInput } from '../core/embeddings/extract-plan-shard';

/**
 * Activity (gpu queue): encodes one plan shard into its content-addressed Arrow shard, or
 * reuses it. Idempotent: the shard key is a hash of what it covers, and the manifest is written
 * last. Heartbeats carry the images done; cancellation arrives through them and stops the
 * shard between batches (nothing is written for a cancelled shard).
 */
export function extractShardImagesActivity(deps: {
  store: ObjectStore;
  resources: WorkerResources;
}) {
  return async function extractShardImages(input: ExtractShardInput): Promise<ExtractResult> {
    const ctx = Context.current();
    return extractPlanShard(deps, input, {
      onProgress: (done) => heartbeat({ done } satisfies ExtractionHeartbeat),
      signal: ctx.cancellationSignal,
      // Prometheus (via the worker runtime): the rate of clipeval_images_embedded is images/s.
      onEncoded: ({ images, failed, decoded, fromPixelCache }) => {
        const count = (name: string, help: string, n: number) =>
          ctx.metricMeter.createCounter(name, 'images', help).add(n);
        count('clipeval_images_embedded', 'Images encoded', images);
        count('clipeval_images_failed', 'Images that could not be decoded', failed);
        count('clipeval_images_decoded', 'Images fetched and decoded', decoded);
        count(
          'clipeval_images_pixel_cache',
          'Images whose crops came from the pixel cache',
          fromPixelCache,
        );
      },
    });
  };
}
