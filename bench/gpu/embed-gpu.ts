// The GPU check's clipeval side (bench/gpu/check.sh): image-tower inference on a GPU provider
// for each uint8-input graph variant, through clipeval's session thread (input buffers handed back
// and reused across batches) and through a bare onnxruntime-node session on this thread
// (pre-allocated input and output tensors: the Node API has no IO binding, run(feeds, fetches)
// writes into the given output), and the extraction loop (embedImages: decode pool or fast crops
// feeding that encoder) over in-memory JPEGs, so the figures say whether decoding keeps the GPU
// busy with the machine's cores. Prints one JSON line per measurement; a failure prints a line
// with `error` and exits 1 (never a figure from another provider than the one asked for).
// Args (env): GPU_PROVIDER (cuda|webgpu|cpu; cpu only to check this script without a GPU),
// GPU_BATCH (256), GPU_ITERS (batches per repeat, 8), GPU_IMAGES (JPEGs for the loop, 2048),
// GPU_PHASE (inference|bare|extract|all), GPU_PRECISION (fp32|fp16|both), BENCH_REPEATS (>= 3).
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { bundleFile, loadBundle } from '../../core/model/bundle';
import { DecodePool } from '../../core/model/image/decode-pool';
import { embedImages } from '../../core/model/image/embed-images';
import { type PixelBuffer, preprocessParams } from '../../core/model/image/pixels';
import type { ImageGraph, PreprocessingMode } from '../../core/config/run-spec';
import { usableProviders } from '../../core/model/onnx/cuda-provider';
import { ImageEncoder, selectGraph } from '../../core/model/onnx/encoders';
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

/** The same uint8 crops every batch (the graph normalises inside), as torch_gpu.py feeds. */
const crops = (s: number) =>
  Uint8Array.from({ length: BATCH * s * s * 3 }, (_, i) => (i * 2654435761) >>> 24);

/** Inference alone, through clipeval's encoder: two input buffers, reused for every batch. */
async function inference(precision: ImageGraph): Promise<void> {
  const { bundle, encoder } = await encoderFor(precision);
  const pixels = crops(bundle.manifest.preprocessing.imageSize);
  // Two batches in flight, as embedImages keeps them (one encoding, one queued); each buffer
  // comes back from the session thread (moved, not copied) and goes out again unchanged.
  const free: PixelBuffer[] = [pixels, pixels.slice()];
  try {
    const once = async () => {
      const start = performance.now();
      let prev: ReturnType<ImageEncoder['encodeReturning']> | undefined;
      for (let i = 0; i < ITERS; i++) {
        const next = encoder.encodeReturning(free.pop()!, BATCH);
        if (prev) free.push((await prev).pixels);
        prev = next;
      }
      free.push((await prev!).pixels);
      return (ITERS * BATCH) / ((performance.now() - start) / 1000);
    };
    const ips = await repeat(once, REPEATS);
    emit({ phase: 'inference', precision, ips, ...summarize(ips) });
  } finally {
    await encoder.close();
  }
}

/**
 * Inference on a bare onnxruntime-node session in this thread, one input and one output tensor
 * allocated once: what the provider gives with no thread hop and no per-batch allocation, the
 * bound for the session-thread row above.
 */
async function bare(precision: ImageGraph): Promise<void> {
  const bundle = await loadBundle(BENCH_BUNDLE);
  const graph = selectGraph(bundle, 'image', { precision, inputFormat: 'uint8-nhwc' });
  const [provider] = usableProviders([PROVIDER], () => {}); // a precise error when cuda cannot load
  const session = await ort.InferenceSession.create(bundleFile(bundle, graph.file), {
    executionProviders: [provider!],
    graphOptimizationLevel: 'all',
    // As encoders.ts: the CPU provider's NCHWc transformer crashes on fp16 graphs (self-check only).
    ...(precision === 'fp16'
      ? { extra: { optimization: { disable_specified_optimizers: 'NchwcTransformer' } } }
      : {}),
  });
  const s = bundle.manifest.preprocessing.imageSize;
  const dim = bundle.manifest.architecture.embedDim;
  const feeds = { [graph.input]: new ort.Tensor('uint8', crops(s), [BATCH, s, s, 3]) };
  const fetches = {
    [graph.output]: new ort.Tensor('float32', new Float32Array(BATCH * dim), [BATCH, dim]),
  };
  try {
    const once = async () => {
      const start = performance.now();
      for (let i = 0; i < ITERS; i++) await session.run(feeds, fetches);
      return (ITERS * BATCH) / ((performance.now() - start) / 1000);
    };
    const ips = await repeat(once, REPEATS);
    emit({ phase: 'bare', precision, ips, ...summarize(ips) });
  } finally {
    await session.release();
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
    if (PHASE === 'all' || PHASE === 'inference') await inference(precision);
    if (PHASE === 'all' || PHASE === 'bare') await bare(precision);
    if (PHASE === 'all' || PHASE === 'extract')
      for (const mode of ['exact', 'fast'] as const) await extract(precision, mode);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  // A row the summary shows as a failure, with the reason (e.g. which CUDA library is missing).
  emit({
    phase: PHASE,
    precision: PRECISION,
    error: err instanceof Error ? err.message : String(err),
  });
  process.exit(1);
});
