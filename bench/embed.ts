// `npm run bench:embed`: image-tower inference only, on equal terms: the same pre-made pixel
// batch (the bench JPEGs through clipeval's exact preprocessing, written once to a file both
// sides read), the same weights (the random-init ViT-B/32 bundle and the PyTorch model it was
// exported from, same seed; checked by the cosine column), the same batch, and each side in its
// own process pinned to the same k cores with k compute threads. Rows per graph variant:
//   fp32: clipeval (ORT Node) vs PyTorch eager fp32, and vs ORT Python on the same fp32 graph;
//   int8: clipeval on the bundle's int8 graph vs ORT Python on that same graph (the exporter
//         makes it with onnxruntime.quantization.quantize_dynamic: QInt8 MatMul/Gemm weights),
//         a quantised reference, never fp32 PyTorch.
// Knobs: BENCH_BATCH (default 32), BENCH_ITERS (batches per repeat, default 4), BENCH_REPEATS,
// BENCH_THREADS / BENCH_THREAD_LIST (default 1 and every core).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleFile, loadBundle, type ModelBundle } from '../core/model/bundle';
import { decodeToCrop, normalizeInto, type PreprocessParams } from '../core/model/image/preprocess';
import { cosine, l2NormalizeRows } from '../core/util/vectors';
import { coresLabel, runNode, runPython } from './child';
import type { EmbedChildArgs } from './embed-clipeval';
import { BENCH_BUNDLE, ensureBundle, ensureImages, ROOT } from './fixtures';
import {
  benchHeader,
  markdownTable,
  MAX_THREADS,
  num,
  ratio,
  REPEATS,
  spread,
  summarize,
} from './stats';

const WORK = join(ROOT, '.clipeval', 'bench', 'embed');
const BATCH = Number(process.env.BENCH_BATCH ?? 32);
const ITERS = Number(process.env.BENCH_ITERS ?? 4);
const THREADS = process.env.BENCH_THREAD_LIST
  ? process.env.BENCH_THREAD_LIST.split(',').map(Number)
  : [...new Set([1, MAX_THREADS])];

type Precision = EmbedChildArgs['precision'];

interface Reference {
  name: string;
  dtype: string;
  engine: 'torch' | 'ort';
  /** The bundle graph the ORT reference runs (the same file clipeval runs). */
  precision?: Precision;
}

/**
 * One row per (clipeval graph variant, reference). A new variant (fp16, uint8 input) is one more
 * entry here and its precision in EncoderOptions; its reference must do the same arithmetic.
 */
const ROWS: { precision: Precision; dtype: string; ref: Reference }[] = [
  {
    precision: 'fp32',
    dtype: 'fp32',
    ref: { name: 'PyTorch eager (HF CLIPModel, SDPA)', dtype: 'fp32', engine: 'torch' },
  },
  {
    precision: 'fp32',
    dtype: 'fp32',
    ref: { name: 'ORT Python, same graph', dtype: 'fp32', engine: 'ort', precision: 'fp32' },
  },
  {
    precision: 'int8',
    dtype: 'int8 dynamic (QInt8 MatMul/Gemm)',
    ref: {
      name: 'ORT Python, same int8 graph',
      dtype: 'int8 dynamic',
      engine: 'ort',
      precision: 'int8',
    },
  },
];

/** The first BATCH bench images through clipeval's exact preprocessing, as one NCHW file. */
async function pixelFile(bundle: ModelBundle): Promise<string> {
  const p = bundle.manifest.preprocessing;
  const params: PreprocessParams = {
    imageSize: p.imageSize,
    mean: p.mean,
    std: p.std,
    rescale: p.rescale,
  };
  const images = await ensureImages(join(ROOT, '.clipeval', 'bench', 'images'), BATCH);
  const size = 3 * p.imageSize * p.imageSize;
  const out = new Float32Array(BATCH * size);
  for (const [i, bytes] of images.entries())
    normalizeInto((await decodeToCrop(bytes, p.imageSize)).rgb, params, out, i * size);
  const file = join(WORK, `pixels-${BATCH}.f32`);
  writeFileSync(file, out);
  return file;
}

function graphFile(bundle: ModelBundle, precision: Precision): string {
  const g = bundle.manifest.graphs.image;
  const file = precision === 'int8' ? g.int8 : g.file;
  if (!file) throw new Error(`bundle ${bundle.dir} has no ${precision} image graph`);
  return bundleFile(bundle, file);
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  ensureBundle(BENCH_BUNDLE);
  const bundle = await loadBundle(BENCH_BUNDLE);
  const pixels = await pixelFile(bundle);
  const d = bundle.manifest.architecture.embedDim;
  const common = { batch: BATCH, pixels, iters: ITERS, repeats: REPEATS };
  const results = new Map<string, { ips: number[]; out: string }>();

  const clipeval = (precision: Precision, k: number) => {
    const key = `clipeval ${precision}@${k}`;
    if (!results.has(key)) {
      console.error(`${key} ...`);
      const out = join(WORK, `out-${key.replace(/\W+/g, '-')}.f32`);
      const args: EmbedChildArgs = { bundle: BENCH_BUNDLE, precision, threads: k, out, ...common };
      results.set(key, {
        ...runNode<{ ips: number[] }>('embed-clipeval.ts', args, { cores: k }),
        out,
      });
    }
    return results.get(key)!;
  };
  const reference = (ref: Reference, k: number) => {
    const key = `${ref.name}@${k}`;
    if (!results.has(key)) {
      console.error(`${key} ...`);
      const out = join(WORK, `out-${key.replace(/\W+/g, '-')}.f32`);
      const g = bundle.manifest.graphs.image;
      const args =
        ref.engine === 'torch'
          ? { engine: 'torch', model: 'vit-b-32', seed: 0 }
          : {
              engine: 'ort',
              graph: graphFile(bundle, ref.precision!),
              input: g.input,
              output: g.output,
            };
      const r = runPython<{ ips: number[] }>(
        'embed_ref.py',
        { ...args, threads: k, out, ...common },
        { cores: k },
      );
      results.set(key, { ...r, out });
    }
    return results.get(key)!;
  };

  const rows: string[][] = [];
  for (const k of THREADS) {
    const torchFp32 = reference(ROWS[0]!.ref, k);
    const embeddings = (out: string) => {
      const b = readFileSync(out);
      return l2NormalizeRows(new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4), d);
    };
    // Smallest per-image cosine to PyTorch fp32 on this batch: same weights, and what a variant costs.
    const minCos = (out: string) => {
      const a = embeddings(out);
      const t = embeddings(torchFp32.out);
      const row = (e: Float32Array, i: number) => e.subarray(i * d, (i + 1) * d);
      return Math.min(...Array.from({ length: BATCH }, (_, i) => cosine(row(a, i), row(t, i))));
    };
    for (const { precision, dtype, ref } of ROWS) {
      const ours = clipeval(precision, k);
      const theirs = reference(ref, k);
      const a = summarize(ours.ips);
      const b = summarize(theirs.ips);
      rows.push([
        dtype,
        coresLabel(k),
        `ORT Node, ${k} intra-op`,
        spread(a),
        `${ref.name}, ${ref.engine === 'torch' ? `set_num_threads(${k})` : `${k} intra-op`}`,
        spread(b),
        ratio(a.median, b.median),
        `${num(minCos(ours.out), 5)} / ${num(minCos(theirs.out), 5)}`,
      ]);
    }
  }
  console.log(
    benchHeader('Image-tower inference (`npm run bench:embed`)', [
      `random-init ViT-B/32 (${bundle.manifest.name}), batch ${BATCH}, ${ITERS} batches per repeat, the same pre-made float32 pixels for every side`,
      'each side its own process pinned to the same k cores; ratio = clipeval median / reference median',
      'min cosine = smallest per-image cosine to PyTorch fp32 on this batch (clipeval / reference): 1.00000 means the same weights and arithmetic',
    ]),
  );
  console.log(
    markdownTable(
      [
        'graph (dtype)',
        'cores',
        'clipeval threads',
        'clipeval img/s',
        'reference, threads',
        'reference img/s',
        'ratio',
        'min cosine vs PyTorch fp32',
      ],
      rows,
    ),
  );
  writeFileSync(
    join(WORK, 'embed-result.json'),
    JSON.stringify(
      { when: new Date().toISOString(), batch: BATCH, results: [...results] },
      null,
      2,
    ),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
