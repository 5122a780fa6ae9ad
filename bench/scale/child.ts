// One measured stage of bench/scale.ts in a fresh process, so its peak RSS (VmHWM) is the
// stage's own: the parent's generator buffers and the other stages are not in it. The argument is
// the JSON of a StageArgs; the last line printed is the JSON of a StageResult.
//   plan       planDataset (the planning activity's core function): list, read every tar's
//              headers, build the plan, write plan.json; or the DatasetError/JsonTooLargeError
//              message where the current design refuses
//   prototypes classPrototypes with the tiny bundle's text tower: 1,000 classes x 80 templates
//   scores     scaledCosineScores of n test rows x 1,000 prototypes at dim 512
//   leaderboard one dataset's zero-shot column of a suite's leaderboard: `models` predictions.arrow
//              of n test images read (correctnessOf) and scored (scoreDataset: 1,000 resamples)
//   probe      trainProbe (L-BFGS, fixed C, a capped iteration count) on n x 512 features
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadEnv } from '../../core/config/env';
import { EXTRACTION_ONLY } from '../../core/config/run-spec';
import { planDataset } from '../../core/dataset/plan-dataset';
import { benchmarkClassNames } from '../../core/dataset/benchmark-class-names';
import { loadBundle } from '../../core/model/bundle';
import { ClipTextEncoder } from '../../core/model/onnx/encoders';
import { tokenizerForBundle } from '../../core/model/text/tokenizer';
import { encodePredictions } from '../../core/routes/predictions';
import { trainProbe } from '../../core/routes/probe';
import type { RouteSummary } from '../../core/routes/route-result';
import { fewShotTable } from '../../core/runs/summary';
import { correctnessOf } from '../../core/suites/columns';
import { ImageKeyTable } from '../../core/suites/image-keys';
import { type CellResult, jobKey, scoreDataset } from '../../core/suites/leaderboard';
import { scaledCosineScores } from '../../core/routes/scores';
import { classPrototypes } from '../../core/routes/zero-shot/prototypes';
import { OPENAI_IMAGENET_TEMPLATES } from '../../core/routes/zero-shot/templates';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { l2NormalizeRows } from '../../core/util/vectors';
import { clusterProblem } from '../../test/helpers/probe-data';
import { ROOT } from '../fixtures';

export type StageArgs =
  | { stage: 'plan'; datasetUri: string; runId: string; shardSize: number }
  | { stage: 'prototypes' }
  | { stage: 'scores'; n: number; classes: number; dim: number }
  | { stage: 'probe'; n: number; classes: number; dim: number; iterations: number }
  | { stage: 'leaderboard'; n: number; classes: number; models: number };

export interface StageResult {
  wallS: number;
  /** The process's peak RSS (VmHWM) and its RSS before the stage began. */
  peakRssMiB: number;
  rssBeforeMiB: number;
  /** plan: the refusal, where the design refuses this size. */
  refused?: string;
  figures: Record<string, number>;
}

const TINY_BUNDLE = join(ROOT, 'test', 'fixtures', 'tiny-clip');

function peakRssMiB(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
}

/** Uniform random L2-normalised rows (a fixed LCG: the same rows every run). */
function randomRows(n: number, dim: number, seed: number): Float32Array {
  const x = new Float32Array(n * dim);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2 ** 32 - 0.5;
  }
  return l2NormalizeRows(x, dim);
}

async function plan(a: Extract<StageArgs, { stage: 'plan' }>): Promise<Partial<StageResult>> {
  const store = ObjectStore.connect(loadEnv().s3);
  const spec = { dataset: { uri: a.datasetUri }, shardSize: a.shardSize, ...EXTRACTION_ONLY };
  try {
    const t0 = performance.now();
    const summary = await planDataset(store, { runId: a.runId, spec });
    const wallS = (performance.now() - t0) / 1000;
    const planBytes = (await store.list(keys.plan(a.runId)))[0]?.size ?? NaN;
    return {
      wallS,
      figures: { shards: summary.shards, images: summary.images, planBytes },
    };
  } catch (err) {
    return { wallS: NaN, refused: err instanceof Error ? err.message : String(err), figures: {} };
  } finally {
    store.client.destroy();
  }
}

async function prototypes(): Promise<Partial<StageResult>> {
  const bundle = await loadBundle(TINY_BUNDLE);
  const dim = bundle.manifest.architecture.embedDim;
  const labels = Array.from({ length: 1000 }, (_, c) => String(c));
  const names = benchmarkClassNames('imagenet1k', labels, 'given');
  const encoder = await ClipTextEncoder.create(bundle, { threads: 1 });
  try {
    const tokenizer = await tokenizerForBundle(bundle);
    const t0 = performance.now();
    const protos = await classPrototypes(
      { encoder, tokenizer, dim },
      names,
      OPENAI_IMAGENET_TEMPLATES,
    );
    const wallS = (performance.now() - t0) / 1000;
    const prompts = names.length * OPENAI_IMAGENET_TEMPLATES.length;
    return {
      wallS,
      figures: { prompts, dim, promptsPerS: prompts / wallS, rows: protos.length / dim },
    };
  } finally {
    await encoder.close();
  }
}

async function scores(a: Extract<StageArgs, { stage: 'scores' }>): Promise<Partial<StageResult>> {
  const images = randomRows(a.n, a.dim, 1);
  const classes = randomRows(a.classes, a.dim, 2);
  const t0 = performance.now();
  const out = await scaledCosineScores(images, classes, a.dim, 100);
  const wallS = (performance.now() - t0) / 1000;
  return { wallS, figures: { scoresMiB: out.byteLength / 2 ** 20, rowsPerS: a.n / wallS } };
}

async function probe(a: Extract<StageArgs, { stage: 'probe' }>): Promise<Partial<StageResult>> {
  // bench/probe.ts's overlapping clusters (random labels on random rows converge at once).
  const spread = 0.25 * Math.sqrt(512 / a.dim);
  const train = clusterProblem({ dim: a.dim, classes: a.classes, spread, seed: 0 })(a.n, 'train');
  const { x, labels } = train;
  const featuresMiB = x.byteLength / 2 ** 20;
  const t0 = performance.now();
  const r = await trainProbe({
    train: { x, labels, n: a.n, dim: a.dim },
    numClasses: a.classes,
    recipe: { kind: 'lbfgs', C: 0.316, maxIterations: a.iterations },
    seed: 0,
  });
  const wallS = (performance.now() - t0) / 1000;
  return {
    wallS,
    figures: { iterations: r.iterations, featuresMiB, sPerIteration: wallS / r.iterations },
  };
}

function leaderboard(a: Extract<StageArgs, { stage: 'leaderboard' }>): Partial<StageResult> {
  const names = Array.from({ length: a.classes }, (_, c) => `class ${c}`);
  const rows = Array.from({ length: a.n }, (_, i) => ({
    key: `s3://datasets/imagenet1k/test/${Math.floor(i / 1000)}.tar#test_${String(i).padStart(8, '0')}`,
    imageId: String(i),
    label: i % a.classes,
  }));
  // Model m right with probability ~0.5 + m / 4M (a fixed LCG per model).
  const files = Array.from({ length: a.models }, (_, m) => {
    let s = m + 1;
    const indices = Int32Array.from(rows, (r) => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32 < 0.5 + m / (4 * a.models) ? r.label : (r.label + 1) % a.classes;
    });
    return encodePredictions(rows, { indices, scores: new Float32Array(a.n) }, 1, names, {});
  });
  const t0 = performance.now();
  const keys = new ImageKeyTable();
  const cells: CellResult[] = files.map((file, m) => {
    const correctness = correctnessOf(file, keys);
    const acc1 = correctness.correct.reduce((x, y) => x + y, 0) / a.n;
    const route: RouteSummary = {
      route: 'zero-shot',
      n: a.n,
      acc1,
      acc5: null,
      meanPerClassRecall: acc1,
      macroF1: acc1,
      notes: [],
      metricsUri: 's3://b/m',
    };
    return {
      model: `m${m}`,
      dataset: 'imagenet1k',
      runId: `s--m${m}--imagenet1k`,
      status: 'completed',
      routes: [route],
      fewShot: fewShotTable([route]),
      correctness: new Map([[jobKey(route), correctness]]),
    };
  });
  const models = cells.map((c) => c.model);
  const scored = scoreDataset({ dataset: 'imagenet1k', models, cells, keys });
  const wallS = (performance.now() - t0) / 1000;
  return {
    wallS,
    figures: {
      comparisons: scored.comparisons.length,
      predictionsMiB: files.reduce((x, f) => x + f.byteLength, 0) / 2 ** 20,
    },
  };
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]!) as StageArgs;
  const rssBeforeMiB = process.memoryUsage().rss / 2 ** 20;
  const r =
    a.stage === 'plan'
      ? await plan(a)
      : a.stage === 'prototypes'
        ? await prototypes()
        : a.stage === 'scores'
          ? await scores(a)
          : a.stage === 'leaderboard'
            ? leaderboard(a)
            : await probe(a);
  console.log(JSON.stringify({ ...r, rssBeforeMiB, peakRssMiB: peakRssMiB() }));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
