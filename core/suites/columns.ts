/**
 * @file Which results of a suite's cells become leaderboard columns, and each column's per-image
 * correctness (what the intervals and tests resample). Pure.
 *
 * Columns, per dataset, named `<dataset>/<route>`:
 *   zero-shot      the zero-shot route: CLIP_benchmark's headline number;
 *   probe          the linear probe on the whole train split (CLIP's linear-probe protocol);
 *   coop-<k>shot,  CoOp, the probe, Tip-Adapter and Tip-Adapter-F at the largest shot count
 *   probe-<k>shot, run on that dataset, mean over seeds (CoOp's headline is its 16-shot figure):
 *   tip-adapter-<k>shot, tip-adapter-f-<k>shot
 *                  one column per route, not per shot count, so 40 datasets stay 40 x 4 columns
 *                  (x 6 with Tip-Adapter); every shot count is in the leaderboard's few-shot
 *                  table and the page's curves.
 *   retrieval-i2t@<k>, zero-shot retrieval's recall at the run's smallest k (1 by default), image
 *   retrieval-t2i@<k>  to text and text to image: the pair CLIP_benchmark reports. Their "per-image"
 *                  correctness is per image (i2t: one of its captions in its top k) and per
 *                  caption (t2i: its image in its top k), keyed `<image URI>#caption=<n>`, so the
 *                  intervals and pairwise tests resample the units each recall averages over.
 *   zero-shot-b2n, the same under base-to-new (core/routes/base-to-new.ts): its own columns, never
 *   coop-<k>shot-b2n  compared with all-classes figures. The per-image value is whether the image
 *                  was right among its own half's classes (what predictions.arrow holds under
 *                  base-to-new), so the cell's figure, interval and tests are of the pooled
 *                  accuracy over both halves; base, new and their harmonic mean (a ratio of
 *                  two halves' means, not a per-image mean) ride along without an interval.
 */
import { decodePredictions } from '../routes/predictions';
import type { RetrievalResultFile, RetrievalSummary } from '../routes/retrieval/retrieval-result';
import type { RouteSummary } from '../routes/route-result';
import type { FewShotTable } from '../runs/summary';
import type { ImageKeyTable } from './image-keys';

/** How a column's value is made: one result, or the mean over few-shot seeds. */
export type ColumnKind = 'single' | 'seed-mean';

export interface ColumnRoute {
  /**
   * `zero-shot`, `probe`, `<route>-<k>shot` for coop, probe, tip-adapter, tip-adapter-f, or
   * `retrieval-i2t@<k>` / `retrieval-t2i@<k>`; `-b2n` added under base-to-new.
   */
  route: string;
  kind: ColumnKind;
  /**
   * The route jobs (route and variant) whose predictions make the column; retrieval's are
   * `retrieval` with variant `i2t@<k>` or `t2i@<k>` (its metrics.json holds the ranks).
   */
  jobs: { route: RouteSummary['route'] | 'retrieval'; variant?: string }[];
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

/** The few-shot routes with a column each, in column order. */
const FEW_SHOT_COLUMNS = ['coop', 'probe', 'tip-adapter', 'tip-adapter-f'] as const;

/** The columns one cell can fill, from its run's route summaries, few-shot table and retrieval. */
export function cellColumns(
  routes: readonly RouteSummary[],
  fewShot: FewShotTable,
  retrieval?: Pick<RetrievalSummary, 'imageToText'>,
): ColumnRoute[] {
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
  for (const route of FEW_SHOT_COLUMNS) {
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
  const k = retrieval ? retrievalK(retrieval) : undefined;
  if (k !== undefined) {
    for (const dir of ['i2t', 't2i'] as const)
      out.push({
        route: `retrieval-${dir}@${k}`,
        kind: 'single',
        jobs: [{ route: 'retrieval', variant: `${dir}@${k}` }],
      });
  }
  return out;
}

/** The k of a run's retrieval columns: its smallest (CLIP_benchmark's headline is recall@1). */
export function retrievalK(r: Pick<RetrievalSummary, 'imageToText'>): number | undefined {
  const ks = Object.keys(r.imageToText).map(Number);
  return ks.length > 0 ? Math.min(...ks) : undefined;
}

/**
 * Per-unit hits of a retrieval column (`i2t@<k>` or `t2i@<k>`) from its metrics.json: per image,
 * whether a caption of its own ranks in its top k; per caption (key `<image URI>#caption=<n>`),
 * whether its image does.
 */
export function retrievalCorrectness(
  file: Pick<RetrievalResultFile, 'details'>,
  variant: string,
  keys: ImageKeyTable,
): ImageCorrectness {
  const m = /^(i2t|t2i)@(\d+)$/.exec(variant);
  if (!m) throw new Error(`"${variant}" is not a retrieval column variant`);
  const k = Number(m[2]);
  const d = file.details;
  if (m[1] === 'i2t')
    return {
      ids: keys.intern(d.images),
      correct: Uint8Array.from(d.imageRanks, (r) => (r < k ? 1 : 0)),
    };
  const seen = new Uint32Array(d.images.length);
  const captionKeys = d.captionImage.map((i) => `${d.images[i]}#caption=${seen[i]!++}`);
  return {
    ids: keys.intern(captionKeys),
    correct: Uint8Array.from(d.captionRanks, (r) => (r < k ? 1 : 0)),
  };
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
