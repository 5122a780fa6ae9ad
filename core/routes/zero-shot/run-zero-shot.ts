/**
 * @file The zero-shot route: class prototypes from the text tower (content-addressed in S3 by
 * bundle, class names and templates, so every run with the same classes and templates reuses
 * them: prototype-store.ts), then logit_scale x cosine against the test split. A resumed run reuses its result.
 */
import { contentHash } from '../../storage/content-hash';
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
import { type PrototypeClasses, loadOrBuildPrototypes, prototypeClasses } from './prototype-store';

/** Heartbeat details: classes encoded so far, then the scoring of the test split. */
export type ZeroShotProgress = { stage: 'prototypes'; classesDone: number } | { stage: 'scoring' };

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

  const { prototypes, key, reused } = await loadOrBuildPrototypes(deps, bundle, classes, (n) =>
    hooks.heartbeat({ stage: 'prototypes', classesDone: n }),
  );
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
