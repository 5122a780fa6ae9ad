/**
 * @file The CoOp route: trains CoOp's context on a k-shot subset of the train split and scores
 * the test split with the learned prompts. A checkpoint (context + momentum) is written after
 * every epoch; a retried or resumed attempt continues from it, and a finished result is reused.
 * Progress is reported every step with epoch and loss.
 */
import type { CoopSpec, Protocol } from '../../config/run-spec';
import { DatasetError } from '../../dataset/types';
import type { EmbeddingMatrix } from '../../embeddings/reader';
import type { CoopGraph } from '../../model/onnx/coop-graph';
import { contentHash } from '../../storage/content-hash';
import { keys, variantName } from '../../storage/keys';
import type { ObjectStore } from '../../storage/object-store';
import { protocolHashPart } from '../base-to-new';
import { type Examples, groupExamples, sampleTrainExamples } from '../examples';
import type { RunHooks } from '../route-hooks';
import {
  type RouteDeps,
  type RouteInput,
  type RouteInputs,
  loadRouteInputs,
} from '../route-inputs';
import {
  type RouteContext,
  type RouteSummary,
  findRouteResult,
  writeRouteResult,
} from '../route-result';
import { scaledCosineScores } from '../scores';
import {
  type CoopCheckpointFile,
  type CoopState,
  decodeCheckpoint,
  encodeCheckpoint,
  floatsToBase64,
} from './checkpoint';
import { type PromptSetup, promptLayout, setupPrompts } from './initial-state';
import type { PromptLayout } from './prompts';
import { type TrainingClasses, examplesOf, trainingClasses } from './training-classes';
import { defaultEpochs } from './schedule';
import { type TrainingSet, scatterContext, trainCoop } from './trainer';

export interface CoopInput extends RouteInput {
  shots: number;
  seed: number;
}

/** Progress every step (1-based epoch and step): what `clipeval status` shows of training. */
export interface CoopProgress {
  variant: string;
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
}

export interface CoopHooks extends RunHooks<CoopProgress> {
  /** Counts one training step (a worker metric). */
  countStep?: () => void;
}

/** What is fixed before training: the result's identity and the training config. */
interface CoopJob {
  variant: string;
  /** The spec as trained; `protocol` only when base-to-new (all-classes hashes stay as they were). */
  config: Omit<CoopSpec, 'protocol'> & {
    epochs: number;
    shots: number;
    seed: number;
    protocol?: Protocol;
  };
  ctx: RouteContext;
}

export async function runCoop(
  deps: RouteDeps,
  input: CoopInput,
  hooks: CoopHooks,
): Promise<RouteSummary> {
  const inputs = await loadRouteInputs(deps, input);
  const job = coopJob(input, inputs);
  const earlier = await findRouteResult(deps, job.ctx);
  if (earlier) return earlier;

  const { plan, bundle, read } = inputs;
  const { protocol } = plan.spec.coop;
  const trained = trainingClasses(plan, protocol);
  // Every view of the train images (center crop + augmented), or center crops only.
  const trainMatrix = await read('train', plan.spec.coop.useAugmentedViews ? undefined : 0);
  const { examples, notes } = coopExamples(trained, protocol, trainMatrix, input);
  const [graph, tokenizer] = await Promise.all([
    deps.resources.coopGraph(bundle),
    deps.resources.tokenizer(bundle),
  ]);
  const prompts = await setupPrompts(graph, tokenizer, plan.spec.coop, trained.names, input.seed);
  // Every class's prompts for the test, laid out before training so a too-long name fails early.
  const testLayout =
    trained.names.length === plan.classNames.length
      ? prompts.layout
      : promptLayout(graph, tokenizer, plan.spec.coop, prompts.layout.nCtx, plan.classNames);
  const set = trainingSet(trainMatrix, examples);
  const state = await trainContext(deps.store, job, graph, prompts, set, hooks);
  const learned = await classFeatures(graph, testLayout, state.state, job.config.classSpecific);
  await deps.store.putJson(
    keys.coopContext(input.runId, job.variant),
    contextFile(inputs, job, prompts, state.state, trained),
  );
  const test = await read('test', 0);
  const { logitScale } = bundle.manifest;
  const scores = await scaledCosineScores(test.embeddings, learned, graph.embedDim, logitScale);
  return writeRouteResult(deps, job.ctx, {
    scores,
    test,
    classLabels: plan.classes,
    notes,
    protocol,
    details: {
      config: job.config,
      losses: state.state.losses,
      resumedFromEpoch: state.resumedFromEpoch,
      trainImages: examples.labels.length,
      trainClasses: trained.labels.length,
      ...modelDetails(graph, prompts),
    },
  });
}

/** How the prompts ran: the sequence length used (cut after the longest prompt), the provider. */
function modelDetails(graph: CoopGraph, prompts: PromptSetup) {
  return {
    sequenceLength: { used: prompts.layout.batch.length, model: graph.maxLength },
    provider: graph.provider,
  };
}

function coopJob(input: CoopInput, { plan, bundle, provenance }: RouteInputs): CoopJob {
  const { protocol, ...spec } = plan.spec.coop;
  const variant = variantName(input.shots, input.seed);
  const epochs = spec.epochs ?? defaultEpochs(input.shots);
  const config = {
    ...spec,
    epochs,
    shots: input.shots,
    seed: input.seed,
    ...protocolHashPart(protocol),
  };
  const inputsHash = contentHash({
    bundle: bundle.hash,
    dataset: plan.dataset.fingerprint,
    augment: input.augment,
    names: plan.classNames,
    config,
  });
  const { runId, shots, seed } = input;
  return {
    variant,
    config,
    ctx: { runId, route: 'coop', variant, shots, seed, inputsHash, provenance },
  };
}

/** The k-shot training images of the trained classes; CoOp needs at least two classes among them. */
function coopExamples(
  classes: TrainingClasses,
  protocol: Protocol,
  trainMatrix: EmbeddingMatrix,
  input: CoopInput,
): { examples: Examples; notes: string[] } {
  const train = examplesOf(groupExamples(trainMatrix), classes);
  const sampled = sampleTrainExamples(train, classes.labels, input.shots, input.seed);
  if (new Set(sampled.examples.labels).size < 2) {
    const which =
      classes.labels.length === 1
        ? 'one class'
        : protocol === 'base-to-new'
          ? 'train images of one base class only (coop.protocol base-to-new trains on the first half of the classes)'
          : 'train images of one class only';
    throw new DatasetError(
      `CoOp needs train images of at least 2 classes (cross-entropy over one class is always 0); this dataset has ${which}. Disable it with coop.enabled: false.`,
    );
  }
  return sampled;
}

function trainingSet(m: EmbeddingMatrix, examples: Examples): TrainingSet {
  return { features: m.embeddings, dim: m.dim, labels: examples.labels, rows: examples.rows };
}

/** Trains from the last checkpoint of this exact job (or from scratch), checkpointing per epoch. */
async function trainContext(
  store: ObjectStore,
  job: CoopJob,
  graph: CoopGraph,
  prompts: PromptSetup,
  set: TrainingSet,
  hooks: CoopHooks,
): Promise<{ state: CoopState; resumedFromEpoch: number }> {
  const { variant, config } = job;
  const { epochs } = config;
  const checkpointKey = keys.coopCheckpoint(job.ctx.runId, variant);
  const resumed = await loadCheckpoint(store, checkpointKey, job.ctx.inputsHash);
  if (resumed) hooks.log?.info('CoOp resumes from checkpoint', { variant, epoch: resumed.epoch });
  const state = await trainCoop(graph, prompts.layout, set, config, {
    state: resumed ?? prompts.init,
    ...(hooks.signal ? { signal: hooks.signal } : {}),
    onStep: ({ epoch, step, steps, loss }) => {
      hooks.countStep?.();
      hooks.heartbeat({ variant, epoch: epoch + 1, epochs, step: step + 1, steps, loss });
    },
    onEpoch: async (s) => {
      await store.putJson(checkpointKey, encodeCheckpoint(s, job.ctx.inputsHash, prompts.dims));
      hooks.log?.info('CoOp epoch done', {
        variant,
        epoch: s.epoch,
        epochs,
        loss: s.losses.at(-1),
      });
    },
  });
  return { state, resumedFromEpoch: resumed?.epoch ?? 0 };
}

/** The text features of every class's prompt with the trained context: CoOp's classifier. */
function classFeatures(
  graph: CoopGraph,
  layout: PromptLayout,
  state: CoopState,
  classSpecific: boolean,
): Promise<Float32Array> {
  return graph.textFeatures(
    layout.batch,
    scatterContext(state.ctx, layout, graph.width, classSpecific),
  );
}

/** The last epoch checkpoint of this exact training, if an earlier attempt wrote one. */
async function loadCheckpoint(
  store: ObjectStore,
  key: string,
  inputsHash: string,
): Promise<CoopState | undefined> {
  const file = await store.getJson<CoopCheckpointFile>(key);
  if (!file || file.inputsHash !== inputsHash) return undefined; // none, or another spec: start over
  return decodeCheckpoint(file, store.uri(key));
}

/** runs/<runId>/coop/<variant>/context.json: the learned context with its config (the artefact). */
function contextFile(
  { plan, bundle }: RouteInputs,
  job: CoopJob,
  p: PromptSetup,
  s: CoopState,
  trained: TrainingClasses,
) {
  return {
    format: 'clipeval-coop-context/1',
    bundle: bundle.hash,
    classes: plan.classes,
    classNames: plan.classNames,
    config: job.config,
    dims: p.dims,
    ctx: floatsToBase64(s.ctx),
    losses: s.losses,
    // Under base-to-new the context saw only these classes (the first of `classes`).
    ...(trained.labels.length < plan.classes.length ? { trainClasses: trained.labels } : {}),
  };
}
