// `npx tsx bench/probe.ts [--n 50000 --dim 512 --classes 100 --test 10000 --c 0.316 --wd 0
// --spread S --threads T]`: the linear probe's fit time and test accuracy against scikit-learn's
// LogisticRegression(lbfgs) at the same C, same synthetic features (overlapping Gaussian
// clusters, L2-normalised), same run and thread count; plus the AdamW probe (fixed weight decay,
// 10 epochs). No selection sweep: one fit each.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type ProbeRecipe, probeScores, trainProbe } from '../core/routes/probe';
import { clusterProblem } from '../test/helpers/probe-data';
import { PYTHON, ROOT } from './fixtures';

const { values: arg } = parseArgs({
  options: {
    n: { type: 'string', default: '50000' },
    dim: { type: 'string', default: '512' },
    classes: { type: 'string', default: '100' },
    test: { type: 'string', default: '10000' },
    c: { type: 'string', default: '0.316' },
    wd: { type: 'string', default: '0' },
    spread: { type: 'string' },
    threads: { type: 'string', default: String(availableParallelism()) },
  },
});
const N = Number(arg.n);
const DIM = Number(arg.dim);
const CLASSES = Number(arg.classes);
const N_TEST = Number(arg.test);
const C = Number(arg.c);
const WD = Number(arg.wd);
// Noise per coordinate: 0.25 at dim 512 (scaled as 1/sqrt(dim)) leaves 100 clusters
// overlapping, neither separable nor hopeless (see the accuracies).
const SPREAD = arg.spread !== undefined ? Number(arg.spread) : 0.25 * Math.sqrt(512 / DIM);
const THREADS = Number(arg.threads);
const WORK = join(ROOT, '.clipeval', 'bench', 'probe');

const seconds = (t0: number) => (performance.now() - t0) / 1000;

function argmaxRows(scores: Float32Array, n: number, k: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => {
    const row = scores.subarray(i * k, (i + 1) * k);
    return row.indexOf(Math.max(...row));
  });
}

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const sample = clusterProblem({ dim: DIM, classes: CLASSES, spread: SPREAD, seed: 0 });
  const train = sample(N, 'train');
  const test = sample(N_TEST, 'test');
  writeFileSync(join(WORK, 'train_x.f32'), train.x);
  writeFileSync(join(WORK, 'train_y.i32'), train.labels);
  writeFileSync(join(WORK, 'test_x.f32'), test.x);
  writeFileSync(join(WORK, 'test_y.i32'), test.labels);
  const accuracy = (pred: Int32Array) =>
    pred.filter((p, i) => p === test.labels[i]).length / test.n;

  const ours = async (recipe: ProbeRecipe) => {
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const t0 = performance.now();
    const r = await trainProbe({ train, numClasses: CLASSES, recipe, seed: 0, threads: THREADS });
    const time = seconds(t0);
    loop.disable();
    const pred = argmaxRows(probeScores(r, test.x, test.n), test.n, CLASSES);
    return {
      time,
      pred,
      accuracy: accuracy(pred),
      iterations: r.iterations,
      stallMs: loop.max / 1e6,
    };
  };

  console.log(
    `probe bench: ${N} train / ${N_TEST} test rows, dim ${DIM}, ${CLASSES} classes, spread ${SPREAD.toFixed(4)}, ${THREADS} threads`,
  );
  const lbfgs = await ours({ kind: 'lbfgs', C });
  console.log(`  clipeval lbfgs: ${lbfgs.time.toFixed(1)} s`);
  const env = {
    ...process.env,
    OMP_NUM_THREADS: String(THREADS),
    OPENBLAS_NUM_THREADS: String(THREADS),
  };
  const py = spawnSync(
    PYTHON,
    [
      join(ROOT, 'bench/probe_sklearn.py'),
      JSON.stringify({ dir: WORK, dim: DIM, C, max_iter: 1000 }),
    ],
    { encoding: 'utf8', env },
  );
  if (py.status !== 0) throw new Error(`scikit-learn reference failed:\n${py.stderr}`);
  const sk = JSON.parse(py.stdout.trim().split('\n').pop()!) as {
    fit_seconds: number;
    accuracy: number;
    n_iter: number;
    dtype: string;
  };
  const skPred = new Int32Array(readFileSync(join(WORK, 'sklearn_pred.i32')).buffer.slice(0));
  const agreement = lbfgs.pred.filter((p, i) => p === skPred[i]).length / test.n;
  console.log(`  scikit-learn:   ${sk.fit_seconds.toFixed(1)} s`);
  const adamw = await ours({ kind: 'adamw', weightDecay: WD });

  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const rows: [string, string, string, string][] = [
    ['clipeval lbfgs (ORT)', lbfgs.time.toFixed(1), String(lbfgs.iterations), pct(lbfgs.accuracy)],
    ['scikit-learn lbfgs', sk.fit_seconds.toFixed(1), String(sk.n_iter), pct(sk.accuracy)],
    [
      'clipeval adamw (ORT)',
      adamw.time.toFixed(1),
      `${adamw.iterations} steps`,
      pct(adamw.accuracy),
    ],
  ];
  console.log(`\nfit at C = ${C} (lbfgs), weight decay ${WD} (adamw, 10 epochs)`);
  console.log('probe                  fit s   iterations    test acc');
  for (const [name, t, it, acc] of rows)
    console.log(`${name.padEnd(22)} ${t.padStart(6)}   ${it.padStart(10)}   ${acc.padStart(9)}`);
  console.log(
    `lbfgs: clipeval / scikit-learn time ${(lbfgs.time / sk.fit_seconds).toFixed(2)}x; accuracy difference ${((lbfgs.accuracy - sk.accuracy) * 100).toFixed(2)} points; predictions agree on ${pct(agreement)}`,
  );
  console.log(
    `longest event-loop stall: lbfgs ${lbfgs.stallMs.toFixed(1)} ms, adamw ${adamw.stallMs.toFixed(1)} ms`,
  );
  const result = {
    when: new Date().toISOString(),
    n: N,
    test: N_TEST,
    dim: DIM,
    classes: CLASSES,
    spread: SPREAD,
    threads: THREADS,
    C,
    weightDecay: WD,
    lbfgs: {
      seconds: lbfgs.time,
      iterations: lbfgs.iterations,
      accuracy: lbfgs.accuracy,
      maxStallMs: lbfgs.stallMs,
    },
    sklearn: {
      seconds: sk.fit_seconds,
      iterations: sk.n_iter,
      accuracy: sk.accuracy,
      dtype: sk.dtype,
    },
    adamw: {
      seconds: adamw.time,
      steps: adamw.iterations,
      accuracy: adamw.accuracy,
      maxStallMs: adamw.stallMs,
    },
    timeRatio: lbfgs.time / sk.fit_seconds,
    accuracyDifference: lbfgs.accuracy - sk.accuracy,
    predictionAgreement: agreement,
  };
  writeFileSync(join(WORK, 'probe-result.json'), JSON.stringify(result, null, 2));
  console.log(JSON.stringify(result));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
