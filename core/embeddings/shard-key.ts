import { createHash } from 'node:crypto';
import type { ImageGraph, PreprocessingMode } from '../config/run-spec';
import type { Plan, PlanItem } from '../dataset/plan';
import type { BundleManifest, ModelBundle } from '../model/bundle';
import { keys } from '../storage/keys';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * What a run chose that changes its vectors besides the bundle: the preprocessing mode and the
 * image graph. Both are part of the embedding space, so shards of different choices never mix.
 */
export interface SpaceChoice {
  preprocessing: PreprocessingMode;
  imageGraph: ImageGraph;
}

/** exact preprocessing and the fp32 graph: the space every shard was in before the choice existed. */
export const DEFAULT_SPACE_CHOICE: SpaceChoice = { preprocessing: 'exact', imageGraph: 'fp32' };

/**
 * Each mode's implementation, as named in its fingerprint (bump a version when its decoder or
 * resampler changes its output). exact's string is what every existing shard was keyed with.
 */
const IMPLEMENTATIONS: Record<PreprocessingMode, string> = {
  exact: 'sharp-decode+pillow-bicubic/1',
  fast: 'libvips-shrink-on-load+cubic/1',
};

/**
 * Names what the pixels fed to the encoder depend on besides the image bytes: the bundle's
 * preprocessing parameters and clipeval's implementation of them in the given mode.
 */
export function preprocessFingerprint(
  p: BundleManifest['preprocessing'],
  mode: PreprocessingMode = 'exact',
): string {
  return sha256(JSON.stringify({ implementation: IMPLEMENTATIONS[mode], ...p })).slice(0, 16);
}

/**
 * Names what an image's crops (the 8-bit pixels before normalisation) depend on besides its
 * bytes: the mode's implementation and the geometry (crop side, resize rule, interpolation, crop
 * rounding). Not the model, and not the mean, std or rescale: those act after the crop (inside
 * uint8 graphs, or in cropInto), so every bundle with the same geometry shares the pixel cache.
 */
export function pixelGeometry(
  p: BundleManifest['preprocessing'],
  mode: PreprocessingMode = 'exact',
): string {
  const geometry = {
    implementation: IMPLEMENTATIONS[mode],
    imageSize: p.imageSize,
    resize: p.resize,
    resizeSize: p.resizeSize ?? p.imageSize,
    interpolation: p.interpolation,
    crop: p.crop,
    cropRounding: p.cropRounding ?? 'floor',
  };
  return sha256(JSON.stringify(geometry)).slice(0, 24);
}

/**
 * The embedding space: which model, which preprocessing and which image graph produced a vector.
 * The fp32 graph adds nothing to the hash, so the spaces of shards made before graphs could be
 * chosen keep their keys (and are reused).
 */
export function embeddingSpace(
  bundleHash: string,
  preprocessing: string,
  imageGraph: ImageGraph = 'fp32',
): string {
  const graph = imageGraph === 'fp32' ? '' : `\ngraph=${imageGraph}`;
  return sha256(`${bundleHash}\n${preprocessing}${graph}`).slice(0, 24);
}

/** The space and preprocessing fingerprint of a bundle under a choice. */
export function spaceOf(
  bundle: Pick<ModelBundle, 'hash' | 'manifest'>,
  choice: SpaceChoice,
): { space: string; preprocessFingerprint: string } {
  const pp = preprocessFingerprint(bundle.manifest.preprocessing, choice.preprocessing);
  return { space: embeddingSpace(bundle.hash, pp, choice.imageGraph), preprocessFingerprint: pp };
}

/**
 * The choice a plan records: its spec's mode, and the image graph resolved when it was planned
 * (core/dataset/plan-dataset.ts). Plans written before either existed are exact / fp32.
 */
export function planSpaceChoice(plan: Pick<Plan, 'spec'>): SpaceChoice {
  const e = plan.spec.extraction as Partial<Plan['spec']['extraction']>;
  return {
    preprocessing: e.preprocessing ?? DEFAULT_SPACE_CHOICE.preprocessing,
    imageGraph: e.imageGraph ?? DEFAULT_SPACE_CHOICE.imageGraph,
  };
}

/**
 * What a shard covers: every image (URI and ETag) with the label and split it is stored with,
 * and the augmented views it holds (their count and seed decide their pixels).
 */
export function shardContentHash(
  items: readonly PlanItem[],
  augment = { views: 0, seed: 0 },
): string {
  const views = augment.views > 0 ? `views=${augment.views} seed=${augment.seed}\n` : '';
  return sha256(
    views + items.map((i) => `${i.uri}\t${i.etag}\t${i.label}\t${i.split}`).join('\n'),
  ).slice(0, 32);
}

/**
 * The shard keys of a run, derived from its plan and bundle exactly as extraction derives them
 * (the plan's space choice included): the heads find their embeddings without shard lists
 * travelling through workflow payloads.
 */
export function planShardKeys(
  plan: Plan,
  bundle: Pick<ModelBundle, 'hash' | 'manifest'>,
  augment = { views: 0, seed: 0 },
): string[] {
  const { space } = spaceOf(bundle, planSpaceChoice(plan));
  return plan.shards.map((s) => keys.embeddingShard(space, shardContentHash(s.items, augment)));
}
