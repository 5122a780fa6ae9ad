// bench/extract.ts's whole runs: a gpu worker in its own process (with bench/worker-stall-probe.ts
// preloaded, asked over IPC for its longest event-loop stall, S3 requests and phase totals), and
// one timed run through Temporal from start to result, with what must be true for its figure to
// be a rate (nothing reused; every image decoded, or every image from the pixel cache).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import type { Client } from '@temporalio/client';
import type { ClipevalEnv } from '../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec, type PreprocessingMode } from '../core/config/run-spec';
import { loadBundle } from '../core/model/bundle';
import { pixelGeometry, spaceOf } from '../core/embeddings/shard-key';
import { keys } from '../core/storage/keys';
import type { ObjectStore } from '../core/storage/object-store';
import type { PhaseTotal } from '../core/util/phase-profile';
import { connectClient, startEvaluation, waitForRun } from '../client/evaluations';
import { hasPollers } from '../client/preflight';
import { ROOT } from './fixtures';
import { REPEATS } from './stats';
import { type RunSplit, runSplit } from './run-split';

export const EXTRACTION = {
  batchSize: 32,
  concurrency: 8,
  parallelism: 4, // the spec default: with 2 activity slots per gpu worker, 2 shards wait ready
  heartbeatTimeoutSeconds: 120,
};

interface ProbeReply {
  stallMs: number;
  /** S3 requests the worker sent, by command (`GetObject (ranged)` for ranged reads). */
  requests: Record<string, number>;
  phases: Partial<Record<string, PhaseTotal>>;
}

export interface Stack {
  client: Client;
  store: ObjectStore;
  env: ClipevalEnv;
  gpu: ChildProcess;
  /** Rejects when the gpu worker process exits (a run would otherwise wait for it forever). */
  died: Promise<never>;
}

/** Starts the gpu worker process as deployed (workers/gpu.ts) and waits for it to poll. */
export async function startGpuWorker(
  env: ClipevalEnv,
  store: ObjectStore,
): Promise<Stack & { peakRssMiB: () => number; stop: () => void }> {
  const gpu = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      pathToFileURL(join(ROOT, 'bench', 'worker-stall-probe.ts')).href,
      join(ROOT, 'workers', 'gpu.ts'),
    ],
    { env: process.env, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  );
  const died = new Promise<never>((_, reject) =>
    gpu.once('exit', (code, signal) =>
      reject(new Error(`the gpu worker process exited (${code ?? signal}) during the bench`)),
    ),
  );
  died.catch(() => undefined); // raced against each run; unobserved after the last
  const client = await connectClient(env);
  while (!(await hasPollers(client, env.temporal.namespace, env.queues.gpu, 'activity')))
    await sleep(200);
  return {
    client,
    store,
    env,
    gpu,
    died,
    peakRssMiB: () =>
      Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${gpu.pid}/status`, 'utf8'))?.[1]) / 1024,
    stop: () => gpu.kill('SIGTERM'),
  };
}

/** The worker's figures since the previous call (which starts the next window). */
async function workerProbe(gpu: ChildProcess): Promise<ProbeReply> {
  const answer = once(gpu, 'message', { signal: AbortSignal.timeout(10_000) });
  gpu.send('stall');
  const [reply] = (await answer) as [ProbeReply];
  return reply;
}

export interface RunCase {
  datasetUri: string;
  images: number;
  bundle: string;
  shardSize: number;
  preprocessing?: PreprocessingMode;
  /**
   * cold: the geometry's pixel cache is emptied first (a first pass: every image decoded, its
   * crops written to the cache); warm: the cache is kept and must serve every image.
   */
  pixels: 'cold' | 'warm';
}

export interface WholeRun {
  ips: number;
  stallMs: number;
  shards: number;
  requests: Record<string, number>;
  split: RunSplit;
}

/** One whole extraction run, timed from start to result. */
export async function wholeRun(stack: Stack, c: RunCase): Promise<WholeRun> {
  const { client, env, store, gpu, died } = stack;
  const preprocessing = c.preprocessing ?? 'exact';
  const spec = parseRunSpec({
    dataset: { uri: c.datasetUri },
    model: { bundle: c.bundle },
    shardSize: c.shardSize,
    extraction: { ...EXTRACTION, preprocessing, imageGraph: 'fp32' },
    ...EXTRACTION_ONLY,
  });
  // Nothing reused: this bundle's embedding space (the bench's own bundles only) starts empty.
  const b = await loadBundle(c.bundle);
  const { space } = spaceOf(b, { preprocessing, imageGraph: 'fp32' });
  const emptied = [keys.embeddingSpacePrefix(space)];
  if (c.pixels === 'cold')
    emptied.push(keys.pixelGeometryPrefix(pixelGeometry(b.manifest.preprocessing, preprocessing)));
  for (const prefix of emptied) for (const o of await store.list(prefix)) await store.delete(o.key);
  await workerProbe(gpu); // starts the stall, request and phase windows here
  const t0 = performance.now();
  const { runId } = await startEvaluation(client, env, spec);
  const outcome = await Promise.race([waitForRun(client, runId), died]);
  const seconds = (performance.now() - t0) / 1000;
  const { stallMs, requests, phases } = await workerProbe(gpu);
  if (outcome.status !== 'COMPLETED') throw new Error(`run ${runId}: ${outcome.status}`);
  const x = outcome.summary.extraction;
  const fail = (why: string) => {
    throw new Error(`run ${runId} ${why}: its figure would not be the rate asked for`);
  };
  if (x.shardsReused > 0) fail(`reused ${x.shardsReused} shards`);
  if (x.imagesDone !== c.images) fail(`embedded ${x.imagesDone} of ${c.images} images`);
  if (c.pixels === 'cold' && x.imagesDecoded !== c.images) fail(`decoded ${x.imagesDecoded}`);
  if (c.pixels === 'warm' && x.imagesFromPixelCache !== c.images)
    fail(`read ${x.imagesFromPixelCache} images from the pixel cache`);
  const split = await runSplit(client, runId, seconds, phases, x.imagesDone);
  return { ips: x.imagesDone / seconds, stallMs, shards: x.shards, requests, split };
}

export interface Runs {
  ips: number[];
  stallMs: number;
  shards: number;
  requests: Record<string, number>;
  /** The split of the median repeat. */
  split: RunSplit;
}

/** REPEATS whole runs after a warm-up run (which pays bundle verification and sessions). */
export async function wholeRuns(stack: Stack, c: RunCase): Promise<Runs> {
  await wholeRun(stack, c);
  const runs: WholeRun[] = [];
  for (let r = 0; r < REPEATS; r++) runs.push(await wholeRun(stack, c));
  const byRate = [...runs].sort((a, b) => a.ips - b.ips);
  return {
    ips: runs.map((r) => r.ips),
    stallMs: Math.max(...runs.map((r) => r.stallMs)),
    shards: runs[0]!.shards,
    requests: runs[0]!.requests, // the same every run: nothing is reused
    split: byRate[byRate.length >> 1]!.split,
  };
}
