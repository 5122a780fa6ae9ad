// `npx tsx bench/json-limits.ts [--confirm]`: measures the size ceilings of the JSON files
// clipeval writes (docs/security-and-limits.md quotes the results). Every JSON file is one
// JavaScript string, and V8 caps a string's length; this script measures how many images a
// plan.json and how many classes a metrics.json and a report.json hold, in the format written
// before issue 12 (indentation 1, dense K x K confusion matrices) and now (compact, sparse
// confusion cells), and how many images the 5,000-shard cap allows at the default shardSize.
// Sizes are measured on real objects built by clipeval's own code at a few sizes and
// extrapolated (linear in images; quadratic in classes for the dense matrices); `--confirm`
// also serialises at the extrapolated limits (a few GB of memory, a minute or two).
import { constants } from 'node:buffer';
import { parseArgs } from 'node:util';
import { parseRunSpec } from '../core/config/run-spec';
import { MAX_SHARDS, buildPlan, meanShardSize } from '../core/dataset/plan';
import { cutShards } from '../core/dataset/shards';
import type { DatasetItem, Split } from '../core/dataset/types';
import { computeMetrics, denseConfusion } from '../core/routes/metrics';
import type { RouteResultFile, RouteSummary } from '../core/routes/route-result';
import { buildReportData } from '../core/report/report-data';
import { keys } from '../core/storage/keys';
import { fewShotTable } from '../core/runs/summary';

const { values: arg } = parseArgs({ options: { confirm: { type: 'boolean', default: false } } });
const MAX = constants.MAX_STRING_LENGTH;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** ImageNet-like object URIs: s3://datasets/imagenet/train/n01440764/n01440764_10026.JPEG (62 chars). */
const uri = (cls: number, i: number, split: Split) =>
  `s3://datasets/imagenet/${split}/n${String(1440764 + cls).padStart(8, '0')}/n${String(1440764 + cls).padStart(8, '0')}_${String(i).padStart(5, '0')}.JPEG`;
const className = (c: number) => `n${String(1440764 + c).padStart(8, '0')}`;

function datasetItems(images: number, classes: number): DatasetItem[] {
  return Array.from({ length: images }, (_, i) => {
    const c = i % classes;
    const split: Split = i % 10 === 0 ? 'test' : 'train';
    return {
      uri: uri(c, i, split),
      size: 100_000 + (i % 900_000),
      etag: (i * 2654435761).toString(16).padStart(32, '0').slice(-32),
      className: className(c),
      split,
    };
  });
}

const planSpec = (shardSize: number) =>
  parseRunSpec({
    dataset: { uri: 's3://datasets/imagenet/' },
    shardSize,
    zeroShot: { enabled: false },
    coop: { enabled: false },
    probe: { enabled: false },
  });

function planJson(images: number, shardSize: number, indent?: number): number {
  const plan = buildPlan({
    runId: 'limits',
    spec: planSpec(shardSize),
    kind: 'image-folder',
    items: datasetItems(images, 1000),
    skipped: [],
  });
  return JSON.stringify(plan, null, indent).length;
}

/** a·x + b through two points; the x where it reaches MAX. */
function linearLimit(x1: number, y1: number, x2: number, y2: number) {
  const a = (y2 - y1) / (x2 - x1);
  const b = y1 - a * x1;
  return { perUnit: a, fixed: b, limit: (MAX - b) / a };
}

/** a·x² + b·x + c through three points; the x where it reaches MAX. */
function quadraticLimit(p: [number, number][]) {
  const [[x1, y1], [x2, y2], [x3, y3]] = p as [
    [number, number],
    [number, number],
    [number, number],
  ];
  const d = (x1 - x2) * (x1 - x3) * (x2 - x3);
  const a = (x3 * (y2 - y1) + x2 * (y1 - y3) + x1 * (y3 - y2)) / d;
  const b = (x3 * x3 * (y1 - y2) + x2 * x2 * (y3 - y1) + x1 * x1 * (y2 - y3)) / d;
  const c = (x2 * x3 * (x2 - x3) * y1 + x3 * x1 * (x3 - x1) * y2 + x1 * x2 * (x1 - x2) * y3) / d;
  return { a, b, c, limit: (-b + Math.sqrt(b * b - 4 * a * (c - MAX))) / (2 * a) };
}

/** Scores for K classes where test image i (class i % K) is right 70% of the time. */
function routeMetrics(K: number, perClass: number) {
  const n = K * perClass;
  const labels = Array.from({ length: n }, (_, i) => i % K);
  const scores = new Float32Array(n * K);
  for (let i = 0; i < n; i++) {
    const right = (i * 7919) % 10 < 7;
    scores[i * K + (right ? labels[i]! : (labels[i]! + 1 + (i % 3)) % K)] = 1;
  }
  return computeMetrics(
    scores,
    labels,
    Array.from({ length: K }, (_, c) => className(c)),
  );
}

/** metrics.json of one route (the file writeRouteResult writes), old and new form. */
function metricsJson(K: number, perClass: number, form: 'dense-indent1' | 'sparse-compact') {
  const metrics = routeMetrics(K, perClass);
  const file = { summary: {}, inputsHash: 'h'.repeat(64), metrics, details: {} };
  if (form === 'sparse-compact') return JSON.stringify(file).length;
  const { confusionCells, ...rest } = metrics;
  const old = { ...file, metrics: { ...rest, confusion: denseConfusion(confusionCells, K) } };
  return JSON.stringify(old, null, 1).length;
}

/** report.json with the four detailed routes (zero-shot, probe all, CoOp and probe 16-shot). */
function reportJson(K: number, perClass: number, form: 'dense-indent1' | 'sparse-compact') {
  const items: DatasetItem[] = [];
  for (let c = 0; c < K; c++)
    for (let i = 0; i < perClass; i++)
      for (const split of ['train', 'test'] as const)
        items.push({ uri: uri(c, i, split), size: 1, etag: 'e', className: className(c), split });
  const spec = parseRunSpec({ dataset: { uri: 's3://datasets/imagenet/' } });
  const plan = buildPlan({ runId: 'limits', spec, kind: 'image-folder', items, skipped: [] });
  const jobs: Pick<RouteSummary, 'route' | 'variant' | 'shots' | 'seed'>[] = [
    { route: 'zero-shot' },
    { route: 'probe', variant: 'all', shots: 'all', seed: 0 },
    { route: 'coop', variant: '16shot-seed1', shots: 16, seed: 1 },
    { route: 'probe', variant: '16shot-seed1', shots: 16, seed: 1 },
  ];
  const metrics = routeMetrics(K, perClass);
  const results = jobs.map((j) => {
    const summary: RouteSummary = {
      ...j,
      n: metrics.n,
      acc1: metrics.acc1,
      acc5: metrics.acc5,
      meanPerClassRecall: metrics.meanPerClassRecall,
      macroF1: metrics.macroF1,
      notes: [],
      metricsUri: `s3://out/${keys.routeResult('limits', j.route, j.variant, 'metrics.json')}`,
    };
    const file: RouteResultFile = { summary, inputsHash: 'h', metrics, details: {} };
    return { summary, file };
  });
  const routes = results.map((r) => r.summary);
  const data = buildReportData({
    runId: 'limits',
    summaryUri: 's3://out/runs/limits/summary.json',
    generatedAt: new Date(0).toISOString(),
    plan,
    bundle: { ref: 's3://models/x/', name: 'x', hash: 'ab'.repeat(32) },
    routes,
    fewShot: fewShotTable(routes),
    results: new Map(results.map((r) => [r.summary.metricsUri, r.file])),
    failedItems: [],
  });
  if (form === 'sparse-compact') return JSON.stringify(data).length;
  const old = {
    ...data,
    details: data.details.map(({ confusionCells, ...d }) => ({
      ...d,
      confusion: denseConfusion(confusionCells, K),
    })),
  };
  return JSON.stringify(old, null, 1).length;
}

function tryStringify(build: () => unknown, indent?: number): string {
  try {
    return `${fmt(JSON.stringify(build(), null, indent).length)} characters: fits`;
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
}

console.log(`V8 string limit (Node ${process.version}): ${fmt(MAX)} characters\n`);

// 1. The shard cap.
const sample = datasetItems(1_000_000, 1000).sort((a, b) => (a.uri < b.uri ? -1 : 1));
const shards = cutShards(sample, 1024);
const measured = sample.length / shards.length;
console.log('Shards at the default shardSize (1024), 1,000,000 ImageNet-like URIs:');
console.log(
  `  ${fmt(shards.length)} shards, ${measured.toFixed(1)} images per shard (formula ${meanShardSize(1024).toFixed(1)})`,
);
console.log(
  `  => the ${fmt(MAX_SHARDS)}-shard cap is ~${fmt(MAX_SHARDS * measured)} images at shardSize 1024 (${fmt(MAX_SHARDS * meanShardSize(65536))} at the largest, 65536)\n`,
);

// 2. plan.json.
console.log('plan.json (62-character URIs, 1,000 classes; linear in images):');
for (const [label, indent] of [
  ['before: indentation 1', 1],
  ['now: compact', undefined],
] as const) {
  const l = linearLimit(
    100_000,
    planJson(100_000, 65536, indent),
    200_000,
    planJson(200_000, 65536, indent),
  );
  console.log(
    `  ${label.padEnd(24)} ${l.perUnit.toFixed(1)} characters per image => ~${fmt(l.limit)} images per plan.json`,
  );
}
console.log('');

// 3. metrics.json and report.json, by classes (5 test images per class).
for (const [name, size] of [
  ['metrics.json (one route)', metricsJson],
  ['report.json (4 detailed routes)', reportJson],
] as const) {
  console.log(`${name}, 5 test images per class:`);
  const xs = [100, 200, 400];
  const dense = quadraticLimit(xs.map((K) => [K, size(K, 5, 'dense-indent1')]));
  console.log(
    `  before: dense, indentation 1   ${dense.a.toFixed(2)}·K² + ${dense.b.toFixed(0)}·K characters => ~${fmt(dense.limit)} classes`,
  );
  const sparse = linearLimit(
    200,
    size(200, 5, 'sparse-compact'),
    400,
    size(400, 5, 'sparse-compact'),
  );
  console.log(
    `  now: sparse cells, compact      ${sparse.perUnit.toFixed(0)} characters per class => ~${fmt(sparse.limit)} classes\n`,
  );
}

if (arg.confirm) {
  console.log('Confirming at the limits (serialising for real):');
  const planAt = (images: number, indent?: number) =>
    tryStringify(
      () =>
        buildPlan({
          runId: 'limits',
          spec: planSpec(65536),
          kind: 'image-folder',
          items: datasetItems(images, 1000),
          skipped: [],
        }),
      indent,
    );
  console.log(`  plan.json, 2,200,000 images, compact:        ${planAt(2_200_000)}`);
  console.log(`  plan.json, 2,600,000 images, indentation 1:  ${planAt(2_600_000, 1)}`);
  console.log(`  plan.json, 3,700,000 images, compact:        ${planAt(3_700_000)}`);
  const denseMetrics = (K: number) => () => {
    const m = routeMetrics(K, 1);
    const { confusionCells, ...rest } = m;
    return { metrics: { ...rest, confusion: denseConfusion(confusionCells, K) } };
  };
  console.log(
    `  metrics.json dense, 8,600 classes, indent 1: ${tryStringify(denseMetrics(8600), 1)}`,
  );
  console.log(
    `  metrics.json dense, 8,800 classes, indent 1: ${tryStringify(denseMetrics(8800), 1)}`,
  );
  console.log(
    `  metrics.json sparse, 100,000 classes:        ${tryStringify(() => ({ metrics: routeMetricsSparse(100_000) }))}`,
  );
}

/**
 * The metrics of K classes with one test image each, in the shape computeMetrics returns, built
 * directly: computeMetrics needs a K x K score matrix, 40 GB at K = 100,000 (for --confirm).
 */
function routeMetricsSparse(K: number) {
  const perClass = Array.from({ length: K }, (_, c) => ({
    name: className(c),
    support: 1,
    predicted: 1,
    correct: c % 10 < 7 ? 1 : 0,
    recall: c % 10 < 7 ? 1 : 0,
    precision: c % 10 < 7 ? 1 : 0,
    f1: c % 10 < 7 ? 1 : 0,
  }));
  const confusionCells = perClass.map((p, c) => [c, p.correct ? c : (c + 1) % K, 1]);
  return {
    n: K,
    acc1: 0.7,
    acc5: 0.9,
    macroF1: 0.7,
    meanPerClassRecall: 0.7,
    perClass,
    confusionCells,
    absentClasses: [],
  };
}
