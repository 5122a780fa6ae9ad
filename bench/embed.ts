// `npm run bench:embed`: image embedding throughput of clipeval (sharp + ONNX Runtime in a worker
// thread) against PyTorch/HF transformers on the same machine, same run, same weights, same
// images and thread count. Uses the full-size random-init ViT-B/32 bundle (generated on first use).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadBundle } from '../core/model/bundle';
import { BENCH_BUNDLE, ensureBundle, ensureImages, PYTHON, ROOT } from './fixtures';
import { embedImages } from '../core/model/image/embed-images';
import { ImageEncoder } from '../core/model/onnx/encoders';
import { cosine } from '../core/util/vectors';
import { decodeToCrop, normalizeInto, type PreprocessParams } from '../core/model/image/preprocess';

const WORK = join(ROOT, '.clipeval', 'bench');
const BUNDLE = BENCH_BUNDLE;
const N_IMAGES = Number(process.env.BENCH_IMAGES ?? 96);
const THREADS = Number(process.env.BENCH_THREADS ?? availableParallelism());
const BATCH_SIZES = [1, 8, 32, 64];
const FULL_BATCH = 32;
const MIN_SECONDS = Number(process.env.BENCH_MIN_SECONDS ?? 4);

const perSecond = (n: number, t0: number) => n / ((performance.now() - t0) / 1000);

async function main(): Promise<void> {
  ensureBundle(BUNDLE);
  const bundle = await loadBundle(BUNDLE);
  const imageDir = join(WORK, 'images');
  const images = await ensureImages(imageDir, N_IMAGES);
  const p = bundle.manifest.preprocessing;
  const params: PreprocessParams = {
    imageSize: p.imageSize,
    mean: p.mean,
    std: p.std,
    rescale: p.rescale,
  };
  const size = 3 * p.imageSize * p.imageSize;
  const rssPeak = { v: 0 };
  const sampler = setInterval(
    () => (rssPeak.v = Math.max(rssPeak.v, process.memoryUsage().rss)),
    20,
  );

  // 1. decode + preprocess alone (sharp in libuv's pool, resize and normalise here).
  let t0 = performance.now();
  const out = new Float32Array(size);
  await Promise.all(
    Array.from({ length: THREADS * 2 }, async (_, lane) => {
      for (let i = lane; i < images.length; i += THREADS * 2)
        normalizeInto((await decodeToCrop(images[i]!, p.imageSize)).rgb, params, out, 0);
    }),
  );
  const preprocessIps = perSecond(images.length, t0);

  // 2. inference alone, per batch size.
  // The float graph: this bench feeds normalised float32 NCHW pixels.
  const encoder = await ImageEncoder.create(bundle, {
    threads: THREADS,
    providers: ['cpu'],
    inputFormat: 'float32-nchw',
  });
  const inferenceIps: Record<string, number> = {};
  for (const bs of BATCH_SIZES) {
    const template = Float32Array.from({ length: bs * size }, (_, i) => Math.sin(i));
    const pixels = () => template.slice(); // a copy: the buffer is transferred to the session thread
    await encoder.encode(pixels(), bs); // warm-up
    let n = 0;
    t0 = performance.now();
    while (n < Math.max(bs * 2, 16) || performance.now() - t0 < MIN_SECONDS * 1000) {
      await encoder.encode(pixels(), bs);
      n += bs;
    }
    inferenceIps[bs] = perSecond(n, t0);
  }

  // 3. the full pipelined path, with the event loop watched (heartbeats live there).
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const fullPath = async (enc: ImageEncoder) => {
    const parts: Float32Array[] = [];
    const start = performance.now();
    const source = images.map((bytes, i) => ({ id: String(i), bytes }));
    const opts = { batchSize: FULL_BATCH, concurrency: THREADS * 2 };
    for await (const batch of embedImages(source, enc, params, opts)) parts.push(batch.embeddings);
    const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
    return { ips: perSecond(images.length, start), embeddings: all };
  };
  loop.enable();
  const full = await fullPath(encoder);
  loop.disable();
  await encoder.close();

  // 3b. the exporter's dynamic-int8 variant: its speed, and its accuracy cost against fp32 here.
  const int8 = await ImageEncoder.create(bundle, {
    threads: THREADS,
    providers: ['cpu'],
    precision: 'int8',
    inputFormat: 'float32-nchw',
  });
  const template = Float32Array.from({ length: FULL_BATCH * size }, (_, i) => Math.sin(i));
  await int8.encode(template.slice(), FULL_BATCH);
  let n8 = 0;
  t0 = performance.now();
  while (n8 < FULL_BATCH * 2 || performance.now() - t0 < MIN_SECONDS * 1000) {
    await int8.encode(template.slice(), FULL_BATCH);
    n8 += FULL_BATCH;
  }
  const int8InferenceIps = perSecond(n8, t0);
  const full8 = await fullPath(int8);
  await int8.close();
  const d = bundle.manifest.architecture.embedDim;
  const row = (e: Float32Array, i: number) => e.subarray(i * d, (i + 1) * d);
  const cos = images.map((_, i) => cosine(row(full.embeddings, i), row(full8.embeddings, i)));
  clearInterval(sampler);

  // 4. the reference: PyTorch eager fp32, same weights (same seed), same images and threads.
  const torchArgs = {
    model: 'vit-b-32',
    seed: 0,
    threads: THREADS,
    images: imageDir,
    batch_sizes: BATCH_SIZES,
    full_batch: FULL_BATCH,
    min_images: 16,
    min_seconds: MIN_SECONDS,
  };
  const py = spawnSync(PYTHON, [join(ROOT, 'bench/embed_torch.py'), JSON.stringify(torchArgs)], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (py.status !== 0) throw new Error(`PyTorch reference failed:\n${py.stderr}`);
  const ref = JSON.parse(py.stdout.trim().split('\n').pop()!) as {
    preprocess_ips: number;
    inference_ips: Record<string, number>;
    full_ips: number;
  };

  const rows = [
    ['decode+preprocess', preprocessIps, ref.preprocess_ips],
    ...BATCH_SIZES.map((bs) => [
      `inference batch ${bs}`,
      inferenceIps[bs]!,
      ref.inference_ips[String(bs)]!,
    ]),
    [`full path batch ${FULL_BATCH}`, full.ips, ref.full_ips],
    [
      `int8 inference batch ${FULL_BATCH}`,
      int8InferenceIps,
      ref.inference_ips[String(FULL_BATCH)]!,
    ],
    [`int8 full path batch ${FULL_BATCH}`, full8.ips, ref.full_ips],
  ] as [string, number, number][];
  console.log(
    `\nclipeval vs PyTorch eager fp32, random-init ViT-B/32, ${images.length} JPEG 640x480, ${THREADS} threads`,
  );
  console.log('stage                      clipeval img/s   PyTorch img/s   ratio');
  for (const [name, a, b] of rows)
    console.log(
      `${name.padEnd(26)} ${a.toFixed(2).padStart(14)} ${b.toFixed(2).padStart(15)}   ${(a / b).toFixed(2)}x`,
    );
  const meanCos = cos.reduce((a, b) => a + b, 0) / cos.length;
  console.log(
    `int8 vs fp32 embeddings of these images: min cosine ${Math.min(...cos).toFixed(5)}, mean ${meanCos.toFixed(5)}`,
  );
  console.log(
    `peak RSS ${(rssPeak.v / 2 ** 20).toFixed(0)} MiB; longest event-loop stall during the full path ${(loop.max / 1e6).toFixed(1)} ms`,
  );
  const result = {
    when: new Date().toISOString(),
    threads: THREADS,
    images: images.length,
    rows,
    peakRssMiB: rssPeak.v / 2 ** 20,
    int8MinCosine: Math.min(...cos),
    maxEventLoopStallMs: loop.max / 1e6,
  };
  writeFileSync(join(WORK, 'embed-result.json'), JSON.stringify(result, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
