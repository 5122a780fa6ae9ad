import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBundle, type ModelBundle, type PixelFormat } from '../../core/model/bundle';
import { embedImages } from '../../core/model/image/embed-images';
import { decodeToCropFast } from '../../core/model/image/fast-crop';
import { cropInto, type PixelBuffer } from '../../core/model/image/pixels';
import { decodeToCrop, decodeToViews } from '../../core/model/image/preprocess';
import { ImageEncoder } from '../../core/model/onnx/encoders';
import { TINY_BUNDLE, TINY_GOLDEN } from '../helpers/fixtures';

// embedImages in the `fast` mode with augmented views: the center crop (view 0) is fast-crop's,
// the views are exact's (cut from exact's full decode with the same seed and image id), byte for
// byte, in the batch buffers the real encoders get (uint8-nhwc and float32-nchw). Golden images
// on the libvips paths: a JPEG (decode + resize) and an RGBA PNG and a CMYK JPEG (PIL-converted
// decode, libvips resize), all >= 224 px so fast's crop differs from exact's.
const GOLDEN = ['images/photo.jpg', 'images/alpha.png', 'images/cmyk.jpg'];
const VIEWS = 2;
const SEED = 'fast-views-7';

let bundle: ModelBundle;
beforeAll(async () => {
  bundle = await loadBundle(TINY_BUNDLE);
});

/** The real encoder, with every batch it is given recorded (a copy: the buffer is transferred). */
function recording(encoder: ImageEncoder): { encoder: ImageEncoder; seen: PixelBuffer[] } {
  const seen: PixelBuffer[] = [];
  const spy = {
    get inputFormat() {
      return encoder.inputFormat;
    },
    allocate: (n: number) => encoder.allocate(n),
    encodeReturning: (pixels: PixelBuffer, n: number) => {
      seen.push(pixels.slice());
      return encoder.encodeReturning(pixels, n);
    },
  };
  return { encoder: spy as unknown as ImageEncoder, seen };
}

/** What the batch must hold: per image, fast's center crop, then exact's views 1..VIEWS. */
async function expectedBatch(files: { id: string; bytes: Uint8Array }[], format: PixelFormat) {
  const p = bundle.manifest.preprocessing;
  const params = { ...p, format };
  const size = 3 * p.imageSize * p.imageSize;
  const crops: Uint8Array[] = [];
  let differsFromExact = 0;
  for (const { id, bytes } of files) {
    const fast = await decodeToCropFast(bytes, p);
    const exact = await decodeToViews(bytes, p, {
      views: VIEWS,
      seed: SEED,
      imageId: id,
    });
    const exactCenter = (await decodeToCrop(bytes, p)).rgb;
    expect(Buffer.from(exact[0]!).equals(Buffer.from(exactCenter))).toBe(true);
    if (!Buffer.from(fast.rgb).equals(Buffer.from(exact[0]!))) differsFromExact++;
    crops.push(fast.rgb, ...exact.slice(1));
  }
  // Otherwise the test could not tell fast's center crop from exact's.
  expect(differsFromExact).toBe(files.length);
  const out: PixelBuffer =
    format === 'uint8-nhwc'
      ? new Uint8Array(crops.length * size)
      : new Float32Array(crops.length * size);
  crops.forEach((rgb, i) => cropInto(rgb, params, out, i * size));
  return { pixels: out, rows: crops.length };
}

describe('embedImages, fast mode with augmented views', () => {
  const encoders: ImageEncoder[] = [];
  afterAll(() => Promise.all(encoders.map((e) => e.close())));

  for (const format of ['uint8-nhwc', 'float32-nchw'] as const) {
    it(`feeds fast's center crop and exact's views to a ${format} encoder`, async () => {
      const real = await ImageEncoder.create(bundle, { threads: 1, inputFormat: format });
      encoders.push(real);
      expect(real.inputFormat).toBe(format);
      const { encoder, seen } = recording(real);
      const files = GOLDEN.map((f) => ({
        id: f,
        bytes: new Uint8Array(readFileSync(join(TINY_GOLDEN, f))),
      }));
      const batches = [];
      for await (const b of embedImages(
        files.map((f) => ({ id: f.id, bytes: f.bytes, views: VIEWS })),
        encoder,
        bundle.manifest.preprocessing,
        { batchSize: 16, concurrency: 2, augmentSeed: SEED, preprocessing: 'fast' },
      ))
        batches.push(b);

      const want = await expectedBatch(files, format);
      expect(batches).toHaveLength(1);
      const [batch] = batches;
      expect(batch!.failed).toEqual([]);
      expect(batch!.ids).toEqual(GOLDEN.flatMap((f) => Array<string>(1 + VIEWS).fill(f)));
      expect(batch!.views).toEqual(GOLDEN.flatMap(() => [0, 1, 2]));
      // Byte for byte (float32: the same normalised values, compared as their bytes).
      expect(seen).toHaveLength(1);
      expect(seen[0]!.constructor).toBe(want.pixels.constructor);
      const bytes = (a: PixelBuffer) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      expect(bytes(seen[0]!).equals(bytes(want.pixels))).toBe(true);
      // And the embeddings are the encoder's on those pixels (same batch, same session).
      const direct = await real.encode(want.pixels, want.rows);
      expect(Array.from(batch!.embeddings)).toEqual(Array.from(direct));
    });
  }
});
