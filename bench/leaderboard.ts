// `npm run bench:leaderboard -- [--models 100 --images 2000 --seeds 3]`: scoring one dataset of a
// suite's leaderboard (what writeLeaderboard does per dataset once its cells are read): columns
// zero-shot and probe (one result each) and CoOp and probe few-shot (mean over --seeds seeds), for
// --models models on --images test images, 1,000 resamples, more than 10 models so each model is
// compared with the column's best. Two sides, same inputs, same outputs (checked equal), one
// thread each, float64:
//   shared    scoreColumn: one set of draws per column, shared by every model (pairwise.ts);
//   per-cell  what scoring did before: each cell's interval and each pair's interval drawn on its
//             own (accuracyInterval / pairedDifferenceInterval), the same numbers.
// Plus the memory one dataset's per-image results hold once read: image keys as strings per
// route job (before) against ids into one key table (now), measured as retained heap and array buffers after gc
// (run with --expose-gc; package.json's script does).
import { parseArgs } from 'node:util';
import { encodePredictions, decodePredictions } from '../core/routes/predictions';
import type { RouteSummary } from '../core/routes/route-result';
import { fewShotTable } from '../core/runs/summary';
import { cellColumns, columnValues, correctnessOf, pairedValues } from '../core/suites/columns';
import { ImageKeyTable } from '../core/suites/image-keys';
import {
  type CellResult,
  DEFAULT_STATISTICS,
  jobKey,
  scoreDataset,
} from '../core/suites/leaderboard';
import type { PairComparison } from '../core/suites/pairwise';
import {
  accuracyInterval,
  mcnemarExact,
  pairedDifferenceInterval,
  seededUniform,
} from '../core/suites/statistics';
import { benchHeader, markdownTable, num, ratio, REPEATS, spread, summarize } from './stats';

const { values: arg } = parseArgs({
  options: {
    models: { type: 'string', default: '100' },
    images: { type: 'string', default: '2000' },
    seeds: { type: 'string', default: '3' },
  },
});
const M = Number(arg.models);
const N = Number(arg.images);
const SEEDS = [...Array(Number(arg.seeds)).keys()].map((s) => s + 1);
const SHOTS = 16;
const CLASSES = ['cat', 'dog', 'bird', 'fish', 'frog'];
const keyOf = (i: number) =>
  `s3://datasets/imagenet/test/n${String(1440764 + (i % 1000)).padStart(8, '0')}/img_${String(i).padStart(6, '0')}.JPEG`;

/** A route job's predictions.arrow: model m gets image i right with probability ~0.5 + m/4M. */
function predictions(m: number, job: number): Uint8Array {
  const next = seededUniform(m * 1000 + job);
  const rows = Array.from({ length: N }, (_, i) => ({
    key: keyOf(i),
    imageId: String(i),
    label: i % 5,
  }));
  const indices = Int32Array.from(rows, (r) =>
    next() < 0.5 + m / (4 * M) ? r.label : (r.label + 1) % 5,
  );
  return encodePredictions(rows, { indices, scores: new Float32Array(N) }, 1, CLASSES, {});
}

function routes(): RouteSummary[] {
  const base = {
    n: N,
    acc1: 0.5,
    acc5: null,
    meanPerClassRecall: 0.5,
    macroF1: 0.5,
    notes: [],
    metricsUri: 's3://b/m',
  };
  return [
    { route: 'zero-shot', ...base },
    { route: 'probe', variant: 'all', ...base },
    ...(['coop', 'probe'] as const).flatMap((route) =>
      SEEDS.map((seed) => ({
        route,
        variant: `${SHOTS}shot-seed${seed}`,
        shots: SHOTS,
        seed,
        ...base,
      })),
    ),
  ];
}

const gc = (globalThis as { gc?: () => void }).gc;
const heap = () => {
  gc?.();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers; // typed arrays live outside the JS heap
};

console.error(`building ${M} models x ${2 + 2 * SEEDS.length} route jobs of ${N} predictions...`);
const files = Array.from({ length: M }, (_, m) => routes().map((_, j) => predictions(m, j)));

// Memory: one dataset's results held as the writer holds them, before and now.
const before = heap();
const asStrings = files.map((jobs) =>
  jobs.map((b) => ({
    keys: decodePredictions(b).rows.map((r) => r.key),
    correct: correctnessOf(b, new ImageKeyTable()).correct,
  })),
);
const stringBytes = heap() - before;
asStrings.length = 0;
const table = new ImageKeyTable();
const start = heap();
const cells: CellResult[] = files.map((jobs, m) => {
  const rs = routes();
  const correctness = new Map(rs.map((r, j) => [jobKey(r), correctnessOf(jobs[j]!, table)]));
  // Each route's acc1 as its run reports it: the share its predictions got right.
  for (const r of rs) r.acc1 = correctness.get(jobKey(r))!.correct.reduce((a, x) => a + x, 0) / N;
  const fewShot = fewShotTable(rs);
  return {
    model: `m${m}`,
    dataset: 'd',
    runId: `s--m${m}--d`,
    status: 'completed',
    routes: rs,
    fewShot,
    correctness,
  };
});
const idBytes = heap() - start;
files.length = 0;

const models = cells.map((c) => c.model);
const stats = DEFAULT_STATISTICS;

/** Scoring before shared resamples: every interval draws its own resamples. */
function perCell(): PairComparison[] {
  const rank = table.keyOrder();
  const out: PairComparison[] = [];
  for (const col of cellColumns(cells[0]!.routes, cells[0]!.fewShot)) {
    const entries = cells.map((c) => ({
      model: c.model,
      acc1: 0,
      v: columnValues(
        col.jobs.map((j) => c.correctness.get(jobKey(j))!),
        rank,
      ),
    }));
    // The cell's figure as the leaderboard takes it: the route's acc1, or the few-shot mean.
    cells.forEach((c, m) => {
      const single = c.routes.find((r) => jobKey(r) === jobKey(col.jobs[0]!));
      const few = c.fewShot.find((f) => f.route === col.jobs[0]!.route && f.shots === col.shots);
      entries[m]!.acc1 = col.kind === 'single' ? single!.acc1 : few!.acc1.mean;
    });
    for (const e of entries) accuracyInterval(e.v.values, stats);
    const best = entries.reduce((a, b) => (b.acc1 > a.acc1 ? b : a));
    for (const e of entries) {
      if (e === best) continue;
      const p = pairedValues(best.v, e.v);
      out.push({
        column: `d/${col.route}`,
        a: best.model,
        b: e.model,
        n: p.a.length,
        difference: pairedDifferenceInterval(p.a, p.b, stats),
        ...(col.kind === 'single' ? { mcnemar: mcnemarExact(p.a, p.b) } : {}),
      });
    }
  }
  return out;
}

const shared = () => scoreDataset({ dataset: 'd', models, cells, keys: table }).comparisons;

function timed(fn: () => PairComparison[]): { seconds: number; out: PairComparison[] } {
  const t = performance.now();
  const out = fn();
  return { seconds: (performance.now() - t) / 1000, out };
}

const sides = { shared, 'per-cell': perCell };
const times: Record<string, number[]> = { shared: [], 'per-cell': [] };
const outputs: Record<string, PairComparison[]> = {};
for (const fn of Object.values(sides)) timed(fn); // warm-up
for (let r = 0; r < REPEATS; r++)
  for (const [name, fn] of Object.entries(sides)) {
    const { seconds, out } = timed(fn);
    times[name]!.push(seconds);
    outputs[name] = out;
  }
const same = JSON.stringify(outputs.shared) === JSON.stringify(outputs['per-cell']);
if (!same) throw new Error('the two sides disagree: the bench compares unequal work');

const s = summarize(times.shared!);
const p = summarize(times['per-cell']!);
console.log(
  benchHeader('Suite leaderboard: scoring one dataset', [
    `${M} models x ${N} test images; columns zero-shot, probe, coop-${SHOTS}shot and probe-${SHOTS}shot (${SEEDS.length} seeds)`,
    `${stats.resamples} resamples, each model compared with the column's best; both sides one thread, float64; outputs checked equal`,
  ]),
);
console.log(
  markdownTable(
    ['side', 'seconds per dataset', 'speed-up'],
    [
      ['shared resamples (now)', spread(s, 2), ratio(p.median, s.median)],
      ['per-cell resamples (before)', spread(p, 2), '1.00x'],
    ],
  ),
);
console.log(
  `\nOne dataset's per-image results held after reading (${M * routes().length} predictions files; retained heap and array buffers after gc${gc ? '' : ': gc not exposed, figures include garbage'}): keys as strings per route job with its correctness (before) ${num(stringBytes / 2 ** 20)} MiB; ids into one key table with its correctness (now) ${num(idBytes / 2 ** 20)} MiB.`,
);
