/**
 * @file Reading a planned image's bytes, whether it is an object of its own or lies inside a
 * container, and telling the failures that concern the image (counted, never fatal) from those
 * that concern the whole job (network, throttling: retried or raised). Extraction and the
 * WebDataset export read images the same way through here.
 */
import {
  ObjectChangedError,
  type ObjectStore,
  ObjectTooLargeError,
  isUnreadableKey,
} from '../storage/object-store';
import { formatBytes } from '../util/byte-budget';
import { shown } from '../util/text';
import { PartUnreadableError, type PartReadOptions } from './parts';
import type { PlanItem } from './plan';
import { openPartReader } from './read-parts';

/** Reads one of the items it was opened for. */
export type ImageBytesReader = (item: PlanItem, opts?: PartReadOptions) => Promise<Uint8Array>;

/**
 * A reader for `items`: images inside containers (WebDataset tars, Parquet files) go through one
 * part reader that sees all of them, so it can fetch them in few large ranged reads; an object of
 * its own is read whole. Both insist on the planned ETag (If-Match).
 */
export function imageBytesReader(store: ObjectStore, items: readonly PlanItem[]): ImageBytesReader {
  const inParts = items.filter((i) => i.part);
  const parts = inParts.length > 0 ? openPartReader(store, inParts) : undefined;
  return (item, opts = {}) =>
    parts && item.part ? parts.read(item, opts) : readObject(store, item, opts);
}

function readObject(
  store: ObjectStore,
  item: PlanItem,
  opts: PartReadOptions,
): Promise<Uint8Array> {
  const at = store.at(item.uri);
  return at.store.requireBytes(at.key, { ...(item.etag ? { ifMatch: item.etag } : {}), ...opts });
}

/** Why an image could not be read, when that is the image's failure rather than the job's. */
export interface ImageReadFailure {
  reason: 'changed' | 'too-large' | 'unreadable';
  message: string;
}

/**
 * The image's failure for a read error, or undefined when the error is not about this image
 * (network, throttling, credentials: the caller retries or fails the job). A key that cannot be
 * read (isUnreadableKey: refused by the store, gone since planning, not a valid key) or a part its
 * container cannot give (PartUnreadableError) is `unreadable`; an object (or container) replaced
 * since planning is `changed` (HTTP 412 on If-Match); one over `maxBytes` is `too-large`.
 */
export function imageReadFailure(item: PlanItem, err: unknown): ImageReadFailure | undefined {
  if (err instanceof ObjectChangedError)
    return {
      reason: 'changed',
      message: `changed since planning: re-plan the run (${item.part ? 'its container' : 'the object'} no longer has ETag ${item.etag})`,
    };
  if (err instanceof ObjectTooLargeError) {
    const size = err.size === undefined ? 'larger than that' : formatBytes(err.size);
    return {
      reason: 'too-large',
      message: `too-large: the file is ${size}, over the limit of ${formatBytes(err.maxBytes)} per image (CLIPEVAL_MAX_IMAGE_BYTES)`,
    };
  }
  if (!isUnreadableKey(err) && !(err instanceof PartUnreadableError)) return undefined;
  const why = err instanceof Error ? err.message : String(err);
  return { reason: 'unreadable', message: `unreadable: ${shown(why)}` };
}
