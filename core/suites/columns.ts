/**
 * @file Which results of a suite's cells become leaderboard columns, and each column's per-image
 * correctness (what the intervals and tests resample). Pure.
 *
 * Columns, per dataset, named `<dataset>/<route>`:
 *   zero-shot      the zero-shot route: CLIP_benchmark's headline number;
 *   probe          the linear probe on the whole train split (CLIP's linear-probe protocol);
 *   coop-<k>shot,  CoOp and the probe at the largest shot count run on that dataset, mean over
 *   probe-<k>shot  seeds (CoOp's headline is its 16-shot figure): one column per route, not per
 *                  shot count, so 40 datasets stay 40 x 4 columns; every shot count is in the
 *                  leaderboard's few-shot table and the page's curves.
 */
import { decodePredictions } from '../routes/predictions';
import type { RouteSummary } from '../routes/route-result';
import type { FewShotTable } from '../runs/summary';

/** How a column's value is made: one result, or the mean over few-shot seeds. */
export type ColumnKind = 'single' | 'seed-mean';

export interface ColumnRoute {
  /** `zero-shot`, `probe`, `coop-<k>shot` or `probe-<k>shot`. */
  route: string;
  kind: ColumnKind;
  /** The route jobs (route and variant) whose predictions make the column. */
  jobs: { route: RouteSummary['route']; variant?: string }[];
  shots?: number;
}

/** Per-image correctness of one route job (1 right, 0 wrong), by image key. */
export interface ImageCorrectness {
  keys: string[];
  correct: Uint8Array;
}

/** A cell's value in one column: per image, the share of the column's jobs that got it right. */
export interface ColumnValues {
  keys: string[];
  values: Float64Array;
}

/** The columns one cell can fill, from its run's route summaries and few-shot table. */
export function cellColumns(routes: readonly RouteSummary[], fewShot: FewShotTable): ColumnRoute[] {
  const out: ColumnRoute[] = [];
  if (routes.some((r) => r.route === 'zero-shot'))
    out.push({ route: 'zero-shot', kind: 'single', jobs: [{ route: 'zero-shot' }] });
  if (routes.some((r) => r.route === 'probe' && r.variant === 'all'))
    out.push({ route: 'probe', kind: 'single', jobs: [{ route: 'probe', variant: 'all' }] });
  for (const route of ['coop', 'probe'] as const) {
    const rows = fewShot.filter(
      (f): f is typeof f & { shots: number } => f.route === route && typeof f.shots === 'number',
    );
    if (rows.length === 0) continue;
    const top = rows.reduce((a, b) => (b.shots > a.shots ? b : a));
    out.push({
      route: `${route}-${top.shots}shot`,
      kind: 'seed-mean',
      shots: top.shots,
      jobs: top.seeds.map((seed) => ({ route, variant: `${top.shots}shot-seed${seed}` })),
    });
  }
  return out;
}

/** Correctness per test image of a predictions.arrow file: its top-1 class is the label. */
export function correctnessOf(predictionsArrow: Uint8Array): ImageCorrectness {
  const { rows, top, k } = decodePredictions(predictionsArrow);
  const correct = new Uint8Array(rows.length);
  rows.forEach((r, i) => (correct[i] = top.indices[i * k] === r.label ? 1 : 0));
  return { keys: rows.map((r) => r.key), correct };
}

/**
 * The column's per-image values: the mean correctness over its jobs (one job: 0 or 1), over the
 * images every job scored, matched by key, in the first job's order.
 */
export function columnValues(jobs: readonly ImageCorrectness[]): ColumnValues {
  if (jobs.length === 0) return { keys: [], values: new Float64Array(0) };
  const byKey = jobs.map((j) => new Map(j.keys.map((key, i) => [key, j.correct[i]!])));
  const keys = jobs[0]!.keys.filter((key) => byKey.every((m) => m.has(key)));
  const values = Float64Array.from(
    keys,
    (key) => byKey.reduce((s, m) => s + m.get(key)!, 0) / jobs.length,
  );
  return { keys, values };
}

/** Two cells' values on the images both scored, in a's order (pairs are matched by image key). */
export function pairedValues(
  a: ColumnValues,
  b: ColumnValues,
): { a: Float64Array; b: Float64Array } {
  const inB = new Map(b.keys.map((key, i) => [key, b.values[i]!]));
  const shared = a.keys.flatMap((key, i) => (inB.has(key) ? [[a.values[i]!, inB.get(key)!]] : []));
  return {
    a: Float64Array.from(shared, (p) => p[0]!),
    b: Float64Array.from(shared, (p) => p[1]!),
  };
}
