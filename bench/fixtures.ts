// Shared by the benchmarks: the full-size random ViT-B/32 bundle and generated photo-like JPEGs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';

export const ROOT = resolve(__dirname, '..');
export const PYTHON = join(ROOT, '.venv', 'bin', 'python');
export const BENCH_BUNDLE = join(ROOT, '.clipeval', 'bundles', 'random-vit-b-32');

/** Exports the random-init ViT-B/32 bundle (with int8 variants and the CoOp graph), once. */
export function ensureBundle(dir: string): void {
  const manifest = join(dir, 'bundle.json');
  // Re-exported when an older exporter made it (no int8 variant, no CoOp graph, no uint8 graphs).
  const current = () => {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as {
      graphs: { image: { int8?: string; variants?: { fp16?: unknown; int8?: unknown } } };
      coop?: unknown;
    };
    const v = m.graphs.image.variants;
    return m.graphs.image.int8 !== undefined && m.coop !== undefined && !!v?.fp16 && !!v.int8;
  };
  if (existsSync(manifest) && current()) return;
  if (!existsSync(PYTHON))
    throw new Error('No exporter venv: run bash infra/exporter/setup.sh first');
  console.log('exporting the random-init ViT-B/32 bundle (once)...');
  const args = [
    join(ROOT, 'infra/exporter/export.py'),
    '--random-init',
    'vit-b-32',
    '--seed',
    '0',
    '--out',
    dir,
    '--int8',
  ];
  if (spawnSync(PYTHON, args, { stdio: 'inherit' }).status !== 0) throw new Error('export failed');
}

/**
 * One photo-like JPEG, 640x480 unless `size` says otherwise (noise plus a shape, so the encoder
 * sees real entropy); `format: 'webp'` encodes the same picture as lossy WebP. At 640x480 the
 * bytes are what they always were (the benchmarks' images).
 */
export async function benchJpeg(
  i: number,
  size: [number, number] = [640, 480],
  format: 'jpeg' | 'webp' = 'jpeg',
): Promise<Buffer> {
  const [w, h] = size;
  // The scene's detail is 160 noise samples across whatever the pixel size: a larger image is
  // the same scene at a higher resolution, as a camera would take it.
  const [nw, nh] = [160, Math.max(1, Math.round((160 * h) / w))];
  const noise = Buffer.alloc(nw * nh * 3);
  for (let j = 0; j < noise.length; j++) noise[j] = (j * 2654435761 + i * 40503) % 251;
  const [cx, cy, r] = [
    (w * (100 + (i % 90) * 5)) / 640,
    h / 2,
    (Math.min(w, h) * (60 + (i % 40))) / 480,
  ];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><circle cx="${cx}" cy="${cy}" r="${r}" fill="rgb(${(i * 7) % 255},90,160)"/></svg>`;
  const picture = sharp(noise, { raw: { width: nw, height: nh, channels: 3 } })
    .resize(w, h)
    .composite([{ input: Buffer.from(svg) }]);
  return (
    format === 'webp' ? picture.webp({ quality: 88 }) : picture.jpeg({ quality: 88 })
  ).toBuffer();
}

/** `n` bench JPEGs cached in `dir`. */
export async function ensureImages(
  dir: string,
  n: number,
  size: [number, number] = [640, 480],
): Promise<Uint8Array[]> {
  mkdirSync(dir, { recursive: true });
  for (let i = readdirSync(dir).length; i < n; i++)
    writeFileSync(join(dir, `img-${String(i).padStart(5, '0')}.jpg`), await benchJpeg(i, size));
  return readdirSync(dir)
    .sort()
    .slice(0, n)
    .map((f) => new Uint8Array(readFileSync(join(dir, f))));
}
