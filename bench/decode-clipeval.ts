// bench/decode.ts's clipeval side, one process per row (pinned by the parent): read each file,
// sharp decode (libuv's pool, UV_THREADPOOL_SIZE set by the parent), then the resize, crop and
// normalisation into the batch through embedImages, on the main thread (`threads: 0`) or in a
// DecodePool of `threads`. Inference is left out (an encoder stand-in that returns at once).
// Prints one JSON line: images/s per timed repeat and the longest event-loop stall.
import { readFile } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { DecodePool } from '../core/model/image/decode-pool';
import { embedImages } from '../core/model/image/embed-images';
import type { PreprocessParams } from '../core/model/image/preprocess';
import type { ImageEncoder } from '../core/model/onnx/encoders';
import type { PreprocessingMode } from '../core/config/run-spec';
import { repeat } from './stats';

export interface DecodeChildArgs {
  files: string[];
  /** Pool threads; 0 runs the pixel steps on the main thread. */
  threads: number;
  /** Images in flight (fetch + decode) at once. */
  concurrency: number;
  /** `exact` (the JS resample: pool or main thread) or `fast` (libvips in libuv's pool). */
  mode: PreprocessingMode;
  params: PreprocessParams;
  batchSize: number;
  repeats: number;
}

// An encoder stand-in for the float32 NCHW graph: returns at once and hands the batch back.
const standIn = (imageSize: number) =>
  ({
    inputFormat: 'float32-nchw',
    allocate: (n: number) => new Float32Array(n * 3 * imageSize * imageSize),
    encodeReturning: (pixels: Float32Array, n: number) =>
      Promise.resolve({ embeddings: new Float32Array(n), pixels }),
  }) as unknown as ImageEncoder;

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as DecodeChildArgs;
  const pool = a.threads > 0 ? new DecodePool(a.threads) : undefined;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const once = async () => {
    // Files read per image, as the Python sides open them: the page cache serves both.
    const source = a.files.map((f) => ({ id: f, bytes: () => readFile(f) }));
    const start = performance.now();
    let n = 0;
    for await (const batch of embedImages(source, standIn(a.params.imageSize), a.params, {
      batchSize: a.batchSize,
      concurrency: a.concurrency,
      preprocessing: a.mode,
      ...(pool ? { pool } : {}),
    })) {
      if (batch.failed.length > 0) throw new Error(`failed: ${JSON.stringify(batch.failed)}`);
      n += batch.ids.length;
    }
    return n / ((performance.now() - start) / 1000);
  };
  try {
    // The warm-up (threads start, JIT) stays outside the stall window.
    const ips = await repeat(once, a.repeats, () => loop.enable());
    loop.disable();
    console.log(JSON.stringify({ ips, stallMs: loop.max / 1e6 }));
  } finally {
    await pool?.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
