import { NativeConnection, Worker } from '@temporalio/worker';
import { join } from 'node:path';
import { createCpuActivities, createGpuActivities } from '../activities';
import type { ClipevalEnv } from '../core/config/env';
import { connectTemporal } from '../client/connect';

export type WorkerKind = 'cpu' | 'gpu';

export function connectWorker(env: ClipevalEnv): Promise<NativeConnection> {
  return connectTemporal(env, (options) => NativeConnection.connect(options));
}

export interface ClipevalWorker {
  worker: Worker;
  /** Releases what the worker's activities hold (ONNX Runtime sessions); call after run(). */
  dispose: () => Promise<void>;
}

/**
 * Creates the worker for one task queue. `cpu` workers also run the workflows (cheap,
 * deterministic orchestration); `gpu` workers run only the GPU-bound activities, with fixed
 * slots because the resource-based tuner sees host CPU and memory, not the GPU.
 */
export async function createWorker(
  kind: WorkerKind,
  env: ClipevalEnv,
  connection: NativeConnection,
): Promise<ClipevalWorker> {
  const common = {
    connection,
    namespace: env.temporal.namespace,
    shutdownGraceTime: env.shutdownGrace as `${number}s`,
    // Heartbeats reach the server at least every 5 s (the default throttle can hold them for up to
    // 60 s): a cancelled run's activities learn of it within seconds and stop between batches.
    maxHeartbeatThrottleInterval: '5s',
    defaultHeartbeatThrottleInterval: '2s',
  } as const;
  if (kind === 'cpu') {
    const { activities, resources } = createCpuActivities(env);
    const worker = await Worker.create({
      ...common,
      taskQueue: env.queues.cpu,
      // A folder path: the workflow bundler resolves its index (.ts from source, .js when built).
      workflowsPath: join(__dirname, '..', 'workflows'),
      activities,
    });
    return { worker, dispose: () => resources.close() };
  }
  const { activities, resources } = createGpuActivities(env);
  const worker = await Worker.create({
    ...common,
    taskQueue: env.queues.gpu,
    activities,
    // Few at a time (CLIPEVAL_GPU_ACTIVITY_SLOTS, default 2): shards share one encoder session,
    // and a second shard hides the first's ramp-up, drain and the round trip to the next task
    // (bench/extract.ts's split: one slot left the worker idle ~120 ms per shard).
    maxConcurrentActivityTaskExecutions: env.gpuActivitySlots,
  });
  return { worker, dispose: () => resources.close() };
}
