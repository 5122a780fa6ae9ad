/**
 * @file What report.json holds, and what report.html is drawn from: built by a pure function from
 * the plan, the run's route summaries, the metrics.json files of the routes shown in detail, the
 * shard manifests' failures and, for scheduled runs, earlier runs' accuracies.
 */
import type { RunSpec } from '../config/run-spec';
import type { Plan, SplitCounts } from '../dataset/plan';
import { type ConfusionCell, sparseConfusion } from '../routes/metrics';
import { type RouteResultFile, type RouteSummary, routeJob } from '../routes/route-result';
import type { RetrievalSummary } from '../routes/retrieval/retrieval-result';
import type { Route } from '../storage/keys';
import {
  type BaseToNewTable,
  type FewShotRoute,
  type FewShotTable,
  baseToNewTable,
} from '../runs/summary';
import type { ScoredRoute } from '../runs/compare';

/** Earlier runs of the same schedule, oldest first; given by the caller (schedules), optional. */
export type ReportHistory = {
  runId: string;
  /** ISO 8601. */
  startedAt: string;
  routes: { route: ScoredRoute; variant?: string; acc1: number }[];
}[];

/** A route's summary with the label every chart and table uses (`probe all`, `coop 4shot-seed1`). */
export type SummaryRow = Omit<RouteSummary, 'reused'> & { label: string };

/** One point of a few-shot curve: top-1 accuracy over seeds at one shot count. */
export interface FewShotPoint {
  route: FewShotRoute;
  shots: number;
  seeds: number[];
  mean: number;
  std: number;
}

/** A route shown in detail: per-class accuracy and its confusion matrix. */
export interface RouteDetail {
  label: string;
  route: Route;
  variant?: string;
  /** Per class (plan order): test images and the share of them predicted right (null: none). */
  perClass: { name: string; support: number; accuracy: number | null }[];
  /**
   * The confusion matrix's non-zero cells, [true class, predicted class, count] (class ids in
   * plan order), as in metrics.json: sparse, so the report scales with the test split, not with
   * classes² (a dense matrix per route made report.json exceed V8's string limit near 4,100 classes).
   */
  confusionCells: ConfusionCell[];
}

export interface ReportData {
  /** /2: confusion matrices as sparse cells (`details[].confusionCells`); /1 had dense matrices. */
  format: 'clipeval-report/2';
  runId: string;
  generatedAt: string;
  summaryUri: string;
  dataset: {
    uri: string;
    kind: Plan['dataset']['kind'];
    fingerprint: string;
    classes: string[];
    counts: { total: number; bySplit: SplitCounts };
    skipped: { count: number; byReason: Record<string, number> };
  };
  model: { bundle: string; name: string; hash: string };
  spec: RunSpec;
  summary: SummaryRow[];
  fewShot: { zeroShotAcc1: number | null; points: FewShotPoint[] };
  /** Base / new / harmonic mean per base-to-new route and shot count (summary.json's table). */
  baseToNew: BaseToNewTable;
  details: RouteDetail[];
  coopLosses: { variant: string; losses: number[] }[];
  /** Zero-shot retrieval's recall@k both ways, when the run had it. */
  retrieval?: Omit<RetrievalSummary, 'reused'>;
  /** Images that could not be decoded, with the reason, from the shard manifests. */
  failedItems: { uri: string; reason: string }[];
  history?: ReportHistory;
}

export interface ReportInputs {
  runId: string;
  summaryUri: string;
  generatedAt: string;
  plan: Plan;
  bundle: { ref: string; name: string; hash: string };
  routes: readonly RouteSummary[];
  fewShot: FewShotTable;
  retrieval?: RetrievalSummary;
  /** metrics.json of (at least) the routes `routesToRead` names, keyed by metricsUri. */
  results: ReadonlyMap<string, RouteResultFile>;
  failedItems: readonly { uri: string; reason: string }[];
  history?: ReportHistory;
}

export function routeLabel(r: Pick<RouteSummary, 'route' | 'variant'>): string {
  return r.variant === undefined ? r.route : `${r.route} ${r.variant}`;
}

/**
 * The routes shown in detail: zero-shot, the full-data probe, and for CoOp, the probe, Tip-Adapter
 * and Tip-Adapter-F the variant with the most shots of the first seed (the spec's first seed that ran).
 */
export function detailedRoutes(
  routes: readonly RouteSummary[],
  seeds: readonly number[],
): RouteSummary[] {
  const pick: RouteSummary[] = [];
  const zeroShot = routes.find((r) => r.route === 'zero-shot');
  if (zeroShot) pick.push(zeroShot);
  const fullProbe = routes.find((r) => r.route === 'probe' && r.shots === 'all');
  if (fullProbe) pick.push(fullProbe);
  for (const route of ['coop', 'probe', 'tip-adapter', 'tip-adapter-f'] as const) {
    const few = routes.filter((r) => r.route === route && typeof r.shots === 'number');
    const seed = [...seeds, ...few.map((r) => r.seed ?? 0).sort((a, b) => a - b)].find((s) =>
      few.some((r) => (r.seed ?? 0) === s),
    );
    const ofSeed = few.filter((r) => (r.seed ?? 0) === seed);
    const most = ofSeed.reduce<RouteSummary | undefined>(
      (best, r) => (!best || (r.shots as number) > (best.shots as number) ? r : best),
      undefined,
    );
    if (most) pick.push(most);
  }
  return pick;
}

/** The metrics.json files a report needs: the detailed routes and every CoOp variant (losses). */
export function routesToRead(
  routes: readonly RouteSummary[],
  seeds: readonly number[],
): RouteSummary[] {
  const need = new Set([...detailedRoutes(routes, seeds), ...routes.filter(isCoop)]);
  return routes.filter((r) => need.has(r));
}

const isCoop = (r: RouteSummary) => r.route === 'coop';

export function buildReportData(input: ReportInputs): ReportData {
  const { plan } = input;
  const result = (r: RouteSummary) => {
    const file = input.results.get(r.metricsUri);
    if (!file)
      throw new Error(`report: no metrics.json read for ${routeLabel(r)} (${r.metricsUri})`);
    return file;
  };
  const zeroShot = input.routes.find((r) => r.route === 'zero-shot');
  return {
    format: 'clipeval-report/2',
    runId: input.runId,
    generatedAt: input.generatedAt,
    summaryUri: input.summaryUri,
    dataset: {
      uri: plan.dataset.uri,
      kind: plan.dataset.kind,
      fingerprint: plan.dataset.fingerprint,
      classes: plan.classes,
      counts: { total: plan.counts.total, bySplit: plan.counts.bySplit },
      skipped: { count: plan.dataset.skipped.count, byReason: plan.dataset.skipped.byReason },
    },
    model: { bundle: input.bundle.ref, name: input.bundle.name, hash: input.bundle.hash },
    spec: plan.spec,
    summary: sortRoutes(input.routes).map(summaryRow),
    fewShot: {
      zeroShotAcc1: zeroShot?.acc1 ?? null,
      points: input.fewShot.flatMap((row) =>
        typeof row.shots === 'number'
          ? [{ route: row.route, shots: row.shots, seeds: row.seeds, ...row.acc1 }]
          : [],
      ),
    },
    baseToNew: baseToNewTable(input.routes),
    details: detailedRoutes(input.routes, plan.spec.fewShot.seeds).map((r) => {
      const { metrics } = result(r);
      return {
        label: routeLabel(r),
        route: r.route,
        ...(r.variant !== undefined ? { variant: r.variant } : {}),
        perClass: metrics.perClass.map((c) => ({
          name: c.name,
          support: c.support,
          accuracy: c.recall,
        })),
        confusionCells: confusionCellsOf(metrics),
      };
    }),
    coopLosses: sortRoutes(input.routes.filter(isCoop)).map((r) => ({
      variant: r.variant ?? '',
      losses: lossesOf(result(r).details),
    })),
    ...(input.retrieval ? { retrieval: retrievalRow(input.retrieval) } : {}),
    failedItems: [...input.failedItems],
    ...(input.history ? { history: input.history } : {}),
  };
}

function retrievalRow(r: RetrievalSummary): Omit<RetrievalSummary, 'reused'> {
  return {
    imageToText: r.imageToText,
    textToImage: r.textToImage,
    images: r.images,
    captions: r.captions,
    notes: r.notes,
    metricsUri: r.metricsUri,
  };
}

function summaryRow(r: RouteSummary): SummaryRow {
  return {
    label: routeLabel(r),
    ...routeJob(r),
    n: r.n,
    acc1: r.acc1,
    acc5: r.acc5,
    meanPerClassRecall: r.meanPerClassRecall,
    macroF1: r.macroF1,
    notes: r.notes,
    ...(r.protocol === 'base-to-new' ? { protocol: r.protocol } : {}),
    metricsUri: r.metricsUri,
  };
}

const ROUTE_ORDER: Record<Route, number> = {
  'zero-shot': 0,
  coop: 1,
  probe: 2,
  'tip-adapter': 3,
  'tip-adapter-f': 4,
};

/** Zero-shot, then CoOp, then the probe; within a route by shots (all last), then seed. */
function sortRoutes(routes: readonly RouteSummary[]): RouteSummary[] {
  const shots = (r: RouteSummary) => (r.shots === 'all' ? Infinity : (r.shots ?? 0));
  return [...routes].sort(
    (a, b) =>
      ROUTE_ORDER[a.route] - ROUTE_ORDER[b.route] ||
      shots(a) - shots(b) ||
      (a.seed ?? 0) - (b.seed ?? 0),
  );
}

/**
 * The sparse confusion of a metrics.json: `confusionCells`, or the dense `confusion` matrix of a
 * file written before the sparse form (a run resumed across versions reuses such results).
 */
function confusionCellsOf(
  metrics: RouteResultFile['metrics'] & { confusion?: number[][] },
): ConfusionCell[] {
  return metrics.confusionCells ?? sparseConfusion(metrics.confusion ?? []);
}

/** CoOp's per-epoch mean loss (details.losses); anything else there is not a curve. */
function lossesOf(details: Record<string, unknown>): number[] {
  const losses = details['losses'];
  return Array.isArray(losses) ? losses.filter((v): v is number => typeof v === 'number') : [];
}
