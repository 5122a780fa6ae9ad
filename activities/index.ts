import type { ClipevalEnv } from './config/env';
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
 * Activities served by `gpu` workers (embedding extraction, CoOp). None is implemented yet:
 * they arrive with the embedding and heads issues, and the gpu worker refuses to start empty.
 */
export function createGpuActivities(
  _env: ClipevalEnv,
): Record<string, (...args: never[]) => Promise<unknown>> {
  return {};
}

export type CpuActivities = ReturnType<typeof createCpuActivities>;
