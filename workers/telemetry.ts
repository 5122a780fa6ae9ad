/**
 * @file The worker process's Temporal runtime: structured logs and Prometheus metrics. Logs are
 * JSON lines on stderr (CLIPEVAL_LOG_FORMAT=text for people at a terminal) carrying the run id
 * (the workflow id) and the stage the activity works for, named as the workflow names it
 * (ACTIVITY_STAGES in workflows/progress.ts: `extracting`, `routes`, `reporting`...), so a log
 * system can follow one run across workers. With CLIPEVAL_METRICS_ADDRESS the runtime serves
 * /metrics: Temporal's own metrics (task-queue latency:
 * temporal_activity_schedule_to_start_latency, slots, polls) plus clipeval's counters recorded
 * by the activities (clipeval_images_embedded, whose rate is images/s, and more).
 * installTelemetry must run once per process, before any connection or worker is created.
 */
import { DefaultLogger, type LogEntry, Runtime } from '@temporalio/worker';
import type { ClipevalEnv } from '../core/config/env';
import { ACTIVITY_STAGES, type ActivityName } from '../workflows/progress';

/** The workflow stage an activity works for; an unknown activity type is logged as itself. */
function stageOf(activity: string): string {
  return Object.hasOwn(ACTIVITY_STAGES, activity)
    ? ACTIVITY_STAGES[activity as ActivityName]
    : activity;
}

export function jsonLogLine(entry: LogEntry): string {
  const meta = { ...(entry.meta ?? {}) } as Record<string, unknown>;
  const activity = meta.activityType as string | undefined;
  const line = {
    time: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
    level: entry.level,
    message: entry.message,
    ...(meta.workflowId !== undefined ? { runId: meta.workflowId } : {}),
    ...(activity !== undefined ? { stage: stageOf(activity) } : {}),
    ...meta,
  };
  return JSON.stringify(line, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

export function installTelemetry(telemetry: ClipevalEnv['telemetry']): void {
  const logger =
    telemetry.logFormat === 'json'
      ? new DefaultLogger(telemetry.logLevel, (entry) =>
          process.stderr.write(`${jsonLogLine(entry)}\n`),
        )
      : new DefaultLogger(telemetry.logLevel);
  Runtime.install({
    logger,
    ...(telemetry.metricsAddress
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: telemetry.metricsAddress } } } }
      : {}),
  });
}
