// `npm run bench:decode`: decode + preprocess images/s through embedImages (sharp decode, then the
// exact resize, crop and normalisation into the batch), inference left out (an encoder stand-in
// that returns at once): on the main thread (no decode pool, CLIPEVAL_DECODE_THREADS=0) and with
// a pool of 1, 2, ... threads. Median of BENCH_REPEATS runs after one warm-up, with the spread,
// and the longest event-loop stall (where heartbeats run) per configuration.
import { writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { DecodePool } from '../core/model/image/decode-pool';
import { embedImages } from '../core/model/image/embed-images';
import type { PreprocessParams } from '../core/model/image/preprocess';
import type { ImageEncoder } from '../core/model/onnx/encoders';
import { ensureImages, ROOT } from './fixtures';

const WORK = join(ROOT, '.clipeval', 'bench');
const N_IMAGES = Number(process.env.BENCH_IMAGES ?? 192);
const REPEATS = Math.max(3, Number(process.env.BENCH_REPEATS ?? 5));
const CORES = availableParallelism();
const THREADS = (process.env.BENCH_DECODE_THREADS ?? [0, ...new Set([1, 2, CORES])].join(','))
  .split(',')
  .map(Number);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 2 * CORES);
// CLIP's preprocessing (ViT-B/32's 224 px; the tiny bundle's values would make the crops tiny).
const PARAMS: PreprocessParams = {
  imageSize: 224,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
  rescale: 1 / 255,
};

const encoder = {
  encode: (_pixels: Float32Array, n: number) => Promise.resolve(new Float32Array(n)),
} as unknown as ImageEncoder;

async function run(images: Uint8Array[], pool: DecodePool | undefined): Promise<number> {
  const source = images.map((bytes, i) => ({ id: String(i), bytes }));
  const start = performance.now();
  let n = 0;
  for await (const batch of embedImages(source, encoder, PARAMS, {
    batchSize: 32,
    concurrency: CONCURRENCY,
    ...(pool ? { pool } : {}),
  })) {
    if (batch.failed.length > 0) throw new Error(`failed: ${JSON.stringify(batch.failed)}`);
    n += batch.ids.length;
  }
  return n / ((performance.now() - start) / 1000);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const images = await ensureImages(join(WORK, 'images'), N_IMAGES);
  const rows: { threads: number; median: number; min: number; max: number; stallMs: number }[] = [];
  for (const threads of THREADS) {
    const pool = threads > 0 ? new DecodePool(threads) : undefined;
    try {
      await run(images, pool); // warm-up: JIT, threads started, sharp's caches
      const ips: number[] = [];
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      for (let r = 0; r < REPEATS; r++) ips.push(await run(images, pool));
      loop.disable();
      rows.push({
        threads,
        median: median(ips),
        min: Math.min(...ips),
        max: Math.max(...ips),
        stallMs: loop.max / 1e6,
      });
    } finally {
      await pool?.close();
    }
  }
  const one = rows.find((r) => r.threads === 1);
  console.log(
    `\ndecode + preprocess (exact) through embedImages, no inference: ${images.length} JPEG 640x480 -> ${PARAMS.imageSize}, ` +
      `concurrency ${CONCURRENCY}, ${CORES} cores (${cpus()[0]?.model ?? '?'}), median of ${REPEATS} after a warm-up`,
  );
  console.log(
    'decode threads            img/s median   spread (min-max)   vs 1 thread   longest stall',
  );
  for (const r of rows) {
    const label = r.threads === 0 ? '0 (main thread)' : `${r.threads} (pool)`;
    const scale = one && r.threads > 0 ? `${(r.median / one.median).toFixed(2)}x` : '-';
    console.log(
      `${label.padEnd(25)} ${r.median.toFixed(1).padStart(12)}   ${`${r.min.toFixed(1)}-${r.max.toFixed(1)}`.padStart(16)}   ${scale.padStart(11)}   ${`${r.stallMs.toFixed(1)} ms`.padStart(13)}`,
    );
  }
  writeFileSync(
    join(WORK, 'decode-result.json'),
    JSON.stringify(
      { when: new Date().toISOString(), cores: CORES, images: images.length, rows },
      null,
      2,
    ),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
