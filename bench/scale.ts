// `npm run bench:scale -- [--sizes 10000,100000,1281167] [--quick] [--repeats 3]
// [--probe-max 100000] [--probe-iterations 5] [--shard-size 1024]`: the ImageNet-scale bench.
// For each size N (train images; the test split is N x 50,000 / 1,281,167), on the local stack:
//  - an ImageNet-1k shaped WebDataset of tiny real JPEGs is generated and uploaded (reused after);
//  - planning (planDataset: list, read every tar's headers, build and write plan.json) in a fresh
//    process: wall time, peak RSS, plan.json bytes, shards; or the refusal where the design refuses;
//  - orchestration with a zero-cost model: the real workflow over that many shards, activities
//    that return at once (bench/scale/orchestration.ts): wall time per shard, history events;
//  - zero-shot scoring of the test split against 1,000 prototypes at dim 512;
//  - the L-BFGS probe on min(N, --probe-max) x 512 random normalised features, 1,000 classes,
//    --probe-iterations iterations: time per iteration and peak RSS.
// Once: the 1,000 x 80 prototypes with the tiny bundle's text tower. Then the limits the figures
// imply (MAX_SHARDS, Temporal's history limit, the probe's memory against a budget) and the
// orchestration's ceiling on images/s. Timings: median of --repeats runs, one run at N >= 500,000.
// CLIPEVAL_HOME defaults to .clipeval/bench-scale (a stack of the bench's own).
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadEnv } from '../core/config/env';
import { MAX_SHARDS, meanShardSize } from '../core/dataset/plan';
import { ObjectStore } from '../core/storage/object-store';
import { stackUp } from '../infra/local-stack/stack';
import { runNode } from './child';
import { ROOT } from './fixtures';
import { type ScaleDataset, CLASSES, ensureScaleDataset } from './scale/dataset';
import type { StageArgs, StageResult } from './scale/child';
import { startOrchestrator } from './scale/orchestration';
import { benchHeader, markdownTable, num, spread, summarize } from './stats';
import { availableParallelism } from 'node:os';

const { values: arg } = parseArgs({
  options: {
    sizes: { type: 'string' },
    quick: { type: 'boolean', default: false },
    repeats: { type: 'string', default: '3' },
    'probe-max': { type: 'string', default: '100000' },
    'probe-iterations': { type: 'string', default: '5' },
    'shard-size': { type: 'string', default: '1024' },
    'budget-gib': { type: 'string', default: '16' },
    models: { type: 'string', default: '10' },
  },
});
const QUICK = arg.quick;
const SIZES = (arg.sizes ?? (QUICK ? '2000' : '10000,100000,1281167')).split(',').map(Number);
const REPEATS = Math.max(1, Number(arg.repeats));
const PROBE_MAX = Number(arg['probe-max']);
const PROBE_ITERATIONS = Number(arg['probe-iterations']);
const SHARD_SIZE = Number(arg['shard-size']);
const BUDGET_GIB = Number(arg['budget-gib']);
const MODELS = Number(arg.models);
const DIM = 512;
/** Temporal's default limit on one workflow execution's history. */
const HISTORY_LIMIT = 51_200;
const ONCE_FROM = 500_000;

const stage = <T extends StageArgs>(a: T) =>
  runNode<StageResult>('scale/child.ts', a, { cores: availableParallelism() });

/** `fn` `n` times: the median's run (by wall time) and the wall-time spread. */
async function repeated<T extends { wallS: number }>(n: number, fn: () => Promise<T> | T) {
  const runs: T[] = [];
  for (let r = 0; r < n; r++) runs.push(await fn());
  const byTime = [...runs].sort((a, b) => a.wallS - b.wallS);
  return { median: byTime[byTime.length >> 1]!, spread: summarize(runs.map((r) => r.wallS)) };
}

let baseline: Point['orch'] | undefined;
let refusal: StageResult | undefined;

interface Point {
  ds: ScaleDataset;
  plan: StageResult & { spreadS: ReturnType<typeof summarize> };
  orch: {
    shards: number;
    wallS: number;
    historyEvents: number;
    spreadS: ReturnType<typeof summarize>;
  };
  scores: StageResult;
  leaderboard: StageResult;
  probe: StageResult & { n: number };
}

async function main(): Promise<void> {
  process.env.CLIPEVAL_HOME ??= join(ROOT, '.clipeval', 'bench-scale');
  const stack = await stackUp();
  Object.assign(process.env, stack.env);
  const env = loadEnv();
  const store = ObjectStore.connect(env.s3);
  await store.ensureBucket();
  const orchestrator = await startOrchestrator(env);
  const points: Point[] = [];
  try {
    // A one-shard run: the fixed cost (planning, summary, report activities) the slopes leave out.
    await orchestrator.run(1); // warm-up: workflow bundle loaded, queues polled
    const single = await repeated(REPEATS, () => orchestrator.run(1));
    baseline = { ...single.median, spreadS: single.spread };
    for (const size of SIZES) {
      const repeats = size >= ONCE_FROM ? 1 : REPEATS;
      const ds = await ensureScaleDataset(store, size);
      console.error(`size ${size}: planning x${repeats} ...`);
      const plans = await repeated(repeats, () =>
        stage({
          stage: 'plan',
          datasetUri: store.uri(ds.prefix),
          runId: `bench-scale-plan-${size}`,
          shardSize: SHARD_SIZE,
        }),
      );
      const plan = { ...plans.median, spreadS: plans.spread };
      // Where planning refuses, the orchestration runs the shards the dataset would need.
      const shards = plan.figures.shards ?? Math.ceil((size + ds.test) / meanShardSize(SHARD_SIZE));
      console.error(`size ${size}: orchestration of ${shards} shards x${repeats} ...`);
      const orchs = await repeated(repeats, () => orchestrator.run(shards));
      console.error(`size ${size}: scoring ${ds.test} x ${CLASSES}, probe ...`);
      const scores = stage({ stage: 'scores', n: ds.test, classes: CLASSES, dim: DIM });
      const leaderboard = stage({
        stage: 'leaderboard',
        n: ds.test,
        classes: CLASSES,
        models: MODELS,
      });
      const n = Math.min(size, PROBE_MAX);
      const previous = points.at(-1)?.probe;
      const probe =
        previous?.n === n
          ? previous
          : {
              ...stage({
                stage: 'probe',
                n,
                classes: CLASSES,
                dim: DIM,
                iterations: QUICK ? 2 : PROBE_ITERATIONS,
              }),
              n,
            };
      points.push({
        ds,
        plan,
        orch: { ...orchs.median, spreadS: orchs.spread },
        scores,
        leaderboard,
        probe,
      });
    }
    // The ceiling on shards, shown: the largest size planned at a quarter of the shardSize.
    const last = points.at(-1)!;
    console.error(`size ${last.ds.train}: planning at shardSize ${SHARD_SIZE / 4} ...`);
    refusal = stage({
      stage: 'plan',
      datasetUri: store.uri(last.ds.prefix),
      runId: `bench-scale-plan-${last.ds.train}-small-shards`,
      shardSize: SHARD_SIZE / 4,
    });
    console.error('prototypes: 1,000 classes x 80 templates ...');
    const protos = stage({ stage: 'prototypes' });
    print(points, protos, baseline);
  } finally {
    await orchestrator.close();
    store.client.destroy();
  }
}

function print(points: Point[], protos: StageResult, one: Point['orch']): void {
  console.log(
    benchHeader(
      'ImageNet scale (`npm run bench:scale`)',
      [
        `sizes ${SIZES.join(', ')} train images (+ N x 50,000 / 1,281,167 test), ${CLASSES} classes, 16x16 real JPEGs in WebDataset tars of 1,000 samples; local stack (versitygw, Temporal dev server)`,
        `shardSize ${SHARD_SIZE}; orchestration per shard = (run - one-shard run) / (shards - 1)`,
        'peak RSS: VmHWM of a fresh process running only that stage',
        'the machine was shared with other work while this ran: timings are upper bounds',
      ],
      `timings: median (min-max) of ${REPEATS} runs below ${ONCE_FROM.toLocaleString('en-US')} images, ONE run at or above; no warm-up run except the orchestration's`,
    ),
  );
  const big = points.at(-1)!;
  const perShard = (p: Point) => (p.orch.wallS - one.wallS) / (p.orch.shards - 1);
  const eventsPerShard = (big.orch.historyEvents - one.historyEvents) / (big.orch.shards - 1);
  const imagesPerShard = (p: Point) =>
    (p.plan.figures.images ?? p.ds.train + p.ds.test) / p.orch.shards;
  // Probe memory: peak RSS growth per feature row, fitted between the smallest and largest n.
  const p0 = points[0]!.probe;
  const p1 = big.probe;
  const mibPerRow =
    p1.n > p0.n ? (p1.peakRssMiB - p0.peakRssMiB) / (p1.n - p0.n) : p1.peakRssMiB / p1.n;
  const rowsAtBudget = (BUDGET_GIB * 1024 - (p1.peakRssMiB - mibPerRow * p1.n)) / mibPerRow;
  const probeAt = (rows: number) => p1.peakRssMiB + mibPerRow * (rows - p1.n);
  const planBytesPerImage = big.plan.figures.planBytes
    ? big.plan.figures.planBytes / big.plan.figures.images!
    : NaN;
  console.log('Figures at the largest size:\n');
  console.log(
    markdownTable(
      ['stage', 'figure'],
      [
        [
          'dataset',
          `${big.ds.train} + ${big.ds.test} images, ${big.ds.tars} tars, ${num(big.ds.tarBytes / 2 ** 20)} MiB (generated in ${num(big.ds.generateS)} s; 0 = reused)`,
        ],
        big.plan.refused
          ? ['planning', `refused: ${big.plan.refused}`]
          : [
              'planning',
              `${spread(big.plan.spreadS, 2)} s, peak RSS ${num(big.plan.peakRssMiB, 0)} MiB, plan.json ${num(big.plan.figures.planBytes! / 2 ** 20)} MiB, ${big.plan.figures.shards} shards`,
            ],
        [
          'orchestration (zero-cost model)',
          `${big.orch.shards} shards in ${spread(big.orch.spreadS, 2)} s (one shard: ${spread(one.spreadS, 2)} s): ${num(1000 * perShard(big), 2)} ms/shard, ${big.orch.historyEvents} history events (one shard: ${one.historyEvents}; ${num(eventsPerShard, 2)}/shard)`,
        ],
        [
          'zero-shot prototypes (tiny text tower)',
          `${protos.figures.prompts} prompts in ${num(protos.wallS, 2)} s (${num(protos.figures.promptsPerS!, 0)} prompts/s, dim ${protos.figures.dim}), peak RSS ${num(protos.peakRssMiB, 0)} MiB`,
        ],
        [
          'zero-shot scoring',
          `${big.ds.test} x ${CLASSES} at dim ${DIM}: ${num(big.scores.wallS, 2)} s (${num(big.scores.figures.rowsPerS!, 0)} rows/s), scores ${num(big.scores.figures.scoresMiB!)} MiB, peak RSS ${num(big.scores.peakRssMiB, 0)} MiB`,
        ],
        [
          'leaderboard column (zero-shot)',
          `${MODELS} models x ${big.ds.test} test images read and scored (1,000 resamples, ${big.leaderboard.figures.comparisons} pairs): ${num(big.leaderboard.wallS, 2)} s, peak RSS ${num(big.leaderboard.peakRssMiB, 0)} MiB (predictions ${num(big.leaderboard.figures.predictionsMiB!)} MiB)`,
        ],
        [
          'probe (L-BFGS)',
          `${big.probe.n} x ${DIM}, ${CLASSES} classes: ${num(big.probe.figures.sPerIteration!, 3)} s/iteration (${big.probe.figures.iterations} iterations), peak RSS ${num(big.probe.peakRssMiB, 0)} MiB (features ${num(big.probe.figures.featuresMiB!)} MiB)`,
        ],
      ],
    ),
  );
  console.log('\nThe curve:\n');
  console.log(
    markdownTable(
      [
        'train images',
        'plan s',
        'plan peak RSS MiB',
        'plan.json MiB',
        'shards',
        'orchestration s',
        'ms/shard',
        'history events',
        'score s',
        'leaderboard s',
        'probe rows',
        'probe s/iter',
        'probe peak RSS MiB',
      ],
      points.map((p) => [
        String(p.ds.train),
        p.plan.refused ? 'refused' : spread(p.plan.spreadS, 2),
        num(p.plan.peakRssMiB, 0),
        p.plan.refused ? '-' : num(p.plan.figures.planBytes! / 2 ** 20, 2),
        String(p.orch.shards),
        spread(p.orch.spreadS, 2),
        num(1000 * perShard(p), 2),
        String(p.orch.historyEvents),
        num(p.scores.wallS, 2),
        num(p.leaderboard.wallS, 2),
        String(p.probe.n),
        num(p.probe.figures.sPerIteration!, 3),
        num(p.probe.peakRssMiB, 0),
      ]),
    ),
  );
  const ceiling = imagesPerShard(big) / perShard(big);
  const limits: string[][] = [
    [
      'MAX_SHARDS (core/dataset/plan.ts)',
      `${MAX_SHARDS} shards x ${num(imagesPerShard(big), 0)} images/shard measured = ~${num((MAX_SHARDS * imagesPerShard(big)) / 1e6, 2)} M images at shardSize ${SHARD_SIZE}`,
    ],
    [
      'Temporal history (51,200 events)',
      `${num(eventsPerShard, 2)} events/shard measured: ~${num(HISTORY_LIMIT / eventsPerShard, 0)} shards in one execution`,
    ],
    [
      'plan.json',
      Number.isFinite(planBytesPerImage)
        ? `${num(planBytesPerImage, 0)} bytes/image: 512 MiB (one JSON string) at ~${num((512 * 2 ** 20) / planBytesPerImage / 1e6, 2)} M images`
        : '-',
    ],
    [
      'probe memory',
      `${num(mibPerRow * 1024, 2)} KiB/row (peak RSS fit, dim ${DIM}, ${CLASSES} classes): 1,281,167 rows ~${num(probeAt(1_281_167) / 1024, 1)} GiB; a ${BUDGET_GIB} GiB budget holds ~${num(rowsAtBudget / 1e6, 2)} M rows (the full matrix in one process: no streaming or minibatch L-BFGS today)`,
    ],
    [
      'probe time',
      `${num((1e6 * big.probe.figures.sPerIteration!) / big.probe.n, 2)} s/iteration per M rows at ${big.probe.n} rows, on these cores: 1,281,167 rows ~${num((1.281167 * 1e6 * big.probe.figures.sPerIteration!) / big.probe.n, 0)} s per iteration, ~${num((1.281167 * 1e6 * big.probe.figures.sPerIteration! * 100) / big.probe.n / 3600, 1)} h per 100 iterations (extrapolated linearly in rows)`,
    ],
    [
      'orchestration ceiling',
      `${num(ceiling, 0)} images/s (${num(imagesPerShard(big), 0)} images/shard / ${num(1000 * perShard(big), 2)} ms/shard): a 1,331,167-image run's extraction cannot finish in under ~${num(1_331_167 / ceiling / 60, 1)} min whatever the GPU; a GPU slower than that sets the pace (extrapolated)`,
    ],
  ];
  const r = refusal!;
  limits.push([
    `planning ${big.ds.train + big.ds.test} images at shardSize ${SHARD_SIZE / 4}`,
    r.refused
      ? `refused after ${num(r.peakRssMiB, 0)} MiB peak RSS: ${r.refused}`
      : `accepted: ${r.figures.shards} shards, ${num(r.wallS, 2)} s`,
  ]);
  console.log('\nWhere the current design hits its limits (from the figures above):\n');
  console.log(markdownTable(['limit', 'figure'], limits));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
