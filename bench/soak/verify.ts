/**
 * @file What the soak checks once everything closed: the metrics against the undisturbed
 * baseline, the bucket for orphaned or partial objects, and the workflow histories for retries.
 */
import type { Client } from '@temporalio/client';
import { createHash } from 'node:crypto';
import { keys } from '../../core/storage/keys';
import type { ObjectStore } from '../../core/storage/object-store';
import { parseS3Uri } from '../../core/storage/s3-uri';
import type { EvaluationSummary } from '../../contract/progress';

/** Every route's metrics of a run, in a stable order, without what names the run. */
export function routeMetrics(s: EvaluationSummary): string[] {
  return s.routes
    .map((r) =>
      JSON.stringify([
        r.route,
        r.variant ?? '',
        r.n,
        r.acc1,
        r.acc5,
        r.meanPerClassRecall,
        r.macroF1,
      ]),
    )
    .sort();
}

/** Route lines of `chaos` that differ from `baseline` (missing ones included). */
export function metricMismatches(baseline: EvaluationSummary, chaos: EvaluationSummary): string[] {
  const [a, b] = [routeMetrics(baseline), routeMetrics(chaos)];
  const out: string[] = [];
  for (const line of a) if (!b.includes(line)) out.push(`baseline ${line} missing`);
  for (const line of b) if (!a.includes(line)) out.push(`chaos ${line} unexpected`);
  return out;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Orphaned or partial objects in the bucket: every embedding shard and pixel block has its
 * manifest and each manifest its object, with the sha256 the manifest records; every run's
 * recorded shards and results exist; nothing under runs/<runId>/ that the run's summary does
 * not account for; no run prefix that belongs to no run.
 */
export async function orphanProblems(
  store: ObjectStore,
  runs: EvaluationSummary[],
  suiteIds: string[],
): Promise<{ problems: string[]; objects: number }> {
  const problems: string[] = [];
  const all = await store.list('');
  const present = new Set(all.map((o) => o.key));
  for (const area of ['embeddings/', 'pixels/']) {
    const inArea = all.filter((o) => o.key.startsWith(area)).map((o) => o.key);
    for (const key of inArea) {
      const [stem, ext] = [key.replace(/\.(arrow|json)$/, ''), key.split('.').pop()];
      if (ext !== 'arrow' && ext !== 'json') {
        problems.push(`${key}: neither a shard nor a manifest`);
        continue;
      }
      const other = `${stem}.${ext === 'arrow' ? 'json' : 'arrow'}`;
      if (!present.has(other)) problems.push(`${key} has no ${other}`);
      else if (ext === 'json') {
        const manifest = await store.requireJson<{ sha256: string }>(key);
        const body = await store.requireBytes(other);
        if (manifest.sha256 !== sha256(body)) problems.push(`${other}: sha256 differs from ${key}`);
      }
    }
  }
  const recorded = new Set<string>();
  for (const s of runs) {
    const id = s.runId;
    for (const k of [keys.plan(id), keys.runSummary(id)]) recorded.add(k);
    recorded.add(parseS3Uri(s.report.reportUri).key).add(parseS3Uri(s.report.htmlUri).key);
    for (const shard of s.extraction.shardKeys) {
      if (!present.has(shard)) problems.push(`${id}: recorded shard ${shard} is missing`);
    }
    for (const r of s.routes) {
      const metrics = parseS3Uri(r.metricsUri).key;
      if (!present.has(metrics)) problems.push(`${id}: recorded ${metrics} is missing`);
      for (const f of ['metrics.json', 'clip-benchmark.json', 'predictions.arrow'] as const)
        recorded.add(keys.routeResult(id, r.route, r.variant, f));
      if (r.route === 'coop' && r.variant) {
        recorded.add(keys.coopCheckpoint(id, r.variant)).add(keys.coopContext(id, r.variant));
      }
      if (r.route === 'probe' && r.variant) recorded.add(keys.probeModel(id, r.variant));
    }
  }
  for (const o of all.filter((o) => o.key.startsWith('runs/'))) {
    if (!recorded.has(o.key)) problems.push(`${o.key}: under runs/ but recorded by no run`);
  }
  for (const o of all.filter((o) => o.key.startsWith('suites/'))) {
    const suite = o.key.split('/')[1]!;
    if (!suiteIds.includes(suite)) problems.push(`${o.key}: belongs to no suite of the soak`);
  }
  return { problems, objects: all.length };
}

export interface AttemptStats {
  /** Per activity type: activities, highest attempt, retries (attempts beyond the first). */
  byType: Record<string, { activities: number; maxAttempt: number; retries: number }>;
  retries: number;
  maxAttempt: number;
}

/** Attempts per activity from the workflow histories (ActivityTaskStarted's attempt). */
export async function activityAttempts(
  client: Client,
  workflowIds: string[],
): Promise<AttemptStats> {
  const byType: AttemptStats['byType'] = {};
  for (const id of workflowIds) {
    const events = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
    const typeOf = new Map<string, string>();
    for (const e of events) {
      const s = e.activityTaskScheduledEventAttributes;
      if (s) typeOf.set(String(e.eventId), s.activityType?.name ?? '?');
    }
    for (const e of events) {
      const a = e.activityTaskStartedEventAttributes;
      if (!a) continue;
      const type = typeOf.get(String(a.scheduledEventId)) ?? '?';
      const t = (byType[type] ??= { activities: 0, maxAttempt: 0, retries: 0 });
      const attempt = a.attempt ?? 1;
      t.activities++;
      t.maxAttempt = Math.max(t.maxAttempt, attempt);
      t.retries += attempt - 1;
    }
  }
  const types = Object.values(byType);
  return {
    byType,
    retries: types.reduce((n, t) => n + t.retries, 0),
    maxAttempt: Math.max(0, ...types.map((t) => t.maxAttempt)),
  };
}
