import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { type ClipevalEnv, envSource } from '../core/config/env';
import type { RunSpec } from '../core/config/run-spec';
import { ObjectStore } from '../core/storage/object-store';
import { UsageError } from './errors';

/**
 * Checks the output bucket and the spec's dataset bucket before a run or a schedule is created,
 * so a typo fails in a second with exit code 2.
 */
export async function checkRunBuckets(env: ClipevalEnv, spec: RunSpec): Promise<void> {
  const output = ObjectStore.connect(env.s3);
  await checkBucket(output, env, 'output (CLIPEVAL_BUCKET)');
  await checkBucket(output.at(spec.dataset.uri).store, env, 'dataset');
}

/** Checks that the store's bucket exists; an unreachable S3 is a UsageError that says where. */
async function checkBucket(store: ObjectStore, env: ClipevalEnv, role: string): Promise<void> {
  let exists: boolean;
  try {
    exists = await store.bucketExists();
  } catch (err) {
    const where = env.s3.endpoint
      ? `${env.s3.endpoint} (${envSource('CLIPEVAL_S3_ENDPOINT')})`
      : `AWS S3 in ${env.s3.region}`;
    throw new UsageError(
      `Cannot reach S3 at ${where}: ${(err as Error).name}: ${(err as Error).message}\n` +
        'Start the local stack with `npm run stack:up`, or set CLIPEVAL_S3_ENDPOINT and AWS credentials.',
    );
  }
  if (!exists) throw new UsageError(`The ${role} bucket "${store.bucket}" does not exist.`);
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
