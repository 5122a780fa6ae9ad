/**
 * @file The linear-probe route: fits the probe on the frozen center-crop embeddings (CLIP's
 * protocol: no augmentation), selecting its regularisation on the val split (CoOp's rule for
 * few-shot fits: min(k, 4) val images per class), stores the fitted probe, then scores the test
 * split. The heavy loop runs in ONNX Runtime on worker threads; progress is reported per
 * iteration. A resumed run reuses a result of the same inputs.
 */
import type { ProbeSpec } from '../../config/run-spec';
import type { EmbeddingMatrix } from '../../embeddings/reader';
import type { ExecutionProvider } from '../../model/onnx/session-thread';
import { contentHash } from '../../storage/content-hash';
import { keys, variantName } from '../../storage/keys';
import { floatsToBase64 } from '../coop/checkpoint';
import { type Examples, groupExamples, sampleTrainExamples, selectExamples } from '../examples';
import { fewShotValidation } from '../few-shot';
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
import {
  type Features,
  type ProbeRecipe,
  type ProbeResult,
  probeScoresInThread,
  trainProbe,
} from './index';

export interface ProbeInput extends RouteInput {
  /** k images per class from the train split, or `all` of it. */
  shots: number | 'all';
  seed: number;
}

export interface ProbeDeps extends RouteDeps {
  onnx: { providers: readonly ExecutionProvider[]; threads?: number };
}

/** Heartbeat details: the fit's phase (selection, final fit) and its iterations so far. */
export interface ProbeProgress {
  variant: string;
  phase: string;
  done: number;
  total: number;
}

/** The probe's training data: center-crop features of the images the fit uses. */
interface ProbeData {
  train: Features;
  val: Features;
  /** Classes with fewer than k train images. */
  notes: string[];
}

export async function runProbe(
  deps: ProbeDeps,
  input: ProbeInput,
  hooks: RunHooks<ProbeProgress>,
): Promise<RouteSummary> {
  const inputs = await loadRouteInputs(deps, input);
  const { plan, read } = inputs;
  const variant = variantName(input.shots, input.seed);
  const recipe = probeRecipe(plan.spec.probe);
  const ctx = probeContext(input, inputs, variant, recipe);
  const earlier = await findRouteResult(deps, ctx);
  if (earlier) return earlier;

  const data = await probeData(inputs, input);
  const result = await fitProbe(
    deps.onnx,
    data,
    { numClasses: plan.classes.length, recipe, seed: input.seed },
    { ...hooks, heartbeat: (p) => hooks.heartbeat({ variant, ...p }) },
  );
  await deps.store.putJson(
    keys.probeModel(input.runId, variant),
    probeFile(inputs, recipe, result),
  );
  const test = await read('test', 0);
  const opts = sessionOptions(deps.onnx);
  const scores = await probeScoresInThread(result, test.embeddings, test.rows.length, opts);
  return writeRouteResult(deps, ctx, {
    scores,
    test,
    classLabels: plan.classes,
    notes: [...data.notes, ...result.notes],
    details: {
      recipe,
      selected: result.selected,
      iterations: result.iterations,
      trainImages: data.train.n,
      valImages: data.val.n,
    },
  });
}

/** Trains on `data.train`, selecting the regularisation on `data.val` when it has images. */
function fitProbe(
  onnx: ProbeDeps['onnx'],
  data: ProbeData,
  fit: { numClasses: number; recipe: ProbeRecipe; seed: number },
  hooks: RunHooks<Omit<ProbeProgress, 'variant'>>,
): Promise<ProbeResult> {
  return trainProbe({
    train: data.train,
    ...(data.val.n > 0 ? { val: data.val } : {}),
    ...fit,
    ...sessionOptions(onnx),
    ...(hooks.signal ? { signal: hooks.signal } : {}),
    onProgress: hooks.heartbeat,
  });
}

function probeRecipe(spec: ProbeSpec): ProbeRecipe {
  return spec.recipe === 'lbfgs'
    ? { kind: 'lbfgs', maxIterations: spec.maxIterations }
    : { kind: 'adamw', lr: spec.lr, epochs: spec.epochs, batchSize: spec.batchSize };
}

/** The result's identity: a resumed run reuses it only if none of these changed. */
function probeContext(
  input: ProbeInput,
  { plan, bundle, provenance }: RouteInputs,
  variant: string,
  recipe: ProbeRecipe,
): RouteContext {
  return {
    runId: input.runId,
    route: 'probe',
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
}

/** Every train and val image, or CoOp's k-shot train subset and min(k, 4)-shot val subset. */
async function probeData({ plan, read }: RouteInputs, input: ProbeInput): Promise<ProbeData> {
  const trainMatrix = await read('train', 0);
  const valMatrix = await read('val', 0);
  const train = groupExamples(trainMatrix);
  const val = groupExamples(valMatrix);
  if (input.shots === 'all') {
    return { train: features(train, trainMatrix), val: features(val, valMatrix), notes: [] };
  }
  const k = input.shots;
  const sampled = sampleTrainExamples(train, plan.classes, k, input.seed);
  const valSample = fewShotValidation(val.labels, plan.classes.length, k, input.seed, val.imageIds);
  return {
    train: features(sampled.examples, trainMatrix),
    val: features(selectExamples(val, valSample.indices), valMatrix),
    notes: sampled.notes,
  };
}

/** The center-crop rows of some examples as the probe's input. */
function features(e: Examples, m: EmbeddingMatrix): Features {
  const x = new Float32Array(e.rows.length * m.dim);
  e.rows.forEach((rows, i) =>
    x.set(m.embeddings.subarray(rows[0]! * m.dim, (rows[0]! + 1) * m.dim), i * m.dim),
  );
  return { x, labels: e.labels, n: e.labels.length, dim: m.dim };
}

function sessionOptions(onnx: ProbeDeps['onnx']) {
  return {
    providers: [...onnx.providers],
    ...(onnx.threads !== undefined ? { threads: onnx.threads } : {}),
  };
}

/** runs/<runId>/probe/<variant>/probe.json: the fitted probe, enough to apply it elsewhere. */
function probeFile({ plan, bundle }: RouteInputs, recipe: ProbeRecipe, result: ProbeResult) {
  return {
    format: 'clipeval-linear-probe/1',
    bundle: bundle.hash,
    classes: plan.classes,
    recipe,
    selected: result.selected,
    dims: [result.dim, result.numClasses],
    weights: floatsToBase64(result.weights),
    bias: floatsToBase64(result.bias),
  };
}
