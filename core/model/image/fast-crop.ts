/**
 * @file The `fast` preprocessing mode's center crop: libvips decodes, resizes and crops in one
 * pipeline instead of decoding at full size and resampling in JavaScript (the `exact` mode,
 * ./preprocess.ts + ./resample.ts).
 *
 * - JPEG shrinks on load: libjpeg's DCT scaling by 2, 4 or 8, to the smallest size still at least
 *   the target (sharp's fastShrinkOnLoad rule). WebP does not: libwebp's scaled decode measured
 *   cosine 0.942 against exact on a 225x1000 photo-like WebP (scale 0.996) and 0.998 at 500x2000,
 *   while a full decode + libvips' resize stays >= 0.9999 on the same files.
 * - libvips then resizes with its cubic kernel (Catmull-Rom, a = -0.5: Pillow's bicubic) to the
 *   exact mode's geometry: the shortest edge to S, the long side truncated as HF does, then the
 *   center S x S crop at the same floor offsets. Normalisation is the same code (./pixels.ts).
 * - The decoder settings are exact's (sharpOptions: pixel limit on the header, first frame,
 *   EXIF orientation, ICC profiles ignored), and so is the classification of failures.
 * - Where PIL's convert('RGB') differs from libvips' plain 8-bit sRGB (CMYK, 16 bits per sample,
 *   GIF frames, any alpha, PNG colour keys: needsPilConversion), the image is decoded at full
 *   size by exact's own rules and only the resize is libvips': shrinking on load is not possible
 *   there anyway (none of those is a JPEG or WebP but CMYK JPEGs), and libvips would premultiply
 *   alpha before resizing where PIL drops it.
 *
 * Fidelity (test/unit/fast-preprocess.test.ts): per image, cosine >= 0.999 against exact and HF
 * on the golden images and on generated photo-like JPEGs, for the pixel tensors and the
 * embeddings. Augmented views are not made here: they are cut from exact's full decode.
 */
import sharp from 'sharp';
import {
  type Crop,
  type DecodeOptions,
  DEFAULT_MAX_PIXELS,
  decodeInspected,
  decodeMemoryEstimate,
  inspectImage,
  needsPilConversion,
  sharpOptions,
} from './preprocess';
import { classifySharpError, ImageDecodeError } from './image-errors';
import { centerCrop, type CropGeometry, cropStart, resizedSize } from './pixels';

/**
 * The fast center crop of an encoded image: S x S 8-bit RGB (HWC), and the decoded size after
 * EXIF orientation. The reserve hook is charged exact's decodeMemoryEstimate (no views, no pool):
 * an upper bound, since the fast path never holds more than a full decode does (shrink on load
 * decodes less; libvips streams the resize).
 */
export async function decodeToCropFast(
  bytes: Uint8Array,
  geometry: CropGeometry,
  opts?: DecodeOptions,
): Promise<Crop> {
  const { imageSize, cropRounding } = geometry;
  const maxPixels = opts?.maxPixels ?? DEFAULT_MAX_PIXELS;
  const meta = await inspectImage(bytes, maxPixels);
  await opts?.reserve?.(decodeMemoryEstimate(meta, { imageSize }));
  // sharp's header sizes are before EXIF orientation; 5-8 turn the image by 90 degrees.
  const turned = (meta.orientation ?? 1) >= 5;
  const width = (turned ? meta.height : meta.width) ?? 0;
  const height = (turned ? meta.width : meta.height) ?? 0;
  if (Math.min(width, height) < imageSize) {
    // Enlarging: libvips' upscaler samples 1/3 of a source pixel off Pillow's centres and pads
    // borders with black (golden images: cosine 0.992-0.998 against exact). The image is small,
    // so exact's decode and resample cost little more than libvips' would: they do it.
    const rgb = await decodeInspected(bytes, meta, maxPixels);
    return {
      rgb: centerCrop(rgb, geometry),
      width: imageSize,
      height: imageSize,
      sourceWidth: rgb.width,
      sourceHeight: rgb.height,
    };
  }
  const [outW, outH] = resizedSize(width, height, imageSize);
  const crop = {
    left: cropStart(outW, imageSize, cropRounding),
    top: cropStart(outH, imageSize, cropRounding),
    width: imageSize,
    height: imageSize,
  };
  const resize = { width: outW, height: outH, fit: 'fill', kernel: 'cubic' } as const;
  let pipeline: sharp.Sharp;
  if (needsPilConversion(meta, bytes)) {
    const rgb = await decodeInspected(bytes, meta, maxPixels);
    pipeline = sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } });
  } else {
    pipeline = sharp(bytes, sharpOptions(maxPixels)).removeAlpha().toColourspace('srgb');
  }
  const { data, info } = await pipeline
    .resize({ ...resize, fastShrinkOnLoad: meta.format === 'jpeg' })
    .extract(crop)
    .raw()
    .toBuffer({ resolveWithObject: true })
    .catch((err: unknown) => {
      throw err instanceof ImageDecodeError ? err : classifySharpError(err, bytes);
    });
  if (info.width !== imageSize || info.height !== imageSize || info.channels !== 3)
    throw new Error(`libvips made a ${info.width}x${info.height}x${info.channels} crop`);
  return {
    rgb: new Uint8Array(data.buffer, data.byteOffset, data.length),
    width: imageSize,
    height: imageSize,
    sourceWidth: width,
    sourceHeight: height,
  };
}
