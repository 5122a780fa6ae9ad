// `npm run bench:extract`: the whole extraction against what it wraps, on the local stack
// (Temporal + versitygw S3), over photo-like 640x480 JPEGs in S3, at each size of BENCH_IMAGES
// (default 600 and 3,000):
//  1. Feed rate, with the tiny test bundle (inference costs next to nothing, so the figure is how
//     fast images reach the model): whole runs through Temporal, first pass (the pixel cache of
//     the geometry emptied: every image read, decoded, its crop written to the cache), exact and
//     fast preprocessing, and a second model of the same geometry with the cache filled; against
//     the bare loop in this process (the same objects, the same embedImages, nothing written) and
//     boto3 + PIL + the HF CLIPImageProcessor steps in a Pool of the same number of processes
//     (bench/feed_boto3.py).
//  2. The split of the first-pass run: planning, the shard activities, the time shards waited for
//     a worker, summary and report, the workflow's own orchestration (bench/run-split.ts), and
//     inside the gpu worker the busy time per image of S3 reads, decode, resample, inference,
//     pixel-cache and Arrow writes (core/util/phase-profile.ts), beside the bare loop's phases and
//     the PIL pool's.
//  3. At the smallest size: ViT-B/32 fp32 (the random-init bench bundle), whole run vs bare loop,
//     and the dataset formats (ImageFolder vs WebDataset tars of the same images).
// Every figure: median of BENCH_REPEATS after a warm-up; before each whole run the bundle's
// embedding space is emptied, so nothing is reused (checked from the run's counts). Knobs:
// BENCH_IMAGES (comma list), BENCH_REPEATS, BENCH_THREADS (ORT intra-op threads, decode pool
// threads, Python processes), BENCH_ROWS=formats (part 3's formats rows only) or vit (its ViT-B/32 rows).
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ClipevalEnv, loadEnv } from '../core/config/env';
import { loadBundle, type ModelBundle } from '../core/model/bundle';
import { DecodePool } from '../core/model/image/decode-pool';
import { embedImages } from '../core/model/image/embed-images';
import { preprocessParams } from '../core/model/image/pixels';
import { ImageEncoder } from '../core/model/onnx/encoders';
import { ObjectStore } from '../core/storage/object-store';
import { enablePhaseProfile, phaseTotals } from '../core/util/phase-profile';
import { exportDatasetAsWebDataset } from '../client/datasets';
import { stackUp } from '../infra/local-stack/stack';
import { startInProcessWorkers } from '../workers/in-process';
import { TINY_BUNDLE } from '../test/helpers/fixtures';
import { runPython } from './child';
import { EXTRACTION, type RunCase, type Runs, startGpuWorker, wholeRuns } from './extract-runs';
import { BENCH_BUNDLE, ROOT, ensureBundle, ensureImages } from './fixtures';
import { type Measured, printFeedTable, printFormatRows, printVitRows } from './extract-tables';
import { MAX_THREADS, REPEATS, repeat } from './stats';

const SIZES = (process.env.BENCH_IMAGES ?? '600,3000')
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
/** BENCH_ROWS=formats: only the ImageFolder vs WebDataset rows (tiny bundle); =vit: only ViT-B/32's. */
const FORMATS_ONLY = process.env.BENCH_ROWS === 'formats';
const VIT_ONLY = process.env.BENCH_ROWS === 'vit';
const THREADS = MAX_THREADS;
/** About 6 shards or more, so 2 at once keep the worker busy. */
const shardSizeFor = (n: number) => Math.max(4, Math.min(256, Math.floor(n / 6)));

/** Uploads the first `n` bench JPEGs under `prefix` once; returns their keys. */
async function uploadImages(store: ObjectStore, prefix: string, n: number): Promise<string[]> {
  const images = await ensureImages(join(ROOT, '.clipeval', 'bench', 'images'), n);
  const keys = images.map((_, i) => `${prefix}train/c${i % 10}/${String(i).padStart(5, '0')}.jpg`);
  if ((await store.list(prefix)).length < n) {
    console.error(`uploading ${n} images to ${store.uri(prefix)} ...`);
    for (let i = 0; i < n; i += 32)
      await Promise.all(
        images.slice(i, i + 32).map((body, j) => store.putBytes(keys[i + j]!, body)),
      );
  }
  return keys;
}

/**
 * A second model with the tiny bundle's geometry: the same files under another name, so its
 * bundle hash and embedding space differ while its pixel geometry does not (a new checkpoint of
 * the same architecture, as a nightly run sees it).
 */
function secondModel(): string {
  const dir = join(ROOT, '.clipeval', 'bundles', 'tiny-second-model');
  if (!existsSync(join(dir, 'bundle.json'))) {
    cpSync(TINY_BUNDLE, dir, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8')) as object;
    writeFileSync(
      join(dir, 'bundle.json'),
      JSON.stringify({ ...manifest, name: 'tiny-second-model' }),
    );
  }
  return dir;
}

/** The bare loop: the same objects from S3, the same pipeline, nothing written. */
async function bareLoop(store: ObjectStore, keys: string[], bundle: ModelBundle) {
  const params = preprocessParams(bundle.manifest.preprocessing);
  const encoder = await ImageEncoder.create(bundle, { threads: THREADS, providers: ['cpu'] });
  const pool = new DecodePool(THREADS);
  const ips = await repeat(async () => {
    const source = keys.map((key) => ({ id: key, bytes: () => store.requireBytes(key) }));
    enablePhaseProfile(); // the table shows the last timed repeat's phases
    const t0 = performance.now();
    let n = 0;
    for await (const b of embedImages(source, encoder, params, { ...EXTRACTION, pool })) {
      if (b.failed.length > 0) throw new Error(`bare loop failed: ${JSON.stringify(b.failed)}`);
      n += b.ids.length;
    }
    return n / ((performance.now() - t0) / 1000);
  });
  const phases = phaseTotals();
  await pool.close();
  await encoder.close();
  return { ips, phases };
}

/** boto3 + PIL + the HF processor in a Pool of THREADS processes over the same objects. */
function pilPool(
  stackEnv: Record<string, string>,
  env: ClipevalEnv,
  keys: string[],
  p: ModelBundle['manifest']['preprocessing'],
) {
  return runPython<{ ips: number[]; busy_s: Record<string, number> }>(
    'feed_boto3.py',
    {
      endpoint: stackEnv.CLIPEVAL_S3_ENDPOINT,
      bucket: env.s3.bucket,
      keys,
      processes: THREADS,
      batch_size: EXTRACTION.batchSize,
      image_size: p.imageSize,
      mean: p.mean,
      std: p.std,
      repeats: REPEATS,
    },
    { cores: THREADS },
  );
}

/**
 * The same images as CLIP_benchmark-style WebDataset tars (written once by `clipeval dataset
 * export-wds`'s code), for the format rows: tars of 250 samples.
 */
async function uploadWebDataset(env: ClipevalEnv, store: ObjectStore, prefix: string) {
  const out = store.uri(`${prefix.replace(/\/$/, '')}-wds/`);
  console.error(`WebDataset of the same images at ${out} ...`);
  await exportDatasetAsWebDataset(
    env,
    { uri: store.uri(prefix), out },
    { maxSamplesPerTar: 250, maxTarBytes: 256 * 1024 * 1024 },
  );
  return out;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  if (!FORMATS_ONLY) ensureBundle(BENCH_BUNDLE);
  const stack = await stackUp();
  Object.assign(process.env, stack.env, {
    CLIPEVAL_ORT_THREADS: String(THREADS),
    CLIPEVAL_DECODE_THREADS: String(THREADS),
  });
  const env = loadEnv();
  const store = ObjectStore.connect(env.s3);
  const small = SIZES[0]!;
  const sizes = FORMATS_ONLY || VIT_ONLY ? [small] : SIZES;
  /** The sizes of the tiny bundle's feed rows (none with BENCH_ROWS=vit). */
  const feedSizes = VIT_ONLY ? [] : sizes;
  const keysOf = new Map<number, string[]>();
  for (const n of sizes) keysOf.set(n, await uploadImages(store, `bench/images-${n}/`, n));
  const wdsUri = await uploadWebDataset(env, store, `bench/images-${small}/`);
  const tiny = await loadBundle(TINY_BUNDLE);
  const vit = FORMATS_ONLY ? undefined : await loadBundle(BENCH_BUNDLE);

  // The bare loops first, with nothing else running.
  const bare = new Map<number, Awaited<ReturnType<typeof bareLoop>>>();
  let bareVit: number[] = [];
  if (!FORMATS_ONLY) {
    for (const n of feedSizes) {
      console.error(`bare loop, tiny bundle, ${n} images ...`);
      bare.set(n, await bareLoop(store, keysOf.get(n)!, tiny));
    }
    console.error(`bare loop, ViT-B/32, ${small} images ...`);
    bareVit = (await bareLoop(store, keysOf.get(small)!, vit!)).ips;
  }

  const workers = await startInProcessWorkers(env, ['cpu']);
  const ctx = await startGpuWorker(env, store);
  const measured: Measured[] = [];
  let vitRuns: Runs | undefined;
  let folder: Runs | undefined, wds: Runs | undefined;
  let peakMiB = NaN;
  try {
    const base = (n: number): RunCase => ({
      datasetUri: store.uri(`bench/images-${n}/`),
      images: n,
      bundle: TINY_BUNDLE,
      shardSize: shardSizeFor(n),
      pixels: 'cold',
    });
    if (!VIT_ONLY) {
      console.error(`whole runs, tiny bundle, ImageFolder vs WebDataset, ${small} images ...`);
      folder = await wholeRuns(ctx, base(small));
      wds = await wholeRuns(ctx, { ...base(small), datasetUri: wdsUri });
    }
    if (!FORMATS_ONLY) {
      for (const n of feedSizes) {
        console.error(`whole runs, tiny bundle, ${n} images: first pass exact, fast, cached ...`);
        const exact = await wholeRuns(ctx, base(n));
        const fast = await wholeRuns(ctx, { ...base(n), preprocessing: 'fast' });
        // The exact runs above left the geometry's cache filled; a second model reads it.
        const cached = await wholeRuns(ctx, { ...base(n), bundle: secondModel(), pixels: 'warm' });
        measured.push({ n, exact, fast, cached, bare: bare.get(n)!, pil: { ips: [], busy_s: {} } });
      }
      console.error(`whole runs, ViT-B/32, ${small} images ...`);
      vitRuns = await wholeRuns(ctx, { ...base(small), bundle: BENCH_BUNDLE });
    }
    peakMiB = ctx.peakRssMiB();
  } finally {
    ctx.stop();
    await workers.stop();
  }

  const header = { threads: THREADS, batch: EXTRACTION, shardSizeFor };
  if (folder && wds) printFormatRows(header, small, folder, wds);
  if (FORMATS_ONLY) return;
  for (const m of measured) {
    console.error(`boto3 + PIL + HF processor pool, ${m.n} images ...`);
    m.pil = pilPool(stack.env, env, keysOf.get(m.n)!, tiny.manifest.preprocessing);
  }
  if (measured.length > 0) printFeedTable(header, measured);
  printVitRows(header, small, bareVit, vitRuns!);
  console.log(`\ngpu worker peak RSS (VmHWM): ${peakMiB.toFixed(0)} MiB`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
