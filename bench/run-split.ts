// bench/extract.ts's split of one whole run: where its wall time went, from the run's Temporal
// history (when each activity was scheduled, started and closed: planning, the shard activities,
// summary and report, and the time between them that is the workflow's own orchestration) and
// from the gpu worker's phase profile (core/util/phase-profile.ts: inside the shard activities,
// S3 reads, decode, resample, inference, pixel-cache and shard writes).
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common';
import type { PhaseTotal } from '../core/util/phase-profile';

type Phases = Partial<Record<string, PhaseTotal>>;

export interface RunSplit {
  /** The bench's start-to-result time, and the part between the history's first and last event. */
  wallS: number;
  historyS: number;
  planningS: number;
  /** Union of the shard activities' start-to-close spans. */
  extractionS: number;
  shards: number;
  /** Mean time a shard activity waited between being scheduled and a worker starting it. */
  shardQueueMs: number;
  summaryS: number;
  /** History time covered by no activity: workflow tasks, task-queue hand-offs, timers. */
  orchestrationS: number;
  /** The gpu worker's phases during the run. */
  phases: Phases;
  images: number;
}

interface Span {
  type: string;
  scheduled: number;
  started: number;
  closed: number;
}

/** The run's activity spans and its history's first and last event times (ms). */
async function activitySpans(client: Client, runId: string) {
  const history = await client.workflow.getHandle(runId).fetchHistory();
  const events = history.events ?? [];
  const at = (e: (typeof events)[number]) => tsToMs(e.eventTime);
  const byScheduled = new Map<string, Span>();
  for (const e of events) {
    const id = String(e.eventId);
    const s = e.activityTaskScheduledEventAttributes;
    if (s)
      byScheduled.set(id, {
        type: s.activityType?.name ?? '',
        scheduled: at(e),
        started: NaN,
        closed: NaN,
      });
    const started = e.activityTaskStartedEventAttributes;
    if (started) byScheduled.get(String(started.scheduledEventId))!.started = at(e);
    const closed =
      e.activityTaskCompletedEventAttributes ??
      e.activityTaskFailedEventAttributes ??
      e.activityTaskTimedOutEventAttributes;
    if (closed) byScheduled.get(String(closed.scheduledEventId))!.closed = at(e);
  }
  return { spans: [...byScheduled.values()], first: at(events[0]!), last: at(events.at(-1)!) };
}

/** Milliseconds covered by at least one [start, end). */
function union(spans: [number, number][]): number {
  let total = 0;
  let open = -Infinity;
  for (const [s, e] of [...spans].sort((a, b) => a[0] - b[0])) {
    if (e > open) {
      total += e - Math.max(s, open);
      open = e;
    }
  }
  return total;
}

export async function runSplit(
  client: Client,
  runId: string,
  wallS: number,
  phases: Phases,
  images: number,
): Promise<RunSplit> {
  const { spans, first, last } = await activitySpans(client, runId);
  const of = (...types: string[]) => spans.filter((s) => types.includes(s.type));
  const covered = (xs: Span[]) => union(xs.map((s) => [s.started, s.closed])) / 1000;
  const shards = of('extractShardImages');
  const historyS = (last - first) / 1000;
  return {
    wallS,
    historyS,
    planningS: covered(of('planDataset')),
    extractionS: covered(shards),
    shards: shards.length,
    shardQueueMs:
      shards.reduce((t, s) => t + s.started - s.scheduled, 0) / Math.max(1, shards.length),
    summaryS: covered(of('summarizeRun', 'writeReport')),
    orchestrationS: historyS - covered(spans),
    phases,
    images,
  };
}
