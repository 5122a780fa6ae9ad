/**
 * @file `npm run demo`: the main job on the embedded local stack, in one command. Starts (or
 * reuses) the stack, uploads a small generated ImageFolder dataset and the tiny test model
 * bundle, runs cpu and gpu workers in this process, runs an evaluation and prints its summary.
 * (No real CLIP weights can be downloaded here; with a real bundle, set CLIPEVAL_DEMO_BUNDLE.)
 */
import { Runtime } from '@temporalio/worker';
import { join } from 'node:path';
import { clipevalHome, loadEnv } from '../core/config/env';
import { parseRunSpec } from '../core/config/run-spec';
import { syntheticDataset } from '../core/dataset/synthetic';
import { uploadBundle } from '../core/model/bundle';
import { ObjectStore } from '../core/storage/object-store';
import { stackUp } from '../infra/local-stack/stack';
import { startInProcessWorkers } from '../workers/in-process';
import { workerLogger } from '../workers/telemetry';
import { connectClient, startEvaluation, waitForRun } from '../client/evaluations';
import { formatOutcome } from './format';
import { saveReport } from './report-command';

async function demo(): Promise<number> {
  Runtime.install({ logger: workerLogger('WARN', 'text') }); // the workflow bundler is chatty at INFO
  const stack = await stackUp();
  Object.assign(process.env, stack.env);
  console.log(
    `stack: Temporal ${stack.state.temporal.address} (UI ${stack.state.temporal.uiUrl}), S3 ${stack.state.s3.endpoint}`,
  );
  const env = loadEnv();

  const store = ObjectStore.connect(env.s3);
  const prefix = 'datasets/demo-shapes/';
  const images = await syntheticDataset({ perSplit: { train: 16, val: 4, test: 8 } });
  for (const img of images) await store.putBytes(prefix + img.path, img.body);
  console.log(`dataset: ${images.length} images at ${store.uri(prefix)}`);
  const bundleUri = store.uri('models/demo/');
  const local =
    process.env.CLIPEVAL_DEMO_BUNDLE ?? join(__dirname, '..', 'test', 'fixtures', 'tiny-clip');
  const bundle = await uploadBundle(store, local, bundleUri);
  console.log(`model: ${bundle.manifest.name} at ${bundleUri}`);

  const workers = await startInProcessWorkers(env);
  const client = await connectClient(env);
  const spec = parseRunSpec({
    dataset: { uri: store.uri(prefix) },
    model: { bundle: bundleUri },
    shardSize: 32,
  });
  try {
    const { runId } = await startEvaluation(client, env, spec);
    console.log(`run: ${runId} (clipeval status ${runId})`);
    const outcome = await waitForRun(client, runId);
    console.log(formatOutcome(outcome));
    if (outcome.status === 'COMPLETED') {
      // The report is self-contained: saved locally, it opens in any browser without a network.
      const out = join(clipevalHome(), 'demo-report');
      await saveReport(store, runId, out);
      console.log(`\nreport: ${join(out, 'report.html')}`);
      console.log(
        `Temporal web UI: ${stack.state.temporal.uiUrl}/namespaces/${env.temporal.namespace}/workflows/${runId}`,
      );
    }
    return outcome.status === 'COMPLETED' ? 0 : 1;
  } finally {
    await workers.stop();
  }
}

demo().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`clipeval demo: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
