// `npm run bench:extract`: end-to-end extraction through Temporal (plan, S3 reads, sharded
// extraction activities in a separate gpu worker process, Arrow shards written back) against the
// bare encoder loop over the same images in memory, in the same run. Uses the full-size random
// ViT-B/32 bundle and BENCH_IMAGES (default 2000) generated 640x480 JPEGs in the local stack's S3.
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { loadEnv } from '../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec } from '../core/config/run-spec';
import { loadBundle } from '../core/model/bundle';
import { embedImages } from '../core/model/image/embed-images';
import { ImageEncoder } from '../core/model/onnx/encoders';
import { ObjectStore } from '../core/storage/object-store';
import { connectClient, startEvaluation, waitForRun } from '../client/evaluations';
import { hasPollers } from '../client/preflight';
import { stackUp } from '../infra/local-stack/stack';
import { startInProcessWorkers } from '../workers/in-process';
import { BENCH_BUNDLE, ROOT, ensureBundle, ensureImages } from './fixtures';

const N = Number(process.env.BENCH_IMAGES ?? 2000);
const THREADS = Number(process.env.BENCH_THREADS ?? availableParallelism());
const extraction = { batchSize: 32, concurrency: 8, parallelism: 2, heartbeatTimeoutSeconds: 120 };

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  ensureBundle(BENCH_BUNDLE);
  const stack = await stackUp();
  Object.assign(process.env, stack.env, { CLIPEVAL_ORT_THREADS: String(THREADS) });
  const env = loadEnv();
  const store = ObjectStore.connect(env.s3);
  const images = await ensureImages(join(ROOT, '.clipeval', 'bench', 'images'), N);
  const prefix = `bench/images-${N}/`;
  if ((await store.list(prefix)).length < N) {
    console.log(`uploading ${N} images to ${store.uri(prefix)} ...`);
    for (let i = 0; i < N; i += 32) {
      await Promise.all(
        images
          .slice(i, i + 32)
          .map((body, j) =>
            store.putBytes(
              `${prefix}train/c${(i + j) % 10}/${String(i + j).padStart(5, '0')}.jpg`,
              body,
            ),
          ),
      );
    }
  }
  const bundle = await loadBundle(BENCH_BUNDLE);
  const p = bundle.manifest.preprocessing;
  const params = { imageSize: p.imageSize, mean: p.mean, std: p.std, rescale: p.rescale };
  let rssPeak = 0;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 50);

  // 1. the bare loop: the same pipeline over the bytes in memory, no Temporal, no S3.
  const encoder = await ImageEncoder.create(bundle, {
    threads: THREADS,
    providers: ['cpu'],
  });
  let t0 = performance.now();
  let bare = 0;
  for await (const b of embedImages(
    images.map((bytes, i) => ({ id: String(i), bytes })),
    encoder,
    params,
    extraction,
  ))
    bare += b.ids.length;
  const bareIps = bare / ((performance.now() - t0) / 1000);
  await encoder.close();

  // 2. through Temporal: plan (cpu worker here) and extraction in a separate gpu worker process,
  // as deployed, reading S3 and writing shards; its peak RSS (VmHWM) is the worker's memory.
  const workers = await startInProcessWorkers(env, ['cpu']);
  const gpu = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'workers', 'gpu.ts')], {
    env: process.env,
    stdio: 'ignore',
  });
  const client = await connectClient(env);
  // A fresh run id, and a shard size no earlier run used, so nothing is reused from a previous bench.
  const spec = parseRunSpec({
    dataset: { uri: store.uri(prefix) },
    model: { bundle: BENCH_BUNDLE },
    shardSize: 256 + (Date.now() % 97),
    extraction,
    ...EXTRACTION_ONLY,
  });
  // The clock starts once the gpu worker polls; its first shard still pays the one-time bundle
  // verification (sha256 of every file) and session creation, as a freshly started worker does.
  while (!(await hasPollers(client, env.temporal.namespace, env.queues.gpu, 'activity')))
    await sleep(200);
  t0 = performance.now();
  const { runId } = await startEvaluation(client, env, spec);
  const outcome = await waitForRun(client, runId);
  const seconds = (performance.now() - t0) / 1000;
  const gpuPeakKiB = Number(
    /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${gpu.pid}/status`, 'utf8'))?.[1] ?? NaN,
  );
  gpu.kill('SIGTERM');
  await workers.stop();
  clearInterval(sampler);
  if (outcome.status !== 'COMPLETED') throw new Error(`run ${runId}: ${outcome.status}`);
  const x = outcome.summary.extraction;
  const temporalIps = x.imagesDone / seconds;
  console.log(
    `\nextraction of ${N} JPEG 640x480, random-init ViT-B/32 fp32, ${THREADS} threads, shards of ~${spec.shardSize}`,
  );
  console.log(`bare encoder loop (in memory)      ${bareIps.toFixed(2)} img/s`);
  console.log(
    `through Temporal + S3 + Arrow      ${temporalIps.toFixed(2)} img/s  (${x.shards} shards, ${x.shardsReused} reused, run ${runId})`,
  );
  console.log(
    `overhead                           ${((1 - temporalIps / bareIps) * 100).toFixed(1)}%`,
  );
  console.log(
    `peak RSS of the gpu worker process ${(gpuPeakKiB / 1024).toFixed(0)} MiB (this process: ${(rssPeak / 2 ** 20).toFixed(0)} MiB)`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
