import type { ClipevalEnv } from '../core/config/env';
import {
  type ClipevalWorker,
  connectWorker,
  createWorker,
  type WorkerKind,
} from './create-workers';

export interface InProcessWorkers {
  /** Stops polling, lets running activities finish, releases ONNX sessions, closes the connection. */
  stop: () => Promise<void>;
}

/** cpu and gpu workers inside this process: for the demo, the benchmarks and the tests. */
export async function startInProcessWorkers(
  env: ClipevalEnv,
  kinds: WorkerKind[] = ['cpu', 'gpu'],
): Promise<InProcessWorkers> {
  const connection = await connectWorker(env);
  const workers: ClipevalWorker[] = [];
  for (const kind of kinds) workers.push(await createWorker(kind, env, connection));
  const running = Promise.all(workers.map((w) => w.worker.run()));
  return {
    stop: async () => {
      for (const w of workers) w.worker.shutdown();
      await running;
      await Promise.all(workers.map((w) => w.dispose()));
      await connection.close();
    },
  };
}
