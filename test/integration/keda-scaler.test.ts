import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec } from '../../core/config/run-spec';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import {
  type KedaCheck,
  pollKedaCheck,
  type RenderedOverlay,
  renderOverlay,
  scaledObject,
} from '../helpers/keda';
import {
  type RunningWorkers,
  startWorkers,
  testEnv,
  uniqueId,
  uploadShapes,
  uploadTinyBundle,
} from '../helpers/stack';

// KEDA's own Temporal scaler (infra/keda-check, built from github.com/kedacore/keda/v2) reads the
// ScaledObjects of the rendered `local` overlay and the live backlog of this file's task queues:
// runs waiting with no worker must show as backlog and ask for the replicas the manifests say;
// drained queues must read 0 and inactive.
const RUNS = 5; // workflow tasks waiting on the cpu queue: ceil(5 / targetQueueSize 4) = 2 pods

let env: ClipevalEnv;
let client: Client;
let connection: Connection;
let local: RenderedOverlay;
let gpuCluster: RenderedOverlay;
const workers: RunningWorkers[] = [];

beforeAll(async () => {
  env = testEnv();
  [local, gpuCluster] = await Promise.all([renderOverlay('local'), renderOverlay('gpu-cluster')]);
  connection = await Connection.connect({ address: env.temporal.address });
  client = new Client({ connection, namespace: env.temporal.namespace });
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await connection?.close();
});

/** What the manifests themselves say for a worker's ScaledObject (read here, not by keda-check). */
function manifest(overlay: RenderedOverlay, name: string) {
  const so = overlay.objects.find((o) => o.kind === 'ScaledObject' && o.metadata.name === name);
  if (!so?.spec) throw new Error(`no ScaledObject ${name} in ${overlay.file}`);
  const spec = so.spec as {
    minReplicaCount: number;
    maxReplicaCount: number;
    triggers: Array<{ type: string; metadata: Record<string, string> }>;
  };
  return {
    min: spec.minReplicaCount,
    max: spec.maxReplicaCount,
    target: Number(spec.triggers[0]!.metadata.targetQueueSize),
    metadata: spec.triggers[0]!.metadata,
  };
}

/** Replicas for a steady backlog: ceil(backlog / target) clamped to [max(min, 1), max]; 0 when idle and min is 0. */
function expectedReplicas(m: ReturnType<typeof manifest>, backlog: number, active: boolean) {
  if (!active && m.min === 0) return 0;
  return Math.min(Math.max(Math.ceil(backlog / m.target), m.min, 1), m.max);
}

/** keda-check's view of one worker agrees with the manifests and with the expected backlog. */
function expectWorker(
  check: KedaCheck,
  overlay: RenderedOverlay,
  worker: 'cpu-worker' | 'gpu-worker',
  queue: string,
) {
  const so = scaledObject(check, worker);
  const m = manifest(overlay, worker);
  const [reading] = so.triggers;
  expect(so.triggers).toHaveLength(1);
  expect(reading!.type).toBe('temporal');
  expect(reading!.metadata).toEqual(m.metadata); // the manifests' metadata, untouched
  expect(reading!.taskQueue).toBe(queue); // resolved through taskQueueFromEnv
  expect(reading!.endpoint).toBe(env.temporal.address);
  expect(reading!.targetAverageValue).toBe(m.target);
  expect([so.minReplicaCount, so.maxReplicaCount]).toEqual([m.min, m.max]);
  expect(reading!.isActive).toBe(reading!.metric > 0); // activationTargetQueueSize 0
  expect(so.replicas).toBe(expectedReplicas(m, reading!.metric, reading!.isActive));
  return { backlog: reading!.metric, active: reading!.isActive, replicas: so.replicas };
}

const backlogOf = (c: KedaCheck, worker: string) => scaledObject(c, worker).triggers[0]!.metric;

describe('KEDA Temporal scaler on the manifests (infra/keda-check)', () => {
  it('reads backlog on each queue, asks for the manifests’ replicas, and reads 0 once drained', async () => {
    const bundle = await uploadTinyBundle(env);
    const data = await uploadShapes(env, { train: 4, val: 2, test: 2 }, { label: 'keda' });
    // 8 images in shards of 2: each run schedules 4 extraction activities (parallelism 4).
    const spec = parseRunSpec({
      dataset: { uri: data.uri },
      model: { bundle },
      shardSize: 2,
      ...EXTRACTION_ONLY,
    });

    // No worker at all: every run's first workflow task waits on the cpu queue.
    const runIds: string[] = [];
    for (let i = 0; i < RUNS; i++)
      runIds.push((await startEvaluation(client, env, spec, uniqueId('keda'))).runId);
    const queued = await pollKedaCheck(
      local,
      env,
      `cpu backlog >= ${RUNS}`,
      (c) => backlogOf(c, 'cpu-worker') >= RUNS,
    );
    const cpu = expectWorker(queued, local, 'cpu-worker', env.queues.cpu);
    expect(cpu).toMatchObject({ active: true, replicas: 2 }); // local overlay: target 4, max 2
    expect(expectWorker(queued, local, 'gpu-worker', env.queues.gpu)).toEqual({
      backlog: 0,
      active: false,
      replicas: 1, // local overlay keeps one gpu worker
    });

    // A cpu worker but no gpu worker: planning runs, shard extraction waits on the gpu queue.
    workers.push(await startWorkers(env, ['cpu']));
    const gpuWaiting = await pollKedaCheck(
      local,
      env,
      'gpu backlog >= 2 and cpu backlog 0',
      (c) => backlogOf(c, 'gpu-worker') >= 2 && backlogOf(c, 'cpu-worker') === 0,
    );
    expect(expectWorker(gpuWaiting, local, 'gpu-worker', env.queues.gpu)).toMatchObject({
      active: true,
      replicas: 2, // target 1 per pod, local max 2
    });
    expect(expectWorker(gpuWaiting, local, 'cpu-worker', env.queues.cpu)).toEqual({
      backlog: 0,
      active: false,
      replicas: 1,
    });
    // The gpu-cluster overlay reads the same backlog and allows up to 8 gpu pods.
    const big = await pollKedaCheck(
      gpuCluster,
      env,
      'gpu backlog >= 2',
      (c) => backlogOf(c, 'gpu-worker') >= 2,
    );
    const gpuBig = expectWorker(big, gpuCluster, 'gpu-worker', env.queues.gpu);
    expect(gpuBig.replicas).toBe(Math.min(gpuBig.backlog, 8));

    // A gpu worker drains the queue: every run finishes, both queues read 0 and inactive.
    workers.push(await startWorkers(env, ['gpu']));
    for (const runId of runIds) expect((await waitForRun(client, runId)).status).toBe('COMPLETED');
    const drained = await pollKedaCheck(local, env, 'both backlogs 0', (c) =>
      c.scaledObjects.every((so) => so.triggers.every((t) => t.metric === 0 && !t.isActive)),
    );
    expect(drained.keda).toBe('v2.21.0');
    expect(expectWorker(drained, local, 'cpu-worker', env.queues.cpu).replicas).toBe(1);
    expect(expectWorker(drained, local, 'gpu-worker', env.queues.gpu).replicas).toBe(1);
    // gpu-cluster sets the gpu minReplicaCount to 0: KEDA scales the idle gpu workers to zero.
    const idle = await pollKedaCheck(
      gpuCluster,
      env,
      'gpu backlog 0',
      (c) => backlogOf(c, 'gpu-worker') === 0,
    );
    expect(expectWorker(idle, gpuCluster, 'gpu-worker', env.queues.gpu).replicas).toBe(0);
  }, 300_000);
});
