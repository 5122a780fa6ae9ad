import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEnv } from '../../core/config/env';
import { DecodePool, PreprocessFailedError } from '../../core/model/image/decode-pool';
import { embedImages, type ImageSource } from '../../core/model/image/embed-images';
import {
  decodeImage,
  decodeToCrop,
  decodeToViews,
  normalizeInto,
  type PreprocessParams,
  type RgbImage,
} from '../../core/model/image/preprocess';
import { preprocessInto } from '../../core/model/image/pixels';
import type { ImageEncoder, PixelFormat } from '../../core/model/onnx/encoders';
import type { ObjectStore } from '../../core/storage/object-store';
import { WorkerResources } from '../../core/worker-resources';

const FIXTURES = join(__dirname, '..', 'fixtures');
const GOLDEN = join(FIXTURES, 'tiny-clip-golden');
const PARAMS = (
  JSON.parse(readFileSync(join(FIXTURES, 'tiny-clip', 'bundle.json'), 'utf8')) as {
    preprocessing: PreprocessParams;
  }
).preprocessing;
const S = PARAMS.imageSize;
const SIZE = 3 * S * S;
const FILES = (
  JSON.parse(readFileSync(join(GOLDEN, 'image-embeddings.json'), 'utf8')) as { file: string }[]
).map((g) => g.file);
const read = (rel: string): Uint8Array => new Uint8Array(readFileSync(join(GOLDEN, rel)));
const AUGMENT = { views: 3, seed: '7' };

/** The bytes of a float array: "byte-identical" means exactly that (NaN, -0 included). */
const bytesOf = (a: Float32Array | Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
function expectSameBytes(
  got: Float32Array | Uint8Array,
  want: Float32Array | Uint8Array,
  what: string,
): void {
  expect(got.length, what).toBe(want.length);
  expect(bytesOf(got).equals(bytesOf(want)), `${what}: bytes differ`).toBe(true);
}

/** Today's single-thread exact path: decodeToCrop / decodeToViews, then normalizeInto. */
async function mainThreadTensor(bytes: Uint8Array, views: number, id: string) {
  const crops = views
    ? await decodeToViews(bytes, { imageSize: S }, { views, seed: AUGMENT.seed, imageId: id })
    : [(await decodeToCrop(bytes, { imageSize: S })).rgb];
  const out = new Float32Array(crops.length * SIZE);
  crops.forEach((rgb, v) => normalizeInto(rgb, PARAMS, out, v * SIZE));
  return out;
}

/** A photo-sized random image (slow enough to resize that a thread can be killed meanwhile). */
function bigImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, x = 12345; i < data.length; i++)
    data[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return { data, width, height };
}

/**
 * An encoder stand-in for a graph taking `format`: keeps the batches it is given (a copy: they
 * are the pixels tested) and hands each buffer back, as the real one does.
 */
function recordingEncoder(format: PixelFormat = 'float32-nchw') {
  const batches: (Float32Array | Uint8Array)[] = [];
  const encoder = {
    inputFormat: format,
    allocate: (n: number) =>
      format === 'uint8-nhwc' ? new Uint8Array(n * SIZE) : new Float32Array(n * SIZE),
    encodeReturning: (pixels: Float32Array | Uint8Array, n: number) => {
      batches.push(pixels.slice(0, n * SIZE));
      return Promise.resolve({ embeddings: new Float32Array(n), pixels });
    },
  } as unknown as ImageEncoder;
  return { encoder, batches };
}

async function runEmbed(
  pool: DecodePool | undefined,
  views: number,
  sources?: ImageSource[],
  format: PixelFormat = 'float32-nchw',
) {
  const { encoder, batches } = recordingEncoder(format);
  const ids: string[] = [];
  const rowViews: number[] = [];
  const failed: { id: string; reason: string }[] = [];
  const source = sources ?? FILES.map((file) => ({ id: file, bytes: read(file), views }));
  for await (const batch of embedImages(source, encoder, PARAMS, {
    batchSize: 5,
    concurrency: 4,
    augmentSeed: AUGMENT.seed,
    ...(pool ? { pool } : {}),
  })) {
    ids.push(...batch.ids);
    rowViews.push(...batch.views);
    failed.push(...batch.failed);
  }
  const length = batches.reduce((n, b) => n + b.length, 0);
  const pixels = format === 'uint8-nhwc' ? new Uint8Array(length) : new Float32Array(length);
  batches.reduce((at, b) => ((pixels as Uint8Array).set(b as Uint8Array, at), at + b.length), 0);
  return { ids, views: rowViews, failed, pixels };
}

describe('DecodePool', () => {
  const pool = new DecodePool(2);
  afterAll(() => pool.close());

  it('gives the single-thread exact path byte for byte on every golden image', async () => {
    expect(FILES.length).toBeGreaterThan(5);
    await Promise.all(
      FILES.map(async (file) => {
        const src = await decodeImage(read(file), S, 0);
        expectSameBytes(
          await pool.preprocess(src, PARAMS),
          await mainThreadTensor(read(file), 0, file),
          file,
        );
      }),
    );
    expect(pool.running).toBe(2);
  });

  it('gives the same augmented views, byte for byte', async () => {
    for (const file of FILES) {
      const src = await decodeImage(read(file), S, AUGMENT.views);
      const got = await pool.preprocess(src, PARAMS, { ...AUGMENT, imageId: file });
      expect(got.length).toBe((1 + AUGMENT.views) * SIZE);
      expectSameBytes(got, await mainThreadTensor(read(file), AUGMENT.views, file), file);
    }
  });

  it('reports an image failing inside a thread, and keeps working', async () => {
    const bad = { data: new Uint8Array(10), width: 640, height: 480 };
    const err = await pool.preprocess(bad, PARAMS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreprocessFailedError);
    expect((err as Error).message).toMatch(/^preprocess-failed: expected 640x480x3 bytes of RGB/);
    const file = FILES[0]!;
    const src = await decodeImage(read(file), S, 0);
    expectSameBytes(
      await pool.preprocess(src, PARAMS),
      await mainThreadTensor(read(file), 0, file),
      file,
    );
  });

  it('retries a job once on a fresh thread when its thread dies, then fails it as the image', async () => {
    const one = new DecodePool(1);
    try {
      const big = bigImage(4000, 3000);
      const want = new Float32Array(SIZE);
      preprocessInto(big, PARAMS, undefined, want, 0);
      // Pixels the pool copies, and keeps for a retry: a view of part of a buffer (as are
      // libvips' buffers, which Node copies rather than moves).
      const kept = (): RgbImage => {
        const buffer = new Uint8Array(big.data.length + 1);
        buffer.set(big.data, 1);
        return { ...big, data: buffer.subarray(1) };
      };

      const retried = one.preprocess(kept(), PARAMS);
      await one.killThreadForTest(0);
      expectSameBytes(await retried, want, 'after one crash');

      const twice = one.preprocess(kept(), PARAMS).catch((e: unknown) => e);
      await one.killThreadForTest(0);
      await new Promise((r) => setTimeout(r, 20)); // the retry's thread has started
      await one.killThreadForTest(0);
      const err = await twice;
      expect(err).toBeInstanceOf(PreprocessFailedError);
      expect((err as Error).message).toMatch(/died twice/);

      // Pixels moved to the thread (a whole buffer of ours): gone with it, the image fails.
      const moved = { ...big, data: big.data.slice() };
      const lost = one.preprocess(moved, PARAMS).catch((e: unknown) => e);
      expect(moved.data.byteLength).toBe(0); // moved, not copied
      await one.killThreadForTest(0);
      expect(((await lost) as Error).message).toMatch(
        /^preprocess-failed: the decode thread died \(/,
      );

      // Replaced: the pool still works.
      expectSameBytes(await one.preprocess(kept(), PARAMS), want, 'after the failures');
    } finally {
      await one.close();
    }
  });

  it('rejects jobs once closed', async () => {
    const p = new DecodePool(1);
    await p.close();
    await expect(p.preprocess(bigImage(8, 8), PARAMS)).rejects.toThrow(/closed/);
    expect(() => new DecodePool(0)).toThrow(RangeError);
  });

  it('fills the batches embedImages encodes exactly as the main thread does, views included', async () => {
    for (const views of [0, 2]) {
      const [main, pooled] = [await runEmbed(undefined, views), await runEmbed(pool, views)];
      expect(pooled.ids).toEqual(main.ids);
      expect(pooled.views).toEqual(main.views);
      expect(pooled.failed).toEqual(main.failed);
      expect(main.ids.length).toBe(FILES.length * (1 + views) - main.failed.length * (1 + views));
      expectSameBytes(pooled.pixels, main.pixels, `views ${views}`);
    }
  });

  it("fills uint8-nhwc batches with the crops' bytes, pool and main thread byte-identical", async () => {
    for (const views of [0, 2]) {
      const main = await runEmbed(undefined, views, undefined, 'uint8-nhwc');
      const pooled = await runEmbed(pool, views, undefined, 'uint8-nhwc');
      expect(pooled.ids).toEqual(main.ids);
      expect(pooled.views).toEqual(main.views);
      expect(pooled.failed).toEqual(main.failed);
      expect(main.pixels).toBeInstanceOf(Uint8Array);
      expectSameBytes(pooled.pixels, main.pixels, `uint8, views ${views}`);
      // The bytes are the HWC crops themselves: no normalisation, no transpose.
      const crops: Uint8Array[] = [];
      for (const id of new Set(main.ids)) {
        const bytes = read(id);
        if (views)
          crops.push(
            ...(await decodeToViews(
              bytes,
              { imageSize: S },
              { views, seed: AUGMENT.seed, imageId: id },
            )),
          );
        else crops.push((await decodeToCrop(bytes, { imageSize: S })).rgb);
      }
      expectSameBytes(main.pixels, Buffer.concat(crops), `uint8 = crops, views ${views}`);
    }
  });

  it('counts an image that fails in a thread as a failed image; the others are encoded', async () => {
    // A pool whose jobs for the 2nd image get pixels that do not match its size: fails in the thread.
    const second = FILES[1]!;
    const wrapped = {
      preprocess: (src: RgbImage, params: PreprocessParams, spec?: { imageId: string }) =>
        pool.preprocess(
          spec?.imageId === second ? { ...src, data: src.data.subarray(0, 30) } : src,
          params,
          spec as never,
        ),
    } as unknown as DecodePool;
    const got = await runEmbed(wrapped, 1);
    const want = await runEmbed(undefined, 1);
    expect(got.failed).toEqual([
      { id: second, reason: expect.stringMatching(/^preprocess-failed: expected /) as string },
    ]);
    expect(got.ids).toEqual(want.ids.filter((id) => id !== second));
    expect(got.ids.length).toBeGreaterThan(0);
  });
});

describe('WorkerResources decode pool', () => {
  const store = {} as ObjectStore;
  it('has none with 0 threads (the main thread preprocesses, as before)', async () => {
    const r = new WorkerResources(store, '/tmp/unused', { threads: 1 }, undefined, undefined, 0);
    expect(r.decodePool()).toBeUndefined();
    await r.close();
    expect(new WorkerResources(store, '/tmp/unused', { threads: 1 }).decodePool()).toBeUndefined();
  });

  it('makes one pool of the given size, shared, and closes it with the resources', async () => {
    const r = new WorkerResources(store, '/tmp/unused', { threads: 1 }, undefined, undefined, 2);
    const pool = r.decodePool()!;
    expect(pool.size).toBe(2);
    expect(r.decodePool()).toBe(pool);
    const src = await decodeImage(read(FILES[0]!), S, 0);
    await pool.preprocess(src, PARAMS);
    await r.close();
    await expect(pool.preprocess(src, PARAMS)).rejects.toThrow(/closed/);
  });
});

describe('CLIPEVAL_DECODE_THREADS', () => {
  const env = (v?: string) =>
    loadEnv({ CLIPEVAL_BUCKET: 'abc', ...(v === undefined ? {} : { CLIPEVAL_DECODE_THREADS: v }) });
  it('defaults to the cores available; 0 turns the pool off', () => {
    expect(env().decode).toEqual({ threads: Math.max(1, availableParallelism()) });
    expect(env('0').decode).toEqual({ threads: 0 });
    expect(env('3').decode).toEqual({ threads: 3 });
  });
  it('refuses what is not a thread count', () => {
    expect(() => env('-1')).toThrow(/CLIPEVAL_DECODE_THREADS/);
    expect(() => env('two')).toThrow(/CLIPEVAL_DECODE_THREADS/);
  });
});
