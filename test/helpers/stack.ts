import { Client, Connection } from '@temporalio/client';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadBundle, uploadBundle } from '../../core/model/bundle';
import { TINY_BUNDLE } from './fixtures';
import { type ClipevalEnv, loadEnv } from '../../core/config/env';
import { type SyntheticImage, syntheticDataset } from '../../core/dataset/synthetic';
import type { Split } from '../../core/dataset/types';
import { ObjectStore } from '../../core/storage/object-store';
import { createS3Client } from '../../core/storage/s3-client';
import type { WorkerKind } from '../../workers/create-workers';
import { type InProcessWorkers, startInProcessWorkers } from '../../workers/in-process';

/** The test stack's config (set by the global setup), with task queues private to this file. */
export function testEnv(): ClipevalEnv {
  const env = loadEnv();
  const tag = randomBytes(4).toString('hex');
  return { ...env, queues: { cpu: `test-cpu-${tag}`, gpu: `test-gpu-${tag}` } };
}

export const uniqueId = (label: string) =>
  `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

/** The test stack's output bucket (or `bucket`) as an ObjectStore. */
export function testStore(env: ClipevalEnv, bucket = env.s3.bucket): ObjectStore {
  return new ObjectStore(createS3Client(env.s3), bucket);
}

/** Runs `fn` on a fresh store and closes its client afterwards. */
async function withStore<T>(
  env: ClipevalEnv,
  bucket: string,
  fn: (store: ObjectStore) => Promise<T>,
): Promise<T> {
  const store = testStore(env, bucket);
  try {
    return await fn(store);
  } finally {
    store.client.destroy();
  }
}

export function putObjects(
  env: ClipevalEnv,
  bucket: string,
  prefix: string,
  files: Record<string, Buffer | string>,
): Promise<void> {
  return withStore(env, bucket, async (store) => {
    await Promise.all(
      Object.entries(files).map(([path, body]) => store.putBytes(prefix + path, body)),
    );
  });
}

export function deleteObject(env: ClipevalEnv, bucket: string, key: string): Promise<void> {
  return withStore(env, bucket, (store) => store.delete(key));
}

export type RunningWorkers = InProcessWorkers;

/** Real cpu and gpu workers (workflows + all activities) polling this file's private queues. */
export function startWorkers(
  env: ClipevalEnv,
  kinds: WorkerKind[] = ['cpu', 'gpu'],
): Promise<RunningWorkers> {
  return startInProcessWorkers(env, kinds);
}

export function stopWorkers(w: RunningWorkers): Promise<void> {
  return w.stop();
}

/** Uploads the committed tiny bundle (idempotent: keyed by its hash) and returns its s3:// URI. */
export async function uploadTinyBundle(env: ClipevalEnv): Promise<string> {
  const bundle = await loadBundle(TINY_BUNDLE);
  const uri = `s3://${env.s3.bucket}/models/tiny-${bundle.hash.slice(0, 16)}/`;
  await withStore(env, env.s3.bucket, (store) => uploadBundle(store, TINY_BUNDLE, uri));
  return uri;
}

/**
 * The tiny bundle renamed (bundle.json's sha256 is a bundle's identity and embedding space): a
 * second model with its own shards. A byte-identical copy under another prefix would share the
 * first model's embedding space and shards.
 */
export async function uploadRenamedTinyBundle(env: ClipevalEnv, name: string): Promise<string> {
  const copy = join(mkdtempSync(join(tmpdir(), 'renamed-bundle-')), name);
  cpSync(TINY_BUNDLE, copy, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(copy, 'bundle.json'), 'utf8')) as object;
  writeFileSync(join(copy, 'bundle.json'), JSON.stringify({ ...manifest, name }));
  const uri = `s3://${env.s3.bucket}/models/${uniqueId(name)}/`;
  await withStore(env, env.s3.bucket, (store) => uploadBundle(store, copy, uri));
  return uri;
}

/** A small real PNG, different for each `n` (so sizes and ETags differ). */
export async function tinyPng(n: number): Promise<Buffer> {
  const side = 8 + (n % 24);
  return sharp({
    create: {
      width: side,
      height: side,
      channels: 3,
      background: { r: (n * 37) % 256, g: (n * 91) % 256, b: 120 },
    },
  })
    .png()
    .toBuffer();
}

/** What a workflow test needs: its env (private queues), the tiny bundle in S3, workers, a client. */
export interface TestPipeline {
  env: ClipevalEnv;
  bundle: string;
  client: Client;
  close: () => Promise<void>;
}

export async function startPipeline(env: ClipevalEnv = testEnv()): Promise<TestPipeline> {
  const bundle = await uploadTinyBundle(env);
  const workers = await startWorkers(env);
  const connection = await Connection.connect({ address: env.temporal.address });
  const client = new Client({ connection, namespace: env.temporal.namespace });
  return {
    env,
    bundle,
    client,
    close: async () => {
      await workers.stop();
      await connection.close();
    },
  };
}

/** Generated shape images (core/dataset/synthetic.ts) uploaded under a fresh prefix. */
export async function uploadShapes(
  env: ClipevalEnv,
  perSplit: Record<Split, number>,
  opts: { size?: number; label?: string; extra?: Record<string, Buffer | string> } = {},
): Promise<{ uri: string; prefix: string; images: SyntheticImage[] }> {
  const prefix = `${uniqueId(opts.label ?? 'shapes')}/`;
  const images = await syntheticDataset({ perSplit, size: opts.size ?? 64 });
  await putObjects(env, env.s3.bucket, prefix, {
    ...Object.fromEntries(images.map((i) => [i.path, i.body])),
    ...opts.extra,
  });
  return { uri: `s3://${env.s3.bucket}/${prefix}`, prefix, images };
}

/**
 * The CLI as a user runs it (`tsx cli/main.ts`), on the test's queues and default bundle.
 * Asynchronous on purpose: in-process workers need this process's event loop meanwhile.
 */
export function runCli(
  args: string[],
  opts: {
    env?: ClipevalEnv;
    bundle?: string;
    extraEnv?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      join('node_modules', '.bin', 'tsx'),
      [join('cli', 'main.ts'), ...args],
      {
        env: {
          ...process.env,
          ...(opts.env
            ? { CLIPEVAL_CPU_QUEUE: opts.env.queues.cpu, CLIPEVAL_GPU_QUEUE: opts.env.queues.gpu }
            : {}),
          ...(opts.bundle ? { CLIPEVAL_DEFAULT_BUNDLE: opts.bundle } : {}),
          ...opts.extraEnv,
        },
        encoding: 'utf8',
        timeout: opts.timeoutMs ?? 120_000,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

/**
 * A gpu worker in its own process, as deployed, logging to a file. Runs node itself (not the tsx
 * wrapper), so a SIGKILL hits the worker, not a parent of it.
 */
export function spawnGpuWorker(
  env: ClipevalEnv,
  extraEnv: Record<string, string> = {},
): ChildProcess & { logPath: string } {
  return spawnWorkerProcess(env, 'gpu', extraEnv);
}

/**
 * A real worker process (workers/cpu.ts, workers/gpu.ts, or workers/all.ts: workflows and every
 * activity) on this file's private queues, logging to a file: what a test SIGKILLs to play a dead
 * machine.
 */
export function spawnWorkerProcess(
  env: ClipevalEnv,
  entry: 'cpu' | 'gpu' | 'all',
  extraEnv: Record<string, string> = {},
): ChildProcess & { logPath: string } {
  const logPath = join(mkdtempSync(join(tmpdir(), `clipeval-${entry}-`)), 'worker.log');
  const log = openSync(logPath, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', join('workers', `${entry}.ts`)], {
    env: {
      ...process.env,
      CLIPEVAL_CPU_QUEUE: env.queues.cpu,
      CLIPEVAL_GPU_QUEUE: env.queues.gpu,
      CLIPEVAL_BUNDLE_CACHE: mkdtempSync(join(tmpdir(), 'clipeval-bundles-')),
      ...extraEnv,
    },
    stdio: ['ignore', log, log],
  });
  return Object.assign(child, { logPath });
}

/**
 * Activity info for MockActivityEnvironment as if scheduled by the workflow of `runId` (activities
 * refuse an input runId that is not their workflow's id: activities/run-identity.ts).
 */
export function asWorkflow(runId: string) {
  return {
    workflowExecution: { workflowId: runId, runId: '00000000-0000-0000-0000-000000000000' },
  };
}
