import { Runtime } from '@temporalio/worker';
import { ConfigError } from '../core/config/errors';
import { loadEnv, loadStackEnvDefaults } from '../core/config/env';
import { CudaProviderError, usableProviders } from '../core/model/onnx/cuda-provider';
import {
  type ClipevalWorker,
  connectWorker,
  createWorker,
  type WorkerKind,
} from './create-workers';
import { installProcessGuards } from './process-guards';
import { installTelemetry } from './telemetry';

/** Why the process is shutting itself down (process-guards.ts), if it is: it then exits 1. */
let fatalReason: string | undefined;

/**
 * Entry point shared by workers/cpu.ts, gpu.ts and all.ts. The Temporal runtime turns SIGINT
 * and SIGTERM into a graceful shutdown: workers stop polling, in-flight activities get
 * CLIPEVAL_SHUTDOWN_GRACE to finish (they heartbeat progress, so a retry resumes), then exit.
 */
export async function runWorkers(kinds: WorkerKind[]): Promise<void> {
  loadStackEnvDefaults();
  const env = loadEnv();
  installTelemetry(env.telemetry);
  const workers: ClipevalWorker[] = [];
  // Errors nobody awaited are logged and survived (see process-guards.ts), never a silent exit.
  installProcessGuards({
    log: (level, message, meta) => {
      const logger = Runtime.instance().logger;
      if (level === 'error') logger.error(message, meta);
      else logger.warn(message, meta);
    },
    onFatal: (reason) => {
      fatalReason = reason;
      // The same graceful path as SIGTERM: stop polling, let in-flight activities finish.
      for (const w of workers) if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
      // And a deadline, should shutting down itself hang.
      setTimeout(() => process.exit(1), graceMs(env.shutdownGrace) + 30_000).unref();
    },
  });
  // Before any work: a worker whose only provider is cuda and cannot load it refuses to start
  // (CudaProviderError names the missing library and the fix); with fallbacks it says why once.
  usableProviders(env.onnx.providers, (m) => {
    Runtime.instance().logger.warn(`clipeval: ${m}`);
  });
  const connection = await connectWorker(env);
  for (const kind of kinds) {
    workers.push(await createWorker(kind, env, connection));
    Runtime.instance().logger.info(`clipeval ${kind} worker polling`, {
      taskQueue: kind === 'cpu' ? env.queues.cpu : env.queues.gpu,
      temporal: env.temporal.address,
      ...(env.telemetry.metricsAddress
        ? { metrics: `http://${env.telemetry.metricsAddress}/metrics` }
        : {}),
    });
  }
  try {
    await Promise.all(workers.map((w) => w.worker.run()));
  } finally {
    await Promise.all(workers.map((w) => w.dispose()));
    await connection.close();
  }
}

/** CLIPEVAL_SHUTDOWN_GRACE (`30s`, `2m`...) in milliseconds; 60 s if it does not parse. */
function graceMs(grace: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(grace.trim());
  if (!m) return 60_000;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}

export function main(kinds: WorkerKind[]): void {
  runWorkers(kinds).then(
    () => {
      if (fatalReason !== undefined) console.error(`clipeval worker: shut down: ${fatalReason}`);
      process.exit(fatalReason === undefined ? 0 : 1);
    },
    (err: unknown) => {
      console.error(`clipeval worker: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(err instanceof ConfigError || err instanceof CudaProviderError ? 2 : 1);
    },
  );
}
