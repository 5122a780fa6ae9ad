/**
 * @file The CoOp route: trains CoOp's context on a k-shot subset of the train split and scores
 * the test split with the learned prompts. A checkpoint (context + momentum) is written after
 * every epoch; a retried or resumed attempt continues from it, and a finished result is reused.
 * Progress is reported every step with epoch and loss.
 */
import type { CoopSpec } from '../../config/run-spec';
import type { Plan } from '../../dataset/plan';
import { DatasetError } from '../../dataset/types';
import type { EmbeddingMatrix } from '../../embeddings/reader';
import type { CoopGraph } from '../../model/onnx/coop-graph';
import { contentHash } from '../../storage/content-hash';
import { keys, variantName } from '../../storage/keys';
import type { ObjectStore } from '../../storage/object-store';
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
import { type PromptSetup, setupPrompts } from './initial-state';
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
  config: CoopSpec & { epochs: number; shots: number; seed: number };
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
  // Every view of the train images (center crop + augmented), or center crops only.
  const trainMatrix = await read('train', plan.spec.coop.useAugmentedViews ? undefined : 0);
  const { examples, notes } = coopExamples(plan, trainMatrix, input);
  const [graph, tokenizer] = await Promise.all([
    deps.resources.coopGraph(bundle),
    deps.resources.tokenizer(bundle),
  ]);
  const prompts = await setupPrompts(graph, tokenizer, plan, input.seed);
  const set = trainingSet(trainMatrix, examples);
  const trained = await trainContext(deps.store, job, graph, prompts, set, hooks);
  const learned = await classFeatures(graph, prompts, trained.state, job.config.classSpecific);
  await deps.store.putJson(
    keys.coopContext(input.runId, job.variant),
    contextFile(inputs, job, prompts, trained.state),
  );
  const test = await read('test', 0);
  const { logitScale } = bundle.manifest;
  const scores = await scaledCosineScores(test.embeddings, learned, graph.embedDim, logitScale);
  return writeRouteResult(deps, job.ctx, {
    scores,
    test,
    classLabels: plan.classes,
    notes,
    details: {
      config: job.config,
      losses: trained.state.losses,
      resumedFromEpoch: trained.resumedFromEpoch,
      trainImages: examples.labels.length,
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
  const { runId, shots, seed } = input;
  return {
    variant,
    config,
    ctx: { runId, route: 'coop', variant, shots, seed, inputsHash, provenance },
  };
}

/** The k-shot training images; CoOp needs at least two classes among them. */
function coopExamples(
  plan: Plan,
  trainMatrix: EmbeddingMatrix,
  input: CoopInput,
): { examples: Examples; notes: string[] } {
  const train = groupExamples(trainMatrix);
  const sampled = sampleTrainExamples(train, plan.classes, input.shots, input.seed);
  if (new Set(sampled.examples.labels).size < 2) {
    const which = plan.classes.length === 1 ? 'one class' : 'train images of one class only';
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
  prompts: PromptSetup,
  state: CoopState,
  classSpecific: boolean,
): Promise<Float32Array> {
  const { layout } = prompts;
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
function contextFile({ plan, bundle }: RouteInputs, job: CoopJob, p: PromptSetup, s: CoopState) {
  return {
    format: 'clipeval-coop-context/1',
    bundle: bundle.hash,
    classes: plan.classes,
    classNames: plan.classNames,
    config: job.config,
    dims: p.dims,
    ctx: floatsToBase64(s.ctx),
    losses: s.losses,
  };
}
