import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { type ClipevalEnv, envSource } from '../core/config/env';
import type { RunSpec } from '../core/config/run-spec';
import { ObjectStore } from '../core/storage/object-store';
import { isS3Uri } from '../core/storage/s3-uri';
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

/**
 * Checks that the run's model bundle exists (its bundle.json, in a local folder or under an
 * s3:// prefix) before a run or a schedule is created: without one, a run would plan the whole
 * dataset and fail only at extraction. Exit code 2, with the fix in the message.
 */
export async function checkRunBundle(env: ClipevalEnv, spec: RunSpec): Promise<void> {
  const ref = spec.model.bundle ?? env.defaultBundle;
  const from =
    spec.model.bundle !== undefined
      ? "--bundle or the spec's model.bundle"
      : envSource('CLIPEVAL_DEFAULT_BUNDLE');
  let manifest: string;
  let found: boolean;
  if (isS3Uri(ref)) {
    const { store, key } = ObjectStore.connect(env.s3).at(ref);
    const bundleJson = `${key === '' || key.endsWith('/') ? key : `${key}/`}bundle.json`;
    manifest = store.uri(bundleJson);
    try {
      found = await store.exists(bundleJson);
    } catch (err) {
      throw new UsageError(
        `Cannot check the model bundle ${ref} (${from}): ${(err as Error).name}: ${(err as Error).message}`,
      );
    } finally {
      store.client.destroy();
    }
  } else {
    manifest = join(resolve(ref), 'bundle.json');
    found = existsSync(manifest);
  }
  if (!found) {
    const target = isS3Uri(ref) ? ref : 's3://<bucket>/models/<name>/';
    throw new UsageError(
      `No model bundle at ${ref} (${from}): ${manifest} does not exist.\n` +
        `Upload one with \`clipeval model upload <bundle folder> ${target}\`, or point --bundle, the spec's model.bundle or CLIPEVAL_DEFAULT_BUNDLE at an existing bundle.`,
    );
  }
}

/**
 * Checks that the bucket an s3:// URI names exists and S3 answers (`role` names it in the
 * message): for commands that read or write a dataset outside any run.
 */
export async function checkUriBucket(env: ClipevalEnv, uri: string, role: string): Promise<void> {
  await checkBucket(ObjectStore.connect(env.s3).at(uri).store, env, role);
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
