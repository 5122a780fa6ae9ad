import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundleError, loadBundle, type ModelBundle } from '../../core/model/bundle';
import { normalizeInto } from '../../core/model/image/preprocess';
import { ImageEncoder, selectGraph } from '../../core/model/onnx/encoders';
import { cosine } from '../../core/util/vectors';
import { goldenImages, TINY_BUNDLE, TINY_GOLDEN } from '../helpers/fixtures';

// The uint8 NHWC image graphs of the tiny bundle against its float32 NCHW reference graph, on the
// golden crops (not used to build the model). Tolerances are on L2-normalised embeddings:
// - uint8 fp32: max abs <= 1e-5 (the graph's normalisation table is exact: measured 0 here);
// - fp16 on ONNX Runtime's CPU provider: cosine >= 0.999 per image, max abs <= 0.02 (the
//   exporter's bounds; measured ~0.9999999 and ~3e-4). The CPU provider runs most fp16 nodes
//   through inserted casts in fp32, so this checks fp16 storage, not fp16 arithmetic.
let bundle: ModelBundle;
let float: ImageEncoder;
let crops: Uint8Array[];
const open: ImageEncoder[] = [];

beforeAll(async () => {
  bundle = await loadBundle(TINY_BUNDLE);
  float = await ImageEncoder.create(bundle, { threads: 1, inputFormat: 'float32-nchw' });
  open.push(float);
  crops = await Promise.all(
    goldenImages().map(async (g) => {
      const data = await sharp(join(TINY_GOLDEN, g.crop)).removeAlpha().raw().toBuffer();
      return new Uint8Array(data);
    }),
  );
});
afterAll(async () => {
  for (const e of open) await e.close();
});

const S = () => bundle.manifest.preprocessing.imageSize;
const floatBatch = () => {
  const p = bundle.manifest.preprocessing;
  const out = new Float32Array(crops.length * 3 * S() * S());
  crops.forEach((c, i) => normalizeInto(c, p, out, i * 3 * S() * S()));
  return out;
};
const byteBatch = () => Buffer.concat(crops);
const rows = (a: Float32Array, d: number) =>
  Array.from({ length: a.length / d }, (_, i) => a.subarray(i * d, (i + 1) * d));

async function encoderFor(precision: 'fp32' | 'fp16'): Promise<ImageEncoder> {
  const e = await ImageEncoder.create(bundle, { threads: 1, precision });
  open.push(e);
  return e;
}

describe('uint8 NHWC image graphs', () => {
  it('are what fp32 and fp16 select, and take uint8 [n, S, S, 3]', async () => {
    const e = await encoderFor('fp32');
    expect(e.inputFormat).toBe('uint8-nhwc');
    expect(selectGraph(bundle, 'image', { precision: 'fp16' }).file).toBe('image.u8.fp16.onnx');
    expect(float.inputFormat).toBe('float32-nchw');
    expect(e.allocate(2)).toEqual(new Uint8Array(2 * S() * S() * 3));
    await expect(e.encode(new Float32Array(3 * S() * S()), 1)).rejects.toThrow(
      /takes uint8-nhwc pixels \(Uint8Array\), got a Float32Array/,
    );
    await expect(e.encode(new Uint8Array(5), 1)).rejects.toThrow(/expected 1x224x224x3/);
  });

  it("fp32: the float graph's embeddings on the golden crops (max abs <= 1e-5)", async () => {
    const e = await encoderFor('fp32');
    const want = await float.encode(floatBatch(), crops.length);
    const got = await e.encode(byteBatch(), crops.length);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    console.log(`uint8 fp32 vs float graph: max abs ${worst} over ${crops.length} images`);
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  it('fp16 runs on the CPU provider: cosine >= 0.999 per image, max abs <= 0.02', async () => {
    const e = await encoderFor('fp16');
    expect(e.provider).toBe('cpu');
    const d = bundle.manifest.architecture.embedDim;
    const want = await float.encode(floatBatch(), crops.length);
    const got = await e.encode(byteBatch(), crops.length);
    const cos = rows(got, d).map((r, i) => cosine(r, rows(want, d)[i]!));
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    console.log(`fp16 vs fp32: min cosine ${Math.min(...cos)}, max abs ${worst}`);
    for (const c of cos) expect(c).toBeGreaterThanOrEqual(0.999);
    expect(worst).toBeLessThanOrEqual(0.02);
  });

  it('hands the batch buffer back for the next batch, unchanged', async () => {
    const e = await encoderFor('fp32');
    const batch = byteBatch();
    const copy = Uint8Array.from(batch);
    const { embeddings, pixels } = await e.encodeReturning(batch, crops.length);
    expect(batch.byteLength).toBe(0); // moved to the session's thread
    expect(Buffer.from(pixels).equals(Buffer.from(copy))).toBe(true);
    expect(embeddings.length).toBe(crops.length * bundle.manifest.architecture.embedDim);
  });
});

describe('bundles without variants, and bad ones', () => {
  const edited = async (edit: (m: { graphs: { image: Record<string, unknown> } }) => void) => {
    const dir = mkdtempSync(join(tmpdir(), 'clipeval-graphs-'));
    cpSync(TINY_BUNDLE, dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8')) as {
      graphs: { image: Record<string, unknown> };
    };
    edit(m);
    writeFileSync(join(dir, 'bundle.json'), JSON.stringify(m));
    return loadBundle(dir);
  };

  it('an old bundle: fp32 falls back to the float graph; fp16 and uint8 are refused', async () => {
    const old = await edited((m) => delete m.graphs.image.variants);
    expect(selectGraph(old, 'image')).toEqual({
      file: 'image.onnx',
      input: 'pixel_values',
      output: 'image_embeds',
      inputFormat: 'float32-nchw',
    });
    expect(() => selectGraph(old, 'image', { precision: 'fp16' })).toThrow(
      /has no fp16 image graph: re-export it/,
    );
    expect(() => selectGraph(old, 'image', { inputFormat: 'uint8-nhwc' })).toThrow(BundleError);
    expect(() => selectGraph(old, 'image', { precision: 'int8' })).toThrow(/--int8/);
  });

  it('refuses a variant file outside the folder or an unknown input format', async () => {
    await expect(
      edited((m) => {
        (m.graphs.image.variants as { fp16: { file: string } }).fp16.file = '../x.onnx';
      }),
    ).rejects.toThrow(/graphs\.image\.variants\.fp16\.file is "\.\.\/x\.onnx"/);
    await expect(
      edited((m) => {
        (m.graphs.image.variants as { fp16: { inputFormat: string } }).fp16.inputFormat = 'png';
      }),
    ).rejects.toThrow(/inputFormat/);
    await expect(
      edited((m) => {
        (m.graphs.image.variants as { fp16: { file: string } }).fp16.file = 'unlisted.onnx';
      }),
    ).rejects.toThrow(/uses unlisted\.onnx but does not list its sha256/);
  });
});
