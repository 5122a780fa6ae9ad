import { heartbeat } from '@temporalio/activity';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { WorkerResources } from './embeddings/resources';
import type { ShardManifest } from './embeddings/extract-shard';
import { planShardKeys } from './embeddings/shard-key';
import { failPermanentErrors } from './failures';
import type { RouteResultFile, RouteSummary } from './heads/route-result';
import { renderCharts } from './report/charts';
import { renderHtml } from './report/render-html';
import { buildReportData, type ReportHistory, routesToRead } from './report/report-data';
import { keys } from './storage/keys';
import { getJson, putJson } from './storage/objects';
import { parseS3Uri } from './storage/s3-uri';
import type { FewShotTable } from './summarize-run';

export interface WriteReportInput {
  runId: string;
  planUri: string;
  /** Model bundle reference (local folder or s3:// prefix), as the routes got it. */
  bundle: string;
  routes: RouteSummary[];
  fewShot: FewShotTable;
  summaryUri: string;
  /** Earlier runs of a schedule, oldest first: adds the trend chart. */
  history?: ReportHistory;
}

export interface WriteReportResult {
  reportUri: string;
  htmlUri: string;
}

/** Manifests read at once: small objects, one per shard. */
const MANIFEST_READS = 16;

/**
 * Activity (cpu queue): writes runs/<runId>/report.html (charts inlined) and report.json (the
 * data behind it), one PutObject each, the JSON last. Reads the plan, the metrics.json of the
 * routes shown in detail and every shard manifest (for the undecodable images). Idempotent: a
 * retry rewrites both files.
 */
export function writeReportActivity(deps: {
  s3: S3Client;
  bucket: string;
  resources: WorkerResources;
}) {
  return async function writeReport(input: WriteReportInput): Promise<WriteReportResult> {
    return failPermanentErrors(async () => {
      const [plan, bundle] = await Promise.all([
        deps.resources.plan(input.planUri),
        deps.resources.bundle(input.bundle),
      ]);
      const augment = {
        views: plan.spec.extraction.augmentedViews,
        seed: plan.spec.extraction.augmentSeed,
      };
      const manifestKeys = planShardKeys(plan, bundle, augment).map(keys.manifestOfShard);
      const manifests = await mapLimited(manifestKeys, MANIFEST_READS, (key) =>
        getJson<ShardManifest>(deps.s3, deps.bucket, key),
      );
      const toRead = routesToRead(input.routes, plan.spec.fewShot.seeds);
      const files = await mapLimited(toRead, MANIFEST_READS, (r) => {
        const { bucket, key } = parseS3Uri(r.metricsUri);
        return getJson<RouteResultFile>(deps.s3, bucket, key);
      });
      const data = buildReportData({
        runId: input.runId,
        summaryUri: input.summaryUri,
        generatedAt: new Date().toISOString(),
        plan,
        bundle: { ref: input.bundle, name: bundle.manifest.name, hash: bundle.hash },
        routes: input.routes,
        fewShot: input.fewShot,
        results: new Map(toRead.map((r, i) => [r.metricsUri, files[i]!])),
        failedItems: manifests.flatMap((m) => m.failed),
        ...(input.history ? { history: input.history } : {}),
      });
      heartbeat('rendering');
      const html = renderHtml(data, await renderCharts(data));
      const htmlKey = keys.report(input.runId, 'report.html');
      const jsonKey = keys.report(input.runId, 'report.json');
      await deps.s3.send(
        new PutObjectCommand({
          Bucket: deps.bucket,
          Key: htmlKey,
          Body: html,
          ContentType: 'text/html; charset=utf-8',
        }),
      );
      // report.json last: its presence means the report is complete.
      await putJson(deps.s3, deps.bucket, jsonKey, data);
      return {
        reportUri: `s3://${deps.bucket}/${jsonKey}`,
        htmlUri: `s3://${deps.bucket}/${htmlKey}`,
      };
    });
  };
}

/** fn over items with at most `limit` in flight, results in item order; heartbeats as it goes. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
      heartbeat({ read: i + 1, of: items.length });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
