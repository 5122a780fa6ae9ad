// `npm run bench:extract`: the whole extraction against what it wraps, on the local stack
// (Temporal + versitygw S3), over the same BENCH_IMAGES photo-like 640x480 JPEGs in S3:
//  1. ViT-B/32 fp32 (the random-init bench bundle): a whole run through Temporal (planning on a
//     cpu worker here, extraction in a gpu worker in its own process reading S3 and writing Arrow
//     shards) vs the bare loop in this process (the same objects read from S3 by the same
//     ObjectStore, the same embedImages, ImageEncoder with the same ORT threads and a decode pool
//     of the same size, nothing written).
//  2. Feed rate, with the tiny test bundle (inference costs next to nothing, so the figure is how
//     fast images reach the model): a whole run vs boto3 + PIL + the HF CLIPImageProcessor steps
//     in a Pool of the same number of processes over the same objects (bench/feed_boto3.py).
//  3. Dataset formats, with the tiny bundle: whole runs over the same images as an ImageFolder
//     and as WebDataset tars, with the image reads the worker sent (one GET per image against a
//     few ranged GETs per shard).
// Every figure: median of BENCH_REPEATS after a warm-up; before each whole run the bench bundle's
// embedding space is emptied, so nothing is reused (checked). The gpu worker's longest event-loop stall per run comes from
// bench/worker-stall-probe.ts preloaded into it
// (asked over an IPC channel). Knobs: BENCH_IMAGES (default 1000),
// BENCH_REPEATS, BENCH_THREADS (ORT intra-op threads, decode pool threads, Python processes),
// BENCH_ROWS=formats (part 3 only).
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import type { Client } from '@temporalio/client';
import { type ClipevalEnv, loadEnv } from '../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec, type PreprocessingMode } from '../core/config/run-spec';
import { loadBundle, type ModelBundle } from '../core/model/bundle';
import { DecodePool } from '../core/model/image/decode-pool';
import { embedImages } from '../core/model/image/embed-images';
import { preprocessParams } from '../core/model/image/pixels';
import { ImageEncoder } from '../core/model/onnx/encoders';
import { spaceOf } from '../core/embeddings/shard-key';
import { keys } from '../core/storage/keys';
import { ObjectStore } from '../core/storage/object-store';
import { exportDatasetAsWebDataset } from '../client/datasets';
import { connectClient, startEvaluation, waitForRun } from '../client/evaluations';
import { hasPollers } from '../client/preflight';
import { stackUp } from '../infra/local-stack/stack';
import { startInProcessWorkers } from '../workers/in-process';
import { TINY_BUNDLE } from '../test/helpers/fixtures';
import { runPython } from './child';
import { BENCH_BUNDLE, ROOT, ensureBundle, ensureImages } from './fixtures';
import {
  benchHeader,
  markdownTable,
  MAX_THREADS,
  num,
  ratio,
  REPEATS,
  repeat,
  spread,
  summarize,
} from './stats';

const N = Number(process.env.BENCH_IMAGES ?? 1000);
/** BENCH_ROWS=formats: only the ImageFolder vs WebDataset rows (tiny bundle). */
const FORMATS_ONLY = process.env.BENCH_ROWS === 'formats';
const THREADS = MAX_THREADS;
const extraction = { batchSize: 32, concurrency: 8, parallelism: 2, heartbeatTimeoutSeconds: 120 };
// About 6 shards or more, so 2 at once keep the worker busy.
const BASE_SHARD = Math.max(4, Math.min(256, Math.floor(N / 6)));

/** Uploads the bench JPEGs once; returns their keys. */
async function uploadImages(store: ObjectStore, prefix: string): Promise<string[]> {
  const images = await ensureImages(join(ROOT, '.clipeval', 'bench', 'images'), N);
  const keys = images.map((_, i) => `${prefix}train/c${i % 10}/${String(i).padStart(5, '0')}.jpg`);
  if ((await store.list(prefix)).length < N) {
    console.error(`uploading ${N} images to ${store.uri(prefix)} ...`);
    for (let i = 0; i < N; i += 32)
      await Promise.all(
        images.slice(i, i + 32).map((body, j) => store.putBytes(keys[i + j]!, body)),
      );
  }
  return keys;
}

interface ProbeReply {
  stallMs: number;
  /** S3 requests the worker sent, by command (`GetObject (ranged)` for ranged reads). */
  requests: Record<string, number>;
}

/** The gpu worker's longest event-loop stall and its S3 requests since the previous call. */
async function workerProbe(gpu: ChildProcess): Promise<ProbeReply> {
  const answer = once(gpu, 'message', { signal: AbortSignal.timeout(10_000) });
  gpu.send('stall');
  const [reply] = (await answer) as [ProbeReply];
  return reply;
}

interface Stack {
  client: Client;
  store: ObjectStore;
  env: ClipevalEnv;
  gpu: ChildProcess;
  /** Rejects when the gpu worker process exits (a run would otherwise wait for it forever). */
  died: Promise<never>;
}

interface WholeRun {
  ips: number;
  stallMs: number;
  shards: number;
  requests: Record<string, number>;
}

/** One whole extraction run of `bundle` over `prefix`, timed from start to result. */
async function wholeRun(
  { client, env, store, gpu, died }: Stack,
  datasetUri: string,
  bundle: string,
  preprocessing: PreprocessingMode = 'exact',
): Promise<WholeRun> {
  const spec = parseRunSpec({
    dataset: { uri: datasetUri },
    model: { bundle },
    shardSize: BASE_SHARD,
    extraction: { ...extraction, preprocessing, imageGraph: 'fp32' },
    ...EXTRACTION_ONLY,
  });
  // Nothing reused: this bundle's embedding space (the bench's own bundles only) starts empty.
  const b = await loadBundle(bundle);
  const { space } = spaceOf(b, { preprocessing, imageGraph: 'fp32' });
  for (const o of await store.list(keys.embeddingSpacePrefix(space))) await store.delete(o.key);
  await workerProbe(gpu); // starts the stall and request windows here
  const t0 = performance.now();
  const { runId } = await startEvaluation(client, env, spec);
  const outcome = await Promise.race([waitForRun(client, runId), died]);
  const seconds = (performance.now() - t0) / 1000;
  const { stallMs, requests } = await workerProbe(gpu);
  if (outcome.status !== 'COMPLETED') throw new Error(`run ${runId}: ${outcome.status}`);
  const x = outcome.summary.extraction;
  if (x.shardsReused > 0)
    throw new Error(`run ${runId} reused ${x.shardsReused} shards: its figure would not be a rate`);
  if (x.imagesDone !== N) throw new Error(`run ${runId} embedded ${x.imagesDone} of ${N} images`);
  return { ips: x.imagesDone / seconds, stallMs, shards: x.shards, requests };
}

/** REPEATS whole runs after a warm-up run (which pays bundle verification and sessions). */
async function wholeRuns(
  ...args: Parameters<typeof wholeRun>
): Promise<{ ips: number[]; stallMs: number; shards: number; requests: Record<string, number> }> {
  await wholeRun(...args);
  const runs: WholeRun[] = [];
  for (let r = 0; r < REPEATS; r++) runs.push(await wholeRun(...args));
  return {
    ips: runs.map((r) => r.ips),
    stallMs: Math.max(...runs.map((r) => r.stallMs)),
    shards: runs[0]!.shards,
    requests: runs[0]!.requests, // the same every run: nothing is reused
  };
}

/** A run's GetObject requests: whole objects (images, shard manifests) and ranged (tar blocks). */
const reads = (r: Record<string, number>) =>
  `${r.GetObject ?? 0} GET + ${r['GetObject (ranged)'] ?? 0} ranged GET`;

/** The bare loop: the same objects from S3, the same pipeline, nothing written (img/s per repeat). */
async function bareLoop(
  store: ObjectStore,
  keys: string[],
  bundle: ModelBundle,
): Promise<number[]> {
  const p = bundle.manifest.preprocessing;
  const params = preprocessParams(p);
  console.error('bare loop ...');
  const encoder = await ImageEncoder.create(bundle, { threads: THREADS, providers: ['cpu'] });
  const pool = new DecodePool(THREADS);
  const bare = await repeat(async () => {
    const source = keys.map((key) => ({
      id: key,
      bytes: () => store.requireBytes(key),
    }));
    const t0 = performance.now();
    let n = 0;
    for await (const b of embedImages(source, encoder, params, { ...extraction, pool })) {
      if (b.failed.length > 0) throw new Error(`bare loop failed: ${JSON.stringify(b.failed)}`);
      n += b.ids.length;
    }
    return n / ((performance.now() - t0) / 1000);
  });
  await pool.close();
  await encoder.close();
  return bare;
}

/**
 * The same images as CLIP_benchmark-style WebDataset tars (written once by `clipeval dataset
 * export-wds`'s code), for the format rows: tars of 250 samples.
 */
async function uploadWebDataset(env: ClipevalEnv, store: ObjectStore, prefix: string) {
  const out = store.uri(`bench/images-${N}-wds/`);
  console.error(`WebDataset of the same images at ${out} ...`);
  await exportDatasetAsWebDataset(
    env,
    { uri: store.uri(prefix), out },
    { maxSamplesPerTar: 250, maxTarBytes: 256 * 1024 * 1024 },
  );
  return out;
}

type Runs = Awaited<ReturnType<typeof wholeRuns>>;

/** ImageFolder vs WebDataset: the same images, whole runs, img/s and the worker's image reads. */
function printFormatRows(folder: Runs, wds: Runs): void {
  const [f, w] = [summarize(folder.ips), summarize(wds.ips)];
  console.log(
    benchHeader('Dataset formats (`npm run bench:extract`)', [
      `the same ${N} photo-like JPEG 640x480, as an ImageFolder (one object each) and as WebDataset tars of 250 (written by export-wds's code); tiny test bundle (fp32), exact preprocessing, shards of ~${BASE_SHARD}`,
      `gpu worker process: ORT ${THREADS} intra-op, decode pool ${THREADS}; requests counted in the worker (S3Client.send), per run`,
    ]),
  );
  console.log(
    markdownTable(
      [
        'dataset format',
        'img/s median (min-max)',
        'ratio',
        'worker GetObject per run (images, shard manifests)',
        'shards',
      ],
      [
        ['ImageFolder', spread(f), '1.00x', reads(folder.requests), String(folder.shards)],
        [
          'WebDataset (tars)',
          spread(w),
          ratio(w.median, f.median),
          reads(wds.requests),
          String(wds.shards),
        ],
      ],
    ),
  );
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  ensureBundle(BENCH_BUNDLE);
  const stack = await stackUp();
  Object.assign(process.env, stack.env, {
    CLIPEVAL_ORT_THREADS: String(THREADS),
    CLIPEVAL_DECODE_THREADS: String(THREADS),
  });
  const env = loadEnv();
  const store = ObjectStore.connect(env.s3);
  const prefix = `bench/images-${N}/`;
  const keys = await uploadImages(store, prefix);
  const bundle = await loadBundle(BENCH_BUNDLE);
  const p = bundle.manifest.preprocessing;

  // 1a. the bare loop (not with BENCH_ROWS=formats).
  const bare = FORMATS_ONLY ? [] : await bareLoop(store, keys, bundle);
  const wdsUri = await uploadWebDataset(env, store, prefix);

  // 1b/2a. whole runs: planning here (cpu worker), extraction in a gpu worker process as deployed.
  const workers = await startInProcessWorkers(env, ['cpu']);
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
  let whole, feed, feedFast, feedWds;
  let gpuPeakKiB = NaN;
  try {
    const died = new Promise<never>((_, reject) =>
      gpu.once('exit', (code, signal) =>
        reject(new Error(`the gpu worker process exited (${code ?? signal}) during the bench`)),
      ),
    );
    died.catch(() => undefined); // raced against each run; unobserved after the last
    const client = await connectClient(env);
    const ctx = { client, env, store, gpu, died };
    while (!(await hasPollers(client, env.temporal.namespace, env.queues.gpu, 'activity')))
      await sleep(200);
    if (!FORMATS_ONLY) {
      console.error('whole runs, ViT-B/32 ...');
      whole = await wholeRuns(ctx, store.uri(prefix), BENCH_BUNDLE);
    }
    console.error('whole runs, tiny bundle (feed rate) ...');
    feed = await wholeRuns(ctx, store.uri(prefix), TINY_BUNDLE);
    console.error('whole runs, tiny bundle, the same images as WebDataset tars ...');
    feedWds = await wholeRuns(ctx, wdsUri, TINY_BUNDLE);
    if (!FORMATS_ONLY) {
      console.error('whole runs, tiny bundle, fast preprocessing (feed rate) ...');
      feedFast = await wholeRuns(ctx, store.uri(prefix), TINY_BUNDLE, 'fast');
    }
    gpuPeakKiB = Number(
      /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${gpu.pid}/status`, 'utf8'))?.[1] ?? NaN,
    );
  } finally {
    gpu.kill('SIGTERM');
    await workers.stop();
  }

  printFormatRows(feed, feedWds);
  if (FORMATS_ONLY || !whole || !feedFast) return;

  // 2b. the feed-rate reference over the same objects.
  console.error('boto3 + PIL + HF processor pool ...');
  const boto = runPython<{ ips: number[] }>(
    'feed_boto3.py',
    {
      endpoint: stack.env.CLIPEVAL_S3_ENDPOINT,
      bucket: env.s3.bucket,
      keys,
      processes: THREADS,
      batch_size: extraction.batchSize,
      image_size: p.imageSize,
      mean: p.mean,
      std: p.std,
      repeats: REPEATS,
    },
    { cores: THREADS },
  );

  const b = summarize(bare);
  const w = summarize(whole.ips);
  const f = summarize(feed.ips);
  const ff = summarize(feedFast.ips);
  const ref = summarize(boto.ips);
  const workerThreads = `gpu worker process: ORT ${THREADS} intra-op, decode pool ${THREADS}`;
  console.log(
    benchHeader('Extraction (`npm run bench:extract`)', [
      `${N} photo-like JPEG 640x480 in the local stack's S3 (versitygw), batch ${extraction.batchSize}, ${extraction.concurrency} images in flight per shard, ${extraction.parallelism} shards at once, shards of ~${BASE_SHARD} (${whole.shards} per run)`,
      "whole run = start to result: planning (S3 listing), extraction activities, Arrow shards and manifests written; each bundle's embedding space emptied before every run, none reused",
      'nothing pinned: the stack (Temporal, versitygw), this process and the worker share the machine',
    ]),
  );
  console.log(
    markdownTable(
      [
        'row',
        'model (dtype)',
        'threads / processes',
        'img/s median (min-max)',
        'ratio',
        'gpu worker longest stall',
      ],
      [
        [
          'bare loop (S3 reads, embedImages, no Temporal, nothing written)',
          'ViT-B/32 random (fp32)',
          `this process: ORT ${THREADS} intra-op, decode pool ${THREADS}`,
          spread(b),
          '1.00x',
          '-',
        ],
        [
          'whole run through Temporal + S3 + Arrow',
          'ViT-B/32 random (fp32)',
          workerThreads,
          spread(w),
          `${ratio(w.median, b.median)} of bare (${num(100 * (1 - w.median / b.median))}% overhead)`,
          `${num(whole.stallMs)} ms`,
        ],
        [
          'feed rate: whole run through Temporal + S3 + Arrow',
          'tiny test bundle (fp32)',
          workerThreads,
          spread(f),
          `${ratio(f.median, ref.median)} of the boto3 pool`,
          `${num(feed.stallMs)} ms`,
        ],
        [
          'feed rate: the same, `fast` preprocessing',
          'tiny test bundle (fp32)',
          workerThreads.replace(`, decode pool ${THREADS}`, ' (fast: libvips in libuv)'),
          spread(ff),
          `${ratio(ff.median, ref.median)} of the boto3 pool`,
          `${num(feedFast.stallMs)} ms`,
        ],
        [
          'feed rate: boto3 + PIL + CLIPImageProcessorPil, no inference',
          '-',
          `${THREADS} processes (multiprocessing.Pool), pinned to ${THREADS} cores`,
          spread(ref),
          '1.00x',
          '-',
        ],
      ],
    ),
  );
  console.log(`\ngpu worker peak RSS (VmHWM): ${num(gpuPeakKiB / 1024, 0)} MiB`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
