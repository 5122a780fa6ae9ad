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
  // Re-exported when an older exporter made it (no int8 variant, or no CoOp graph).
  const current = () => {
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as {
      graphs: { image: { int8?: string } };
      coop?: unknown;
    };
    return m.graphs.image.int8 !== undefined && m.coop !== undefined;
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

/** One 640x480 photo-like JPEG (noise plus a shape, so the encoder sees real entropy). */
export async function benchJpeg(i: number): Promise<Buffer> {
  const noise = Buffer.alloc(160 * 120 * 3);
  for (let j = 0; j < noise.length; j++) noise[j] = (j * 2654435761 + i * 40503) % 251;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480"><circle cx="${100 + (i % 90) * 5}" cy="240" r="${60 + (i % 40)}" fill="rgb(${(i * 7) % 255},90,160)"/></svg>`;
  return sharp(noise, { raw: { width: 160, height: 120, channels: 3 } })
    .resize(640, 480)
    .composite([{ input: Buffer.from(svg) }])
    .jpeg({ quality: 88 })
    .toBuffer();
}

/** `n` bench JPEGs cached in `dir`. */
export async function ensureImages(dir: string, n: number): Promise<Uint8Array[]> {
  mkdirSync(dir, { recursive: true });
  for (let i = readdirSync(dir).length; i < n; i++)
    writeFileSync(join(dir, `img-${String(i).padStart(5, '0')}.jpg`), await benchJpeg(i));
  return readdirSync(dir)
    .sort()
    .slice(0, n)
    .map((f) => new Uint8Array(readFileSync(join(dir, f))));
}
