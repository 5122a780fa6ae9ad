// The GPU check's clipeval side (bench/gpu/check.sh): image-tower inference on a GPU provider
// for each uint8-input graph variant, and the extraction loop (embedImages: decode pool or fast
// crops feeding that encoder) over in-memory JPEGs, so the figures say whether decoding keeps the
// GPU busy with the machine's cores. Prints one JSON line per measurement.
// Args (env): GPU_PROVIDER (webgpu|cuda|cpu; cpu only to check this script without a GPU),
// GPU_BATCH (256), GPU_ITERS (batches per repeat, 8), GPU_IMAGES (JPEGs for the loop, 2048),
// GPU_PHASE (inference|extract|all), GPU_PRECISION (fp32|fp16|both), BENCH_REPEATS (>= 3).
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadBundle } from '../../core/model/bundle';
import { DecodePool } from '../../core/model/image/decode-pool';
import { embedImages } from '../../core/model/image/embed-images';
import { preprocessParams } from '../../core/model/image/pixels';
import type { ImageGraph, PreprocessingMode } from '../../core/config/run-spec';
import { ImageEncoder } from '../../core/model/onnx/encoders';
import type { ExecutionProvider } from '../../core/model/onnx/session-thread';
import { BENCH_BUNDLE, benchJpeg } from '../fixtures';
import { repeat, REPEATS, summarize } from '../stats';

const PROVIDER = (process.env.GPU_PROVIDER ?? 'webgpu') as ExecutionProvider;
const BATCH = Number(process.env.GPU_BATCH ?? 256);
const ITERS = Number(process.env.GPU_ITERS ?? 8);
const IMAGES = Number(process.env.GPU_IMAGES ?? 2048);
const PHASE = process.env.GPU_PHASE ?? 'all';
const PRECISION = process.env.GPU_PRECISION ?? 'both';
const CORES = availableParallelism();

const emit = (row: Record<string, unknown>) =>
  console.log(JSON.stringify({ provider: PROVIDER, batch: BATCH, cores: CORES, ...row }));

async function encoderFor(precision: ImageGraph) {
  const bundle = await loadBundle(BENCH_BUNDLE);
  const encoder = await ImageEncoder.create(bundle, {
    providers: [PROVIDER],
    precision,
    inputFormat: 'uint8-nhwc',
  });
  // ImageEncoder.create takes the first provider that loads: a silent CPU run would lie.
  if (encoder.provider !== PROVIDER)
    throw new Error(`asked for ${PROVIDER}, ONNX Runtime gave ${encoder.provider}`);
  return { bundle, encoder };
}

/** Inference alone: the same uint8 crops every batch (the graph normalises inside). */
async function inference(precision: ImageGraph): Promise<void> {
  const { bundle, encoder } = await encoderFor(precision);
  const s = bundle.manifest.preprocessing.imageSize;
  const crops = Uint8Array.from({ length: BATCH * s * s * 3 }, (_, i) => (i * 2654435761) >>> 24);
  try {
    const once = async () => {
      const inputs = Array.from({ length: ITERS }, () => crops.slice());
      const start = performance.now();
      // Two batches in flight, as embedImages keeps them (one encoding, one filling).
      let prev: Promise<unknown> | undefined;
      for (const input of inputs) {
        const next = encoder.encode(input, BATCH);
        if (prev) await prev;
        prev = next;
      }
      await prev;
      return (ITERS * BATCH) / ((performance.now() - start) / 1000);
    };
    const ips = await repeat(once, REPEATS);
    emit({ phase: 'inference', precision, ips, ...summarize(ips) });
  } finally {
    await encoder.close();
  }
}

/** Decode + preprocess + encode through embedImages, as extraction runs it, minus S3 and Arrow. */
async function extract(precision: ImageGraph, mode: PreprocessingMode): Promise<void> {
  const { bundle, encoder } = await encoderFor(precision);
  const jpegs = await Promise.all(Array.from({ length: 64 }, (_, i) => benchJpeg(i)));
  const p = bundle.manifest.preprocessing;
  const params = preprocessParams(p);
  const pool = mode === 'exact' ? new DecodePool(CORES) : undefined;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  try {
    const once = async () => {
      const source = Array.from({ length: IMAGES }, (_, i) => ({
        id: String(i),
        bytes: jpegs[i % jpegs.length]!,
      }));
      const start = performance.now();
      let n = 0;
      for await (const b of embedImages(source, encoder, params, {
        batchSize: BATCH,
        concurrency: 2 * CORES,
        preprocessing: mode,
        ...(pool ? { pool } : {}),
      }))
        n += b.ids.length;
      return n / ((performance.now() - start) / 1000);
    };
    const ips = await repeat(once, REPEATS, () => loop.enable());
    loop.disable();
    emit({ phase: 'extract', precision, mode, ips, ...summarize(ips), stallMs: loop.max / 1e6 });
  } finally {
    await pool?.close();
    await encoder.close();
  }
}

async function main(): Promise<void> {
  for (const precision of ['fp32', 'fp16'] as const) {
    if (PRECISION !== 'both' && PRECISION !== precision) continue;
    if (PHASE !== 'extract') await inference(precision);
    if (PHASE !== 'inference')
      for (const mode of ['exact', 'fast'] as const) await extract(precision, mode);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
