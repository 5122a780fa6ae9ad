/**
 * @file runs/<runId>/summary.json: every route's metrics and the few-shot table, the mean and
 * spread over seeds of each trained route at each shot count (CoOp's protocol reports these), for
 * base-to-new routes the base / new / harmonic-mean table (CoCoOp's), and zero-shot retrieval's
 * recall@k when the dataset has captions.
 */
import { harmonicMean } from '../routes/base-to-new';
import type { RetrievalSummary } from '../routes/retrieval/retrieval-result';
import type { RouteSummary } from '../routes/route-result';
import { keys } from '../storage/keys';
import type { ObjectStore } from '../storage/object-store';

export interface SummarizeRunInput {
  runId: string;
  planUri: string;
  routes: RouteSummary[];
  /** Zero-shot retrieval, when the run had it. */
  retrieval?: RetrievalSummary;
  /** What extraction did (absent from workflows that predate the pixel cache). */
  extraction?: ExtractionCounts;
}

/** The run's extraction in counts: how many images were decoded and how many came from the cache. */
export interface ExtractionCounts {
  shards: number;
  shardsReused: number;
  imagesDone: number;
  imagesFailed: number;
  /** Images fetched and decoded by this run. */
  imagesDecoded: number;
  /** Images whose crops came from the pixel cache (decoded by an earlier run or model). */
  imagesFromPixelCache: number;
}

/** The routes that run per (shots, seed): every route but zero-shot. */
export type FewShotRoute = Exclude<RouteSummary['route'], 'zero-shot'>;

/** What the few-shot charts (the run's report, the leaderboard) call each route. */
export const FEW_SHOT_ROUTE_NAMES: Record<FewShotRoute, string> = {
  coop: 'CoOp',
  probe: 'linear probe',
  'tip-adapter': 'Tip-Adapter',
  'tip-adapter-f': 'Tip-Adapter-F',
};

/** Mean and spread over seeds of one route at one shot count. */
export interface FewShotRow {
  route: FewShotRoute;
  shots: number | 'all';
  /** Set when the route ran under base-to-new: acc1 and the others are then pooled over both halves. */
  protocol?: 'base-to-new';
  seeds: number[];
  acc1: { mean: number; std: number };
  meanPerClassRecall: { mean: number; std: number };
  macroF1: { mean: number; std: number };
}
export type FewShotTable = FewShotRow[];

/**
 * One base-to-new row (core/routes/base-to-new.ts): a route at a shot count (null: zero-shot, no
 * training), base and new accuracy and their harmonic mean, each mean and spread over seeds, and
 * `hmOfMeans`, the harmonic mean of the mean base and mean new accuracy: CoCoOp's tables report H
 * of the averaged base and new figures, which is not the mean of per-seed H.
 */
export interface BaseToNewRow {
  route: 'zero-shot' | 'coop';
  shots: number | null;
  seeds: number[];
  baseClasses: number;
  newClasses: number;
  base: { mean: number; std: number };
  new: { mean: number; std: number };
  hm: { mean: number; std: number };
  hmOfMeans: number;
}
export type BaseToNewTable = BaseToNewRow[];

export interface SeedSummary {
  mean: number;
  /**
   * Population standard deviation (ddof = 0): CoOp's parse_test_res.py reports np.std(values)
   * with numpy's default ddof, so "mean +- std" over seeds 1, 2, 3 compares with its tables.
   */
  std: number;
  n: number;
  values: number[];
}

/** Writes summary.json and returns the few-shot table. Pure function of its input: idempotent. */
export async function writeRunSummary(
  deps: { store: ObjectStore },
  input: SummarizeRunInput,
): Promise<{ summaryUri: string; fewShot: FewShotTable }> {
  const fewShot = fewShotTable(input.routes);
  const baseToNew = baseToNewTable(input.routes);
  const key = keys.runSummary(input.runId);
  await deps.store.putJson(key, {
    runId: input.runId,
    plan: input.planUri,
    ...(input.extraction ? { extraction: input.extraction } : {}),
    routes: input.routes,
    ...(input.retrieval ? { retrieval: input.retrieval } : {}),
    fewShot,
    ...(baseToNew.length > 0 ? { baseToNew } : {}),
  });
  return { summaryUri: deps.store.uri(key), fewShot };
}

/**
 * One row per trained route and shot count, in the order the routes first appear, over the
 * seeds run there (in the routes' order). Zero-shot has no shots and no row.
 */
export function fewShotTable(routes: readonly RouteSummary[]): FewShotTable {
  const groups = new Map<string, RouteSummary[]>();
  for (const r of routes) {
    if (r.route === 'zero-shot' || r.shots === undefined) continue;
    const id = `${r.route}\t${r.shots}\t${r.protocol ?? ''}`;
    groups.set(id, [...(groups.get(id) ?? []), r]);
  }
  return [...groups.values()].map((rs) => ({
    route: rs[0]!.route as FewShotRoute,
    shots: rs[0]!.shots!,
    ...(rs[0]!.protocol === 'base-to-new' ? { protocol: 'base-to-new' as const } : {}),
    seeds: rs.map((r) => r.seed ?? 0),
    acc1: pick(rs, (r) => r.acc1),
    meanPerClassRecall: pick(rs, (r) => r.meanPerClassRecall),
    macroF1: pick(rs, (r) => r.macroF1),
  }));
}

/**
 * One row per base-to-new route and shot count (zero-shot: one row, shots null), in the order the
 * routes first appear, over the seeds run there.
 */
export function baseToNewTable(routes: readonly RouteSummary[]): BaseToNewTable {
  const groups = new Map<
    string,
    (RouteSummary & { baseToNew: NonNullable<RouteSummary['baseToNew']> })[]
  >();
  for (const r of routes) {
    if (r.protocol !== 'base-to-new' || !r.baseToNew) continue;
    if (r.route !== 'zero-shot' && r.route !== 'coop') continue;
    const id = `${r.route}\t${r.shots ?? ''}`;
    groups.set(id, [...(groups.get(id) ?? []), { ...r, baseToNew: r.baseToNew }]);
  }
  return [...groups.values()].map((rs) => {
    const base = pick(rs, (r) => r.baseToNew.base.acc1);
    const nw = pick(rs, (r) => r.baseToNew.new.acc1);
    return {
      route: rs[0]!.route as 'zero-shot' | 'coop',
      shots: typeof rs[0]!.shots === 'number' ? rs[0]!.shots : null,
      seeds: rs.map((r) => r.seed ?? 0),
      baseClasses: rs[0]!.baseToNew.baseClasses,
      newClasses: rs[0]!.baseToNew.newClasses,
      base,
      new: nw,
      hm: pick(rs, (r) => r.baseToNew.hm),
      hmOfMeans: harmonicMean(base.mean, nw.mean),
    };
  });
}

function pick<T>(rs: readonly T[], f: (r: T) => number): { mean: number; std: number } {
  const s = summarizeSeeds(rs.map(f));
  return { mean: s.mean, std: s.std };
}

export function summarizeSeeds(values: readonly number[]): SeedSummary {
  if (values.length === 0) throw new Error('summarizeSeeds: no values');
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / n;
  return { mean, std: Math.sqrt(variance), n, values: [...values] };
}
