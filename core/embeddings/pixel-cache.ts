/**
 * @file The pixel cache's blocks in S3 (layout: core/storage/keys.ts): writing a block of
 * decoded crops, and reading one back only when everything about it checks out. A block that is
 * missing, unreadable as JSON or Arrow, of another geometry or crop size, not matching its
 * manifest's sha256, or not holding exactly the block's images and views in order is never
 * trusted: the reader says why and the caller decodes those images afresh (and writes the block
 * again). Like embedding shards, the block goes first and its manifest last, each in one
 * PutObject, so a manifest's presence means its block is complete.
 */
import {
  Schema,
  Table,
  Utf8,
  makeVector,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import type { DecodedImage } from '../model/image/preprocessor';
import { matrixColumn, readByteMatrixView, requiredColumn } from '../storage/arrow-columns';
import { type ObjectStore, ObjectTooLargeError } from '../storage/object-store';
import { timed } from '../util/phase-profile';
import { CLIPEVAL_VERSION } from '../util/version';
import type { PixelBlock } from './pixel-blocks';

export const PIXEL_FORMAT = 'clipeval-pixels/1';

export interface PixelBlockManifest {
  format: typeof PIXEL_FORMAT;
  geometry: string;
  imageSize: number;
  /** Crops in the block (images that decoded, each 1 + views rows). */
  rows: number;
  sha256: string;
  /** Images of the block that could not be decoded, with the reason extraction gave. */
  failed: { uri: string; reason: string }[];
  clipevalVersion: string;
}

/** What a block must be: its geometry and crop side. */
export interface PixelExpectation {
  geometry: string;
  imageSize: number;
}

/** A block read back, or why it cannot be used (undefined `problem` and no images: not there). */
export interface BlockRead {
  images?: DecodedImage[];
  problem?: string;
}

const META = { geometry: 'clipeval.pixel_geometry', imageSize: 'clipeval.image_size' };
const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;

async function sha256(bytes: Uint8Array): Promise<string> {
  // WebCrypto digests off the main thread (a block is ~18 MiB: ~30 ms of hashing otherwise).
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Buffer.from(digest).toString('hex');
}

/** Writes the block's crops (the decoded images, in the block's order), then its manifest. */
export async function writePixelBlock(
  store: ObjectStore,
  block: PixelBlock,
  images: readonly DecodedImage[],
  expect: PixelExpectation,
): Promise<void> {
  await timed('pixel-cache-write', async () => {
    const size = 3 * expect.imageSize * expect.imageSize;
    const uris: string[] = [];
    const views: number[] = [];
    const failed: PixelBlockManifest['failed'] = [];
    const rows = images.reduce((n, d) => n + (d.crops?.length ?? (d.slab ? d.count : 0)), 0);
    const pixels = new Uint8Array(rows * size);
    for (const d of images) {
      if (!d.crops && !d.slab) failed.push({ uri: d.id, reason: d.reason ?? 'unknown' });
      const crops = d.crops ?? splitSlab(d, size);
      for (const [v, crop] of crops.entries()) {
        if (crop.length !== size)
          throw new RangeError(`a crop of ${crop.length} bytes, not ${size}`);
        pixels.set(crop, uris.length * size);
        uris.push(d.id);
        views.push(v);
      }
    }
    const table = new Table({
      image: vectorFromArray(uris, new Utf8()),
      view: makeVector(Int32Array.from(views)),
      pixels: matrixColumn(pixels, size),
    });
    const metadata = new Map([
      [META.geometry, expect.geometry],
      [META.imageSize, String(expect.imageSize)],
    ]);
    const bytes = tableToIPC(
      new Table(new Schema(table.schema.fields, metadata), table.batches),
      'file',
    );
    await store.putBytes(block.key, bytes, 'application/vnd.apache.arrow.file');
    const manifest: PixelBlockManifest = {
      format: PIXEL_FORMAT,
      ...expect,
      rows,
      sha256: await sha256(bytes),
      failed,
      clipevalVersion: CLIPEVAL_VERSION,
    };
    await store.putJson(block.manifestKey, manifest);
  });
}

/** A decode pool's slab as crops; it must hold bytes (the cache stores 8-bit pixels only). */
function splitSlab(d: DecodedImage, size: number): Uint8Array[] {
  if (!d.slab) return [];
  if (!(d.slab instanceof Uint8Array))
    throw new TypeError('the pixel cache stores 8-bit crops: decode with format uint8-nhwc');
  return Array.from(
    { length: d.count },
    (_, v) => d.slab!.subarray(v * size, (v + 1) * size) as Uint8Array,
  );
}

/** The block's images as the cache holds them, or why the cached block cannot be used. */
export async function readPixelBlock(
  store: ObjectStore,
  block: PixelBlock,
  expect: PixelExpectation,
  signal?: AbortSignal,
): Promise<BlockRead> {
  return timed('pixel-cache-read', async () => {
    const text = await store
      .getBytes(block.manifestKey, { maxBytes: MAX_MANIFEST_BYTES, ...(signal ? { signal } : {}) })
      .catch(tooLarge);
    if (text === undefined) return {};
    const manifest = parseManifest(text, expect);
    if (typeof manifest === 'string') return { problem: manifest };
    const size = 3 * expect.imageSize * expect.imageSize;
    const bytes = await store
      .getBytes(block.key, {
        maxBytes: manifest.rows * size + MAX_MANIFEST_BYTES,
        ...(signal ? { signal } : {}),
      })
      .catch(tooLarge);
    if (bytes === undefined)
      return { problem: 'its block is missing although its manifest exists' };
    if (bytes === 'too-large') return { problem: 'its block is larger than its manifest says' };
    if ((await sha256(bytes)) !== manifest.sha256)
      return { problem: "its block does not match the manifest's sha256" };
    try {
      return matchBlock(bytes, manifest, block, expect);
    } catch (err) {
      return {
        problem: `its block is not a readable Arrow file (${err instanceof Error ? err.message : String(err)})`,
      };
    }
  });
}

/** A store refusal for size becomes a marker (the object is not what a block can be). */
function tooLarge(err: unknown): 'too-large' {
  if (err instanceof ObjectTooLargeError) return 'too-large';
  throw err;
}

function parseManifest(
  bytes: Uint8Array | 'too-large',
  expect: PixelExpectation,
): PixelBlockManifest | string {
  if (bytes === 'too-large') return 'its manifest is too large to be one';
  let m: Partial<PixelBlockManifest>;
  try {
    m = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<PixelBlockManifest>;
  } catch {
    return 'its manifest is not JSON';
  }
  if (m === null || typeof m !== 'object' || m.format !== PIXEL_FORMAT)
    return `its manifest is not ${PIXEL_FORMAT}`;
  if (m.geometry !== expect.geometry || m.imageSize !== expect.imageSize)
    return `it was cut with another geometry (${String(m.geometry)}, ${String(m.imageSize)} px)`;
  const failedOk =
    Array.isArray(m.failed) &&
    m.failed.every((f) => typeof f?.uri === 'string' && typeof f.reason === 'string');
  if (!Number.isInteger(m.rows) || (m.rows ?? -1) < 0 || typeof m.sha256 !== 'string' || !failedOk)
    return 'its manifest is malformed';
  return m as PixelBlockManifest;
}

/**
 * The block's images from its Arrow file: every item of the block in order, either failed (as
 * the manifest lists it) or with exactly its 1 + views crops, and nothing else.
 */
function matchBlock(
  bytes: Uint8Array,
  manifest: PixelBlockManifest,
  block: PixelBlock,
  expect: PixelExpectation,
): BlockRead {
  const table = tableFromIPC(bytes);
  const meta = table.schema.metadata;
  if (
    meta.get(META.geometry) !== expect.geometry ||
    meta.get(META.imageSize) !== String(expect.imageSize)
  )
    return { problem: 'its block was cut with another geometry' };
  const size = 3 * expect.imageSize * expect.imageSize;
  const uris = requiredColumn(table, 'image', 'pixel block');
  const views = requiredColumn(table, 'view', 'pixel block');
  const { values, dim } = readByteMatrixView(table, 'pixels', 'pixel block');
  if (dim !== size || table.numRows !== manifest.rows)
    return {
      problem: `its block holds ${table.numRows} crops of ${dim} bytes, not ${manifest.rows} of ${size}`,
    };
  const failed = new Map(manifest.failed.map((f) => [f.uri, f.reason]));
  const images: DecodedImage[] = [];
  let row = 0;
  for (const [k, item] of block.items.entries()) {
    const reason = failed.get(item.uri);
    if (reason !== undefined) {
      failed.delete(item.uri);
      images.push({ id: item.uri, count: 0, reason });
      continue;
    }
    const crops: Uint8Array[] = [];
    for (let v = 0; v <= block.views[k]!; v++, row++) {
      if (row >= table.numRows || uris.get(row) !== item.uri || views.get(row) !== v)
        return { problem: `its rows do not match the block's images (row ${row})` };
      crops.push(values.subarray(row * size, (row + 1) * size));
    }
    images.push({ id: item.uri, count: crops.length, crops });
  }
  if (row !== table.numRows || failed.size > 0)
    return { problem: 'it holds images the block does not' };
  return { images };
}
