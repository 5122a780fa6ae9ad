import { createHash } from 'node:crypto';
import type { Plan, PlanItem } from '../dataset/plan';
import type { BundleManifest, ModelBundle } from '../model/bundle';
import { keys } from '../storage/keys';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * Names what the pixels fed to the encoder depend on besides the image bytes: the bundle's
 * preprocessing parameters and clipeval's implementation of them (bump the version when the
 * decoder or resampler changes its output).
 */
export function preprocessFingerprint(p: BundleManifest['preprocessing']): string {
  return sha256(JSON.stringify({ implementation: 'sharp-decode+pillow-bicubic/1', ...p })).slice(
    0,
    16,
  );
}

/** The embedding space: which model and which preprocessing produced a vector. */
export function embeddingSpace(bundleHash: string, preprocessing: string): string {
  return sha256(`${bundleHash}\n${preprocessing}`).slice(0, 24);
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
 * The shard keys of a run, derived from its plan and bundle exactly as extraction derives them:
 * the heads find their embeddings without shard lists travelling through workflow payloads.
 */
export function planShardKeys(
  plan: Plan,
  bundle: Pick<ModelBundle, 'hash' | 'manifest'>,
  augment = { views: 0, seed: 0 },
): string[] {
  const space = embeddingSpace(bundle.hash, preprocessFingerprint(bundle.manifest.preprocessing));
  return plan.shards.map((s) => keys.embeddingShard(space, shardContentHash(s.items, augment)));
}
