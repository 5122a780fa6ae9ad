import type { ClipevalEnv } from './config/env';
import { WorkerResources } from './embeddings/resources';
import { extractShardActivity } from './extract-shard';
import { planDatasetActivity } from './plan-dataset';
import { createS3Client } from './storage/s3-client';

/** Activities served by `cpu` workers: I/O and light compute. */
export function createCpuActivities(env: ClipevalEnv) {
  const s3 = createS3Client(env.s3);
  return {
    planDataset: planDatasetActivity({ s3, bucket: env.s3.bucket }),
  };
}

/**
 * Activities served by `gpu` workers: embedding extraction (CoOp will join it). `resources`
 * holds the worker's bundles and ONNX Runtime sessions; close it when the worker stops.
 */
export function createGpuActivities(env: ClipevalEnv) {
  const s3 = createS3Client(env.s3);
  const resources = new WorkerResources(s3, env.bundleCache, env.onnx);
  return {
    activities: {
      extractShardImages: extractShardActivity({ s3, bucket: env.s3.bucket, resources }),
    },
    resources,
  };
}

export type CpuActivities = ReturnType<typeof createCpuActivities>;
export type GpuActivities = ReturnType<typeof createGpuActivities>['activities'];
