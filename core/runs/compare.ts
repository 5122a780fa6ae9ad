/**
 * @file Comparing a scheduled run with the schedule's previous successful run: pure functions, so
 * the regression rule is tested without Temporal or S3 (compare-with-previous.ts does the I/O).
 */
import type { RegressionSpec } from '../config/run-spec';
import type { Route } from '../storage/keys';
import type { RetrievalSummary } from '../routes/retrieval/retrieval-result';
import type { RouteSummary } from '../routes/route-result';

/**
 * What is compared across runs: the classification routes, and zero-shot retrieval, whose
 * recall@k per direction (variant `i2t@<k>`, `t2i@<k>`) stands in for both acc1 and
 * meanPerClassRecall, so either regression metric covers it.
 */
export type ScoredRoute = Route | 'retrieval';

/** What a later run needs of an earlier one: its headline metrics per route and variant. */
export interface RouteScore {
  route: ScoredRoute;
  variant?: string;
  acc1: number;
  meanPerClassRecall: number;
}

export interface RunRecord {
  runId: string;
  /** ISO time the run's execution started. */
  startedAt: string;
  routes: RouteScore[];
}

export interface RouteDelta {
  route: ScoredRoute;
  variant?: string;
  previous: { acc1: number; meanPerClassRecall: number };
  current: { acc1: number; meanPerClassRecall: number };
  /** current - previous: negative is a drop. */
  delta: { acc1: number; meanPerClassRecall: number };
  /** The spec's metric dropped by more than maxDrop. */
  regression: boolean;
}

export interface Comparison {
  previousRunId: string;
  metric: RegressionSpec['metric'];
  maxDrop: number;
  /** Routes present in both runs. */
  deltas: RouteDelta[];
  /** Routes only this run has, or only the previous one had ("coop 2shot-seed1"). */
  added: string[];
  removed: string[];
  regression: boolean;
}

/** How many runs the schedule's pointer object remembers (for reports' trend charts). */
export const HISTORY_LIMIT = 30;

/** Rounding noise must not flag a regression when maxDrop is 0 and nothing changed. */
const EPSILON = 1e-9;

export const routeName = (r: { route: ScoredRoute; variant?: string }) =>
  r.variant ? `${r.route} ${r.variant}` : r.route;

export function runRecord(
  runId: string,
  startedAt: string,
  routes: readonly RouteSummary[],
  retrieval?: Pick<RetrievalSummary, 'imageToText' | 'textToImage'>,
): RunRecord {
  return {
    runId,
    startedAt,
    routes: [
      ...routes.map((r) => ({
        route: r.route,
        ...(r.variant !== undefined ? { variant: r.variant } : {}),
        acc1: r.acc1,
        meanPerClassRecall: r.meanPerClassRecall,
      })),
      ...(retrieval ? retrievalScores(retrieval) : []),
    ],
  };
}

/** Each recall@k of zero-shot retrieval as a score: `retrieval i2t@1`, `retrieval t2i@5`, ... */
function retrievalScores(r: Pick<RetrievalSummary, 'imageToText' | 'textToImage'>): RouteScore[] {
  const sides = [
    ['i2t', r.imageToText],
    ['t2i', r.textToImage],
  ] as const;
  return sides.flatMap(([dir, byK]) =>
    Object.keys(byK)
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => ({
        route: 'retrieval' as const,
        variant: `${dir}@${k}`,
        acc1: byK[k]!,
        meanPerClassRecall: byK[k]!,
      })),
  );
}

export function compareRuns(
  previous: RunRecord,
  current: RunRecord,
  rule: RegressionSpec,
): Comparison {
  const before = new Map(previous.routes.map((r) => [routeName(r), r]));
  const now = new Set(current.routes.map(routeName));
  const deltas: RouteDelta[] = [];
  const added: string[] = [];
  for (const cur of current.routes) {
    const prev = before.get(routeName(cur));
    if (!prev) {
      added.push(routeName(cur));
      continue;
    }
    const delta = {
      acc1: cur.acc1 - prev.acc1,
      meanPerClassRecall: cur.meanPerClassRecall - prev.meanPerClassRecall,
    };
    deltas.push({
      route: cur.route,
      ...(cur.variant !== undefined ? { variant: cur.variant } : {}),
      previous: { acc1: prev.acc1, meanPerClassRecall: prev.meanPerClassRecall },
      current: { acc1: cur.acc1, meanPerClassRecall: cur.meanPerClassRecall },
      delta,
      regression: -delta[rule.metric] > rule.maxDrop + EPSILON,
    });
  }
  return {
    previousRunId: previous.runId,
    metric: rule.metric,
    maxDrop: rule.maxDrop,
    deltas,
    added,
    removed: previous.routes.map(routeName).filter((n) => !now.has(n)),
    regression: deltas.some((d) => d.regression),
  };
}

/**
 * The run to compare with: the newest successful run other than this one. A retried activity
 * finds its own run already recorded as the newest, so it skips it and compares with the same
 * previous run as the first attempt did.
 */
export function previousRun(history: readonly RunRecord[], runId: string): RunRecord | undefined {
  return history.filter((r) => r.runId !== runId).at(-1);
}

/** History with this run as the newest entry (replacing an earlier record of it), oldest first. */
export function appendRun(history: readonly RunRecord[], record: RunRecord): RunRecord[] {
  return [...history.filter((r) => r.runId !== record.runId), record].slice(-HISTORY_LIMIT);
}
