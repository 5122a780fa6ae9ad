import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  decodeToCrop,
  ImageDecodeError,
  normalizeInto,
  preprocessImage,
  type PreprocessParams,
} from '../../core/model/image/preprocess';
import { cropStart } from '../../core/model/image/pixels';

const FIXTURES = join(__dirname, '..', 'fixtures');
const GOLDEN = join(FIXTURES, 'tiny-clip-golden');
const bundle = JSON.parse(readFileSync(join(FIXTURES, 'tiny-clip', 'bundle.json'), 'utf8')) as {
  preprocessing: PreprocessParams;
};
const PARAMS: PreprocessParams = bundle.preprocessing;
const S = PARAMS.imageSize;

interface GoldenImage {
  file: string;
  crop: string;
  mode: string;
  size: [number, number];
}
const GOLDEN_IMAGES = JSON.parse(
  readFileSync(join(GOLDEN, 'image-embeddings.json'), 'utf8'),
) as GoldenImage[];

/**
 * Allowed difference from the reference crop, in 8-bit levels. Every image is bit-exact except
 * AVIF: Pillow decodes it with libavif, sharp with libheif, and their YUV->RGB conversions
 * (chroma upsampling, rounding) differ. Measured: mean 0.49 levels, max 44 at sharp colour edges.
 */
const TOLERANCE: Record<string, { mean: number; max: number }> = {
  'modern.avif': { mean: 0.6, max: 50 },
};
const EXACT = { mean: 0, max: 0 };

const read = (rel: string): Buffer => readFileSync(join(GOLDEN, rel));
const goldenCrop = (rel: string): Promise<Buffer> => sharp(read(rel)).raw().toBuffer();
const golden = (name: string): GoldenImage => GOLDEN_IMAGES.find((g) => g.file.endsWith(name))!;

function normalized(rgb: Uint8Array): Float32Array {
  const out = new Float32Array(3 * S * S);
  normalizeInto(rgb, PARAMS, out, 0);
  return out;
}

/** Bitwise float comparison (vitest's deep equality is slow on 150k-element typed arrays). */
function expectSameTensor(got: Float32Array, want: Float32Array): void {
  expect(got.length).toBe(want.length);
  const i = got.findIndex((v, j) => !Object.is(v, want[j]));
  expect(i < 0 ? 'identical' : `first difference at ${i}: ${got[i]} vs ${want[i]}`).toBe(
    'identical',
  );
}

/** Resolves to the rejection's reason; fails unless it is an ImageDecodeError. */
async function reasonOf(work: Promise<unknown>): Promise<string> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImageDecodeError);
  return (err as ImageDecodeError).reason;
}

function crc32(bytes: Uint8Array): number {
  let crc = ~0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return ~crc >>> 0;
}

/** A PNG signature and IHDR chunk (valid CRC) declaring width x height, and no image data. */
function pngHeaderOnly(width: number, height: number): Uint8Array {
  const chunk = Buffer.alloc(25);
  chunk.writeUInt32BE(13, 0);
  chunk.write('IHDR', 4, 'latin1');
  chunk.writeUInt32BE(width, 8);
  chunk.writeUInt32BE(height, 12);
  chunk.set([8, 2, 0, 0, 0], 16); // 8-bit RGB, deflate, no filter, no interlace
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 21)), 21);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk]);
}

describe('decodeToCrop against the reference (PIL + CLIPImageProcessorPil) crops', () => {
  it('matches every golden image within its stated tolerance', async () => {
    const rows: string[] = [];
    const failures: string[] = [];
    for (const image of GOLDEN_IMAGES) {
      const name = image.file.replace('images/', '');
      const got = await decodeToCrop(read(image.file), { imageSize: S });
      const want = await goldenCrop(image.crop);
      expect(got.rgb.length).toBe(want.length);
      expect([got.width, got.height]).toEqual([S, S]);
      expect([got.sourceWidth, got.sourceHeight]).toEqual(image.size);

      let sum = 0;
      let max = 0;
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(got.rgb[i]! - want[i]!);
        sum += d;
        max = Math.max(max, d);
      }
      const [a, b] = [normalized(got.rgb), normalized(want)];
      let sumNorm = 0;
      for (let i = 0; i < a.length; i++) sumNorm += Math.abs(a[i]! - b[i]!);
      const mean = sum / want.length;
      const tol = TOLERANCE[name] ?? EXACT;
      rows.push(
        `${name.padEnd(18)} ${image.mode.padEnd(5)} ${(sumNorm / a.length).toFixed(5).padStart(9)}` +
          ` ${mean.toFixed(4).padStart(8)} ${String(max).padStart(4)}   mean<=${tol.mean} max<=${tol.max}`,
      );
      if (mean > tol.mean || max > tol.max) failures.push(`${name}: mean ${mean}, max ${max}`);
    }
    console.log(
      'decodeToCrop vs golden crop: mean |diff| normalised, mean |diff| 8-bit levels, max levels\n' +
        `${'image'.padEnd(18)} ${'mode'.padEnd(5)} ${'norm'.padStart(9)} ${'levels'.padStart(8)}  max   tolerance\n` +
        rows.join('\n'),
    );
    expect(failures).toEqual([]);
  });

  it('gives the reference tensor exactly: (crop/255 - mean)/std in float32', async () => {
    const image = golden('photo.jpg');
    const tensor = await preprocessImage(read(image.file), PARAMS);
    const want = await goldenCrop(image.crop);
    expectSameTensor(tensor, normalized(want));
    for (let c = 0; c < 3; c++) {
      for (const i of [0, 1000, S * S - 1]) {
        const expected = (want[i * 3 + c]! / 255 - PARAMS.mean[c]!) / PARAMS.std[c]!;
        expect(tensor[c * S * S + i]).toBeCloseTo(expected, 6);
      }
    }
  });
});

describe('cropStart', () => {
  it("floors as HF, or rounds half to even as torchvision's CenterCrop (Python's round)", () => {
    const over = [...Array(12).keys()]; // L - S = 0..11
    expect(over.map((d) => cropStart(S + d, S))).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    // Python: [round(d / 2) for d in range(12)]
    expect(over.map((d) => cropStart(S + d, S, 'half-even'))).toEqual([
      0, 0, 1, 2, 2, 2, 3, 4, 4, 4, 5, 6,
    ]);
  });
});

describe('normalizeInto', () => {
  it('matches a hand computation, CHW, at an offset, leaving the rest of the batch alone', () => {
    const params: PreprocessParams = { ...PARAMS, imageSize: 2 };
    // 2x2 HWC: black, white, pure red, mid grey (128).
    const rgb = Uint8Array.from([0, 0, 0, 255, 255, 255, 255, 0, 0, 128, 128, 128]);
    const out = new Float32Array(3 + 12 + 2).fill(7);
    normalizeInto(rgb, params, out, 3);
    // (v/255 - mean[c]) / std[c], by hand:
    // R: 0 -> -0.48145466/0.26862954 = -1.79226, 255 -> 0.51854534/0.26862954 = 1.93033,
    //    128 -> (0.50196078-0.48145466)/0.26862954 = 0.07634
    // G: 0 -> -0.4578275/0.26130258 = -1.75209, 255 -> 2.07488, 128 -> 0.16888
    // B: 0 -> -0.40821073/0.27577711 = -1.48021, 255 -> 2.14589, 128 -> 0.33993
    const expected = [
      [-1.79226, 1.93033, 1.93033, 0.07634],
      [-1.75209, 2.07488, -1.75209, 0.16888],
      [-1.48021, 2.14589, -1.48021, 0.33993],
    ].flat();
    expect(Array.from(out.subarray(0, 3))).toEqual([7, 7, 7]);
    expect(Array.from(out.subarray(15))).toEqual([7, 7]);
    Array.from(out.subarray(3, 15)).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
  });

  it('refuses a crop of the wrong size or an offset past the end', () => {
    const out = new Float32Array(3 * S * S);
    expect(() => normalizeInto(new Uint8Array(10), PARAMS, out, 0)).toThrow(RangeError);
    expect(() => normalizeInto(new Uint8Array(3 * S * S), PARAMS, out, 1)).toThrow(RangeError);
  });
});

describe('bad and awkward inputs: a tensor or an ImageDecodeError, never a crash', () => {
  it('zero-byte file: empty', async () => {
    expect(await reasonOf(preprocessImage(new Uint8Array(0), PARAMS))).toBe('empty');
  });

  it('truncated JPEG (a golden jpg cut in half): truncated', async () => {
    const jpg = read('images/photo.jpg');
    const half = jpg.subarray(0, jpg.length >> 1);
    expect(await reasonOf(preprocessImage(half, PARAMS))).toBe('truncated');
  });

  it('a text file named .jpg: not-an-image', async () => {
    const text = Buffer.from('photo.jpg\nthis is a text file, not a JPEG\n');
    expect(await reasonOf(preprocessImage(text, PARAMS))).toBe('not-an-image');
  });

  it('a PNG declaring 30000x30000 pixels: too-large, from the header alone', async () => {
    const bytes = pngHeaderOnly(30000, 30000);
    expect(bytes.length).toBe(33);
    const started = performance.now();
    expect(await reasonOf(preprocessImage(bytes, PARAMS))).toBe('too-large');
    expect(performance.now() - started).toBeLessThan(1000);
    // Under a higher limit the same bytes are simply broken, proving the limit made the call.
    expect(await reasonOf(preprocessImage(bytes, PARAMS, { maxPixels: 1e9 }))).not.toBe(
      'too-large',
    );
  });

  it('maxPixels is configurable and applies to every format (via sharp)', async () => {
    const jpg = read('images/photo.jpg'); // 320x240
    expect(await reasonOf(preprocessImage(jpg, PARAMS, { maxPixels: 320 * 240 - 1 }))).toBe(
      'too-large',
    );
    await expect(preprocessImage(jpg, PARAMS, { maxPixels: 320 * 240 })).resolves.toHaveLength(
      3 * S * S,
    );
  });

  it('an image format PIL does not read (SVG): unsupported', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>');
    expect(await reasonOf(preprocessImage(svg, PARAMS))).toBe('unsupported');
  });

  /** Decodes a golden image and expects its reference crop exactly. */
  async function expectGolden(name: string): Promise<void> {
    const image = golden(name);
    const tensor = await preprocessImage(read(image.file), PARAMS);
    expect(tensor).toHaveLength(3 * S * S);
    expect(tensor.every(Number.isFinite)).toBe(true);
    expectSameTensor(tensor, normalized(await goldenCrop(image.crop)));
  }

  it('CMYK JPEG: converted with PIL’s formula, not colour-managed', () => expectGolden('cmyk.jpg'));

  it('16-bit grey PNG: clamped to 255 like PIL’s I;16 -> RGB', async () => {
    await expectGolden('sixteen-bit.png');
    // PIL clamps rather than scales, so almost the whole crop is white.
    const { rgb } = await decodeToCrop(read('images/sixteen-bit.png'), { imageSize: S });
    expect(rgb.filter((v) => v === 255).length / rgb.length).toBeGreaterThan(0.9);
  });

  it('animated GIF: the first frame', () => expectGolden('animated.gif'));

  it('EXIF rotation: the output is oriented like the golden crop', async () => {
    const bytes = read('images/exif-rotated.jpg');
    const meta = await sharp(bytes).metadata();
    expect([meta.width, meta.height, meta.orientation]).toEqual([300, 200, 6]);
    const crop = await decodeToCrop(bytes, { imageSize: S });
    expect([crop.sourceWidth, crop.sourceHeight]).toEqual([200, 300]);
    await expectGolden('exif-rotated.jpg');
  });

  it('1x1 image: upscaled to a flat crop', async () => {
    await expectGolden('one-pixel.png');
    const { rgb } = await decodeToCrop(read('images/one-pixel.png'), { imageSize: S });
    for (let i = 0; i < rgb.length; i += 3) {
      if (rgb[i] !== 200 || rgb[i + 1] !== 30 || rgb[i + 2] !== 60) {
        throw new Error(`pixel ${i / 3} is not (200, 30, 60)`);
      }
    }
  });

  it('4000x10 image: resized to 89600x224, centre cropped', () => expectGolden('wide.png'));
});
