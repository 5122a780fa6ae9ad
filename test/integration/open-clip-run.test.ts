import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunSpec } from '../../core/config/run-spec';
import { loadBundle, uploadBundle } from '../../core/model/bundle';
import { ImageEncoder } from '../../core/model/onnx/encoders';
import { ObjectStore } from '../../core/storage/object-store';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import { VENV_PYTHON } from '../helpers/python';
import { startPipeline, type TestPipeline, uniqueId, uploadShapes } from '../helpers/stack';

// Issue 15, item 5: a bundle exported from an OpenCLIP model (a tiny ViT-B-32-shaped config,
// seeded random weights) runs a whole evaluation on the real stack: zero-shot with its
// OpenCLIP tokenizer, CoOp through its own gradient graph, and the probe.
const EXPORT = join(__dirname, '..', '..', 'infra', 'exporter', 'export.py');
const CONFIG = {
  embed_dim: 16,
  vision_cfg: { image_size: 224, layers: 2, width: 32, head_width: 8, patch_size: 32 },
  text_cfg: { context_length: 77, vocab_size: 49408, width: 32, heads: 4, layers: 2 },
};

let pipeline: TestPipeline;
let dir: string;
let bundleUri: string;
let bundleDir: string;

beforeAll(async () => {
  pipeline = await startPipeline();
  dir = mkdtempSync(join(tmpdir(), 'clipeval-open-clip-run-'));
  const config = join(dir, 'tiny-oc.json');
  writeFileSync(config, JSON.stringify(CONFIG));
  const out = join(dir, 'bundle');
  const args = ['--open-clip', config, '--random-init', 'open-clip', '--seed', '1', '--out', out];
  const r = spawnSync(VENV_PYTHON, [EXPORT, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`export failed: ${r.stderr}`);
  bundleDir = out;
  const bundle = await loadBundle(out);
  expect(bundle.manifest.family).toBe('open-clip');
  bundleUri = `s3://${pipeline.env.s3.bucket}/models/open-clip-${bundle.hash.slice(0, 16)}/`;
  await uploadBundle(ObjectStore.connect(pipeline.env.s3), out, bundleUri);
}, 300_000);
afterAll(async () => {
  await pipeline?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('an OpenCLIP-exported bundle', () => {
  it('has an fp16 image graph that opens (no ONNX Runtime crash) and agrees with fp32', async () => {
    const bundle = await loadBundle(bundleDir);
    const fp32 = await ImageEncoder.create(bundle, { threads: 1 });
    const fp16 = await ImageEncoder.create(bundle, { threads: 1, precision: 'fp16' });
    const n = 3;
    const pixels = fp32.allocate(n).map((_, i) => (i * 7919) % 256);
    const a = await fp32.encode(pixels.slice(), n);
    const b = await fp16.encode(pixels.slice(), n);
    await Promise.all([fp32.close(), fp16.close()]);
    const d = a.length / n;
    for (let i = 0; i < n; i++) {
      let cos = 0;
      for (let j = 0; j < d; j++) cos += a[i * d + j]! * b[i * d + j]!;
      expect(cos).toBeGreaterThanOrEqual(0.999); // the exporter's fp16 bound (unit vectors)
    }
  }, 120_000);

  it('runs zero-shot, CoOp and the probe to completion', async () => {
    const { uri } = await uploadShapes(
      pipeline.env,
      { train: 2, val: 1, test: 2 },
      { label: 'oc' },
    );
    const spec = parseRunSpec({
      dataset: { uri },
      model: { bundle: bundleUri },
      coop: { epochs: 2, nCtx: 4 },
      fewShot: { shots: [2], seeds: [1] },
    });
    const { runId } = await startEvaluation(pipeline.client, pipeline.env, spec, uniqueId('oc'));
    const outcome = await waitForRun(pipeline.client, runId);
    if (outcome.status !== 'COMPLETED')
      expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
    const routes = outcome.summary.routes.map((r) => `${r.route}/${r.variant ?? ''}`).sort();
    expect(routes).toEqual(['coop/2shot-seed1', 'probe/2shot-seed1', 'probe/all', 'zero-shot/']);
    for (const r of outcome.summary.routes) expect(r.n).toBe(6); // 3 classes x 2 test images
  }, 300_000);
});
