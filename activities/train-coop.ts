import { Context, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { S3Client } from '@aws-sdk/client-s3';
import type { WorkerResources } from './embeddings/resources';
import { failPermanentErrors } from './failures';
import { groupExamples, selectExamples } from './heads/examples';
import { sampleFewShot } from './heads/few-shot';
import {
  type CoopCheckpointFile,
  type CoopState,
  decodeCheckpoint,
  encodeCheckpoint,
  floatsToBase64,
} from './heads/coop/checkpoint';
import { buildPrompts, initWordIds } from './heads/coop/prompts';
import { defaultEpochs } from './heads/coop/schedule';
import { randomContext, scatterContext, trainCoop } from './heads/coop/trainer';
import { type RouteSummary, findRouteResult, writeRouteResult } from './heads/route-result';
import { scaledCosineScores } from './heads/scores';
import type { CoopGraph } from './model/coop-graph';
import type { ClipTokenizer } from './model/tokenizer';
import { type RouteInput, loadRouteInputs } from './route-inputs';
import { contentHash } from './storage/content-hash';
import { keys, variantName } from './storage/keys';
import { getJson, isNotFound, putJson } from './storage/objects';

export interface CoopInput extends RouteInput {
  shots: number;
  seed: number;
}

/**
 * Activity (gpu queue): trains CoOp's context on a k-shot subset of the train split and scores
 * the test split with the learned prompts. A checkpoint (context + momentum) is written after
 * every epoch; a retried or resumed attempt continues from it, and a finished result is reused.
 * Heartbeats every step carry epoch and loss.
 */
export function trainCoopActivity(deps: {
  s3: S3Client;
  bucket: string;
  resources: WorkerResources;
}) {
  return function trainCoopPrompts(input: CoopInput): Promise<RouteSummary> {
    return failPermanentErrors(() => run(deps, input));
  };
}

async function run(
  deps: { s3: S3Client; bucket: string; resources: WorkerResources },
  input: CoopInput,
): Promise<RouteSummary> {
  const { plan, bundle, read, provenance } = await loadRouteInputs(deps, input);
  const spec = plan.spec.coop;
  const variant = variantName(input.shots, input.seed);
  const epochs = spec.epochs ?? defaultEpochs(input.shots);
  const config = { ...spec, epochs, shots: input.shots, seed: input.seed };
  const inputsHash = contentHash({
    bundle: bundle.hash,
    dataset: plan.dataset.fingerprint,
    augment: input.augment,
    names: plan.classNames,
    config,
  });
  const ctx = {
    runId: input.runId,
    route: 'coop' as const,
    variant,
    shots: input.shots,
    seed: input.seed,
    inputsHash,
    provenance,
  };
  const earlier = await findRouteResult(deps, ctx);
  if (earlier) return earlier;

  const classes = plan.classes.length;
  // Every view of the train images (center crop + augmented), or center crops only.
  const trainMatrix = await read('train', spec.useAugmentedViews ? undefined : 0);
  const trainSet = groupExamples(trainMatrix);
  const sample = sampleFewShot(
    trainSet.labels,
    classes,
    input.shots,
    input.seed,
    'train',
    trainSet.imageIds,
  );
  const notes = sample.shortfalls.map(
    (s) =>
      `class ${plan.classes[s.classIndex]} has ${s.available} train images, fewer than ${s.wanted}: all of them were used`,
  );
  const test = await read('test', 0);
  if (new Set(sample.indices.map((i) => trainSet.labels[i])).size < 2) {
    throw ApplicationFailure.nonRetryable(
      `CoOp needs train images of at least 2 classes (cross-entropy over one class is always 0); this dataset has ${classes === 1 ? 'one class' : 'train images of one class only'}. Disable it with coop.enabled: false.`,
      'DatasetError',
    );
  }
  const examples = selectExamples(trainSet, sample.indices);

  const [graph, tokenizer] = await Promise.all([
    deps.resources.coopGraph(bundle),
    deps.resources.tokenizer(bundle),
  ]);
  const init = await initialState(graph, tokenizer, spec, classes, input.seed);
  const layout = buildPrompts(tokenizer, plan.classNames, {
    nCtx: init.nCtx,
    position: spec.classTokenPosition,
    maxLength: graph.maxLength,
  });
  const checkpointKey = keys.coopCheckpoint(input.runId, variant);
  const resumed = await loadCheckpoint(deps, checkpointKey, inputsHash);
  if (resumed) log.info('CoOp resumes from checkpoint', { variant, epoch: resumed.epoch });
  const dims = [spec.classSpecific ? classes : 1, init.nCtx, graph.width];

  const signal = Context.current().cancellationSignal;
  const steps = Context.current().metricMeter.createCounter(
    'clipeval_coop_steps',
    'steps',
    'CoOp training steps',
  );
  const state = await trainCoop(
    graph,
    layout,
    {
      features: trainMatrix.embeddings,
      dim: trainMatrix.dim,
      labels: examples.labels,
      rows: examples.rows,
    },
    { ...config, classSpecific: spec.classSpecific, seed: input.seed },
    {
      state: resumed ?? init.state,
      signal,
      onStep: ({ epoch, step, steps: perEpoch, loss }) => {
        steps.add(1);
        heartbeat({ variant, epoch: epoch + 1, epochs, step: step + 1, steps: perEpoch, loss });
      },
      onEpoch: async (s) => {
        await putJson(deps.s3, deps.bucket, checkpointKey, encodeCheckpoint(s, inputsHash, dims));
        log.info('CoOp epoch done', { variant, epoch: s.epoch, epochs, loss: s.losses.at(-1) });
      },
    },
  );

  const learned = await graph.textFeatures(
    layout.batch,
    scatterContext(state.ctx, layout, graph.width, spec.classSpecific),
  );
  await putJson(deps.s3, deps.bucket, keys.coopContext(input.runId, variant), {
    format: 'clipeval-coop-context/1',
    bundle: bundle.hash,
    classes: plan.classes,
    classNames: plan.classNames,
    config,
    dims,
    ctx: floatsToBase64(state.ctx),
    losses: state.losses,
  });
  const scores = await scaledCosineScores(
    test.embeddings,
    learned,
    graph.embedDim,
    bundle.manifest.logitScale,
  );
  return writeRouteResult(deps, ctx, {
    scores,
    test,
    classLabels: plan.classes,
    notes,
    details: {
      config,
      losses: state.losses,
      resumedFromEpoch: resumed?.epoch ?? 0,
      trainImages: examples.labels.length,
      sequenceLength: { used: layout.batch.length, model: graph.maxLength },
      provider: graph.provider,
    },
  });
}

/** The starting context: random N(0, 0.02^2), or the token embeddings of the init words. */
async function initialState(
  graph: CoopGraph,
  tokenizer: ClipTokenizer,
  spec: { nCtx: number; init: string; classSpecific: boolean },
  classes: number,
  seed: number,
): Promise<{ nCtx: number; state: CoopState }> {
  const contexts = spec.classSpecific ? classes : 1;
  const fresh = (ctx: Float32Array) => ({
    epoch: 0,
    steps: 0,
    losses: [],
    ctx,
    momentum: new Float32Array(ctx.length),
  });
  if (spec.init === 'random') {
    return { nCtx: spec.nCtx, state: fresh(randomContext(contexts, spec.nCtx, graph.width, seed)) };
  }
  // As the official code: the words' token embeddings (start token skipped), nCtx = their count.
  const words = initWordIds(tokenizer, spec.init);
  const ids = [tokenizer.encode('')[0]!, ...words, tokenizer.encode('')[1]!];
  const embeds = await graph.tokenEmbeddings({
    ids: BigInt64Array.from(ids, BigInt),
    mask: new Float32Array(ids.length),
    eotIndex: BigInt64Array.of(BigInt(ids.length - 1)),
    classes: 1,
    length: ids.length,
  });
  const one = embeds.slice(graph.width, (1 + words.length) * graph.width);
  const ctx = new Float32Array(contexts * one.length);
  for (let c = 0; c < contexts; c++) ctx.set(one, c * one.length);
  return { nCtx: words.length, state: fresh(ctx) };
}

/** The last epoch checkpoint of this exact training, if an earlier attempt wrote one. */
async function loadCheckpoint(
  deps: { s3: S3Client; bucket: string },
  key: string,
  inputsHash: string,
): Promise<CoopState | undefined> {
  let file: CoopCheckpointFile;
  try {
    file = await getJson<CoopCheckpointFile>(deps.s3, deps.bucket, key);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  if (file.inputsHash !== inputsHash) return undefined; // another spec: start over
  return decodeCheckpoint(file, `s3://${deps.bucket}/${key}`);
}
