import { heartbeat } from '@temporalio/activity';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { embeddingSpace, preprocessFingerprint } from './embeddings/shard-key';
import type { WorkerResources } from './embeddings/resources';
import { failPermanentErrors } from './failures';
import { type RouteSummary, findRouteResult, writeRouteResult } from './heads/route-result';
import { scaledCosineScores } from './heads/scores';
import { decodePrototypes, encodePrototypes } from './heads/zero-shot/prototype-file';
import { classPrototypes } from './heads/zero-shot/prototypes';
import { resolveTemplates } from './heads/zero-shot/templates';
import type { ModelBundle } from './model/bundle';
import { type RouteInput, loadRouteInputs } from './route-inputs';
import { contentHash } from './storage/content-hash';
import { keys } from './storage/keys';
import { isNotFound } from './storage/objects';

/**
 * Activity (cpu queue): zero-shot classification of the test split. Prototypes are
 * content-addressed in S3 (bundle + class names + templates), so every run with the same
 * classes and templates reuses them; the result itself is reused by a resumed run.
 */
export function zeroShotActivity(deps: {
  s3: S3Client;
  bucket: string;
  resources: WorkerResources;
}) {
  return (input: RouteInput): Promise<RouteSummary> =>
    failPermanentErrors(() => zeroShot(deps, input));
}

async function zeroShot(
  deps: { s3: S3Client; bucket: string; resources: WorkerResources },
  input: RouteInput,
): Promise<RouteSummary> {
  const { plan, bundle, read, provenance } = await loadRouteInputs(deps, input);
  const templates = [...resolveTemplates(plan.spec.zeroShot.templates)];
  const ctx = {
    runId: input.runId,
    route: 'zero-shot' as const,
    inputsHash: contentHash({
      bundle: bundle.hash,
      dataset: plan.dataset.fingerprint,
      augment: input.augment,
      names: plan.classNames,
      templates,
    }),
    provenance,
  };
  const earlier = await findRouteResult(deps, ctx);
  if (earlier) return earlier;

  const { prototypes, key, reused } = await loadOrBuildPrototypes(deps, bundle, {
    labels: plan.classes,
    names: plan.classNames,
    templates,
  });
  heartbeat({ stage: 'scoring' });
  const test = await read('test', 0);
  const dim = bundle.manifest.architecture.embedDim;
  const scores = await scaledCosineScores(
    test.embeddings,
    prototypes,
    dim,
    bundle.manifest.logitScale,
  );
  return writeRouteResult(deps, ctx, {
    scores,
    test,
    classLabels: plan.classes,
    notes: [],
    details: {
      templates,
      classNames: plan.classNames,
      prototypes: `s3://${deps.bucket}/${key}`,
      prototypesReused: reused,
      logitScale: bundle.manifest.logitScale,
    },
  });
}

async function loadOrBuildPrototypes(
  deps: { s3: S3Client; bucket: string; resources: WorkerResources },
  bundle: ModelBundle,
  classes: { labels: string[]; names: string[]; templates: string[] },
): Promise<{ prototypes: Float32Array; key: string; reused: boolean }> {
  const space = embeddingSpace(bundle.hash, preprocessFingerprint(bundle.manifest.preprocessing));
  const key = keys.prototypes(
    space,
    contentHash({ names: classes.names, templates: classes.templates }).slice(0, 32),
  );
  try {
    const r = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
    const file = decodePrototypes(await r.Body!.transformToByteArray());
    return { prototypes: file.prototypes, key, reused: true };
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const [encoder, tokenizer] = await Promise.all([
    deps.resources.textEncoder(bundle),
    deps.resources.tokenizer(bundle),
  ]);
  const dim = bundle.manifest.architecture.embedDim;
  const prototypes = await classPrototypes(
    { encoder, tokenizer, dim },
    classes.names,
    classes.templates,
    {
      onProgress: (classesDone) => heartbeat({ stage: 'prototypes', classesDone }),
    },
  );
  const body = encodePrototypes({ ...classes, bundleHash: bundle.hash, prototypes, dim });
  await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, Body: body }));
  return { prototypes, key, reused: false };
}
