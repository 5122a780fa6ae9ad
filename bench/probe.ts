// `npm run bench:probe -- [--n 50000 --dim 512 --classes 100 --test 10000 --c 0.316 --wd 0
// --spread S --threads T]`: the linear probe's fit time and test accuracy against scikit-learn's
// LogisticRegression(lbfgs) at the same C, same synthetic features (overlapping Gaussian
// clusters, L2-normalised, float32), same run, in two thread settings: T threads each (clipeval:
// ORT intra-op T; scikit-learn: T BLAS threads, while its per-sample loss and gradient stay
// single-threaded) and like for like, both single-threaded (ORT intra-op 1; scikit-learn with
// OMP/OPENBLAS_NUM_THREADS=1 and threadpoolctl). Plus the AdamW probe (fixed weight decay, 10
// epochs). Each fit: median of BENCH_REPEATS after a warm-up fit. No selection sweep.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { type ProbeRecipe, probeScores, trainProbe } from '../core/routes/probe';
import { clusterProblem } from '../test/helpers/probe-data';
import { PYTHON, ROOT } from './fixtures';
import {
  benchHeader,
  markdownTable,
  num,
  ratio,
  REPEATS,
  repeat,
  spread,
  summarize,
} from './stats';

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

function argmaxRows(scores: Float32Array, n: number, k: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => {
    const row = scores.subarray(i * k, (i + 1) * k);
    return row.indexOf(Math.max(...row));
  });
}

interface SklearnResult {
  fit_seconds: number[];
  accuracy: number;
  n_iter: number;
  x_dtype: string;
  coef_dtype: string;
  blas: string[];
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

  /** clipeval's fit: warm-up, REPEATS timed fits (seconds), the last fit's predictions. */
  const ours = async (recipe: ProbeRecipe, threads: number) => {
    console.error(`clipeval ${recipe.kind}, ${threads} threads ...`);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    let last: Awaited<ReturnType<typeof trainProbe>> | undefined;
    const times = await repeat(
      async () => {
        const t0 = performance.now();
        last = await trainProbe({ train, numClasses: CLASSES, recipe, seed: 0, threads });
        return (performance.now() - t0) / 1000;
      },
      REPEATS,
      () => loop.enable(),
    );
    loop.disable();
    const pred = argmaxRows(probeScores(last!, test.x, test.n), test.n, CLASSES);
    return {
      s: summarize(times),
      pred,
      accuracy: accuracy(pred),
      iterations: last!.iterations,
      stallMs: loop.max / 1e6,
    };
  };
  const sklearn = (threads: number) => {
    console.error(`scikit-learn, ${threads} BLAS threads ...`);
    const n = String(threads);
    const py = spawnSync(
      PYTHON,
      [
        join(ROOT, 'bench/probe_sklearn.py'),
        JSON.stringify({ dir: WORK, dim: DIM, C, max_iter: 1000, threads, repeats: REPEATS }),
      ],
      {
        encoding: 'utf8',
        env: { ...process.env, OMP_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n, MKL_NUM_THREADS: n },
      },
    );
    if (py.status !== 0) throw new Error(`scikit-learn reference failed:\n${py.stderr}`);
    const sk = JSON.parse(py.stdout.trim().split('\n').pop()!) as SklearnResult;
    // A copy: a small file's Buffer is a view into Node's shared pool.
    const b = readFileSync(join(WORK, 'sklearn_pred.i32'));
    const pred = new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
    return { ...sk, s: summarize(sk.fit_seconds), pred };
  };

  const settings = [...new Set([THREADS, 1])];
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const rows: string[][] = [];
  const ratios: string[][] = [];
  for (const threads of settings) {
    const lbfgs = await ours({ kind: 'lbfgs', C }, threads);
    const sk = sklearn(threads);
    rows.push(
      [
        `clipeval lbfgs, C = ${C}`,
        'iterate float64 (JS); loss/grad float32 (ORT)',
        `ORT intra-op ${threads}`,
        spread(lbfgs.s, 2),
        String(lbfgs.iterations),
        pct(lbfgs.accuracy),
        `${num(lbfgs.stallMs)} ms`,
      ],
      [
        `scikit-learn lbfgs, C = ${C}`,
        `X ${sk.x_dtype}; iterate float64 (SciPy); coef ${sk.coef_dtype}`,
        `loss/grad 1 thread; BLAS ${sk.blas.join(', ') || '?'}`,
        spread(sk.s, 2),
        String(sk.n_iter),
        pct(sk.accuracy),
        '-',
      ],
    );
    const agreement = lbfgs.pred.filter((p, i) => p === sk.pred[i]).length / test.n;
    ratios.push([
      threads === 1 ? '1 each (like for like)' : `${threads} each`,
      ratio(lbfgs.s.median, sk.s.median),
      `${((lbfgs.accuracy - sk.accuracy) * 100).toFixed(2)} points`,
      pct(agreement),
    ]);
  }
  const adamw = await ours({ kind: 'adamw', weightDecay: WD }, THREADS);
  rows.push([
    `clipeval adamw, wd ${WD}, 10 epochs`,
    'float32 (ORT)',
    `ORT intra-op ${THREADS}`,
    spread(adamw.s, 2),
    `${adamw.iterations} steps`,
    pct(adamw.accuracy),
    `${num(adamw.stallMs)} ms`,
  ]);

  console.log(
    benchHeader('Linear probe (`npm run bench:probe`)', [
      `${N} train / ${N_TEST} test rows, dim ${DIM}, ${CLASSES} classes, spread ${SPREAD.toFixed(4)}, float32 features`,
      'fit seconds; scikit-learn gets OMP/OPENBLAS/MKL_NUM_THREADS and threadpoolctl limits equal to the threads shown',
    ]),
  );
  console.log(
    markdownTable(
      [
        'fit',
        'dtype',
        'threads',
        'fit s median (min-max)',
        'iterations',
        'test top-1',
        'longest stall',
      ],
      rows,
    ),
  );
  console.log('\nL-BFGS, clipeval against scikit-learn at the same threads:\n');
  console.log(
    markdownTable(
      ['threads', 'time (clipeval / scikit-learn)', 'accuracy difference', 'same prediction'],
      ratios,
    ),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
