/**
 * @file The CPU-heavy pixel steps after decoding: Pillow-exact resize + center crop, the
 * augmented training views, normalisation to CHW float32. Plain functions over typed arrays with
 * no native dependency (no sharp): the main thread calls them (no decode pool), and the decode
 * pool's threads load this very module (./decode-pool.ts), so both paths run the same code.
 */
import { augmentedView, type RgbImage, viewRandom } from './augment';
import { resizeCropBicubic } from './resample';

export type { RgbImage } from './augment';

export interface PreprocessParams {
  imageSize: number;
  mean: [number, number, number];
  std: [number, number, number];
  rescale: number;
}

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

/** Shortest edge to `imageSize` (Pillow bicubic), then the center `imageSize` square. */
export function centerCrop(src: RgbImage, imageSize: number): Uint8Array {
  checkRgb(src);
  const [outW, outH] = resizedSize(src.width, src.height, imageSize);
  const crop = {
    x: Math.floor((outW - imageSize) / 2),
    y: Math.floor((outH - imageSize) / 2),
    width: imageSize,
    height: imageSize,
  };
  return resizeCropBicubic(src.data, src.width, src.height, outW, outH, crop);
}

/** The center crop, then the `views` augmented views (see augment.ts), as HWC crops in order. */
export function viewCrops(src: RgbImage, imageSize: number, spec?: ViewSpec): Uint8Array[] {
  const crops = [centerCrop(src, imageSize)];
  for (let v = 1; v <= (spec?.views ?? 0); v++)
    crops.push(augmentedView(src, imageSize, viewRandom(spec!.seed, spec!.imageId, v)));
  return crops;
}

/**
 * viewCrops + normalizeInto: the crops of `src`, normalised one after another into `out` from
 * `offset` (1 + views crops of 3 x S x S floats).
 */
export function preprocessInto(
  src: RgbImage,
  params: PreprocessParams,
  spec: ViewSpec | undefined,
  out: Float32Array,
  offset: number,
): void {
  const size = 3 * params.imageSize * params.imageSize;
  for (const [v, rgb] of viewCrops(src, params.imageSize, spec).entries())
    normalizeInto(rgb, params, out, offset + v * size);
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
  const lut = new Float32Array(3 * 256);
  for (const c of [0, 1, 2] as const) {
    const mean = Math.fround(params.mean[c]);
    const std = Math.fround(params.std[c]);
    for (let v = 0; v < 256; v++) {
      lut[c * 256 + v] = Math.fround(Math.fround(v * params.rescale) - mean) / std;
    }
  }
  return lut;
}

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
  for (let i = 0; i < plane; i++) {
    out[offset + i] = lut[rgb[i * 3]!]!;
    out[offset + plane + i] = lut[256 + rgb[i * 3 + 1]!]!;
    out[offset + 2 * plane + i] = lut[512 + rgb[i * 3 + 2]!]!;
  }
}
