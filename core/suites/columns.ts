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
 *   zero-shot-b2n, the same under base-to-new (core/routes/base-to-new.ts): its own columns, never
 *   coop-<k>shot-b2n  compared with all-classes figures. The per-image value is whether the image
 *                  was right among its own half's classes (what predictions.arrow holds under
 *                  base-to-new), so the cell's figure, interval and tests are of the pooled
 *                  accuracy over both halves; base, new and their harmonic mean (a ratio of
 *                  two halves' means, not a per-image mean) ride along without an interval.
 */
import { decodePredictions } from '../routes/predictions';
import type { RouteSummary } from '../routes/route-result';
import type { FewShotTable } from '../runs/summary';
import type { ImageKeyTable } from './image-keys';

/** How a column's value is made: one result, or the mean over few-shot seeds. */
export type ColumnKind = 'single' | 'seed-mean';

export interface ColumnRoute {
  /** `zero-shot`, `probe`, `coop-<k>shot` or `probe-<k>shot`; `-b2n` added under base-to-new. */
  route: string;
  kind: ColumnKind;
  /** The route jobs (route and variant) whose predictions make the column. */
  jobs: { route: RouteSummary['route']; variant?: string }[];
  shots?: number;
  /** Set on base-to-new columns. */
  protocol?: 'base-to-new';
}

/** The column name suffix of base-to-new results. */
export const B2N_SUFFIX = '-b2n';

/** Per-image correctness of one route job (1 right, 0 wrong), by image id (image-keys.ts). */
export interface ImageCorrectness {
  ids: Uint32Array;
  correct: Uint8Array;
}

/**
 * A cell's value in one column: per image, the share of the column's jobs that got it right, for
 * the images every job scored, by position in key order (ascending).
 */
export interface ColumnValues {
  positions: Uint32Array;
  values: Float64Array;
}

/** The columns one cell can fill, from its run's route summaries and few-shot table. */
export function cellColumns(routes: readonly RouteSummary[], fewShot: FewShotTable): ColumnRoute[] {
  const out: ColumnRoute[] = [];
  const zeroShot = routes.find((r) => r.route === 'zero-shot');
  if (zeroShot)
    out.push({
      route: `zero-shot${zeroShot.protocol === 'base-to-new' ? B2N_SUFFIX : ''}`,
      kind: 'single',
      jobs: [{ route: 'zero-shot' }],
      ...b2n(zeroShot.protocol),
    });
  if (routes.some((r) => r.route === 'probe' && r.variant === 'all'))
    out.push({ route: 'probe', kind: 'single', jobs: [{ route: 'probe', variant: 'all' }] });
  for (const route of ['coop', 'probe'] as const) {
    const rows = fewShot.filter(
      (f): f is typeof f & { shots: number } => f.route === route && typeof f.shots === 'number',
    );
    if (rows.length === 0) continue;
    const top = rows.reduce((a, b) => (b.shots > a.shots ? b : a));
    out.push({
      route: `${route}-${top.shots}shot${top.protocol === 'base-to-new' ? B2N_SUFFIX : ''}`,
      kind: 'seed-mean',
      shots: top.shots,
      jobs: top.seeds.map((seed) => ({ route, variant: `${top.shots}shot-seed${seed}` })),
      ...b2n(top.protocol),
    });
  }
  return out;
}

const b2n = (protocol: string | undefined) =>
  protocol === 'base-to-new' ? { protocol: 'base-to-new' as const } : {};

/** Correctness per test image of a predictions.arrow file (its top-1 class is the label). */
export function correctnessOf(predictionsArrow: Uint8Array, keys: ImageKeyTable): ImageCorrectness {
  const { rows, top, k } = decodePredictions(predictionsArrow);
  const correct = new Uint8Array(rows.length);
  rows.forEach((r, i) => (correct[i] = top.indices[i * k] === r.label ? 1 : 0));
  return { ids: keys.intern(rows.map((r) => r.key)), correct };
}

/**
 * The column's per-image values: the mean correctness over its jobs (one job: 0 or 1), over the
 * images every job scored, in key order (`rank`: ImageKeyTable.keyOrder()).
 */
export function columnValues(jobs: readonly ImageCorrectness[], rank: Uint32Array): ColumnValues {
  const sums = new Float64Array(rank.length);
  const hits = new Uint32Array(rank.length);
  for (const job of jobs)
    job.ids.forEach((id, i) => {
      hits[rank[id]!]!++;
      sums[rank[id]!]! += job.correct[i]!;
    });
  const scoredByAll: number[] = [];
  for (let p = 0; p < rank.length; p++)
    if (jobs.length > 0 && hits[p] === jobs.length) scoredByAll.push(p);
  const positions = Uint32Array.from(scoredByAll);
  return { positions, values: Float64Array.from(positions, (p) => sums[p]! / jobs.length) };
}

/** Whether two cells scored the same images (then one set of resamples serves both). */
export function sameImages(a: ColumnValues, b: ColumnValues): boolean {
  return (
    a.positions.length === b.positions.length && a.positions.every((p, i) => p === b.positions[i])
  );
}

/** Two cells' values on the images both scored, in key order (pairs are matched by image). */
export function pairedValues(
  a: ColumnValues,
  b: ColumnValues,
): { a: Float64Array; b: Float64Array } {
  const va: number[] = [];
  const vb: number[] = [];
  for (let i = 0, j = 0; i < a.positions.length && j < b.positions.length;) {
    if (a.positions[i]! < b.positions[j]!) i++;
    else if (a.positions[i]! > b.positions[j]!) j++;
    else {
      va.push(a.values[i++]!);
      vb.push(b.values[j++]!);
    }
  }
  return { a: Float64Array.from(va), b: Float64Array.from(vb) };
}
