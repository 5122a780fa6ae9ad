import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { type ClipevalEnv, envSource } from '../activities/config/env';
import { bucketExists } from '../activities/storage/objects';
import { UsageError } from './errors';

/** Checks a bucket before starting work, so a typo fails in a second with exit code 2. */
export async function checkBucket(
  s3: S3Client,
  env: ClipevalEnv,
  bucket: string,
  role: string,
): Promise<void> {
  let exists: boolean;
  try {
    exists = await bucketExists(s3, bucket);
  } catch (err) {
    const where = env.s3.endpoint
      ? `${env.s3.endpoint} (${envSource('CLIPEVAL_S3_ENDPOINT')})`
      : `AWS S3 in ${env.s3.region}`;
    throw new UsageError(
      `Cannot reach S3 at ${where}: ${(err as Error).name}: ${(err as Error).message}\n` +
        'Start the local stack with `npm run stack:up`, or set CLIPEVAL_S3_ENDPOINT and AWS credentials.',
    );
  }
  if (!exists) throw new UsageError(`The ${role} bucket "${bucket}" does not exist.`);
}

/** True if some worker polls the queue (workflow or activity tasks); runs would otherwise wait silently. */
export async function hasPollers(
  client: Client,
  namespace: string,
  taskQueue: string,
  kind: 'workflow' | 'activity' = 'workflow',
): Promise<boolean> {
  const types = temporal.api.enums.v1.TaskQueueType;
  const r = await client.workflowService.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue },
    taskQueueType:
      kind === 'workflow' ? types.TASK_QUEUE_TYPE_WORKFLOW : types.TASK_QUEUE_TYPE_ACTIVITY,
  });
  return (r.pollers?.length ?? 0) > 0;
}
