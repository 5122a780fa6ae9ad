import { describe, expect, it } from 'vitest';
import { resizeCropBicubic } from '../../core/model/image/resample';
import { simdKernels } from '../../core/model/image/resample-simd';
import { referenceResizeCropBicubic } from '../helpers/resample-reference';

// The optimised resampler, both its WebAssembly SIMD kernels and its JavaScript loops, against the
// straightforward port it replaced (the reference reproduces the golden crops bit for bit:
// test/unit/preprocess.test.ts). Tolerance: none, byte for byte.

/** mulberry32: a seeded generator, so a failure is reproducible from the printed case. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Window = { x: number; y: number; width: number; height: number };

interface Case {
  srcW: number;
  srcH: number;
  outW: number;
  outH: number;
  crop: Window;
  /** Pixel pattern: random bytes, or 0/255 stripes (filter overshoot: the clamping at 0 and 255). */
  pattern: 'random' | 'stripes';
}

function pixels(c: Case, rand: () => number): Uint8Array {
  const data = new Uint8Array(c.srcW * c.srcH * 3);
  for (let i = 0; i < data.length; i++) {
    const px = Math.floor(i / 3);
    data[i] =
      c.pattern === 'random'
        ? Math.floor(rand() * 256)
        : ((px % c.srcW) + Math.floor(px / c.srcW) + (i % 3)) % 2 === 0
          ? 0
          : 255;
  }
  return data;
}

/** Where each kernel's result first differs from the reference's, or 'identical'. */
function compare(c: Case, rand: () => number): string {
  const src = pixels(c, rand);
  const want = referenceResizeCropBicubic(src, c.srcW, c.srcH, c.outW, c.outH, c.crop);
  for (const kernels of ['auto', 'javascript'] as const) {
    const got = resizeCropBicubic(src, c.srcW, c.srcH, c.outW, c.outH, c.crop, kernels);
    if (got.length !== want.length) return `${kernels}: length ${got.length} vs ${want.length}`;
    const i = got.findIndex((v, j) => v !== want[j]);
    if (i >= 0) return `${kernels}: byte ${i}: ${got[i]} vs ${want[i]}`;
  }
  return 'identical';
}

/** The crop windows touching each edge and corner of an outW x outH output, and the whole of it. */
function edgeCrops(outW: number, outH: number): Window[] {
  const w = Math.max(1, Math.ceil(outW / 3));
  const h = Math.max(1, Math.ceil(outH / 3));
  const xs = [0, Math.floor((outW - w) / 2), outW - w];
  const ys = [0, Math.floor((outH - h) / 2), outH - h];
  const crops = xs.flatMap((x) => ys.map((y) => ({ x, y, width: w, height: h })));
  return [...crops, { x: 0, y: 0, width: outW, height: outH }];
}

describe('resizeCropBicubic (optimised) equals the reference port', () => {
  it('has its WebAssembly SIMD kernels on this Node (else only the fallback would be tested)', () => {
    expect(simdKernels()).toBeDefined();
  });

  it('on random sizes, scale factors and crop windows', () => {
    const rand = random(13);
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    for (let n = 0; n < 400; n++) {
      const srcW = int(1, 70);
      const srcH = int(1, 70);
      // Mostly shrinking (CLIP's case), also upscales, and sizes kept (a pass skipped).
      const pick = (s: number) => [int(1, s), int(s, 3 * s + 2), s][int(0, 4) % 3]!;
      const outW = pick(srcW);
      const outH = pick(srcH);
      const x = int(0, outW - 1);
      const y = int(0, outH - 1);
      const crop = { x, y, width: int(1, outW - x), height: int(1, outH - y) };
      const c: Case = { srcW, srcH, outW, outH, crop, pattern: n % 4 === 0 ? 'stripes' : 'random' };
      expect(compare(c, rand), JSON.stringify(c)).toBe('identical');
    }
  });

  it('on 1-pixel images, single rows and columns, and 1-pixel outputs', () => {
    const rand = random(1);
    const sizes: [number, number][] = [
      [1, 1],
      [1, 9],
      [9, 1],
      [2, 1],
      [1, 2],
      [5, 5],
    ];
    for (const [srcW, srcH] of sizes)
      for (const [outW, outH] of [
        [1, 1],
        [1, 7],
        [7, 1],
        [4, 6],
        [srcW, srcH],
        [2 * srcW + 1, srcH],
      ] as const)
        for (const crop of edgeCrops(outW, outH)) {
          const c: Case = { srcW, srcH, outW, outH, crop, pattern: 'random' };
          expect(compare(c, rand), JSON.stringify(c)).toBe('identical');
        }
  });

  it('on crops at every edge and corner, shrinking and enlarging, odd sizes', () => {
    const rand = random(7);
    const shapes: [number, number, number, number][] = [
      [37, 23, 11, 7], // shrink, odd
      [23, 37, 9, 30],
      [11, 7, 37, 23], // enlarge
      [31, 17, 31, 40], // width kept, height enlarged
      [31, 17, 12, 17], // height kept
      [64, 48, 29, 22],
    ];
    for (const [srcW, srcH, outW, outH] of shapes)
      for (const crop of edgeCrops(outW, outH))
        for (const pattern of ['random', 'stripes'] as const) {
          const c: Case = { srcW, srcH, outW, outH, crop, pattern };
          expect(compare(c, rand), JSON.stringify(c)).toBe('identical');
        }
  });

  it("on CLIP's own case: 640x480 and 480x640 to a 224 center crop", () => {
    const rand = random(224);
    const cases: Case[] = [
      {
        srcW: 640,
        srcH: 480,
        outW: 298,
        outH: 224,
        crop: { x: 37, y: 0, width: 224, height: 224 },
        pattern: 'random',
      },
      {
        srcW: 480,
        srcH: 640,
        outW: 224,
        outH: 298,
        crop: { x: 0, y: 37, width: 224, height: 224 },
        pattern: 'stripes',
      },
      {
        srcW: 225,
        srcH: 301,
        outW: 224,
        outH: 299,
        crop: { x: 0, y: 37, width: 224, height: 224 },
        pattern: 'random',
      },
    ];
    for (const c of cases) expect(compare(c, rand), JSON.stringify(c)).toBe('identical');
  });

  it("on an image whose rows pass the kernels' memory bound (the JavaScript loops take it)", () => {
    const rand = random(5);
    const crop = { x: 0, y: 0, width: 224, height: 12000 };
    const c: Case = { srcW: 3, srcH: 24000, outW: 224, outH: 12000, crop, pattern: 'random' };
    expect(compare(c, rand), JSON.stringify({ ...c, crop })).toBe('identical');
  });

  it('refuses an empty or outside crop window and pixels that are not width x height x 3 bytes', () => {
    const src = new Uint8Array(10 * 8 * 3);
    const at = (x: number, y: number, width: number, height: number) => () =>
      resizeCropBicubic(src, 10, 8, 5, 4, { x, y, width, height });
    expect(at(0, 0, 0, 4)).toThrow(/resize of 10x8/);
    expect(at(0, 0, 5, 0)).toThrow(/resize of 10x8/);
    expect(at(-1, 0, 5, 4)).toThrow(/outside the 5x4 output/);
    expect(at(1, 0, 5, 4)).toThrow(/outside the 5x4 output/);
    expect(at(0, 1, 5, 4)).toThrow(/outside the 5x4 output/);
    expect(at(0, 0, 5, 4)).not.toThrow();
    expect(() =>
      resizeCropBicubic(src.subarray(3), 10, 8, 5, 4, { x: 0, y: 0, width: 5, height: 4 }),
    ).toThrow(/237 bytes/);
  });

  it('returns a new array each call (the reused scratch rows never leak into a result)', () => {
    const rand = random(3);
    const src = pixels(
      {
        srcW: 50,
        srcH: 40,
        outW: 0,
        outH: 0,
        crop: { x: 0, y: 0, width: 0, height: 0 },
        pattern: 'random',
      },
      rand,
    );
    const crop = { x: 3, y: 2, width: 15, height: 12 };
    for (const kernels of ['auto', 'javascript'] as const) {
      const first = resizeCropBicubic(src, 50, 40, 21, 17, crop, kernels);
      const copy = first.slice();
      const other = new Uint8Array(60 * 60 * 3).fill(255);
      resizeCropBicubic(other, 60, 60, 20, 20, crop, kernels);
      expect(first).toEqual(copy);
      expect(first).toEqual(referenceResizeCropBicubic(src, 50, 40, 21, 17, crop));
    }
  });
});
