import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { PlanItem } from '../dataset/plan';
import type { ModelBundle } from '../model/bundle';
import { embedImages } from '../model/embed-images';
import type { ImageEncoder } from '../model/encoders';
import { keys } from '../storage/keys';
import { getJson, isNotFound } from '../storage/objects';
import { parseS3Uri } from '../storage/s3-uri';
import { encodeShard, type ShardRow } from './shard-format';
import { embeddingSpace, preprocessFingerprint, shardContentHash } from './shard-key';

/** The JSON manifest written beside each shard, after it: its presence means the shard is complete. */
export interface ShardManifest {
  shardKey: string;
  rows: number;
  /** Distinct images embedded (rows counts augmented views too). */
  images: number;
  sha256: string;
  bundleHash: string;
  preprocessFingerprint: string;
  failed: { uri: string; reason: string }[];
}

export interface ExtractResult {
  shardKey: string;
  rows: number;
  images: number;
  failed: number;
  /** True when an earlier run had already written this exact shard. */
  reused: boolean;
}

const CLIPEVAL_VERSION = '0.1.0';
const imageId = (uri: string) => createHash('sha256').update(uri).digest('hex').slice(0, 20);

/**
 * Encodes one plan shard into `embeddings/<space>/<content>.arrow` (+ `.json` manifest), or
 * reuses it when the manifest already exists. Images stream from S3 with bounded concurrency
 * while the encoder works; undecodable images go to the manifest's failed list. Both objects are
 * written with one PutObject each, the manifest last, so no partial shard is ever visible.
 */
export async function extractShard(
  deps: { s3: S3Client; bucket: string; bundle: ModelBundle; encoder: ImageEncoder },
  input: { items: readonly PlanItem[]; datasetFingerprint: string },
  opts: {
    batchSize: number;
    concurrency: number;
    /** Augmented views per train image (0: center crops only), and their seed. */
    augment?: { views: number; seed: number };
    onProgress?: (done: number) => void;
    signal?: AbortSignal;
  },
): Promise<ExtractResult> {
  const pp = preprocessFingerprint(deps.bundle.manifest.preprocessing);
  const space = embeddingSpace(deps.bundle.hash, pp);
  const augment = opts.augment ?? { views: 0, seed: 0 };
  const content = shardContentHash(input.items, augment);
  const shardKey = keys.embeddingShard(space, content);
  const manifestKey = keys.embeddingManifest(space, content);

  const existing = await reusableShard(deps.s3, deps.bucket, shardKey, manifestKey);
  if (existing) {
    const { rows, images, failed } = existing;
    return { shardKey, rows, images, failed: failed.length, reused: true };
  }

  const p = deps.bundle.manifest.preprocessing;
  const params = { imageSize: p.imageSize, mean: p.mean, std: p.std, rescale: p.rescale };
  const byUri = new Map(input.items.map((i) => [i.uri, i]));
  const source = input.items.map((item) => ({
    id: item.uri,
    views: item.split === 'train' ? augment.views : 0, // augmentation is for training only
    bytes: async () => {
      const { bucket, key } = parseS3Uri(item.uri);
      const r = await deps.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), {
        abortSignal: opts.signal,
      });
      return r.Body!.transformToByteArray();
    },
  }));

  const rows: ShardRow[] = [];
  const parts: Float32Array[] = [];
  const failed: ShardManifest['failed'] = [];
  for await (const batch of embedImages(source, deps.encoder, params, {
    batchSize: opts.batchSize,
    concurrency: opts.concurrency,
    augmentSeed: String(augment.seed),
  })) {
    opts.signal?.throwIfAborted();
    for (const [i, uri] of batch.ids.entries()) {
      const item = byUri.get(uri)!;
      rows.push({
        key: uri,
        imageId: imageId(uri),
        label: item.label,
        split: item.split,
        view: batch.views[i]!,
      });
    }
    parts.push(batch.embeddings);
    failed.push(...batch.failed.map((f) => ({ uri: f.id, reason: f.reason })));
    opts.onProgress?.(rows.length + failed.length);
  }

  const dim = deps.bundle.manifest.architecture.embedDim;
  const embeddings = new Float32Array(rows.length * dim);
  parts.reduce((at, part) => (embeddings.set(part, at), at + part.length), 0);
  const meta = {
    bundleHash: deps.bundle.hash,
    preprocessFingerprint: pp,
    datasetFingerprint: input.datasetFingerprint,
    clipevalVersion: CLIPEVAL_VERSION,
  };
  const bytes = encodeShard(rows, embeddings, dim, meta);
  await deps.s3.send(
    new PutObjectCommand({
      Bucket: deps.bucket,
      Key: shardKey,
      Body: bytes,
      ContentType: 'application/vnd.apache.arrow.file',
    }),
  );
  const images = rows.filter((r) => r.view === 0).length;
  const manifest: ShardManifest = {
    shardKey,
    rows: rows.length,
    images,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    bundleHash: deps.bundle.hash,
    preprocessFingerprint: pp,
    failed,
  };
  await deps.s3.send(
    new PutObjectCommand({
      Bucket: deps.bucket,
      Key: manifestKey,
      Body: JSON.stringify(manifest, null, 1),
      ContentType: 'application/json',
    }),
  );
  return { shardKey, rows: rows.length, images, failed: failed.length, reused: false };
}

/**
 * The finished shard, if there is one and it is intact: its manifest exists and the shard's
 * bytes still hash to the manifest's sha256. A shard deleted or corrupted since is re-extracted.
 */
async function reusableShard(
  s3: S3Client,
  bucket: string,
  shardKey: string,
  manifestKey: string,
): Promise<ShardManifest | undefined> {
  let manifest: ShardManifest;
  try {
    manifest = await getJson<ShardManifest>(s3, bucket, manifestKey);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  try {
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: shardKey }));
    const sha = createHash('sha256')
      .update(await r.Body!.transformToByteArray())
      .digest('hex');
    if (sha === manifest.sha256) return manifest;
    console.warn(
      `clipeval: shard s3://${bucket}/${shardKey} does not match its manifest's sha256; re-extracting it`,
    );
  } catch (err) {
    if (!isNotFound(err)) throw err;
    console.warn(
      `clipeval: shard s3://${bucket}/${shardKey} is missing although its manifest exists; re-extracting it`,
    );
  }
  return undefined;
}
