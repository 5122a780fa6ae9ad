// A suite cell's run results as the routes write them, for leaderboard tests: per-image
// predictions.arrow files (60 test images, 3 classes) and the route summaries, for zero-shot, the
// full-data probe and CoOp 2-shot and 4-shot over 2 seeds. Each model gets a fixed pattern of
// right and wrong images from its skill; model m2 lists its rows in reverse order (the
// leaderboard must match images by key, not position).
import { encodePredictions } from '../../core/routes/predictions';
import type { RouteSummary } from '../../core/routes/route-result';
import { jobKey } from '../../core/suites/leaderboard';

export const N = 60;
const CLASSES = ['a', 'b', 'c'];
const keyOf = (d: string, i: number) => `s3://bkt/${d}/test/${CLASSES[i % 3]}/${i}.png`;

/** predictions.arrow where image i is right iff right(i); rows in `order`. */
function predictions(d: string, right: (i: number) => boolean, order: number[]) {
  const rows = order.map((i) => ({ key: keyOf(d, i), imageId: String(i), label: i % 3 }));
  const indices = Int32Array.from(order.flatMap((i) => [right(i) ? i % 3 : (i + 1) % 3, 0, 1]));
  return encodePredictions(rows, { indices, scores: new Float32Array(N * 3) }, 3, CLASSES, {});
}

export interface CellRun {
  routes: RouteSummary[];
  /** predictions.arrow per route job (`<route>` or `<route>/<variant>`). */
  predictions: Map<string, Uint8Array>;
}

export function cellRun(model: string, dataset: string, skill: number): CellRun {
  const routes: RouteSummary[] = [];
  const files = new Map<string, Uint8Array>();
  const order = [...Array(N).keys()];
  if (model === 'm2') order.reverse();
  const add = (
    route: RouteSummary['route'],
    variant: string | undefined,
    right: (i: number) => boolean,
    shots?: number,
    seed?: number,
  ) => {
    const acc1 = order.filter(right).length / N;
    files.set(
      jobKey({ route, ...(variant ? { variant } : {}) }),
      predictions(dataset, right, order),
    );
    routes.push({
      route,
      ...(variant ? { variant } : {}),
      ...(shots !== undefined ? { shots, seed: seed ?? 0 } : {}),
      n: N,
      acc1,
      acc5: null,
      meanPerClassRecall: acc1,
      macroF1: acc1,
      notes: [],
      metricsUri: 's3://bkt/x',
    });
  };
  add('zero-shot', undefined, (i) => (i * 7 + skill) % 10 < skill);
  add('probe', 'all', (i) => (i * 3 + skill) % 10 < skill + 1);
  for (const shots of [2, 4])
    for (const seed of [1, 2])
      add('coop', `${shots}shot-seed${seed}`, (i) => (i * seed + shots) % 10 < skill, shots, seed);
  return { routes, predictions: files };
}
