import { ApplicationFailure, proxyActivities, setHandler } from '@temporalio/workflow';
import type { CpuActivities, GpuActivities } from '../activities';
import { type EvaluationSummary, type RunProgress, progressQuery } from './progress';
import { forEachWindowed } from './windowed';

export interface EvaluateDatasetInput {
  runId: string;
  /** The run spec (validated by the planning activity: workflow code does no I/O or parsing). */
  spec: unknown;
  /** Resolved by the client: the spec's model.bundle or the deployment's default. */
  bundle: string;
  queues: { gpu: string };
}

// Planning lists the dataset (can be 100k+ objects): generous start-to-close, heartbeats per
// listing page so a dead worker is noticed in a minute. Bad data is a non-retryable failure.
const { planDataset } = proxyActivities<CpuActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['DatasetError', 'ConfigError'],
  },
});

/** One evaluation run: plan the dataset, then encode its images once into embedding shards. */
export async function evaluateDataset(input: EvaluateDatasetInput): Promise<EvaluationSummary> {
  let progress: RunProgress = { runId: input.runId, stage: 'planning' };
  setHandler(progressQuery, () => progress);

  const plan = await planDataset({ runId: input.runId, spec: input.spec });

  // Extraction runs on the gpu queue. A shard can take minutes (bundle fetch, session creation,
  // 1024 images): the heartbeat timeout (run spec, default 2 minutes), not start-to-close,
  // detects a dead worker, and retries re-encode only that shard. A broken bundle is not retried.
  const {
    batchSize,
    concurrency,
    parallelism,
    heartbeatTimeoutSeconds,
    augmentedViews,
    augmentSeed,
  } = plan.extraction;
  const { extractShardImages } = proxyActivities<GpuActivities>({
    taskQueue: input.queues.gpu,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: heartbeatTimeoutSeconds * 1000,
    retry: {
      initialInterval: '5s',
      backoffCoefficient: 2,
      maximumInterval: '5 minutes',
      maximumAttempts: 8,
      nonRetryableErrorTypes: ['BundleError', 'PlanError'],
    },
  });
  const extraction = {
    shards: plan.shards,
    shardsDone: 0,
    shardsReused: 0,
    imagesDone: 0,
    rows: 0,
    imagesFailed: 0,
  };
  const shardKeys: string[] = new Array<string>(plan.shards);
  progress = { ...progress, stage: 'extracting', plan, extraction };
  await forEachWindowed(plan.shards, parallelism, async (shardIndex) => {
    const r = await extractShardImages({
      planUri: plan.planUri,
      shardIndex,
      bundle: input.bundle,
      batchSize,
      concurrency,
      augment: { views: augmentedViews, seed: augmentSeed },
    });
    shardKeys[shardIndex] = r.shardKey;
    extraction.shardsDone++;
    extraction.shardsReused += r.reused ? 1 : 0;
    extraction.imagesDone += r.images;
    extraction.rows += r.rows;
    extraction.imagesFailed += r.failed;
  });
  if (extraction.imagesDone === 0) {
    throw ApplicationFailure.nonRetryable(
      `No image of ${plan.images} could be decoded (${extraction.imagesFailed} failed); the shard manifests list each reason.`,
      'NoValidImages',
    );
  }

  progress = { ...progress, stage: 'completed' };
  return {
    runId: input.runId,
    plan,
    bundle: input.bundle,
    extraction: { ...extraction, shardKeys },
  };
}
