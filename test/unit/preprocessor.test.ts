/**
 * The preprocessor factory: each mode (and the pool) gets its own implementation, chosen from
 * the options alone, and exact's two places to cut crops (this thread, a decode pool's thread)
 * give the same bytes for the same image, center crop and augmented views alike.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DecodePool } from '../../core/model/image/decode-pool';
import { decodeToCropFast } from '../../core/model/image/fast-crop';
import { cropInto, type PixelBuffer, type PreprocessParams } from '../../core/model/image/pixels';
import { decodeToCrop } from '../../core/model/image/preprocess';
import { type DecodedImage, preprocessorFor } from '../../core/model/image/preprocessor';

const FIXTURES = join(__dirname, '..', 'fixtures');
const GOLDEN = join(FIXTURES, 'tiny-clip-golden');
const PARAMS = (
  JSON.parse(readFileSync(join(FIXTURES, 'tiny-clip', 'bundle.json'), 'utf8')) as {
    preprocessing: PreprocessParams;
  }
).preprocessing;
const SIZE = 3 * PARAMS.imageSize * PARAMS.imageSize;
const FILES = (
  JSON.parse(readFileSync(join(GOLDEN, 'image-embeddings.json'), 'utf8')) as { file: string }[]
).map((g) => g.file);
const read = (rel: string): Uint8Array => new Uint8Array(readFileSync(join(GOLDEN, rel)));
const SEED = '7';

const bytesOf = (a: PixelBuffer) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** An image's crops laid out as a pool's slab in `format`, whichever form they came in. */
function asSlab(d: DecodedImage, params: PreprocessParams): PixelBuffer {
  if (d.slab) return d.slab;
  const out =
    params.format === 'uint8-nhwc'
      ? new Uint8Array(d.count * SIZE)
      : new Float32Array(d.count * SIZE);
  d.crops!.forEach((rgb, v) => cropInto(rgb, params, out, v * SIZE));
  return out;
}

describe('preprocessorFor', () => {
  const pool = new DecodePool(2);
  afterAll(() => pool.close());
  const file = FILES[0]!;

  it('exact without a pool cuts crops on this thread, as exact decodeToCrop does', async () => {
    const d = await preprocessorFor(PARAMS, {}).preprocess(
      { id: 'a', bytes: read(file) },
      read(file),
      {},
    );
    expect(d.slab).toBeUndefined();
    expect(d.count).toBe(1);
    const want = await decodeToCrop(read(file), PARAMS);
    expect(Buffer.from(d.crops![0]!).equals(Buffer.from(want.rgb))).toBe(true);
  });

  it('exact with a pool hands back a slab from the pool', async () => {
    const bytes = read(file);
    const pre = preprocessorFor(PARAMS, { preprocessing: 'exact', pool });
    const d = await pre.preprocess({ id: 'a', bytes, views: 2 }, bytes, {});
    expect(d.crops).toBeUndefined();
    expect(d.count).toBe(3);
    expect(d.slab).toBeInstanceOf(Float32Array);
    expect(d.slab!.length).toBe(3 * SIZE);
  });

  it('fast takes libvips center crop and never the pool', async () => {
    const bytes = read(file);
    const d = await preprocessorFor(PARAMS, { preprocessing: 'fast', pool }).preprocess(
      { id: 'a', bytes },
      bytes,
      {},
    );
    expect(d.slab).toBeUndefined();
    const want = await decodeToCropFast(bytes, PARAMS);
    expect(Buffer.from(d.crops![0]!).equals(Buffer.from(want.rgb))).toBe(true);
  });

  for (const format of ['float32-nchw', 'uint8-nhwc'] as const) {
    it(`exact here and exact in the pool give identical ${format} bytes`, async () => {
      const params = { ...PARAMS, format };
      const here = preprocessorFor(params, { augmentSeed: SEED });
      const pooled = preprocessorFor(params, { augmentSeed: SEED, pool });
      for (const [k, rel] of FILES.entries()) {
        const bytes = read(rel);
        const item = { id: rel, bytes, views: k % 3 };
        const a = await here.preprocess(item, bytes, {});
        const b = await pooled.preprocess(item, bytes, {});
        expect(a.crops, rel).toBeDefined();
        expect(b.slab, rel).toBeDefined();
        expect(b.count, rel).toBe(a.count);
        expect(bytesOf(asSlab(a, params)).equals(bytesOf(b.slab!)), `${rel}: bytes differ`).toBe(
          true,
        );
      }
    });
  }
});
