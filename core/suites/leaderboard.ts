/**
 * @file The suite's leaderboard, built by pure functions from its cells' results: one row per
 * model, one column per `<dataset>/<route>` (columns.ts says which) with top-1 accuracy and its
 * 95% bootstrap interval over test images, one mean per route over datasets (CLIP_benchmark's
 * combined table), and per column the pairwise tests that say which differences are real.
 * Scored one dataset at a time (scoreDataset), so only one dataset's per-image results are held
 * at once, then assembled (assembleLeaderboard).
 */
import type { RouteSummary } from '../routes/route-result';
import type { RetrievalSummary } from '../routes/retrieval/retrieval-result';
import { type FewShotRoute, type FewShotTable, baseToNewTable } from '../runs/summary';
import {
  B2N_SUFFIX,
  type ColumnValues,
  type ImageCorrectness,
  cellColumns,
  columnValues,
} from './columns';
import type { ImageKeyTable } from './image-keys';
import { type PairComparison, scoreColumn } from './pairwise';

/** One cell's run as the leaderboard needs it: its status, summary and per-image correctness. */
export interface CellResult {
  model: string;
  dataset: string;
  runId: string;
  status: 'completed' | 'failed';
  error?: string;
  routes: RouteSummary[];
  fewShot: FewShotTable;
  /** Zero-shot retrieval's summary, when the run had it (its columns: columns.ts). */
  retrieval?: RetrievalSummary;
  /** Per route job (`<route>` or `<route>/<variant>`): correctness per test image, by id in the
   * dataset's ImageKeyTable. */
  correctness: ReadonlyMap<string, ImageCorrectness>;
}

export interface LeaderboardCell {
  /** The child run's own figure: its route's acc1, or its few-shot mean over seeds. */
  acc1: number;
  /** 95% percentile bootstrap interval of acc1 over test images (seeded). */
  low: number;
  high: number;
  n: number;
  runId: string;
  /** The column's highest acc1. */
  best: boolean;
  /** Not significantly different from the column's best (pairwise.ts says how). */
  tie: boolean;
  /**
   * Base-to-new columns: base and new accuracy (means over seeds) and `hm`, the harmonic mean of
   * those means (CoCoOp's H); `acc1` is then the pooled accuracy the interval is of.
   */
  baseToNew?: { base: number; new: number; hm: number };
}

export interface LeaderboardColumn {
  id: string;
  dataset: string;
  route: string;
  kind: 'single' | 'seed-mean';
  shots?: number;
  protocol?: 'base-to-new';
}

export interface Leaderboard {
  format: 'clipeval-leaderboard/1';
  suiteId: string;
  generatedAt: string;
  statistics: StatisticsOptions & { level: 0.95; alpha: 0.05 };
  models: string[];
  datasets: string[];
  columns: LeaderboardColumn[];
  /** `mean/<route>`: a model's mean acc1 over the datasets with that route. */
  means: string[];
  rows: {
    model: string;
    cells: Record<string, LeaderboardCell | null>;
    /** null when the model lacks one of the route's cells (a mean over fewer datasets would mislead). */
    means: Record<string, number | null>;
  }[];
  comparisons: PairComparison[];
  fewShot: {
    model: string;
    dataset: string;
    route: FewShotRoute;
    shots: number;
    mean: number;
    std: number;
    seeds: number[];
  }[];
  cells: { model: string; dataset: string; runId: string; status: string; error?: string }[];
}

export interface StatisticsOptions {
  resamples: number;
  seed: number;
  /** Up to this many models every pair is compared; beyond, each model against the column's best. */
  allPairsUpTo: number;
}

export const DEFAULT_STATISTICS: StatisticsOptions = { resamples: 1000, seed: 0, allPairsUpTo: 10 };

/** One dataset's part of the leaderboard: computed from its cells, then their results dropped. */
export interface DatasetScores {
  dataset: string;
  columns: LeaderboardColumn[];
  /** Per column id, per model. */
  cells: Map<string, Map<string, LeaderboardCell>>;
  comparisons: PairComparison[];
  fewShot: Leaderboard['fewShot'];
  status: Leaderboard['cells'];
}

/**
 * Scores one dataset's cells (all models): its columns, each cell's interval, the pairwise tests.
 * `keys` is the table the cells' correctness ids point into.
 */
export function scoreDataset(input: {
  dataset: string;
  models: readonly string[];
  cells: readonly CellResult[];
  keys: ImageKeyTable;
  statistics?: StatisticsOptions;
}): DatasetScores {
  const stats = input.statistics ?? DEFAULT_STATISTICS;
  const rank = input.keys.keyOrder();
  const seen = new Map<string, LeaderboardColumn>();
  const values = new Map<string, Map<string, CellValues>>();
  for (const cell of input.cells.filter((c) => c.status === 'completed')) {
    for (const col of cellColumns(cell.routes, cell.fewShot, cell.retrieval)) {
      const id = `${input.dataset}/${col.route}`;
      if (!seen.has(id))
        seen.set(id, {
          id,
          dataset: input.dataset,
          route: col.route,
          kind: col.kind,
          ...(col.shots !== undefined ? { shots: col.shots } : {}),
          ...(col.protocol ? { protocol: col.protocol } : {}),
        });
      const jobs = col.jobs.map((j) => cell.correctness.get(jobKey(j)));
      if (jobs.some((j) => j === undefined)) continue; // predictions missing: no cell
      const acc1 = cellAcc1(cell, col.route, col.shots);
      if (acc1 === undefined) continue;
      const v = columnValues(jobs as ImageCorrectness[], rank);
      if (!values.has(id)) values.set(id, new Map());
      const b2n = col.protocol ? cellBaseToNew(cell, col.jobs[0]!.route, col.shots) : undefined;
      values.get(id)!.set(cell.model, { acc1, runId: cell.runId, v, ...(b2n ? { b2n } : {}) });
    }
  }

  const columns = [...seen.values()];
  const comparisons: PairComparison[] = [];
  const table = new Map<string, Map<string, LeaderboardCell>>();
  for (const col of columns) {
    const byModel = values.get(col.id) ?? new Map<string, CellValues>();
    const ordered = input.models.filter((m) => byModel.has(m));
    const scored = scoreColumn(
      col,
      ordered.map((m) => ({ model: m, ...byModel.get(m)! })),
      stats,
    );
    comparisons.push(...scored.comparisons);
    const cells = new Map<string, LeaderboardCell>();
    for (const m of ordered) {
      const { acc1, runId, v, b2n } = byModel.get(m)!;
      const ci = scored.intervals.get(m)!;
      cells.set(m, {
        acc1,
        low: ci.low,
        high: ci.high,
        n: v.values.length,
        runId,
        best: m === scored.best,
        tie: scored.ties.has(m),
        ...(b2n ? { baseToNew: b2n } : {}),
      });
    }
    table.set(col.id, cells);
  }
  return {
    dataset: input.dataset,
    columns,
    cells: table,
    comparisons,
    fewShot: input.cells.flatMap((c) => (c.status === 'completed' ? fewShotRows(c) : [])),
    status: input.cells.map((c) => ({
      model: c.model,
      dataset: c.dataset,
      runId: c.runId,
      status: c.status,
      ...(c.error !== undefined ? { error: c.error } : {}),
    })),
  };
}

/** The leaderboard from every dataset's scores: rows per model, and the means over datasets. */
export function assembleLeaderboard(input: {
  suiteId: string;
  generatedAt: string;
  models: readonly string[];
  datasets: readonly string[];
  scored: readonly DatasetScores[];
  statistics?: StatisticsOptions;
}): Leaderboard {
  const stats = input.statistics ?? DEFAULT_STATISTICS;
  const byDataset = new Map(input.scored.map((s) => [s.dataset, s]));
  const parts = input.datasets.flatMap((d) => (byDataset.has(d) ? [byDataset.get(d)!] : []));
  const columns = parts.flatMap((p) => p.columns);
  const cellOf = (col: LeaderboardColumn, model: string) =>
    byDataset.get(col.dataset)?.cells.get(col.id)?.get(model) ?? null;
  const meanRoutes = [...new Set(columns.map((c) => c.route))];
  const rows = input.models.map((model) => {
    const cells: Record<string, LeaderboardCell | null> = {};
    for (const col of columns) cells[col.id] = cellOf(col, model);
    const means: Record<string, number | null> = {};
    for (const route of meanRoutes) {
      const mine = columns.filter((c) => c.route === route).map((c) => cells[c.id]);
      means[`mean/${route}`] = mine.some((c) => !c)
        ? null
        : mine.reduce((s, c) => s + c!.acc1, 0) / mine.length;
    }
    return { model, cells, means };
  });

  return {
    format: 'clipeval-leaderboard/1',
    suiteId: input.suiteId,
    generatedAt: input.generatedAt,
    statistics: { ...stats, level: 0.95, alpha: 0.05 },
    models: [...input.models],
    datasets: [...input.datasets],
    columns,
    means: meanRoutes.map((r) => `mean/${r}`),
    rows,
    comparisons: parts.flatMap((p) => p.comparisons),
    fewShot: parts.flatMap((p) => p.fewShot),
    cells: parts.flatMap((p) => p.status),
  };
}

function fewShotRows(c: CellResult): Leaderboard['fewShot'] {
  return c.fewShot.flatMap((f) =>
    typeof f.shots === 'number'
      ? [
          {
            model: c.model,
            dataset: c.dataset,
            route: f.route,
            shots: f.shots,
            mean: f.acc1.mean,
            std: f.acc1.std,
            seeds: f.seeds,
          },
        ]
      : [],
  );
}

/** One cell's figure and per-image values in one column. */
interface CellValues {
  acc1: number;
  runId: string;
  v: ColumnValues;
  b2n?: LeaderboardCell['baseToNew'];
}

/** The map key of a route job's correctness: `<route>` or `<route>/<variant>`. */
export function jobKey(j: { route: string; variant?: string }): string {
  return j.variant === undefined ? j.route : `${j.route}/${j.variant}`;
}

/** The child's own figure for a column: the route's acc1, or the few-shot mean over seeds. */
function cellAcc1(cell: CellResult, column: string, shots?: number): number | undefined {
  const retrieval = /^retrieval-(i2t|t2i)@(\d+)$/.exec(column);
  if (retrieval) {
    const side = retrieval[1] === 'i2t' ? cell.retrieval?.imageToText : cell.retrieval?.textToImage;
    return side?.[retrieval[2]!];
  }
  const route = column.endsWith(B2N_SUFFIX) ? column.slice(0, -B2N_SUFFIX.length) : column;
  if (route === 'zero-shot') return cell.routes.find((r) => r.route === 'zero-shot')?.acc1;
  if (route === 'probe')
    return cell.routes.find((r) => r.route === 'probe' && r.variant === 'all')?.acc1;
  const base = route.replace(/-\d+shot$/, ''); // `tip-adapter-f-16shot` -> `tip-adapter-f`
  return cell.fewShot.find((f) => f.route === base && f.shots === shots)?.acc1.mean;
}

/** A base-to-new cell's base, new and H of their means over seeds (summary.ts's table). */
function cellBaseToNew(
  cell: CellResult,
  route: string,
  shots?: number,
): LeaderboardCell['baseToNew'] {
  const row = baseToNewTable(cell.routes).find(
    (r) => r.route === route && (r.shots ?? undefined) === shots,
  );
  return row ? { base: row.base.mean, new: row.new.mean, hm: row.hmOfMeans } : undefined;
}
