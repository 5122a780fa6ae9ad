import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleError, loadBundle, type ModelBundle } from '../../core/model/bundle';
import { ImageEncoder, ClipTextEncoder } from '../../core/model/onnx/encoders';
import { normalizeInto, preprocessImage } from '../../core/model/image/preprocess';
import { cosine } from '../../core/util/vectors';
import { goldenImages, goldenTexts, TINY_BUNDLE, TINY_GOLDEN } from '../helpers/fixtures';

// Parity of the ONNX encoders with HF transformers (PyTorch) on the tiny random-init bundle.
// Inputs are the golden set, which was not used to build or export the graphs.
let bundle: ModelBundle;
let images: ImageEncoder;
let texts: ClipTextEncoder;

beforeAll(async () => {
  bundle = await loadBundle(TINY_BUNDLE);
  // The float reference graph (these tests feed normalised float32 NCHW pixels).
  images = await ImageEncoder.create(bundle, { threads: 1, inputFormat: 'float32-nchw' });
  texts = await ClipTextEncoder.create(bundle, { threads: 1 });
});
afterAll(async () => {
  await images.close();
  await texts.close();
});

describe('model bundle', () => {
  it('loads and verifies the tiny bundle', () => {
    expect(bundle.manifest.architecture.embedDim).toBe(16);
    expect(bundle.manifest.logitScale).toBeCloseTo(100, 3);
    expect(bundle.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  const copy = () => {
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-bundle-'));
    cpSync(TINY_BUNDLE, dir, { recursive: true });
    return dir;
  };

  it('refuses a file whose sha256 does not match', async () => {
    const dir = copy();
    writeFileSync(join(dir, 'merges.txt'), readFileSync(join(dir, 'merges.txt'), 'utf8') + 'x y\n');
    await expect(loadBundle(dir)).rejects.toThrow(
      /sha256 of merges\.txt is [0-9a-f]{64}, bundle\.json says/,
    );
  });

  it('refuses a bundle with a missing file', async () => {
    const dir = copy();
    rmSync(join(dir, 'text.onnx'));
    await expect(loadBundle(dir)).rejects.toThrow(/is missing text\.onnx/);
    await expect(loadBundle(join(dir, 'nope'))).rejects.toThrow(/bundle\.json is missing/);
  });

  it('says how to get int8 graphs when the bundle has none', async () => {
    await expect(ImageEncoder.create(bundle, { precision: 'int8' })).rejects.toThrow(
      /has no int8 image graph: re-export it with --int8/,
    );
  });

  it('refuses graphs whose input names do not match bundle.json', async () => {
    const dir = copy();
    const manifest = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8')) as {
      graphs: { image: { input: string } };
    };
    manifest.graphs.image.input = 'pixels';
    writeFileSync(join(dir, 'bundle.json'), JSON.stringify(manifest));
    const renamed = await loadBundle(dir);
    const float = { threads: 1, inputFormat: 'float32-nchw' } as const;
    await expect(ImageEncoder.create(renamed, float)).rejects.toThrow(BundleError);
    await expect(ImageEncoder.create(renamed, float)).rejects.toThrow(
      /has inputs \[pixel_values\].*names pixels/,
    );
  });
});

describe('encoders vs HF transformers', () => {
  it('image embeddings from the reference pixel tensors: cosine >= 0.99999', async () => {
    const golden = goldenImages();
    const s = bundle.manifest.preprocessing.imageSize;
    const pixels = new Float32Array(golden.length * 3 * s * s);
    for (const [i, g] of golden.entries()) {
      const { data } = await sharp(join(TINY_GOLDEN, g.crop))
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const p = bundle.manifest.preprocessing;
      normalizeInto(
        new Uint8Array(data),
        { imageSize: s, mean: p.mean, std: p.std, rescale: p.rescale },
        pixels,
        i * 3 * s * s,
      );
    }
    const emb = await images.encode(pixels, golden.length);
    const d = bundle.manifest.architecture.embedDim;
    const cos = golden.map((g, i) => cosine(emb.subarray(i * d, (i + 1) * d), g.embedding));
    console.log(
      `image parity (pixel tensors): min cosine ${Math.min(...cos).toFixed(8)} over ${cos.length} images`,
    );
    for (const c of cos) expect(c).toBeGreaterThanOrEqual(0.99999);
  });

  it('image embeddings from image files (sharp preprocessing vs CLIPImageProcessor): cosine >= 0.999', async () => {
    const golden = goldenImages();
    const p = bundle.manifest.preprocessing;
    const params = { imageSize: p.imageSize, mean: p.mean, std: p.std, rescale: p.rescale };
    const size = 3 * p.imageSize * p.imageSize;
    const pixels = new Float32Array(golden.length * size);
    for (const [i, g] of golden.entries()) {
      pixels.set(await preprocessImage(readFileSync(join(TINY_GOLDEN, g.file)), params), i * size);
    }
    const emb = await images.encode(pixels, golden.length);
    const d = bundle.manifest.architecture.embedDim;
    const cos = golden.map((g, i) => cosine(emb.subarray(i * d, (i + 1) * d), g.embedding));
    console.log(
      'image parity (files):',
      golden.map((g, i) => `${g.file.slice(7)} ${cos[i]!.toFixed(6)}`).join(', '),
    );
    for (const c of cos) expect(c).toBeGreaterThanOrEqual(0.999);
  });

  it('text embeddings from the reference token ids: cosine >= 0.99999, and padding never matters', async () => {
    const golden = goldenTexts();
    const ids = BigInt64Array.from(golden.flatMap((g) => g.ids.map(BigInt)));
    const emb = await texts.encode(ids, [golden.length, 77]);
    const d = bundle.manifest.architecture.embedDim;
    const cos = golden.map((g, i) => cosine(emb.subarray(i * d, (i + 1) * d), g.embedding));
    console.log(
      `text parity (token ids): min cosine ${Math.min(...cos).toFixed(8)} over ${cos.length} prompts`,
    );
    for (const c of cos) expect(c).toBeGreaterThanOrEqual(0.99999);

    // Cut at the longest end token (causal mask: later positions cannot change the pooled output).
    const first = golden[0]!;
    const len = first.ids.indexOf(49407) + 1;
    const short = await texts.encode(BigInt64Array.from(first.ids.slice(0, len).map(BigInt)), [
      1,
      len,
    ]);
    expect(cosine(short, emb.subarray(0, d))).toBeGreaterThan(0.999999);
  });

  it('falls back along the provider list to one that loads, with the same embeddings', async () => {
    const enc = await ImageEncoder.create(bundle, {
      providers: ['cuda', 'webgpu', 'cpu'],
      threads: 1,
      inputFormat: 'float32-nchw',
    });
    try {
      expect(['cuda', 'webgpu', 'cpu']).toContain(enc.provider);
      const g = goldenImages()[0]!;
      const s = bundle.manifest.preprocessing.imageSize;
      const { data } = await sharp(join(TINY_GOLDEN, g.crop))
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const pixels = new Float32Array(3 * s * s);
      const p = bundle.manifest.preprocessing;
      normalizeInto(
        new Uint8Array(data),
        { imageSize: s, mean: p.mean, std: p.std, rescale: p.rescale },
        pixels,
        0,
      );
      expect(cosine(await enc.encode(pixels, 1), g.embedding)).toBeGreaterThan(0.9999);
    } finally {
      await enc.close();
    }
  });

  it('keeps batches independent (a row does not depend on its neighbours)', async () => {
    const g = goldenTexts().slice(0, 3);
    const one = await texts.encode(BigInt64Array.from(g[1]!.ids.map(BigInt)), [1, 77]);
    const three = await texts.encode(
      BigInt64Array.from(g.flatMap((x) => x.ids.map(BigInt))),
      [3, 77],
    );
    const d = bundle.manifest.architecture.embedDim;
    expect(cosine(one, three.subarray(d, 2 * d))).toBeGreaterThan(0.999999);
  });
});
