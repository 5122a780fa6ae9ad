import { Runtime } from '@temporalio/worker';
import { ConfigError } from '../core/config/errors';
import { loadEnv, loadStackEnvDefaults } from '../core/config/env';
import {
  type ClipevalWorker,
  connectWorker,
  createWorker,
  type WorkerKind,
} from './create-workers';
import { installTelemetry } from './telemetry';

/**
 * Entry point shared by workers/cpu.ts, gpu.ts and all.ts. The Temporal runtime turns SIGINT
 * and SIGTERM into a graceful shutdown: workers stop polling, in-flight activities get
 * CLIPEVAL_SHUTDOWN_GRACE to finish (they heartbeat progress, so a retry resumes), then exit.
 */
export async function runWorkers(kinds: WorkerKind[]): Promise<void> {
  loadStackEnvDefaults();
  const env = loadEnv();
  installTelemetry(env.telemetry);
  const connection = await connectWorker(env);
  const workers: ClipevalWorker[] = [];
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

export function main(kinds: WorkerKind[]): void {
  runWorkers(kinds).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`clipeval worker: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(err instanceof ConfigError ? 2 : 1);
    },
  );
}
