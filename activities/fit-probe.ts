import { Context, heartbeat } from '@temporalio/activity';
import type { S3Client } from '@aws-sdk/client-s3';
import type { EmbeddingMatrix } from './embeddings/reader';
import type { WorkerResources } from './embeddings/resources';
import { failPermanentErrors } from './failures';
import { floatsToBase64 } from './heads/coop/checkpoint';
import { type Examples, groupExamples, selectExamples } from './heads/examples';
import { fewShotValidation, sampleFewShot } from './heads/few-shot';
import { type Features, type ProbeRecipe, probeScoresInThread, trainProbe } from './heads/probe';
import { type RouteSummary, findRouteResult, writeRouteResult } from './heads/route-result';
import type { ExecutionProvider } from './model/session-thread';
import { type RouteInput, loadRouteInputs } from './route-inputs';
import { contentHash } from './storage/content-hash';
import { keys, variantName } from './storage/keys';
import { putJson } from './storage/objects';

export interface ProbeInput extends RouteInput {
  /** k images per class from the train split, or `all` of it. */
  shots: number | 'all';
  seed: number;
}

/**
 * Activity (cpu queue): fits the linear probe on the frozen center-crop embeddings (CLIP's
 * protocol: no augmentation), selecting its regularisation on the val split (CoOp's rule for
 * few-shot fits: min(k, 4) val images per class), then scores the test split. The heavy loop
 * runs in ONNX Runtime on a worker thread; heartbeats per iteration.
 */
export function fitProbeActivity(deps: {
  s3: S3Client;
  bucket: string;
  resources: WorkerResources;
  onnx: { providers: readonly ExecutionProvider[]; threads?: number };
}) {
  return (input: ProbeInput): Promise<RouteSummary> =>
    failPermanentErrors(() => fitProbe(deps, input));
}

async function fitProbe(
  deps: Parameters<typeof fitProbeActivity>[0],
  input: ProbeInput,
): Promise<RouteSummary> {
  const { plan, bundle, read, provenance } = await loadRouteInputs(deps, input);
  const spec = plan.spec.probe;
  const variant = variantName(input.shots, input.seed);
  const recipe: ProbeRecipe =
    spec.recipe === 'lbfgs'
      ? { kind: 'lbfgs', maxIterations: spec.maxIterations }
      : { kind: 'adamw', lr: spec.lr, epochs: spec.epochs, batchSize: spec.batchSize };
  const ctx = {
    runId: input.runId,
    route: 'probe' as const,
    variant,
    shots: input.shots,
    seed: input.seed,
    inputsHash: contentHash({
      bundle: bundle.hash,
      dataset: plan.dataset.fingerprint,
      augment: input.augment,
      recipe,
      shots: input.shots,
      seed: input.seed,
    }),
    provenance,
  };
  const earlier = await findRouteResult(deps, ctx);
  if (earlier) return earlier;

  const classes = plan.classes.length;
  const notes: string[] = [];
  const trainMatrix = await read('train', 0);
  const valMatrix = await read('val', 0);
  const trainAll = groupExamples(trainMatrix);
  const valAll = groupExamples(valMatrix);
  let train = trainAll;
  let val = valAll;
  if (input.shots !== 'all') {
    const k = input.shots;
    const sample = sampleFewShot(
      trainAll.labels,
      classes,
      k,
      input.seed,
      'train',
      trainAll.imageIds,
    );
    for (const s of sample.shortfalls)
      notes.push(
        `class ${plan.classes[s.classIndex]} has ${s.available} train images, fewer than ${s.wanted}: all of them were used`,
      );
    train = selectExamples(trainAll, sample.indices);
    val = selectExamples(
      valAll,
      fewShotValidation(valAll.labels, classes, k, input.seed, valAll.imageIds).indices,
    );
  }
  const signal = Context.current().cancellationSignal;
  const result = await trainProbe({
    train: features(train, trainMatrix),
    ...(val.labels.length > 0 ? { val: features(val, valMatrix) } : {}),
    numClasses: classes,
    recipe,
    seed: input.seed,
    providers: [...deps.onnx.providers],
    ...(deps.onnx.threads !== undefined ? { threads: deps.onnx.threads } : {}),
    signal,
    onProgress: (p) => heartbeat({ variant, ...p }),
  });
  notes.push(...result.notes);
  await putJson(deps.s3, deps.bucket, keys.probeModel(input.runId, variant), {
    format: 'clipeval-linear-probe/1',
    bundle: bundle.hash,
    classes: plan.classes,
    recipe,
    selected: result.selected,
    dims: [result.dim, result.numClasses],
    weights: floatsToBase64(result.weights),
    bias: floatsToBase64(result.bias),
  });
  const test = await read('test', 0);
  const scores = await probeScoresInThread(result, test.embeddings, test.rows.length, {
    providers: [...deps.onnx.providers],
    ...(deps.onnx.threads !== undefined ? { threads: deps.onnx.threads } : {}),
  });
  return writeRouteResult(deps, ctx, {
    scores,
    test,
    classLabels: plan.classes,
    notes,
    details: {
      recipe,
      selected: result.selected,
      iterations: result.iterations,
      trainImages: train.labels.length,
      valImages: val.labels.length,
    },
  });
}

/** The center-crop rows of some examples as the probe's input. */
function features(e: Examples, m: EmbeddingMatrix): Features {
  const x = new Float32Array(e.rows.length * m.dim);
  e.rows.forEach((rows, i) =>
    x.set(m.embeddings.subarray(rows[0]! * m.dim, (rows[0]! + 1) * m.dim), i * m.dim),
  );
  return { x, labels: e.labels, n: e.labels.length, dim: m.dim };
}
