// `npm run bench:embed`: image-tower inference only, on equal terms: the same pre-made pixel
// batch (the bench JPEGs through clipeval's exact preprocessing, written once to a file both
// sides read), the same weights (the random-init ViT-B/32 bundle and the PyTorch model it was
// exported from, same seed; checked by the cosine column), the same batch, and each side in its
// own process pinned to the same k cores with k compute threads. Rows per graph variant:
//   fp32: clipeval (ORT Node) vs PyTorch eager fp32, and vs ORT Python on the same fp32 graph;
//   int8: clipeval on the bundle's int8 graph vs ORT Python on that same graph (the exporter
//         makes it with onnxruntime.quantization.quantize_dynamic: QInt8 MatMul/Gemm weights),
//         a quantised reference, never fp32 PyTorch;
//   uint8 input (normalisation inside the graph; what workers run by default) for fp32, fp16 and
//         int8, each vs ORT Python on that same graph and the same uint8 crops. On CPU, ONNX
//         Runtime runs the fp16 graph through inserted casts (fp32 arithmetic on fp16-rounded
//         weights): that row measures fp16 storage, not fp16 compute (a GPU provider's job).
// Knobs: BENCH_BATCH (default 32), BENCH_ITERS (batches per repeat, default 4), BENCH_REPEATS,
// BENCH_THREADS / BENCH_THREAD_LIST (default 1 and every core).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleFile, loadBundle, type ModelBundle } from '../core/model/bundle';
import { selectGraph } from '../core/model/onnx/encoders';
import { decodeToCrop, normalizeInto, preprocessParams } from '../core/model/image/preprocess';
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
type InputFormat = EmbedChildArgs['inputFormat'];

interface Reference {
  name: string;
  dtype: string;
  engine: 'torch' | 'ort';
  /** The bundle graph the ORT reference runs (the same file clipeval runs). */
  precision?: Precision;
}

const ortSame = (precision: Precision, dtype: string): Reference => ({
  name: `ORT Python, same ${precision} graph`,
  dtype,
  engine: 'ort',
  precision,
});

/**
 * One row per (clipeval graph variant, reference). A new variant (fp16, uint8 input) is one more
 * entry here and its precision in EncoderOptions; its reference must do the same arithmetic.
 */
const ROWS: { precision: Precision; inputFormat: InputFormat; dtype: string; ref: Reference }[] = [
  {
    precision: 'fp32',
    inputFormat: 'float32-nchw',
    dtype: 'fp32',
    ref: { name: 'PyTorch eager (HF CLIPModel, SDPA)', dtype: 'fp32', engine: 'torch' },
  },
  { precision: 'fp32', inputFormat: 'float32-nchw', dtype: 'fp32', ref: ortSame('fp32', 'fp32') },
  {
    precision: 'int8',
    inputFormat: 'float32-nchw',
    dtype: 'int8 dynamic (QInt8 MatMul/Gemm)',
    ref: ortSame('int8', 'int8 dynamic'),
  },
  {
    precision: 'fp32',
    inputFormat: 'uint8-nhwc',
    dtype: 'fp32, uint8 input',
    ref: ortSame('fp32', 'fp32, uint8 input'),
  },
  {
    precision: 'fp16',
    inputFormat: 'uint8-nhwc',
    dtype: 'fp16 weights (CPU: fp32 compute via casts), uint8 input',
    ref: ortSame('fp16', 'fp16 weights, uint8 input'),
  },
  {
    precision: 'int8',
    inputFormat: 'uint8-nhwc',
    dtype: 'int8 dynamic, uint8 input',
    ref: ortSame('int8', 'int8 dynamic, uint8 input'),
  },
];

/**
 * The first BATCH bench images through clipeval's exact preprocessing, as one file per input
 * format: normalised float32 NCHW, and the crops' bytes (uint8 NHWC).
 */
async function pixelFiles(bundle: ModelBundle): Promise<Record<InputFormat, string>> {
  const p = bundle.manifest.preprocessing;
  const params = preprocessParams(p);
  const images = await ensureImages(join(ROOT, '.clipeval', 'bench', 'images'), BATCH);
  const size = 3 * p.imageSize * p.imageSize;
  const out = new Float32Array(BATCH * size);
  const crops = new Uint8Array(BATCH * size);
  for (const [i, bytes] of images.entries()) {
    const { rgb } = await decodeToCrop(bytes, p);
    normalizeInto(rgb, params, out, i * size);
    crops.set(rgb, i * size);
  }
  const files = {
    'float32-nchw': join(WORK, `pixels-${BATCH}.f32`),
    'uint8-nhwc': join(WORK, `crops-${BATCH}.u8`),
  };
  writeFileSync(files['float32-nchw'], out);
  writeFileSync(files['uint8-nhwc'], crops);
  return files;
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  ensureBundle(BENCH_BUNDLE);
  const bundle = await loadBundle(BENCH_BUNDLE);
  const pixels = await pixelFiles(bundle);
  const d = bundle.manifest.architecture.embedDim;
  const common = { batch: BATCH, iters: ITERS, repeats: REPEATS };
  const results = new Map<string, { ips: number[]; out: string }>();

  const clipeval = (precision: Precision, inputFormat: InputFormat, k: number) => {
    const key = `clipeval ${precision} ${inputFormat}@${k}`;
    if (!results.has(key)) {
      console.error(`${key} ...`);
      const out = join(WORK, `out-${key.replace(/\W+/g, '-')}.f32`);
      const args: EmbedChildArgs = {
        bundle: BENCH_BUNDLE,
        precision,
        inputFormat,
        threads: k,
        out,
        pixels: pixels[inputFormat],
        ...common,
      };
      results.set(key, {
        ...runNode<{ ips: number[] }>('embed-clipeval.ts', args, { cores: k }),
        out,
      });
    }
    return results.get(key)!;
  };
  const reference = (ref: Reference, inputFormat: InputFormat, k: number) => {
    const key = `${ref.name} ${inputFormat}@${k}`;
    if (!results.has(key)) {
      console.error(`${key} ...`);
      const out = join(WORK, `out-${key.replace(/\W+/g, '-')}.f32`);
      // The very graph file clipeval's encoder opens for this precision and input format.
      const g = selectGraph(bundle, 'image', { precision: ref.precision, inputFormat });
      const args =
        ref.engine === 'torch'
          ? { engine: 'torch', model: 'vit-b-32', seed: 0 }
          : { engine: 'ort', graph: bundleFile(bundle, g.file), input: g.input, output: g.output };
      const r = runPython<{ ips: number[] }>(
        'embed_ref.py',
        { ...args, threads: k, out, pixels: pixels[inputFormat], inputFormat, ...common },
        { cores: k },
      );
      results.set(key, { ...r, out });
    }
    return results.get(key)!;
  };

  const rows: string[][] = [];
  for (const k of THREADS) {
    const torchFp32 = reference(ROWS[0]!.ref, 'float32-nchw', k);
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
    for (const { precision, inputFormat, dtype, ref } of ROWS) {
      const ours = clipeval(precision, inputFormat, k);
      const theirs = reference(ref, inputFormat, k);
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
      `random-init ViT-B/32 (${bundle.manifest.name}), batch ${BATCH}, ${ITERS} batches per repeat, the same pre-made pixels for every side (float32 NCHW, or the same crops as uint8 NHWC)`,
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
