// `npm run bench:decode`: decode + preprocess images/s (file read, JPEG decode, resize to 224
// bicubic, center crop, normalise into a float32 batch; no inference) at 1, 2, 4, ... N cores,
// every side in its own process pinned to the same k cores (bench/child.ts), over the same
// photo-like JPEGs (bench/fixtures.ts), in one run:
//   clipeval exact, DecodePool of k threads  vs  clipeval exact on the main thread (no pool)
//   vs clipeval fast (libvips decode with JPEG shrink-on-load + resize)
//   vs the HF CLIPImageProcessor path (PIL) in a multiprocessing Pool of k processes
//   vs torchvision Resize/CenterCrop/ToTensor/Normalize (PIL) in a DataLoader of k workers.
// Knobs: BENCH_IMAGES (default 256), BENCH_REPEATS (>= 3, default 5), BENCH_THREADS (N, default
// every core), BENCH_THREAD_LIST (e.g. "1,2,8"), BENCH_CONCURRENCY (clipeval's images in flight
// per core, default 2), BENCH_IMAGE_SIZE (default 640x480; 3000x2000 for camera-sized photos).
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PreprocessParams } from '../core/model/image/preprocess';
import { coresLabel, runNode, runPython } from './child';
import type { DecodeChildArgs } from './decode-clipeval';
import { ensureImages, ROOT } from './fixtures';
import {
  benchHeader,
  markdownTable,
  MAX_THREADS,
  num,
  ratio,
  REPEATS,
  spread,
  summarize,
  threadList,
  type Spread,
} from './stats';

const WORK = join(ROOT, '.clipeval', 'bench');
const N_IMAGES = Number(process.env.BENCH_IMAGES ?? 256);
const IN_FLIGHT_PER_CORE = Number(process.env.BENCH_CONCURRENCY ?? 2);
const BATCH = 32;
// CLIP's preprocessing (ViT-B/32's 224 px and OpenAI mean/std), the same numbers for every side.
const PARAMS: PreprocessParams = {
  imageSize: 224,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
  rescale: 1 / 255,
};

interface Result {
  ips: number[];
  stallMs?: number;
}

/**
 * One row kind per side. A new side is one more entry: its label, what it is, and how to run it on k cores.
 */
interface Side {
  name: string;
  /** Decoder, resampler, output dtype. */
  what: string;
  /** Threads or processes doing the work on k cores. */
  workers: (k: number) => string;
  /** The reference a ratio is taken against (`ref` true), or clipeval's own rows. */
  ref: boolean;
  run: (k: number, files: string[]) => Result;
}

const clipeval =
  (poolThreads: (k: number) => number, mode: DecodeChildArgs['mode']) =>
  (k: number, files: string[]): Result =>
    runNode<Result>(
      'decode-clipeval.ts',
      {
        files,
        threads: poolThreads(k),
        concurrency: IN_FLIGHT_PER_CORE * k,
        mode,
        params: PARAMS,
        batchSize: BATCH,
        repeats: REPEATS,
      } satisfies DecodeChildArgs,
      // sharp decodes in libuv's pool: k threads, as many as the cores it is pinned to.
      { cores: k, env: { UV_THREADPOOL_SIZE: String(k) } },
    );

const python =
  (side: 'hf' | 'torchvision') =>
  (k: number, files: string[]): Result =>
    runPython<Result>(
      'decode_pil.py',
      {
        side,
        files,
        processes: k,
        batch_size: BATCH,
        image_size: PARAMS.imageSize,
        mean: PARAMS.mean,
        std: PARAMS.std,
        repeats: REPEATS,
      },
      { cores: k },
    );

const SIDES: Side[] = [
  {
    name: 'clipeval exact, decode pool',
    what: 'sharp + Pillow-exact bicubic (wasm SIMD), float32',
    workers: (k) => `${k} pool threads + ${k} libuv (decode)`,
    ref: false,
    run: clipeval((k) => k, 'exact'),
  },
  {
    name: 'clipeval exact, main thread',
    what: 'sharp + Pillow-exact bicubic (wasm SIMD), float32',
    workers: (k) => `main thread + ${k} libuv (decode)`,
    ref: false,
    run: clipeval(() => 0, 'exact'),
  },
  {
    name: 'clipeval fast, main thread',
    what: 'sharp/libvips shrink-on-load + cubic resize, float32',
    workers: (k) => `main thread + ${k} libuv (decode + resize)`,
    ref: false,
    run: clipeval(() => 0, 'fast'),
  },
  {
    name: 'HF CLIPImageProcessor, Pool',
    what: 'PIL + CLIPImageProcessorPil, float32',
    workers: (k) => `${k} processes (multiprocessing.Pool)`,
    ref: true,
    run: python('hf'),
  },
  {
    name: 'torchvision, DataLoader',
    what: 'PIL + torchvision Resize(bicubic, antialias), float32',
    workers: (k) => `${k} DataLoader workers`,
    ref: true,
    run: python('torchvision'),
  },
];

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  // BENCH_IMAGE_SIZE=3000x2000: camera-sized photos (where JPEG shrink-on-load pays); own folder.
  const [w, h] = (process.env.BENCH_IMAGE_SIZE ?? '640x480').split('x').map(Number) as [
    number,
    number,
  ];
  const dir = join(WORK, w === 640 && h === 480 ? 'images' : `images-${w}x${h}`);
  await ensureImages(dir, N_IMAGES, [w, h]);
  const files = readdirSync(dir)
    .sort()
    .slice(0, N_IMAGES)
    .map((f) => join(dir, f));
  const ks = threadList();
  const results = new Map<string, { s: Spread; stallMs?: number }>();
  for (const k of ks)
    for (const side of SIDES) {
      console.error(`${side.name} on ${k} cores ...`);
      const r = side.run(k, files);
      results.set(`${side.name}@${k}`, { s: summarize(r.ips), stallMs: r.stallMs });
    }
  const at = (name: string, k: number) => results.get(`${name}@${k}`)!;

  const rows = ks.flatMap((k) =>
    SIDES.map((side) => {
      const { s, stallMs } = at(side.name, k);
      const one = at(side.name, ks[0]!).s.median / ks[0]!;
      return [
        side.name,
        side.what,
        coresLabel(k),
        side.workers(k),
        spread(s),
        num(s.median / k),
        k === ks[0] ? '-' : `${num((100 * s.median) / k / one, 0)}%`,
        stallMs === undefined ? '-' : `${num(stallMs)} ms`,
      ];
    }),
  );
  const refs = SIDES.filter((s) => s.ref);
  const ratios = ks.flatMap((k) =>
    SIDES.filter((s) => !s.ref).map((side) => [
      coresLabel(k),
      side.name,
      ...refs.map((ref) => ratio(at(side.name, k).s.median, at(ref.name, k).s.median)),
    ]),
  );
  console.log(
    benchHeader('Decode + preprocess (`npm run bench:decode`)', [
      `${files.length} photo-like JPEG ${w}x${h} -> 224x224 float32 NCHW, batches of ${BATCH}, no inference`,
      `each row its own process pinned to k cores; clipeval keeps ${IN_FLIGHT_PER_CORE}k images in flight`,
      `per core = median / k; scaling efficiency = per-core rate at k / per-core rate at ${ks[0]}`,
    ]),
  );
  console.log(
    markdownTable(
      [
        'side',
        'decode + resize, dtype',
        'cores',
        'threads / processes',
        'img/s median (min-max)',
        'img/s per core',
        'scaling eff.',
        'longest stall',
      ],
      rows,
    ),
  );
  console.log('\nSame k cores, median over median:\n');
  console.log(markdownTable(['cores', 'clipeval', ...refs.map((r) => `vs ${r.name}`)], ratios));
  writeFileSync(
    join(WORK, 'decode-result.json'),
    JSON.stringify(
      {
        when: new Date().toISOString(),
        images: files.length,
        maxThreads: MAX_THREADS,
        results: [...results],
      },
      null,
      2,
    ),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
