import type { Worker } from '@temporalio/worker';
import { ConfigError } from '../activities/config/errors';
import { loadEnv, loadStackEnvDefaults } from '../activities/config/env';
import { connectWorker, createWorker, type WorkerKind } from './create-workers';

/**
 * Entry point shared by workers/cpu.ts, gpu.ts and all.ts. The Temporal runtime turns SIGINT
 * and SIGTERM into a graceful shutdown: workers stop polling, in-flight activities get
 * CLIPEVAL_SHUTDOWN_GRACE to finish (they heartbeat progress, so a retry resumes), then exit.
 */
export async function runWorkers(
  kinds: WorkerKind[],
  opts: { skipEmpty?: boolean } = {},
): Promise<void> {
  loadStackEnvDefaults();
  const env = loadEnv();
  const connection = await connectWorker(env);
  const workers: Worker[] = [];
  for (const kind of kinds) {
    try {
      workers.push(await createWorker(kind, env, connection));
      console.log(
        `clipeval ${kind} worker polling ${kind === 'cpu' ? env.queues.cpu : env.queues.gpu} on ${env.temporal.address}`,
      );
    } catch (err) {
      if (!opts.skipEmpty || kind !== 'gpu') throw err;
      console.log(`clipeval: ${(err as Error).message}`);
    }
  }
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    await connection.close();
  }
}

export function main(kinds: WorkerKind[], opts: { skipEmpty?: boolean } = {}): void {
  runWorkers(kinds, opts).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`clipeval worker: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(err instanceof ConfigError ? 2 : 1);
    },
  );
}
