import { compareWithPreviousActivity } from './compare-runs';
import type { ClipevalEnv } from './config/env';
import { WorkerResources } from './embeddings/resources';
import { extractShardActivity } from './extract-shard';
import { fitProbeActivity } from './fit-probe';
import { planDatasetActivity } from './plan-dataset';
import { createS3Client } from './storage/s3-client';
import { summarizeRunActivity } from './summarize-run';
import { trainCoopActivity } from './train-coop';
import { writeReportActivity } from './write-report';
import { zeroShotActivity } from './zero-shot';

/**
 * Activities served by `cpu` workers: planning, zero-shot, the linear probe, the summary and
 * the comparison of scheduled runs.
 * `resources` holds the worker's bundles and ONNX Runtime sessions; close it when the worker stops.
 */
export function createCpuActivities(env: ClipevalEnv) {
  const s3 = createS3Client(env.s3);
  const bucket = env.s3.bucket;
  const resources = new WorkerResources(s3, env.bundleCache, env.onnx);
  return {
    activities: {
      planDataset: planDatasetActivity({ s3, bucket }),
      zeroShot: zeroShotActivity({ s3, bucket, resources }),
      fitLinearProbe: fitProbeActivity({ s3, bucket, resources, onnx: env.onnx }),
      summarizeRun: summarizeRunActivity({ s3, bucket }),
      compareWithPrevious: compareWithPreviousActivity({ s3, bucket }),
      writeReport: writeReportActivity({ s3, bucket, resources }),
    },
    resources,
  };
}

/** Activities served by `gpu` workers: embedding extraction and CoOp training. */
export function createGpuActivities(env: ClipevalEnv) {
  const s3 = createS3Client(env.s3);
  const bucket = env.s3.bucket;
  const resources = new WorkerResources(s3, env.bundleCache, env.onnx);
  return {
    activities: {
      extractShardImages: extractShardActivity({ s3, bucket, resources }),
      trainCoopPrompts: trainCoopActivity({ s3, bucket, resources }),
    },
    resources,
  };
}

export type CpuActivities = ReturnType<typeof createCpuActivities>['activities'];
export type GpuActivities = ReturnType<typeof createGpuActivities>['activities'];
