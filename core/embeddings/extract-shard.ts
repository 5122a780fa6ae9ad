import { createHash } from 'node:crypto';
import type { PlanItem } from '../dataset/plan';
import { imageBytesReader, imageReadFailure } from '../dataset/read-image-bytes';
import type { ModelBundle } from '../model/bundle';
import {
  type DecodedImageSource,
  embedDecoded,
  type ImageLimits,
  type ImageSource,
} from '../model/image/embed-images';
import { preprocessParams } from '../model/image/pixels';
import type { DecodePool } from '../model/image/decode-pool';
import { ImageDecodeError } from '../model/image/image-errors';
import type { ImageEncoder } from '../model/onnx/encoders';
import { keys } from '../storage/keys';
import type { ObjectStore } from '../storage/object-store';
import type { Claims } from '../util/claims';
import { timed } from '../util/phase-profile';
import { CLIPEVAL_VERSION } from '../util/version';
import { viewsOf } from './pixel-blocks';
import { encodeShard, type ShardRow } from './shard-format';
import {
  DEFAULT_SPACE_CHOICE,
  pixelGeometry,
  type SpaceChoice,
  shardContentHash,
  spaceOf,
} from './shard-key';
import { type PixelCacheMode, type PixelCounts, shardPixels } from './shard-pixels';

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
  /** Images fetched and decoded for it (0 when reused). */
  decoded: number;
  /** Images whose crops (or recorded failure) came from the pixel cache (0 when reused). */
  fromPixelCache: number;
}

export interface ExtractOptions {
  batchSize: number;
  concurrency: number;
  /** Augmented views per train image (0: center crops only), and their seed. */
  augment?: { views: number; seed: number };
  /** The preprocessing mode and the image graph `deps.encoder` runs; default exact / fp32. */
  space?: SpaceChoice;
  /** Whether crops are read from and written to the pixel cache (./shard-pixels.ts); default off. */
  pixelCache?: PixelCacheMode;
  onProgress?: (done: number) => void;
  signal?: AbortSignal;
}

export interface ExtractDeps {
  /** The output bucket (images are read from wherever their URIs say). */
  store: ObjectStore;
  bundle: ModelBundle;
  encoder: ImageEncoder;
  /** What one image may cost (bytes, pixels, the worker's memory budget); default 100 MP only. */
  limits?: ImageLimits;
  /** The worker's decode pool (resize, crops, normalisation in threads); default: none. */
  pool?: DecodePool | undefined;
  /** The worker's claims on pixel-cache blocks being decoded (decoded once per worker). */
  claims?: Claims;
}

/** Where a shard goes: its two keys, named by embedding space and content. */
interface ShardTarget {
  shardKey: string;
  manifestKey: string;
  preprocessFingerprint: string;
  augment: { views: number; seed: number };
  choice: SpaceChoice;
}

/** A shard's rows and embeddings ([rows, dim], in row order), and the images that failed. */
interface EncodedShard {
  rows: ShardRow[];
  embeddings: Float32Array;
  failed: ShardManifest['failed'];
  pixels: PixelCounts;
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');
const imageId = (uri: string) => sha256(uri).slice(0, 20);

/**
 * Encodes one plan shard into `embeddings/<space>/<content>.arrow` (+ `.json` manifest), or
 * reuses it when the manifest already exists. Images stream from S3 with bounded concurrency
 * while the encoder works; undecodable images go to the manifest's failed list. Both objects are
 * written with one PutObject each, the manifest last, so no partial shard is ever visible.
 */
export async function extractShard(
  deps: ExtractDeps,
  input: { items: readonly PlanItem[]; datasetFingerprint: string },
  opts: ExtractOptions,
): Promise<ExtractResult> {
  const target = shardTarget(deps.bundle, input.items, opts.augment, opts.space);
  const existing = await reusableShard(deps.store, target);
  if (existing) {
    const { rows, images, failed } = existing;
    return {
      shardKey: target.shardKey,
      rows,
      images,
      failed: failed.length,
      reused: true,
      decoded: 0,
      fromPixelCache: 0,
    };
  }
  const encoded = await encodeItems(deps, input.items, target, opts);
  const manifest = await writeShard(deps, target, encoded, input.datasetFingerprint);
  const { shardKey, rows, images, failed } = manifest;
  const { decoded, fromCache } = encoded.pixels;
  return {
    shardKey,
    rows,
    images,
    failed: failed.length,
    reused: false,
    decoded,
    fromPixelCache: fromCache,
  };
}

function shardTarget(
  bundle: ModelBundle,
  items: readonly PlanItem[],
  augment = { views: 0, seed: 0 },
  choice = DEFAULT_SPACE_CHOICE,
): ShardTarget {
  const { space, preprocessFingerprint } = spaceOf(bundle, choice);
  const content = shardContentHash(items, augment);
  return {
    shardKey: keys.embeddingShard(space, content),
    manifestKey: keys.embeddingManifest(space, content),
    preprocessFingerprint,
    augment,
    choice,
  };
}

/**
 * The items as encoder sources: bytes fetched on demand (cancelled with the shard), with their
 * planned size (checked against the limits before any request).
 */
function imageSources(
  store: ObjectStore,
  items: readonly PlanItem[],
  augment: ShardTarget['augment'],
  limits: ImageLimits | undefined,
  signal: AbortSignal | undefined,
): ImageSource[] {
  const readBytes = imageBytesReader(store, items);
  const read = {
    ...(limits?.maxBytes !== undefined ? { maxBytes: limits.maxBytes } : {}),
    ...(signal ? { signal } : {}),
  };
  return items.map((item) => ({
    id: item.uri,
    ...(item.size > 0 ? { size: item.size } : {}), // a Parquet row's size is known once read
    views: viewsOf(item, augment), // augmentation is for training only
    bytes: () => asImageFailure(item, () => readBytes(item, read)),
  }));
}

/**
 * An image's bytes, with read failures that concern this image (core/dataset/read-image-bytes.ts
 * imageReadFailure) mapped to its failure, counted like an undecodable file: never an error that
 * fails and retries the whole shard (one such key would otherwise stop every worker that picks
 * the shard up). Other errors (network, throttling, credentials) are retried.
 *
 * Reads insist on the planned ETag (If-Match): the shard's key is a hash of URIs and ETags, so an
 * object (or container) replaced since planning must not be embedded under it; it fails as
 * `changed` (HTTP 412, not retried). An image over `maxBytes` is refused before its body is read
 * where its size is known (`too-large`).
 */
async function asImageFailure(
  item: PlanItem,
  read: () => Promise<Uint8Array>,
): Promise<Uint8Array> {
  try {
    return await read();
  } catch (err) {
    const failure = imageReadFailure(item, err);
    if (!failure) throw err;
    throw new ImageDecodeError(failure.reason, failure.message, { cause: err });
  }
}

/**
 * Runs the items through the encoder, batch by batch, reporting images done after each. Their
 * crops come from the pixel cache where it holds them, from decoding otherwise (shardPixels).
 */
async function encodeItems(
  deps: ExtractDeps,
  items: readonly PlanItem[],
  { augment, choice }: ShardTarget,
  opts: ExtractOptions,
): Promise<EncodedShard> {
  const p = deps.bundle.manifest.preprocessing;
  const params = preprocessParams(p);
  const byUri = new Map(items.map((i) => [i.uri, i]));
  const rows: ShardRow[] = [];
  const parts: Float32Array[] = [];
  const failed: ShardManifest['failed'] = [];
  const pixels: PixelCounts = { decoded: 0, fromCache: 0, blocksRejected: 0, blockWritesFailed: 0 };
  // The shard's images, cut by the mode's preprocessor or read back from the pixel cache.
  const decoded: DecodedImageSource = shardPixels({
    store: deps.store,
    items,
    augment,
    mode: opts.pixelCache ?? 'off',
    expect: { geometry: pixelGeometry(p, choice.preprocessing), imageSize: p.imageSize },
    params: { ...params, format: deps.encoder.inputFormat },
    sources: (part) => imageSources(deps.store, part, augment, deps.limits, opts.signal),
    decode: {
      concurrency: opts.concurrency,
      augmentSeed: String(augment.seed),
      preprocessing: choice.preprocessing,
      ...(deps.limits ? { limits: deps.limits } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(deps.pool ? { pool: deps.pool } : {}),
    },
    ...(deps.claims ? { claims: deps.claims } : {}),
    counts: pixels,
  });
  for await (const batch of embedDecoded(decoded, deps.encoder, params, opts)) {
    opts.signal?.throwIfAborted();
    for (const [i, uri] of batch.ids.entries())
      rows.push(shardRow(byUri.get(uri)!, batch.views[i]!));
    parts.push(batch.embeddings);
    failed.push(...batch.failed.map((f) => ({ uri: f.id, reason: f.reason })));
    opts.onProgress?.(rows.length + failed.length);
  }
  const embeddings = new Float32Array(rows.length * deps.bundle.manifest.architecture.embedDim);
  parts.reduce((at, part) => (embeddings.set(part, at), at + part.length), 0);
  return { rows, embeddings, failed, pixels };
}

function shardRow(item: PlanItem, view: number): ShardRow {
  return { key: item.uri, imageId: imageId(item.uri), label: item.label, split: item.split, view };
}

/** Writes the Arrow shard, then its manifest (last: its presence means the shard is complete). */
async function writeShard(
  deps: ExtractDeps,
  target: ShardTarget,
  encoded: EncodedShard,
  datasetFingerprint: string,
): Promise<ShardManifest> {
  const { store, bundle } = deps;
  const meta = {
    bundleHash: bundle.hash,
    preprocessFingerprint: target.preprocessFingerprint,
    preprocessing: target.choice.preprocessing,
    imageGraph: target.choice.imageGraph,
    datasetFingerprint,
    clipevalVersion: CLIPEVAL_VERSION,
  };
  const dim = bundle.manifest.architecture.embedDim;
  const bytes = encodeShard(encoded.rows, encoded.embeddings, dim, meta);
  await timed('shard-write', () =>
    store.putBytes(target.shardKey, bytes, 'application/vnd.apache.arrow.file'),
  );
  const manifest: ShardManifest = {
    shardKey: target.shardKey,
    rows: encoded.rows.length,
    images: encoded.rows.filter((r) => r.view === 0).length,
    sha256: sha256(bytes),
    bundleHash: bundle.hash,
    preprocessFingerprint: target.preprocessFingerprint,
    failed: encoded.failed,
  };
  await store.putJson(target.manifestKey, manifest);
  return manifest;
}

/**
 * The finished shard, if there is one and it is intact: its manifest exists and the shard's
 * bytes still hash to the manifest's sha256. A shard deleted or corrupted since is re-extracted.
 */
async function reusableShard(
  store: ObjectStore,
  target: ShardTarget,
): Promise<ShardManifest | undefined> {
  const manifest = await store.getJson<ShardManifest>(target.manifestKey);
  if (!manifest) return undefined;
  const bytes = await store.getBytes(target.shardKey);
  const shard = store.uri(target.shardKey);
  if (bytes === undefined) {
    console.warn(
      `clipeval: shard ${shard} is missing although its manifest exists; re-extracting it`,
    );
  } else if (sha256(bytes) === manifest.sha256) {
    return manifest;
  } else {
    console.warn(`clipeval: shard ${shard} does not match its manifest's sha256; re-extracting it`);
  }
  return undefined;
}
