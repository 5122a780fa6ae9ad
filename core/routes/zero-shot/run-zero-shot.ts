/**
 * @file The zero-shot route: class prototypes from the text tower (content-addressed in S3 by
 * bundle, class names and templates, so every run with the same classes and templates reuses
 * them), then logit_scale x cosine against the test split. A resumed run reuses its result.
 */
import type { Plan } from '../../dataset/plan';
import { embeddingSpace, preprocessFingerprint } from '../../embeddings/shard-key';
import type { ModelBundle } from '../../model/bundle';
import { contentHash } from '../../storage/content-hash';
import { keys } from '../../storage/keys';
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
import { protocolHashPart } from '../base-to-new';
import { decodePrototypes, encodePrototypes } from './prototype-file';
import { classPrototypes } from './prototypes';
import { resolveTemplates } from './templates';

/** Heartbeat details: classes encoded so far, then the scoring of the test split. */
export type ZeroShotProgress = { stage: 'prototypes'; classesDone: number } | { stage: 'scoring' };

/** What the prototypes are built from; also what their S3 key is derived from. */
interface PrototypeClasses {
  labels: string[];
  names: string[];
  templates: string[];
}

export async function runZeroShot(
  deps: RouteDeps,
  input: RouteInput,
  hooks: RunHooks<ZeroShotProgress>,
): Promise<RouteSummary> {
  const inputs = await loadRouteInputs(deps, input);
  const { plan, bundle, read } = inputs;
  const classes = prototypeClasses(plan);
  const ctx = zeroShotContext(input, inputs, classes);
  const earlier = await findRouteResult(deps, ctx);
  if (earlier) return earlier;

  const { prototypes, key, reused } = await loadOrBuildPrototypes(deps, bundle, classes, hooks);
  hooks.heartbeat({ stage: 'scoring' });
  const test = await read('test', 0);
  const { embedDim } = bundle.manifest.architecture;
  const { logitScale } = bundle.manifest;
  const scores = await scaledCosineScores(test.embeddings, prototypes, embedDim, logitScale);
  return writeRouteResult(deps, ctx, {
    scores,
    test,
    classLabels: plan.classes,
    notes: [],
    // Under base-to-new nothing is trained: all prototypes score, the masking picks each half.
    protocol: plan.spec.zeroShot.protocol,
    details: {
      templates: classes.templates,
      classNames: classes.names,
      prototypes: deps.store.uri(key),
      prototypesReused: reused,
      logitScale,
    },
  });
}

function prototypeClasses(plan: Plan): PrototypeClasses {
  return {
    labels: plan.classes,
    names: plan.classNames,
    templates: [...resolveTemplates(plan.spec.zeroShot.templates, plan.dataset.templates)],
  };
}

/** The result's identity: a resumed run reuses it only if none of these changed. */
function zeroShotContext(
  input: RouteInput,
  { plan, bundle, provenance }: RouteInputs,
  classes: PrototypeClasses,
): RouteContext {
  return {
    runId: input.runId,
    route: 'zero-shot',
    inputsHash: contentHash({
      bundle: bundle.hash,
      dataset: plan.dataset.fingerprint,
      augment: input.augment,
      names: classes.names,
      templates: classes.templates,
      ...protocolHashPart(plan.spec.zeroShot.protocol),
    }),
    provenance,
  };
}

/** The prototypes an earlier run stored for this bundle and these classes, or new ones (stored). */
async function loadOrBuildPrototypes(
  deps: RouteDeps,
  bundle: ModelBundle,
  classes: PrototypeClasses,
  hooks: RunHooks<ZeroShotProgress>,
): Promise<{ prototypes: Float32Array; key: string; reused: boolean }> {
  const key = prototypesKey(bundle, classes);
  const stored = await deps.store.getBytes(key);
  if (stored) return { prototypes: decodePrototypes(stored).prototypes, key, reused: true };
  const prototypes = await buildPrototypes(deps, bundle, classes, hooks);
  const dim = bundle.manifest.architecture.embedDim;
  const body = encodePrototypes({ ...classes, bundleHash: bundle.hash, prototypes, dim });
  await deps.store.putBytes(key, body);
  return { prototypes, key, reused: false };
}

/**
 * Content address: the embedding space, class names and templates (labels do not matter). The
 * space is the bundle's default one (exact, fp32) whatever the run chose: prototypes come from
 * the text tower, which neither the preprocessing mode nor the image graph touches.
 */
function prototypesKey(bundle: ModelBundle, classes: PrototypeClasses): string {
  const space = embeddingSpace(bundle.hash, preprocessFingerprint(bundle.manifest.preprocessing));
  const content = contentHash({ names: classes.names, templates: classes.templates });
  return keys.prototypes(space, content.slice(0, 32));
}

async function buildPrototypes(
  deps: RouteDeps,
  bundle: ModelBundle,
  classes: PrototypeClasses,
  hooks: RunHooks<ZeroShotProgress>,
): Promise<Float32Array> {
  const [encoder, tokenizer] = await Promise.all([
    deps.resources.textEncoder(bundle),
    deps.resources.tokenizer(bundle),
  ]);
  const dim = bundle.manifest.architecture.embedDim;
  return classPrototypes({ encoder, tokenizer, dim }, classes.names, classes.templates, {
    onProgress: (classesDone) => hooks.heartbeat({ stage: 'prototypes', classesDone }),
  });
}
