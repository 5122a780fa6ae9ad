/**
 * @file One fetched image into its crops, one implementation per preprocessing mode behind one
 * interface: exact on this thread, exact with the resize and crops in a decode pool, and fast
 * (libvips' center crop). ./decode-images.ts picks one with `preprocessorFor` once per stream,
 * from the mode and the pool, and handles what every mode shares around it: fetching, limits,
 * the memory budget and turning ImageDecodeError / PreprocessFailedError into a skip reason.
 *
 * Cached pixels are deliberately not a Preprocessor: the pixel cache replaces fetching and
 * decoding for a whole block of a shard at once (core/embeddings/shard-pixels.ts), needing no
 * bytes, no budget and no per-image work, so forcing it through a per-image bytes-in interface
 * would mean fetching files it never reads. Both meet at the same currency instead: a
 * DecodedImageSource, which ./embed-images.ts embedDecoded batches whatever produced it.
 */
import type { PreprocessingMode } from '../../config/run-spec';
import { timed, timedSync } from '../../util/phase-profile';
import type { DecodePool } from './decode-pool';
import { decodeToCropFast } from './fast-crop';
import { augmentedViews, type PixelBuffer, type ViewSpec, viewCrops } from './pixels';
import { type DecodeOptions, type PreprocessParams, decodeImage } from './preprocess';

export interface ImageSource {
  id: string;
  /**
   * The encoded file, or a thunk that fetches it (so fetching overlaps with encoding too). A
   * thunk may throw an ImageDecodeError to skip the image with that reason.
   */
  bytes: Uint8Array | (() => Promise<Uint8Array>);
  /** The encoded file's size when known before fetching it (from the plan): checked first. */
  size?: number;
  /** Augmented training views to embed besides the center crop (view 0); default none. */
  views?: number;
}

/**
 * One image's crops (view 0 the center crop, then its augmented views), or why it has none.
 * `crops` are 8-bit HWC RGB; a decode pool hands back one `slab` of `count` crops in the format
 * it was asked for (params.format: normalised floats, or the bytes).
 */
export interface DecodedImage {
  id: string;
  count: number;
  crops?: Uint8Array[];
  slab?: PixelBuffer;
  reason?: string;
}

/** Decoded images in a shard's order: from a Preprocessor's stream or from the pixel cache. */
export type DecodedImageSource = AsyncIterable<DecodedImage>;

export interface Preprocessor {
  /**
   * The crops of one fetched image. Throws ImageDecodeError for an image it cannot use, and a
   * pool's PreprocessFailedError; `opts` carries the pixel limit and the budget's reservation.
   */
  preprocess(item: ImageSource, bytes: Uint8Array, opts: DecodeOptions): Promise<DecodedImage>;
}

export interface PreprocessorOptions {
  /**
   * `exact` (default) or `fast` (./fast-crop.ts): in fast mode the center crop comes from
   * libvips on this thread, and augmented views are still cut by exact's code from a full decode.
   */
  preprocessing?: PreprocessingMode;
  /** Worker threads for exact's resize, crops and normalisation; default: this thread. */
  pool?: DecodePool;
  /** Seeds the augmented views (with the image's id); default ''. */
  augmentSeed?: string;
}

/**
 * The preprocessor for a stream of images. Fast mode never uses the pool: libvips resizes on
 * this thread, leaving no JS resample to offload, and its one crop is small to normalise.
 */
export function preprocessorFor(params: PreprocessParams, opts: PreprocessorOptions): Preprocessor {
  const seed = opts.augmentSeed ?? '';
  if (opts.preprocessing === 'fast') return fastPreprocessor(params, seed);
  if (opts.pool) return pooledPreprocessor(params, seed, opts.pool);
  return exactPreprocessor(params, seed);
}

/** Exact crops cut on this thread, as bytes (normalised later, into the batch). */
export function exactPreprocessor(params: PreprocessParams, seed: string): Preprocessor {
  return {
    async preprocess(item, bytes, opts) {
      const { views, spec, count } = viewsOf(item, seed);
      const src = await timed('decode', () =>
        decodeImage(bytes, params.imageSize, views, { ...opts, pooled: false }),
      );
      return {
        id: item.id,
        count,
        crops: timedSync('resample', () => viewCrops(src, params, spec)),
      };
    },
  };
}

/** Exact crops cut in a decode pool's thread, back as one slab in params.format. */
export function pooledPreprocessor(
  params: PreprocessParams,
  seed: string,
  pool: DecodePool,
): Preprocessor {
  return {
    async preprocess(item, bytes, opts) {
      const { views, spec, count } = viewsOf(item, seed);
      // `pooled` counts the copy handed to the thread in the decode's memory estimate.
      const src = await timed('decode', () =>
        decodeImage(bytes, params.imageSize, views, { ...opts, pooled: true }),
      );
      const slab = await timed('resample', () => pool.preprocess(src, params, spec));
      return { id: item.id, count, slab };
    },
  };
}

/**
 * libvips' center crop (./fast-crop.ts); augmented views are still cut by exact's code from a
 * full decode, so training views are the same whatever the mode.
 */
export function fastPreprocessor(params: PreprocessParams, seed: string): Preprocessor {
  return {
    async preprocess(item, bytes, opts) {
      const { views, spec, count } = viewsOf(item, seed);
      const crop = await timed('decode', () => decodeToCropFast(bytes, params, opts));
      if (!spec) return { id: item.id, count, crops: [crop.rgb] };
      const src = await timed('decode', () => decodeImage(bytes, params.imageSize, views, opts));
      const rest = timedSync('resample', () => augmentedViews(src, params.imageSize, spec));
      return { id: item.id, count, crops: [crop.rgb, ...rest] };
    },
  };
}

function viewsOf(
  item: ImageSource,
  seed: string,
): { views: number; spec: ViewSpec | undefined; count: number } {
  const views = item.views ?? 0;
  const spec = views ? { views, seed, imageId: item.id } : undefined;
  return { views, spec, count: 1 + views };
}
