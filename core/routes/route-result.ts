/**
 * @file Scoring a route on the test split and writing what it produced, the same way for the
 * three routes: metrics.json (all metrics, notes and route details), clip-benchmark.json
 * (CLIP_benchmark's result layout) and predictions.arrow (top-5 classes and scores per test image).
 */
import type { EmbeddingMatrix } from '../embeddings/reader';
import { type Route, keys } from '../storage/keys';
import type { ObjectStore } from '../storage/object-store';
import { type Metrics, computeMetrics, topK } from './metrics';
import { encodePredictions } from './predictions';
import type { Protocol } from '../config/run-spec';
import { type BaseToNewResult, baseToNewResult, maskToOwnHalf } from './base-to-new';
import { clipBenchmarkResult } from './results';

/** One route job's headline metrics and where its full result is. */
export interface RouteSummary {
  route: Route;
  /** `all` or `<k>shot-seed<s>` for trained routes. */
  variant?: string;
  shots?: number | 'all';
  seed?: number;
  n: number;
  acc1: number;
  acc5: number | null;
  meanPerClassRecall: number;
  macroF1: number;
  /** Anything a reader must know to trust the figure (shortfalls, fallbacks). */
  notes: string[];
  /**
   * Set on base-to-new jobs (core/routes/base-to-new.ts): trained on the base classes, every test
   * image classified among its own half. acc1 and the other headline metrics are then pooled over
   * both halves; `baseToNew` holds base, new and their harmonic mean.
   */
  protocol?: Protocol;
  baseToNew?: BaseToNewResult;
  metricsUri: string;
  /** True when an earlier execution of this run had already produced this exact result. */
  reused?: boolean;
}

/** Which route job a result is: route, and for trained routes variant, shots and seed (when set). */
export type RouteJob = Pick<RouteSummary, 'route' | 'variant' | 'shots' | 'seed'>;

export function routeJob(r: RouteJob): RouteJob {
  return {
    route: r.route,
    ...(r.variant !== undefined ? { variant: r.variant } : {}),
    ...(r.shots !== undefined ? { shots: r.shots } : {}),
    ...(r.seed !== undefined ? { seed: r.seed } : {}),
  };
}

export interface RouteResultFile {
  summary: RouteSummary;
  /** Hash of everything the result depends on: a result is reused only when it matches. */
  inputsHash: string;
  metrics: Metrics;
  details: Record<string, unknown>;
}

export interface RouteContext {
  runId: string;
  route: Route;
  variant?: string;
  shots?: number | 'all';
  seed?: number;
  inputsHash: string;
  /** For the CLIP_benchmark layout: dataset URI, model name, bundle hash. */
  provenance: { dataset: string; model: string; pretrained: string };
}

const TOP_K = 5;

/**
 * Writes predictions.arrow, clip-benchmark.json and, last, metrics.json; returns the summary.
 *
 * Under `base-to-new` the scores are first masked so each test image competes only among its own
 * half's classes (core/routes/base-to-new.ts): the pooled metrics, predictions and top-k are those
 * of the masked scores, top-k holds at most the smaller half's size (beyond it a row would list
 * classes it cannot be), and acc5 is null when that half has fewer than 5 classes.
 */
export async function writeRouteResult(
  deps: { store: ObjectStore },
  ctx: RouteContext,
  input: {
    scores: Float32Array;
    test: EmbeddingMatrix;
    classLabels: readonly string[];
    notes: string[];
    details: Record<string, unknown>;
    /** Default `all-classes`. */
    protocol?: Protocol;
  },
): Promise<RouteSummary> {
  const { store } = deps;
  const labels = Int32Array.from(input.test.rows, (r) => r.label);
  const k = input.classLabels.length;
  const b2n = input.protocol === 'base-to-new';
  const scores = b2n ? maskToOwnHalf(input.scores, labels, k) : input.scores;
  // The number of classes every test image competes among: all, or at least the smaller half.
  const competing = b2n ? Math.floor(k / 2) : k;
  const computed = computeMetrics(scores, labels, input.classLabels);
  const metrics = competing >= 5 ? computed : { ...computed, acc5: null };
  const topN = Math.min(TOP_K, competing);
  const top = topK(scores, labels.length, k, topN);
  const key = (file: 'metrics.json' | 'clip-benchmark.json' | 'predictions.arrow') =>
    keys.routeResult(ctx.runId, ctx.route, ctx.variant, file);
  const predictions = encodePredictions(input.test.rows, top, topN, input.classLabels, {
    route: ctx.route,
    variant: ctx.variant ?? '',
    run_id: ctx.runId,
  });
  await store.putBytes(key('predictions.arrow'), predictions);
  await store.putJson(
    key('clip-benchmark.json'),
    clipBenchmarkResult({
      dataset: ctx.provenance.dataset,
      model: ctx.provenance.model,
      pretrained: ctx.provenance.pretrained,
      task: ctx.route === 'zero-shot' ? 'zeroshot_classification' : `${ctx.route}_classification`,
      metrics,
    }),
  );
  const summary: RouteSummary = {
    ...routeJob(ctx),
    n: metrics.n,
    acc1: metrics.acc1,
    acc5: metrics.acc5,
    meanPerClassRecall: metrics.meanPerClassRecall,
    macroF1: metrics.macroF1,
    notes: input.notes,
    ...(b2n ? { protocol: 'base-to-new', baseToNew: baseToNewResult(scores, labels, k) } : {}),
    metricsUri: store.uri(key('metrics.json')),
  };
  // metrics.json last: its presence means the route's result is complete.
  const file: RouteResultFile = {
    summary,
    inputsHash: ctx.inputsHash,
    metrics,
    details: input.details,
  };
  await store.putJson(
    key('metrics.json'),
    file,
    `Its per-class metrics (${k} classes) and confusion cells do not fit in one JSON file: evaluate fewer classes per run (CLIPEVAL_MAX_CLASSES refuses such datasets at planning).`,
  );
  return summary;
}

/** The result an earlier execution wrote for exactly these inputs, if any (resume reuses it). */
export async function findRouteResult(
  deps: { store: ObjectStore },
  ctx: Pick<RouteContext, 'runId' | 'route' | 'variant' | 'inputsHash'>,
): Promise<RouteSummary | undefined> {
  const key = keys.routeResult(ctx.runId, ctx.route, ctx.variant, 'metrics.json');
  const file = await deps.store.getJson<RouteResultFile>(key);
  return file?.inputsHash === ctx.inputsHash ? { ...file.summary, reused: true } : undefined;
}
