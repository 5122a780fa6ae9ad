/**
 * @file Fetching and decoding images into their crops, with bounded concurrency and the
 * worker's limits: the first half of extraction (./embed-images.ts batches and encodes what this
 * yields; core/embeddings/shard-pixels.ts yields the same from the pixel cache instead). What is
 * common to every mode lives here (fetch, size and pixel limits, the memory budget, errors as
 * reasons); the mode's own work is its Preprocessor (./preprocessor.ts).
 * Undecodable images come out as a reason, never thrown.
 */
import {
  type ByteBudget,
  type ByteLease,
  formatBytes,
  OverBudgetError,
} from '../../util/byte-budget';
import { mapOrdered } from '../../util/concurrency';
import { timed } from '../../util/phase-profile';
import { PreprocessFailedError } from './decode-pool';
import { type DecodeOptions, ImageDecodeError, type PreprocessParams } from './preprocess';
import {
  type DecodedImage,
  type ImageSource,
  type PreprocessorOptions,
  preprocessorFor,
} from './preprocessor';

export type { DecodedImage, DecodedImageSource, ImageSource } from './preprocessor';

/** What one image may cost; every refusal is a failed image with reason `too-large`. */
export interface ImageLimits {
  /** Largest encoded file, in bytes (checked on `size` before fetching, and on what arrives). */
  maxBytes?: number;
  /** Largest image decoded, in pixels (from the header, before any pixel is decoded). */
  maxPixels?: number;
  /**
   * The worker's budget for images in flight, shared by every shard it runs: an image holds its
   * encoded size while it is fetched, then that plus decodeMemoryEstimate while it is decoded.
   * An image that needs more than the whole budget is refused.
   */
  budget?: ByteBudget;
}

/** The stream's options; the mode, pool and augment seed pick and shape its Preprocessor. */
export interface DecodeImagesOptions extends PreprocessorOptions {
  concurrency: number;
  /** Same as limits.maxPixels. */
  maxPixels?: number;
  limits?: ImageLimits;
  signal?: AbortSignal;
}

/**
 * The images' crops in source order, `concurrency` images fetched and decoded at a time. With a
 * decode pool, the resize, crops (and normalisation, for float32 `params.format`) run in its
 * threads; without one, the crops are cut here and come out as bytes.
 */
export function decodeImages(
  source: AsyncIterable<ImageSource> | Iterable<ImageSource>,
  params: PreprocessParams,
  opts: DecodeImagesOptions,
): AsyncGenerator<DecodedImage> {
  const limits: ImageLimits = { maxPixels: opts.maxPixels, ...opts.limits };
  // Chosen once for the stream: every image of it is cut the same way.
  const preprocessor = preprocessorFor(params, opts);
  const decode = async (item: ImageSource): Promise<DecodedImage> => {
    let lease: ByteLease | undefined;
    try {
      lease = await reserveFetch(item, limits, opts.signal);
      const bytes =
        typeof item.bytes === 'function' ? await timed('s3-read', item.bytes) : item.bytes;
      checkBytes(bytes.length, limits);
      const held = lease;
      const decodeOpts: DecodeOptions = {
        ...(limits.maxPixels ? { maxPixels: limits.maxPixels } : {}),
        ...(held
          ? {
              reserve: (need: number) =>
                held.resize(bytes.length + need, opts.signal).catch(refuseOverBudget),
            }
          : {}),
      };
      return await preprocessor.preprocess(item, bytes, decodeOpts);
    } catch (err) {
      // A pool thread's failure on this image (its error, or its thread dying): the image's.
      if (err instanceof PreprocessFailedError)
        return { id: item.id, count: 0, reason: err.message };
      if (!(err instanceof ImageDecodeError)) throw err; // S3 and other failures are the caller's to retry
      // Messages start with their reason already ("too-large: ...").
      const reason = err.message.startsWith(err.reason)
        ? err.message
        : `${err.reason}: ${err.message}`;
      return { id: item.id, count: 0, reason };
    } finally {
      lease?.release();
    }
  };
  return mapOrdered(source, imageConcurrency(opts.concurrency, limits), decode);
}

/**
 * The images a worker decodes at once for one shard: the requested concurrency, capped so that
 * the largest files allowed all fit the budget together (more lanes would only wait on it, each
 * holding its fetched file meanwhile).
 */
export function imageConcurrency(requested: number, limits: ImageLimits | undefined): number {
  const { budget, maxBytes } = limits ?? {};
  if (!budget || !maxBytes) return Math.max(1, requested);
  return Math.max(1, Math.min(requested, Math.floor(budget.capacity / maxBytes)));
}

/** Holds the encoded size of the image in the budget while it is fetched (0 if not known). */
async function reserveFetch(
  item: ImageSource,
  limits: ImageLimits,
  signal: AbortSignal | undefined,
): Promise<ByteLease | undefined> {
  if (item.size !== undefined) checkBytes(item.size, limits);
  return limits.budget?.acquire(item.size ?? 0, signal).catch(refuseOverBudget);
}

function checkBytes(bytes: number, limits: ImageLimits): void {
  if (limits.maxBytes !== undefined && bytes > limits.maxBytes)
    throw new ImageDecodeError(
      'too-large',
      `too-large: the file is ${formatBytes(bytes)}, over the limit of ${formatBytes(limits.maxBytes)} per image (CLIPEVAL_MAX_IMAGE_BYTES)`,
    );
}

/** A request over the whole budget is this image's failure (too-large), not the shard's. */
function refuseOverBudget(err: unknown): never {
  if (err instanceof OverBudgetError)
    throw new ImageDecodeError(
      'too-large',
      `too-large: decoding it ${err.message} for images in flight (CLIPEVAL_IMAGE_MEMORY_BUDGET)`,
    );
  throw err;
}
