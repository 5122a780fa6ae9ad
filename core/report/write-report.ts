/**
 * @file A run's report: runs/<runId>/report.html (charts inlined) and report.json (the data
 * behind it), one PutObject each, the JSON last. Reads the plan, the metrics.json of the routes
 * shown in detail and every shard manifest (for the undecodable images). Idempotent: a retry
 * rewrites both files.
 */
import type { Plan } from '../dataset/plan';
import type { ShardManifest } from '../embeddings/extract-shard';
import { planShardKeys } from '../embeddings/shard-key';
import type { ModelBundle } from '../model/bundle';
import type { RunHooks } from '../routes/route-hooks';
import type { RouteResultFile, RouteSummary } from '../routes/route-result';
import type { RetrievalSummary } from '../routes/retrieval/retrieval-result';
import type { FewShotTable } from '../runs/summary';
import { keys } from '../storage/keys';
import type { ObjectStore } from '../storage/object-store';
import { mapLimited } from '../util/concurrency';
import type { WorkerResources } from '../worker-resources';
import { ReportRenderError, renderCharts } from './charts';
import { renderHtml } from './render-html';
import { type ReportData, type ReportHistory, buildReportData, routesToRead } from './report-data';

export interface WriteReportInput {
  runId: string;
  planUri: string;
  /** Model bundle reference (local folder or s3:// prefix), as the routes got it. */
  bundle: string;
  routes: RouteSummary[];
  fewShot: FewShotTable;
  /** Zero-shot retrieval's summary, when the run had it: the report's retrieval table. */
  retrieval?: RetrievalSummary;
  summaryUri: string;
  /** Earlier runs of a schedule, oldest first: adds the trend chart. */
  history?: ReportHistory;
}

export interface WriteReportResult {
  reportUri: string;
  htmlUri: string;
}

export interface ReportDeps {
  store: ObjectStore;
  resources: Pick<WorkerResources, 'plan' | 'bundle'>;
}

/** Progress: the inputs are read and the charts are being rendered. */
export type ReportProgress = 'rendering';

/** Objects read at once: small ones (manifests, metrics.json), one request each. */
const PARALLEL_READS = 16;

export async function writeRunReport(
  deps: ReportDeps,
  input: WriteReportInput,
  hooks: RunHooks<ReportProgress>,
): Promise<WriteReportResult> {
  const { store } = deps;
  const data = await reportData(deps, input);
  hooks.heartbeat('rendering');
  const charts = await renderCharts(data); // a chart the data breaks: ReportRenderError
  let html: string;
  try {
    html = renderHtml(data, charts);
  } catch (err) {
    // Pure string building from the data: the same data fails again, so it is permanent.
    throw new ReportRenderError(`report: the page cannot be built: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const htmlKey = keys.report(input.runId, 'report.html');
  const jsonKey = keys.report(input.runId, 'report.json');
  await store.putBytes(htmlKey, html, 'text/html; charset=utf-8');
  // report.json last: its presence means the report is complete.
  await store.putJson(jsonKey, data);
  return { reportUri: store.uri(jsonKey), htmlUri: store.uri(htmlKey) };
}

async function reportData(deps: ReportDeps, input: WriteReportInput): Promise<ReportData> {
  const [plan, bundle] = await Promise.all([
    deps.resources.plan(input.planUri),
    deps.resources.bundle(input.bundle),
  ]);
  const failedItems = await failedImages(deps.store, plan, bundle);
  const toRead = routesToRead(input.routes, plan.spec.fewShot.seeds);
  const files = await mapLimited(toRead, PARALLEL_READS, (r) => {
    const { store, key } = deps.store.at(r.metricsUri);
    return store.requireJson<RouteResultFile>(key);
  });
  return buildReportData({
    runId: input.runId,
    summaryUri: input.summaryUri,
    generatedAt: new Date().toISOString(),
    plan,
    bundle: { ref: input.bundle, name: bundle.manifest.name, hash: bundle.hash },
    routes: input.routes,
    fewShot: input.fewShot,
    ...(input.retrieval ? { retrieval: input.retrieval } : {}),
    results: new Map(toRead.map((r, i) => [r.metricsUri, files[i]!])),
    failedItems,
    ...(input.history ? { history: input.history } : {}),
  });
}

/** The images extraction could not decode, from every shard manifest of the run. */
async function failedImages(
  store: ObjectStore,
  plan: Plan,
  bundle: ModelBundle,
): Promise<ShardManifest['failed']> {
  const augment = {
    views: plan.spec.extraction.augmentedViews,
    seed: plan.spec.extraction.augmentSeed,
  };
  const manifestKeys = planShardKeys(plan, bundle, augment).map(keys.manifestOfShard);
  const manifests = await mapLimited(manifestKeys, PARALLEL_READS, (key) =>
    store.requireJson<ShardManifest>(key),
  );
  return manifests.flatMap((m) => m.failed);
}
