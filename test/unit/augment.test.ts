import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { augmentedView, randomResizedCropBox, viewRandom } from '../../core/model/image/augment';
import { decodeToCrop, decodeToViews } from '../../core/model/image/preprocess';
import { TINY_GOLDEN } from '../helpers/fixtures';

describe('training augmentation (RandomResizedCrop + horizontal flip)', () => {
  it('draws boxes inside the image with scale 0.08..1 and ratio 3/4..4/3', () => {
    const rand = viewRandom('0', 'img', 1);
    for (let i = 0; i < 500; i++) {
      const b = randomResizedCropBox(640, 480, rand);
      expect(b.left).toBeGreaterThanOrEqual(0);
      expect(b.top).toBeGreaterThanOrEqual(0);
      expect(b.left + b.width).toBeLessThanOrEqual(640);
      expect(b.top + b.height).toBeLessThanOrEqual(480);
      const scale = (b.width * b.height) / (640 * 480);
      expect(scale).toBeGreaterThan(0.07);
      expect(scale).toBeLessThanOrEqual(1.0);
      expect(b.width / b.height).toBeGreaterThan(0.7);
      expect(b.width / b.height).toBeLessThan(1.4);
    }
  });

  it('falls back to a ratio-clamped central crop when no draw fits (a 4000x10 strip)', () => {
    const b = randomResizedCropBox(4000, 10, viewRandom('0', 'strip', 1));
    expect(b).toEqual({ top: 0, left: Math.floor((4000 - 13) / 2), height: 10, width: 13 });
  });

  it('is deterministic per (seed, image, view) and differs across views and seeds', () => {
    const draw = (seed: string, id: string, view: number) => {
      const r = viewRandom(seed, id, view);
      return [r(), r(), r()];
    };
    expect(draw('0', 'a', 1)).toEqual(draw('0', 'a', 1));
    expect(draw('0', 'a', 1)).not.toEqual(draw('0', 'a', 2));
    expect(draw('0', 'a', 1)).not.toEqual(draw('1', 'a', 1));
    for (const x of draw('0', 'a', 3)) expect(x >= 0 && x < 1).toBe(true);
  });

  it('decodes once into the center crop plus K views of the right size', async () => {
    const bytes = readFileSync(join(TINY_GOLDEN, 'images', 'photo.jpg'));
    const crops = await decodeToViews(
      bytes,
      { imageSize: 224 },
      { views: 3, seed: '7', imageId: 'photo' },
    );
    expect(crops).toHaveLength(4);
    expect(
      Buffer.from(crops[0]!).equals(
        Buffer.from((await decodeToCrop(bytes, { imageSize: 224 })).rgb),
      ),
    ).toBe(true);
    for (const c of crops) expect(c.length).toBe(224 * 224 * 3);
    expect(Buffer.from(crops[1]!).equals(Buffer.from(crops[2]!))).toBe(false);
    const again = await decodeToViews(
      bytes,
      { imageSize: 224 },
      { views: 3, seed: '7', imageId: 'photo' },
    );
    expect(again.map((c) => Buffer.from(c).toString('base64'))).toEqual(
      crops.map((c) => Buffer.from(c).toString('base64')),
    );
  });

  it('flips horizontally exactly (a view of a left-right gradient mirrors it when flipped)', () => {
    const w = 64;
    const data = new Uint8Array(w * w * 3).map((_, i) => Math.floor((i / 3) % w) * 4);
    let flipped = 0;
    for (let v = 1; v <= 20; v++) {
      const out = augmentedView({ data, width: w, height: w }, 16, viewRandom('s', 'g', v));
      if (out[0]! > out[15 * 3]!) flipped++;
    }
    expect(flipped).toBeGreaterThan(3);
    expect(flipped).toBeLessThan(17);
  });
});
