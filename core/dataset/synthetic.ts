/**
 * @file A small, real image dataset generated on the spot (no download): coloured shapes on noisy
 * backgrounds, one class per shape. Used by the demo and the tests; seeded, so the same arguments
 * give the same bytes.
 */
import sharp from 'sharp';
import type { Split } from './types';

/** The classes, one per shape. */
export const SYNTHETIC_CLASSES = ['red_circle', 'greenSquare', 'blue-triangle'] as const;

export interface SyntheticImage {
  /** Relative path in ImageFolder form: `<split>/<class>/<n>.png`. */
  path: string;
  className: string;
  split: Split;
  body: Buffer;
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function shapeSvg(className: string, r: () => number, size: number): string {
  const cx = size * (0.3 + 0.4 * r());
  const cy = size * (0.3 + 0.4 * r());
  const s = size * (0.15 + 0.15 * r());
  const bg = `rgb(${Math.floor(180 + 60 * r())},${Math.floor(180 + 60 * r())},${Math.floor(180 + 60 * r())})`;
  const shape =
    className === 'red_circle'
      ? `<circle cx="${cx}" cy="${cy}" r="${s}" fill="rgb(220,30,30)"/>`
      : className === 'greenSquare'
        ? `<rect x="${cx - s}" y="${cy - s}" width="${2 * s}" height="${2 * s}" fill="rgb(30,180,40)"/>`
        : `<polygon points="${cx},${cy - s} ${cx - s},${cy + s} ${cx + s},${cy + s}" fill="rgb(30,60,220)"/>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="${bg}"/>${shape}</svg>`;
}

export async function syntheticDataset(opts: {
  perSplit: Record<Split, number>;
  seed?: number;
  size?: number;
}): Promise<SyntheticImage[]> {
  const r = rng(opts.seed ?? 1);
  const out: SyntheticImage[] = [];
  for (const className of SYNTHETIC_CLASSES) {
    for (const split of ['train', 'val', 'test'] as const) {
      for (let n = 0; n < opts.perSplit[split]; n++) {
        const size = opts.size ?? 96 + Math.floor(r() * 64);
        const body = await sharp(Buffer.from(shapeSvg(className, r, size)))
          .png()
          .toBuffer();
        out.push({
          path: `${split}/${className}/${String(n).padStart(4, '0')}.png`,
          className,
          split,
          body,
        });
      }
    }
  }
  return out;
}
