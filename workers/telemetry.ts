import { DefaultLogger, type LogEntry, Runtime } from '@temporalio/worker';
import type { ClipevalEnv } from '../activities/config/env';

/**
 * The worker process's Temporal runtime: structured logs and Prometheus metrics. Logs are JSON
 * lines on stderr (CLIPEVAL_LOG_FORMAT=text for people at a terminal) carrying the run id (the
 * workflow id) and the stage (the activity), so a log system can follow one run across workers.
 * With CLIPEVAL_METRICS_ADDRESS the runtime serves /metrics: Temporal's own metrics (task-queue
 * latency: temporal_activity_schedule_to_start_latency, slots, polls) plus clipeval's counters
 * recorded by the activities (clipeval_images_embedded, whose rate is images/s, and more).
 * Must run once per process, before any connection or worker is created.
 */
const STAGES: Record<string, string> = {
  planDataset: 'planning',
  extractShardImages: 'extraction',
  zeroShot: 'zero-shot',
  trainCoopPrompts: 'coop',
  fitLinearProbe: 'probe',
  summarizeRun: 'summary',
};

export function jsonLogLine(entry: LogEntry): string {
  const meta = { ...(entry.meta ?? {}) } as Record<string, unknown>;
  const activity = meta.activityType as string | undefined;
  const line = {
    time: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(),
    level: entry.level,
    message: entry.message,
    ...(meta.workflowId !== undefined ? { runId: meta.workflowId } : {}),
    ...(activity !== undefined ? { stage: STAGES[activity] ?? activity } : {}),
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
