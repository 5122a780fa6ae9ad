/**
 * @file The worker process's Temporal runtime: structured logs and Prometheus metrics. Logs are
 * JSON lines on stderr (CLIPEVAL_LOG_FORMAT=text for people at a terminal) carrying the run id
 * (the workflow id) and the stage the activity works for, named as the workflow names it
 * (ACTIVITY_STAGES in contract/progress.ts: `extracting`, `routes`, `reporting`...), so a log
 * system can follow one run across workers. With CLIPEVAL_METRICS_ADDRESS the runtime serves
 * /metrics: Temporal's own metrics (task-queue latency:
 * temporal_activity_schedule_to_start_latency, slots, polls) plus clipeval's counters recorded
 * by the activities (clipeval_images_embedded, whose rate is images/s, and more).
 * installTelemetry must run once per process, before any connection or worker is created.
 */
import { DefaultLogger, type LogEntry, Runtime } from '@temporalio/worker';
import { inspect } from 'node:util';
import type { ClipevalEnv } from '../core/config/env';
import { ACTIVITY_STAGES, type ActivityName } from '../contract/progress';

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

/**
 * SDK notices that describe clipeval's design, not a problem: a gpu worker runs no workflows on
 * purpose (the cpu workers do), so the SDK's warning about it would greet every gpu worker and demo.
 */
const EXPECTED_NOTICES = new Set(['No workflows registered, not polling for workflow tasks']);

export function textLogLine(entry: LogEntry): string {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const meta = entry.meta === undefined ? '' : ` ${inspect(entry.meta, { breakLength: Infinity })}`;
  return `${time} [${entry.level}] ${entry.message}${meta}`;
}

/** The runtime's logger: JSON lines or text on stderr, without the expected notices. */
export function workerLogger(
  level: ClipevalEnv['telemetry']['logLevel'],
  format: ClipevalEnv['telemetry']['logFormat'],
): DefaultLogger {
  const line = format === 'json' ? jsonLogLine : textLogLine;
  return new DefaultLogger(level, (entry) => {
    if (!EXPECTED_NOTICES.has(entry.message)) process.stderr.write(`${line(entry)}\n`);
  });
}

export function installTelemetry(telemetry: ClipevalEnv['telemetry']): void {
  Runtime.install({
    logger: workerLogger(telemetry.logLevel, telemetry.logFormat),
    ...(telemetry.metricsAddress
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: telemetry.metricsAddress } } } }
      : {}),
  });
}
