/**
 * @file The CPU-heavy pixel steps after decoding: Pillow-exact resize + center crop, the
 * augmented training views, normalisation to CHW float32 (or, for image graphs taking uint8 NHWC,
 * the crops' bytes as they are: those graphs normalise inside). Plain functions over typed arrays with
 * no native dependency (no sharp): the main thread calls them (no decode pool), and the decode
 * pool's threads load this very module (./decode-pool.ts), so both paths run the same code.
 */
import { augmentedView, type RgbImage, viewRandom } from './augment';
import { resizeCropBicubic } from './resample';
import type { BundleManifest, CROP_ROUNDINGS, PixelFormat } from '../bundle';

export type { RgbImage } from './augment';

/**
 * Where a center crop starts when the resized side L exceeds the crop S by an odd number: HF's
 * CLIPImageProcessor floors (L - S) / 2 (`floor`); torchvision's CenterCrop, which OpenCLIP's
 * transform uses, rounds it half to even as Python's round does (`half-even`): one pixel later
 * when L - S is 3 mod 4.
 */
export type CropRounding = (typeof CROP_ROUNDINGS)[number];

/** The center crop's geometry: its side S, and how its start is rounded (default floor). */
export interface CropGeometry {
  imageSize: number;
  cropRounding?: CropRounding;
}

export interface PreprocessParams extends CropGeometry {
  mean: [number, number, number];
  std: [number, number, number];
  rescale: number;
  /**
   * What the decode pool's threads return (default float32-nchw): normalised floats, or for
   * uint8-nhwc graphs the crops' bytes (ImageEncoder.inputFormat).
   */
  format?: PixelFormat;
}

/** What the pixel steps read of a bundle's preprocessing. */
export function preprocessParams(p: BundleManifest['preprocessing']): PreprocessParams {
  const { imageSize, mean, std, rescale, cropRounding } = p;
  return { imageSize, mean, std, rescale, ...(cropRounding ? { cropRounding } : {}) };
}

/** A batch buffer: float32 for float32-nchw graphs, bytes for uint8-nhwc graphs. */
export type PixelBuffer = Float32Array | Uint8Array;

/** The pixel format a batch buffer holds. */
export const formatOf = (out: PixelBuffer): PixelFormat =>
  out instanceof Uint8Array ? 'uint8-nhwc' : 'float32-nchw';

/** Augmented training views besides the center crop, and what seeds them. */
export interface ViewSpec {
  views: number;
  seed: string;
  imageId: string;
}

/** HF's size for `shortest_edge`: the long side is int(S * long / short), truncated. */
export function resizedSize(width: number, height: number, size: number): [number, number] {
  const long = Math.trunc((size * Math.max(width, height)) / Math.min(width, height));
  return width <= height ? [size, long] : [long, size];
}

/** The first pixel of a center crop of `size` from `length` (see CropRounding). */
export function cropStart(length: number, size: number, rounding: CropRounding = 'floor'): number {
  const half = Math.floor((length - size) / 2);
  const tie = (length - size) % 2 === 1;
  return rounding === 'half-even' && tie && half % 2 === 1 ? half + 1 : half;
}

/** Shortest edge to `imageSize` (Pillow bicubic), then the center `imageSize` square. */
export function centerCrop(src: RgbImage, geometry: CropGeometry): Uint8Array {
  checkRgb(src);
  const { imageSize, cropRounding } = geometry;
  const [outW, outH] = resizedSize(src.width, src.height, imageSize);
  const crop = {
    x: cropStart(outW, imageSize, cropRounding),
    y: cropStart(outH, imageSize, cropRounding),
    width: imageSize,
    height: imageSize,
  };
  return resizeCropBicubic(src.data, src.width, src.height, outW, outH, crop);
}

/** The `views` augmented views (see augment.ts) alone, as HWC crops in order (views 1..n). */
export function augmentedViews(src: RgbImage, imageSize: number, spec?: ViewSpec): Uint8Array[] {
  const views: Uint8Array[] = [];
  for (let v = 1; v <= (spec?.views ?? 0); v++)
    views.push(augmentedView(src, imageSize, viewRandom(spec!.seed, spec!.imageId, v)));
  return views;
}

/** The center crop, then the `views` augmented views, as HWC crops in order. */
export function viewCrops(src: RgbImage, geometry: CropGeometry, spec?: ViewSpec): Uint8Array[] {
  return [centerCrop(src, geometry), ...augmentedViews(src, geometry.imageSize, spec)];
}

/**
 * viewCrops + cropInto: the crops of `src`, one after another into `out` from `offset` (1 + views
 * crops of 3 x S x S values: normalised floats, or the bytes when `out` is a Uint8Array).
 */
export function preprocessInto(
  src: RgbImage,
  params: PreprocessParams,
  spec: ViewSpec | undefined,
  out: PixelBuffer,
  offset: number,
): void {
  const size = 3 * params.imageSize * params.imageSize;
  for (const [v, rgb] of viewCrops(src, params, spec).entries())
    cropInto(rgb, params, out, offset + v * size);
}

/**
 * One HWC crop into a batch buffer at `offset`: normalised to CHW (float32-nchw), or copied as it
 * is (uint8-nhwc: the graph rescales, normalises and transposes; no JavaScript pass over it).
 */
export function cropInto(
  rgb: Uint8Array,
  params: PreprocessParams,
  out: PixelBuffer,
  offset: number,
): void {
  if (out instanceof Float32Array) return normalizeInto(rgb, params, out, offset);
  const bytes = params.imageSize * params.imageSize * 3;
  if (rgb.length !== bytes)
    throw new RangeError(`expected ${bytes} bytes of RGB, got ${rgb.length}`);
  if (offset < 0 || offset + bytes > out.length)
    throw new RangeError(`offset ${offset} + ${bytes} is outside the output (${out.length})`);
  out.set(rgb, offset);
}

/** An 8-bit RGB image's pixels must be exactly width x height x 3 bytes. */
function checkRgb(src: RgbImage): void {
  const { width, height, data } = src;
  if (!(width > 0 && height > 0 && data.length === width * height * 3))
    throw new RangeError(`expected ${width}x${height}x3 bytes of RGB, got ${data.length}`);
}

/**
 * Per channel, the normalised value of each byte, computed with HF's float steps:
 * float32(u8 * rescale in float64), then (x - mean) / std in float32.
 */
function lookupTable(params: PreprocessParams): Float32Array {
  const key = `${params.mean.join()} ${params.std.join()} ${params.rescale}`;
  if (key === lastTable.key) return lastTable.lut;
  const lut = new Float32Array(3 * 256);
  for (const c of [0, 1, 2] as const) {
    const mean = Math.fround(params.mean[c]);
    const std = Math.fround(params.std[c]);
    for (let v = 0; v < 256; v++) {
      lut[c * 256 + v] = Math.fround(Math.fround(v * params.rescale) - mean) / std;
    }
  }
  lastTable = { key, lut };
  return lut;
}

// The last table made: a run (and each decode pool thread) normalises with one bundle's params.
// Keyed by the values (numbers print exactly), not the params object, which each job copies.
let lastTable = { key: '', lut: new Float32Array(0) };

/** Normalises an HWC crop into `out` (CHW float32) at `offset` (to fill NCHW batches without copies). */
export function normalizeInto(
  rgb: Uint8Array,
  params: PreprocessParams,
  out: Float32Array,
  offset: number,
): void {
  const plane = params.imageSize * params.imageSize;
  if (rgb.length !== plane * 3) {
    throw new RangeError(`expected ${plane * 3} bytes of RGB, got ${rgb.length}`);
  }
  if (offset < 0 || offset + plane * 3 > out.length) {
    throw new RangeError(`offset ${offset} + ${plane * 3} is outside the output (${out.length})`);
  }
  const lut = lookupTable(params); // 768 entries: cheaper than 3 float ops per pixel
  for (let i = 0, p = 0, r = offset, g = offset + plane, b = g + plane; i < plane; i++, p += 3) {
    out[r + i] = lut[rgb[p]!]!;
    out[g + i] = lut[256 + rgb[p + 1]!]!;
    out[b + i] = lut[512 + rgb[p + 2]!]!;
  }
}
