import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { type ClipevalEnv, loadEnv } from '../../activities/config/env';
import { createS3Client } from '../../activities/storage/s3-client';
import { connectWorker, createWorker } from '../../workers/create-workers';

/** The test stack's config (set by the global setup), with task queues private to this file. */
export function testEnv(): ClipevalEnv {
  const env = loadEnv();
  const tag = randomBytes(4).toString('hex');
  return { ...env, queues: { cpu: `test-cpu-${tag}`, gpu: `test-gpu-${tag}` } };
}

export const uniqueId = (label: string) =>
  `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

export async function putObjects(
  env: ClipevalEnv,
  bucket: string,
  prefix: string,
  files: Record<string, Buffer | string>,
): Promise<void> {
  const s3 = createS3Client(env.s3);
  await Promise.all(
    Object.entries(files).map(([path, body]) =>
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: prefix + path, Body: body })),
    ),
  );
  s3.destroy();
}

export async function deleteObject(env: ClipevalEnv, bucket: string, key: string): Promise<void> {
  const s3 = createS3Client(env.s3);
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  s3.destroy();
}

/** A real cpu worker (workflows + cpu activities) polling this file's private queue. */
export async function startCpuWorker(
  env: ClipevalEnv,
): Promise<{ worker: Worker; connection: NativeConnection; done: Promise<void> }> {
  const connection = await connectWorker(env);
  const worker = await createWorker('cpu', env, connection);
  const done = worker.run();
  return { worker, connection, done };
}

export async function stopWorker(w: {
  worker: Worker;
  connection: NativeConnection;
  done: Promise<void>;
}): Promise<void> {
  w.worker.shutdown();
  await w.done;
  await w.connection.close();
}
