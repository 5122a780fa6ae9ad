/**
 * @file Image decoding and CLIP preprocessing, matching HF transformers' `CLIPImageProcessorPil`
 * (5.23.0, Pillow 13) as the reference exporter runs it: PIL opens the file, first frame,
 * `ImageOps.exif_transpose`, `convert('RGB')`, then HF's convert_to_rgb, resize so the shortest
 * edge is S (bicubic; HF passes no `reducing_gap`), center crop S x S, rescale, normalise, CHW
 * float32.
 *
 * Decoding is sharp (libvips) to raw pixels, with PIL's conversion rules applied here where
 * libvips differs (CMYK, 16-bit grey, colour-key transparency, GIF frame fill). The resize is a
 * port of Pillow's own resampler (./resample.ts), not sharp's `resize(..., kernel: 'cubic')`:
 * fed the very pixels PIL decoded, sharp's cubic is off from the golden crops by 1.0 level on
 * average (0 to 4.9 per image) with maxima up to 206 levels at hard edges (libvips reduces with
 * other filter phases and rounding), while the port reproduces them bit for bit.
 */
import sharp from 'sharp';
import type { Metadata, SharpOptions } from 'sharp';
import { DEFAULT_RESOURCE_LIMITS } from '../../config/env';
import { classifySharpError, ImageDecodeError, pngDeclaredPixels } from './image-errors';
import {
  centerCrop,
  type CropGeometry,
  normalizeInto,
  type PreprocessParams,
  type RgbImage,
  viewCrops,
} from './pixels';

export { ImageDecodeError } from './image-errors';
export type { ImageDecodeReason } from './image-errors';
// The pixel steps after decoding live in ./pixels.ts (the decode pool's threads load it alone).
export { normalizeInto, preprocessParams } from './pixels';
export type { CropGeometry, PreprocessParams, RgbImage, ViewSpec } from './pixels';

export interface Crop {
  /** S x S x 3 bytes, HWC RGB. */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** Size of the decoded image after EXIF orientation (PIL's `size`). */
  sourceWidth: number;
  sourceHeight: number;
}

/** Default largest image decoded, in pixels (CLIPEVAL_MAX_IMAGE_PIXELS). */
export const DEFAULT_MAX_PIXELS = DEFAULT_RESOURCE_LIMITS.maxImagePixels;

export interface DecodeOptions {
  /** Refuse (too-large) an image declaring more pixels than this; default DEFAULT_MAX_PIXELS. */
  maxPixels?: number;
  /**
   * Called once the header is read, before any pixel is decoded, with the bytes decoding will
   * hold at most (decodeMemoryEstimate); decoding waits for it, and fails with its error.
   */
  reserve?: (bytes: number) => Promise<void>;
  /**
   * The decoded pixels go to a decode pool thread (./decode-pool.ts): the reserve hook is also
   * charged for the float crops it returns and, for libvips' own buffers, the copy it gets.
   */
  pooled?: boolean;
}

/** Formats PIL reads (AVIF natively since Pillow 11.3); sharp also reads SVG, PDF & co. */
const FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);

type Rgb = RgbImage;

const BYTES_PER_SAMPLE: Partial<Record<string, number>> = {
  uchar: 1,
  char: 1,
  ushort: 2,
  short: 2,
  uint: 4,
  int: 4,
  float: 4,
  double: 8,
  complex: 8,
  dpcomplex: 16,
};

/**
 * The most bytes decoding an image of this header holds at once (its encoded bytes aside): the
 * raw pixels libvips hands over, our 8-bit RGB copy where a conversion makes one (16-bit, CMYK,
 * GIF), the full-size image a decoder keeps where it cannot stream (a rotation from EXIF, an
 * interlaced PNG, a progressive JPEG's coefficients, WebP's and GIF's frame buffers, HEIF), one
 * augmented view's crop region, and the resampler's rows, plus 10% and 8 MiB for what else a
 * decode touches. Checked against the peak RSS of decoding 10000x10000 images of every format
 * and kind (baseline, progressive, interlaced, rotated, 16-bit, CMYK): never below it, at most
 * 1.5x above it (a progressive JPEG's coefficients are charged as if not subsampled). With
 * `pooled`, also the copy of libvips' 8-bit RGB a decode pool thread gets (Node copies external
 * buffers; the RGB arrays clipeval makes itself move) and the float32 crops it returns.
 */
export function decodeMemoryEstimate(
  meta: Partial<
    Pick<
      Metadata,
      | 'width'
      | 'height'
      | 'channels'
      | 'depth'
      | 'space'
      | 'format'
      | 'isProgressive'
      | 'orientation'
    >
  >,
  opts: { imageSize: number; views?: number; pooled?: boolean },
): number {
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  const pixels = width * height;
  const channels = meta.channels ?? 4;
  const sample = BYTES_PER_SAMPLE[meta.depth ?? ''] ?? 4;
  const full = pixels * channels * sample; // one full-size image as decoded
  const wide = meta.depth === 'ushort' || meta.space === 'cmyk';
  const handedOver = wide ? full : pixels * (meta.format === 'gif' ? 4 : 3);
  const rgb = wide || meta.format === 'gif' ? pixels * 3 : 0;
  let decoder = 0;
  if (meta.format === 'webp')
    decoder = pixels * 5.5; // RGBA + the YUV planes of a lossy frame
  else if (meta.format === 'gif')
    decoder = pixels * 4; // libnsgif's RGBA frame
  else if (meta.format === 'heif') decoder = full + pixels * 1.5;
  else if (meta.format === 'jpeg' && meta.isProgressive) decoder = pixels * channels * 2;
  else if (meta.format === 'png' && meta.isProgressive) decoder = full;
  if ((meta.orientation ?? 1) > 1) decoder += full; // rotating needs the whole image
  const views = opts.views ?? 0;
  const viewRegion = views > 0 ? pixels * 3 : 0;
  const s = opts.imageSize;
  const resampler = (Math.max(width, height) * s + (views + 1) * s * s) * 3 * 2;
  // With a decode pool: the normalised crops (float32) a thread sends back, and the thread's copy
  // of the 8-bit RGB where it is libvips' own buffer (Node copies those; ours it moves).
  const pooled = opts.pooled
    ? (views + 1) * s * s * 3 * 4 + (wide || meta.format === 'gif' ? 0 : pixels * 3)
    : 0;
  return Math.ceil(
    (handedOver + rgb + decoder + viewRegion + resampler + pooled) * 1.1 + 8 * 1024 ** 2,
  );
}

/** The options every sharp instance over an encoded image is opened with (exact and fast alike). */
export function sharpOptions(maxPixels: number): SharpOptions {
  return {
    limitInputPixels: maxPixels, // checked on the header, before any pixel is decoded
    failOn: 'error', // PIL refuses truncated/broken files but decodes past libjpeg's warnings
    ignoreIcc: true, // PIL ignores embedded profiles
    autoOrient: true, // = exif_transpose
    pages: 1, // first frame
  };
}

/**
 * Reads the header and refuses what clipeval does not decode (empty, a format PIL does not read,
 * more pixels than `maxPixels`), before any pixel is decoded. Failures are ImageDecodeErrors.
 */
export async function inspectImage(bytes: Uint8Array, maxPixels: number): Promise<Metadata> {
  if (bytes.length === 0) throw new ImageDecodeError('empty', 'empty: the file has no bytes');
  const declared = pngDeclaredPixels(bytes);
  if (declared !== undefined && declared > maxPixels) {
    throw new ImageDecodeError('too-large', `too-large: ${declared} pixels > ${maxPixels}`);
  }
  try {
    const meta = await sharp(bytes, sharpOptions(maxPixels)).metadata();
    // HEIF holds AVIF (AV1) or HEIC (HEVC); PIL reads only the former, sharp's build neither HEVC.
    if (!FORMATS.has(meta.format) || (meta.format === 'heif' && meta.compression !== 'av1')) {
      const kind = meta.format === 'heif' ? `heif/${meta.compression}` : meta.format;
      throw new ImageDecodeError('unsupported', `unsupported: ${kind} images`);
    }
    const pixels = (meta.width ?? 0) * (meta.height ?? 0);
    if (pixels > maxPixels) {
      throw new ImageDecodeError(
        'too-large',
        `too-large: ${meta.width}x${meta.height} = ${pixels} pixels > ${maxPixels}`,
      );
    }
    return meta;
  } catch (err) {
    if (err instanceof ImageDecodeError) throw err;
    throw classifySharpError(err, bytes);
  }
}

/**
 * Whether PIL's conversion to RGB differs from libvips' plain 8-bit sRGB without alpha, so the
 * pixels must go through decodeInspected's own rules: CMYK, 16 bits per sample, GIF (frame
 * fill), any alpha (libvips would premultiply it when resizing; PIL drops it) and a PNG colour
 * key (whitened).
 */
export function needsPilConversion(meta: Metadata, bytes: Uint8Array): boolean {
  return (
    meta.space === 'cmyk' ||
    meta.depth !== 'uchar' ||
    meta.format === 'gif' ||
    meta.hasAlpha === true ||
    (meta.format === 'png' && pngTransparency(bytes) !== undefined)
  );
}

/** Decodes to 8-bit RGB the way PIL's open + first frame + exif_transpose + convert('RGB') does. */
async function decodeRgb(
  bytes: Uint8Array,
  maxPixels: number,
  reserve: ((meta: Metadata) => Promise<void>) | undefined,
): Promise<Rgb> {
  const meta = await inspectImage(bytes, maxPixels);
  await reserve?.(meta); // its error (from outside the decoder) passes on as it is, unclassified
  return decodeInspected(bytes, meta, maxPixels);
}

/** decodeRgb after the header was inspected (and the memory for it reserved). */
export async function decodeInspected(
  bytes: Uint8Array,
  meta: Metadata,
  maxPixels: number,
): Promise<Rgb> {
  try {
    const image = sharp(bytes, sharpOptions(maxPixels));
    if (meta.space === 'cmyk') {
      // Raw CMYK (Adobe inversion undone by libvips, as by PIL), then PIL's formula; libvips
      // would colour-manage it through a CMYK profile instead.
      const { data, info } = await image
        .pipelineColourspace('cmyk')
        .toColourspace('cmyk')
        .raw()
        .toBuffer({ resolveWithObject: true });
      return { data: cmykToRgb(data, info.channels), width: info.width, height: info.height };
    }
    if (meta.depth === 'ushort') {
      // 16 bits per sample, fetched as such: PIL's 8-bit result depends on the mode (sixteenToRgb).
      const grey = (meta.channels ?? 3) <= 2;
      const { data, info } = await image
        .toColourspace(grey ? 'grey16' : 'rgb16')
        .raw({ depth: 'ushort' })
        .toBuffer({ resolveWithObject: true });
      // A view of sharp's buffer, not a copy (a copy only if it is not 2-byte aligned).
      const words =
        data.byteOffset % 2 === 0
          ? new Uint16Array(data.buffer, data.byteOffset, data.length / 2)
          : new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
      return { data: sixteenToRgb(words, info.channels), width: info.width, height: info.height };
    }
    // 8-bit: grey and palette expand exactly; alpha is dropped, not composited (as PIL).
    const trns = meta.format === 'png' ? pngTransparency(bytes) : undefined;
    const gif = meta.format === 'gif' ? gifFirstFrame(bytes) : undefined;
    const { data, info } = await (gif ? image.ensureAlpha() : image.removeAlpha())
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    // A plain Uint8Array (not a Buffer): the resampler then sees one array type only.
    let rgb: Uint8Array = new Uint8Array(data.buffer, data.byteOffset, data.length);
    if (gif) rgb = applyGifFill(rgb, info.width, info.height, gif);
    const key = gif ? gif.key : trns;
    if (key) whiten(rgb, key);
    return { data: rgb, width: info.width, height: info.height };
  } catch (err) {
    if (err instanceof ImageDecodeError) throw err;
    throw classifySharpError(err, bytes);
  }
}

type Colour = [number, number, number];

/**
 * PIL keeps a colour-key transparency through convert('RGB') (as `info['transparency']`: the
 * transparent palette entry's colour, or the tRNS grey/RGB value), and HF's `convert_to_rgb`
 * then composites it onto white: every pixel of exactly that colour becomes white. The key, as
 * Pillow derives it from a PNG's header (8 bits or fewer per sample), or undefined.
 */
function pngTransparency(bytes: Uint8Array): Colour | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let depth = 0;
  let colourType = -1;
  let palette: Uint8Array | undefined;
  for (let at = 8; at + 8 <= bytes.length;) {
    const len = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') [depth, colourType] = [data[8] ?? 0, data[9] ?? -1];
    else if (type === 'PLTE') palette = data;
    else if (type === 'IDAT' || type === 'IEND') return undefined;
    else if (type === 'tRNS' && depth <= 8) {
      if (colourType === 3 && palette) {
        // Pillow's rule: exactly one fully transparent entry, every other listed one opaque.
        const i = data.indexOf(0);
        const simple = i >= 0 && data.every((a, j) => a === 255 || j === i);
        return simple && 3 * i + 2 < palette.length
          ? [palette[3 * i]!, palette[3 * i + 1]!, palette[3 * i + 2]!]
          : undefined;
      }
      // Grey: the raw sample value, not scaled to 8 bits for 2/4-bit images (Pillow quirk); a
      // 1-bit image becomes mode '1' whose integer key never matches an RGB pixel.
      if (colourType === 0 && depth > 1 && len >= 2)
        return [0, 0, 0].map(() => view.getUint16(at + 8)) as Colour;
      if (colourType === 2 && len >= 6)
        return [0, 2, 4].map((o) => view.getUint16(at + 8 + o)) as Colour;
      return undefined;
    }
    at += 12 + len;
  }
  return undefined;
}

interface GifFrame {
  /** Where the first frame's image lies on the logical screen. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Colour PIL gives pixels the frame leaves transparent or does not cover: palette[t ?? 0]. */
  fill: Colour;
  /** The transparent index's colour, whitened as a colour key (see pngTransparency). */
  key: Colour | undefined;
}

/** The first frame's geometry, palette entry and transparency, from the GIF's blocks. */
function gifFirstFrame(bytes: Uint8Array): GifFrame | undefined {
  const u16 = (at: number): number => (bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8);
  const flags = bytes[10] ?? 0;
  let palette = flags & 0x80 ? bytes.subarray(13, 13 + 3 * (2 << (flags & 7))) : undefined;
  let at = 13 + (palette?.length ?? 0);
  let transparent: number | undefined;
  while (at < bytes.length) {
    const block = bytes[at];
    if (block === 0x21) {
      // Extension: a graphic control extension carries the transparency flag and index.
      if (bytes[at + 1] === 0xf9 && (bytes[at + 3] ?? 0) & 1) transparent = bytes[at + 6];
      at += 2;
      while (at < bytes.length && bytes[at] !== 0) at += (bytes[at] ?? 0) + 1;
      at++;
    } else if (block === 0x2c) {
      const local = bytes[at + 9] ?? 0;
      if (local & 0x80) palette = bytes.subarray(at + 10, at + 10 + 3 * (2 << (local & 7)));
      const colour = (i: number): Colour => [
        palette?.[3 * i] ?? 0,
        palette?.[3 * i + 1] ?? 0,
        palette?.[3 * i + 2] ?? 0,
      ];
      return {
        x: u16(at + 1),
        y: u16(at + 3),
        width: u16(at + 5),
        height: u16(at + 7),
        fill: colour(transparent ?? 0),
        key: transparent === undefined ? undefined : colour(transparent),
      };
    } else {
      return undefined;
    }
  }
  return undefined;
}

/** RGBA from libnsgif (transparent black where the frame is transparent or absent) to PIL's RGB. */
function applyGifFill(
  rgba: Uint8Array,
  width: number,
  height: number,
  frame: GifFrame,
): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  for (let y = 0, i = 0; y < height; y++) {
    const inY = y >= frame.y && y < frame.y + frame.height;
    for (let x = 0; x < width; x++, i++) {
      const inside = inY && x >= frame.x && x < frame.x + frame.width;
      const opaque = rgba[i * 4 + 3] !== 0;
      for (let c = 0; c < 3; c++)
        out[i * 3 + c] = inside && opaque ? rgba[i * 4 + c]! : frame.fill[c]!;
    }
  }
  return out;
}

/** HF's composite of a colour key onto white (in place). */
function whiten(rgb: Uint8Array, [r, g, b]: Colour): void {
  for (let i = 0; i < rgb.length; i += 3) {
    if (rgb[i] === r && rgb[i + 1] === g && rgb[i + 2] === b)
      rgb[i] = rgb[i + 1] = rgb[i + 2] = 255;
  }
}

/** PIL's `cmyk2rgb`: nk = 255 - K; R = nk - C * nk / 255 (rounded as PIL's MULDIV255). */
function cmykToRgb(src: Uint8Array, channels: number): Uint8Array {
  const n = src.length / channels;
  const out = new Uint8Array(n * 3);
  for (let i = 0, p = 0; i < n; i++, p += channels) {
    const nk = 255 - src[p + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = src[p + c]! * nk + 128;
      out[i * 3 + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return out;
}

/**
 * PIL's 16-bit rules: a grey PNG/TIFF opens as mode 'I;16' and convert('RGB') CLAMPS it to 255
 * (so most of a full-range image is white); grey+alpha and RGB(A) open as 8-bit modes keeping
 * the high byte.
 */
function sixteenToRgb(src: Uint16Array, channels: number): Uint8Array {
  const n = src.length / channels;
  const out = new Uint8Array(n * 3);
  for (let i = 0, p = 0; i < n; i++, p += channels) {
    if (channels === 1) {
      out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = Math.min(src[p]!, 255);
    } else if (channels === 2) {
      out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = src[p]! >> 8;
    } else {
      for (let c = 0; c < 3; c++) out[i * 3 + c] = src[p + c]! >> 8;
    }
  }
  return out;
}

/** decodeRgb's reserve hook for a decode that makes `views` augmented views besides the crop. */
function reserveFor(opts: DecodeOptions | undefined, imageSize: number, views = 0) {
  const reserve = opts?.reserve;
  const pooled = opts?.pooled ?? false;
  return reserve
    ? (meta: Metadata) => reserve(decodeMemoryEstimate(meta, { imageSize, views, pooled }))
    : undefined;
}

/**
 * Decoded 8-bit RGB (HWC) at full size, as PIL has it before resizing; `views` is the augmented
 * views that will be made from it (the reserve hook is charged for them too). What is left to do
 * is ./pixels.ts: `preprocessInto`, here or in the decode pool.
 */
export function decodeImage(
  bytes: Uint8Array,
  imageSize: number,
  views: number,
  opts?: DecodeOptions,
): Promise<RgbImage> {
  return decodeRgb(
    bytes,
    opts?.maxPixels ?? DEFAULT_MAX_PIXELS,
    reserveFor(opts, imageSize, views),
  );
}

/** Decoded, resized and center-cropped 8-bit RGB (HWC), before normalisation. */
export async function decodeToCrop(
  bytes: Uint8Array,
  geometry: CropGeometry,
  opts?: DecodeOptions,
): Promise<Crop> {
  const { imageSize } = geometry;
  const src = await decodeImage(bytes, imageSize, 0, opts);
  return {
    rgb: centerCrop(src, geometry),
    width: imageSize,
    height: imageSize,
    sourceWidth: src.width,
    sourceHeight: src.height,
  };
}

/**
 * The center crop plus `views` augmented training views (see augment.ts), decoding the file once.
 * Returns HWC crops in order: index 0 is the center crop, index k the k-th view.
 */
export async function decodeToViews(
  bytes: Uint8Array,
  geometry: CropGeometry,
  augment: { views: number; seed: string; imageId: string },
  opts?: DecodeOptions,
): Promise<Uint8Array[]> {
  const src = await decodeImage(bytes, geometry.imageSize, augment.views, opts);
  return viewCrops(src, geometry, augment);
}

/** decodeToCrop + normalizeInto into a new Float32Array(3*S*S). */
export async function preprocessImage(
  bytes: Uint8Array,
  params: PreprocessParams,
  opts?: DecodeOptions,
): Promise<Float32Array> {
  const { rgb } = await decodeToCrop(bytes, params, opts);
  const out = new Float32Array(3 * params.imageSize * params.imageSize);
  normalizeInto(rgb, params, out, 0);
  return out;
}
