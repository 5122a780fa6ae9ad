// The orchestration's own cost at scale: the REAL evaluateDataset workflow on the local stack's
// Temporal dev server, its activities zero-cost (test/helpers/stub-activities.ts: they return a
// small summary at once), so what is timed is Temporal and the workflow code per shard: schedule,
// dispatch, complete, the workflow task that reacts. The stub plan is given the spec's own
// extraction settings (parallelism 4, not the stubs' 2) and no routes, so the run is the
// extraction-only run of a plan with that many shards. Its history is fetched and counted.
import { NativeConnection, Worker } from '@temporalio/worker';
import { join } from 'node:path';
import { connectClient, startEvaluation, waitForRun } from '../../client/evaluations';
import type { ClipevalEnv } from '../../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec } from '../../core/config/run-spec';
import { StubActivities } from '../../test/helpers/stub-activities';
import { ROOT } from '../fixtures';

export interface OrchestrationFigures {
  shards: number;
  wallS: number;
  historyEvents: number;
}

export interface Orchestrator {
  run(shards: number): Promise<OrchestrationFigures>;
  close(): Promise<void>;
}

/** Workers (workflow bundle once) on private task queues, then one run per call. */
export async function startOrchestrator(base: ClipevalEnv): Promise<Orchestrator> {
  const tag = `bench-scale-${process.pid}`;
  const env: ClipevalEnv = { ...base, queues: { cpu: `${tag}-cpu`, gpu: `${tag}-gpu` } };
  const client = await connectClient(env);
  const stubs = new StubActivities(() => client);
  const cpu = stubs.cpu();
  const stubPlan = cpu.planDataset;
  cpu.planDataset = async (input) => {
    const plan = await stubPlan(input);
    const routes = { ...plan.routes, zeroShot: false, coop: false, probe: false };
    return {
      ...plan,
      extraction: parseRunSpec(input.spec).extraction,
      routes: { ...routes, probeFullData: false, tipAdapter: false, retrieval: false },
    };
  };
  const connection = await NativeConnection.connect({ address: env.temporal.address });
  const common = { connection, namespace: env.temporal.namespace } as const;
  const workers = [
    await Worker.create({
      ...common,
      taskQueue: env.queues.cpu,
      workflowsPath: join(ROOT, 'workflows'),
      activities: cpu,
    }),
    await Worker.create({
      ...common,
      taskQueue: env.queues.gpu,
      activities: stubs.gpu(),
      maxConcurrentActivityTaskExecutions: env.gpuActivitySlots,
    }),
  ];
  const running = Promise.all(workers.map((w) => w.run()));
  let n = 0;
  return {
    async run(shards) {
      const runId = `${tag}-${shards}-${n++}`;
      stubs.scenario(runId, { shards, imagesPerShard: 443 });
      const spec = parseRunSpec({
        dataset: { uri: `s3://stub-bucket/${runId}/` },
        model: { bundle: 's3://stub-bucket/models/tiny/' },
        ...EXTRACTION_ONLY,
      });
      const t0 = performance.now();
      await startEvaluation(client, env, spec, runId);
      const outcome = await waitForRun(client, runId);
      const wallS = (performance.now() - t0) / 1000;
      if (outcome.status !== 'COMPLETED') throw new Error(`run ${runId}: ${outcome.status}`);
      const history = await client.workflow.getHandle(runId).fetchHistory();
      return { shards, wallS, historyEvents: history.events?.length ?? NaN };
    },
    async close() {
      for (const w of workers) w.shutdown();
      await running;
      await connection.close();
      await client.connection.close();
    },
  };
}
