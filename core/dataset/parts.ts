/**
 * @file Reading images that live inside containers (WebDataset tars, Parquet files) during
 * extraction. A shard's items are given up front, so each format's reader can plan few, large
 * ranged reads (coalesced tar members, whole row groups) instead of one GET per image, and keep
 * only what is still to be read in memory.
 */
import type { ObjectStore } from '../storage/object-store';
import type { PlanItem } from './plan';

export interface PartReadOptions {
  /** The largest image, in bytes (CLIPEVAL_MAX_IMAGE_BYTES): an ObjectTooLargeError above it. */
  maxBytes?: number;
  signal?: AbortSignal;
}

/**
 * Reads the bytes of items that have a `part`. Errors: ObjectChangedError (the container's ETag
 * is no longer the planned one), ObjectNotFoundError (the container is gone), ObjectTooLargeError,
 * PartUnreadableError (this image cannot be read from its container); all of those are the
 * image's failure. Anything else (network, throttling) is retried with the shard.
 */
export interface PartReader {
  read(item: PlanItem, opts?: PartReadOptions): Promise<Uint8Array>;
}

/** This image cannot be read from its container (a corrupt row group, a wrong column type...). */
export class PartUnreadableError extends Error {
  override readonly name = 'PartUnreadableError';
}

/** One shard's items by container format, each with its own reader. */
export type PartReaderFactory = (store: ObjectStore, items: readonly PlanItem[]) => PartReader;
