/**
 * @file The zero-shot class prototypes of a run, content-addressed in S3 by bundle, class names
 * and templates: built once from the text tower, then read back by every route that uses them
 * (zero-shot, Tip-Adapter) and by every later run with the same classes and templates.
 */
import type { Plan } from '../../dataset/plan';
import { embeddingSpace, preprocessFingerprint } from '../../embeddings/shard-key';
import type { ModelBundle } from '../../model/bundle';
import { contentHash } from '../../storage/content-hash';
import { keys } from '../../storage/keys';
import type { RouteDeps } from '../route-inputs';
import { decodePrototypes, encodePrototypes } from './prototype-file';
import { classPrototypes } from './prototypes';
import { resolveTemplates } from './templates';

/** What the prototypes are built from; also what their S3 key is derived from. */
export interface PrototypeClasses {
  labels: string[];
  names: string[];
  templates: string[];
}

/** The plan's classes with the zero-shot spec's templates. */
export function prototypeClasses(plan: Plan): PrototypeClasses {
  return {
    labels: plan.classes,
    names: plan.classNames,
    templates: [...resolveTemplates(plan.spec.zeroShot.templates, plan.dataset.templates)],
  };
}

/**
 * Content address: the embedding space, class names and templates (labels do not matter). The
 * space is the bundle's default one (exact, fp32) whatever the run chose: prototypes come from
 * the text tower, which neither the preprocessing mode nor the image graph touches. The key
 * names the prototypes exactly, so a route's inputsHash can use it without reading them.
 */
export function prototypesKey(bundle: ModelBundle, classes: PrototypeClasses): string {
  const space = embeddingSpace(bundle.hash, preprocessFingerprint(bundle.manifest.preprocessing));
  const content = contentHash({ names: classes.names, templates: classes.templates });
  return keys.prototypes(space, content.slice(0, 32));
}

/**
 * The prototypes an earlier run stored for this bundle and these classes, or new ones (stored).
 * Rows [classes, dim], L2-normalised. Two routes building them at once write the same bytes.
 */
export async function loadOrBuildPrototypes(
  deps: RouteDeps,
  bundle: ModelBundle,
  classes: PrototypeClasses,
  onProgress?: (classesDone: number) => void,
): Promise<{ prototypes: Float32Array; key: string; reused: boolean }> {
  const key = prototypesKey(bundle, classes);
  const stored = await deps.store.getBytes(key);
  if (stored) return { prototypes: decodePrototypes(stored).prototypes, key, reused: true };
  const prototypes = await buildPrototypes(deps, bundle, classes, onProgress);
  const dim = bundle.manifest.architecture.embedDim;
  const body = encodePrototypes({ ...classes, bundleHash: bundle.hash, prototypes, dim });
  await deps.store.putBytes(key, body);
  return { prototypes, key, reused: false };
}

async function buildPrototypes(
  deps: RouteDeps,
  bundle: ModelBundle,
  classes: PrototypeClasses,
  onProgress?: (classesDone: number) => void,
): Promise<Float32Array> {
  const [encoder, tokenizer] = await Promise.all([
    deps.resources.textEncoder(bundle),
    deps.resources.tokenizer(bundle),
  ]);
  const dim = bundle.manifest.architecture.embedDim;
  return classPrototypes({ encoder, tokenizer, dim }, classes.names, classes.templates, {
    ...(onProgress ? { onProgress } : {}),
  });
}
