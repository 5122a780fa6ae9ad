import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunSpec } from '../../core/config/run-spec';
import type { Plan } from '../../core/dataset/plan';
import { syntheticDataset } from '../../core/dataset/synthetic';
import { readShards } from '../../core/embeddings/reader';
import { loadBundle } from '../../core/model/bundle';
import type { RouteResultFile } from '../../core/routes/route-result';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { parseS3Uri } from '../../core/storage/s3-uri';
import { exportDatasetAsWebDataset, inspectDataset } from '../../client/datasets';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import type { EvaluationSummary } from '../../contract/progress';
import { TINY_BUNDLE } from '../helpers/fixtures';
import { runPythonJson } from '../helpers/python';
import { putObjects, startPipeline, type TestPipeline, uniqueId } from '../helpers/stack';

// One set of images stored three ways: an ImageFolder, CLIP_benchmark's WebDataset written by
// Python's webdataset library, and Hugging Face's Parquet layout written by pyarrow. The three
// runs must plan the same (counts, classes), embed every image to the same vector and score
// every route the same: the format is storage, never a different evaluation.
let pipeline: TestPipeline;
let store: ObjectStore;
let bundleHash: string;
let uris: { folder: string; wds: string; parquet: string };
let samples: Record<string, { wds: string; parquet: [string, number] }>;
const runs: Partial<Record<keyof typeof uris, { runId: string; summary: EvaluationSummary }>> = {};
const PER_SPLIT = { train: 4, val: 1, test: 3 };
const TEMPLATES = ['a photo of a {c}.', 'a drawing of a {c}.'];

beforeAll(async () => {
  pipeline = await startPipeline();
  store = ObjectStore.connect(pipeline.env.s3);
  bundleHash = (await loadBundle(TINY_BUNDLE)).hash;
  const images = await syntheticDataset({ perSplit: PER_SPLIT, size: 72 });
  const dir = mkdtempSync(join(tmpdir(), 'clipeval-formats-'));
  try {
    for (const i of images) {
      mkdirSync(dirname(join(dir, 'folder', i.path)), { recursive: true });
      writeFileSync(join(dir, 'folder', i.path), i.body);
    }
    ({ samples } = runPythonJson(WRITE_FORMATS, {
      root: join(dir, 'folder'),
      out: dir,
      maxcount: 4, // several tars per split
      rowGroupSize: 2, // several row groups per file
      filesPerSplit: 2,
      templates: TEMPLATES,
    }) as { samples: typeof samples });
    const prefix = `${uniqueId('formats')}/`;
    const bucket = pipeline.env.s3.bucket;
    await putObjects(pipeline.env, bucket, prefix, filesUnder(dir));
    uris = {
      folder: `s3://${bucket}/${prefix}folder/`,
      wds: `s3://${bucket}/${prefix}wds/`,
      parquet: `s3://${bucket}/${prefix}parquet/`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
afterAll(() => pipeline?.close());

const WRITE_FORMATS = readFileSync(join(__dirname, '..', 'helpers', 'write_formats.py'), 'utf8');

function filesUnder(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p);
    }
  };
  walk(dir);
  return out;
}

/** Every route on a dataset; the few-shot counts take every train image, so all formats train alike. */
async function evaluate(uri: string, routes: 'all' | 'zero-shot' = 'all') {
  const spec = parseRunSpec({
    dataset: { uri },
    model: { bundle: pipeline.bundle },
    shardSize: 6,
    coop: { epochs: 2, nCtx: 4, enabled: routes === 'all' },
    probe: { enabled: routes === 'all' },
    fewShot: { shots: [PER_SPLIT.train], seeds: [1] },
  });
  const { runId } = await startEvaluation(pipeline.client, pipeline.env, spec, uniqueId('fmt'));
  const outcome = await waitForRun(pipeline.client, runId);
  if (outcome.status !== 'COMPLETED')
    expect.fail(`run on ${uri} ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
  return { runId, summary: outcome.summary };
}

async function planOf(runId: string): Promise<Plan> {
  return store.requireJson<Plan>(keys.plan(runId));
}

async function vectorsOf(summary: EvaluationSummary): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for await (const m of readShards(store, summary.extraction.shardKeys, { bundleHash }))
    m.rows.forEach((r, i) => out.set(r.key, m.embeddings.slice(i * m.dim, (i + 1) * m.dim)));
  return out;
}

/** The route results without what names the run (URIs, timings). */
async function metricsOf(summary: EvaluationSummary) {
  const out: Record<string, unknown> = {};
  for (const r of summary.routes) {
    const { bucket, key } = parseS3Uri(r.metricsUri);
    const file = await ObjectStore.connect({
      ...pipeline.env.s3,
      bucket,
    }).requireJson<RouteResultFile>(key);
    // The summary names its own run's metrics file; everything else must be equal.
    const summary: Partial<typeof file.summary> = { ...file.summary };
    delete summary.metricsUri;
    out[`${r.route}/${r.variant ?? ''}`] = { summary, metrics: file.metrics };
  }
  return out;
}

describe('WebDataset and Parquet give the run an ImageFolder gives', () => {
  beforeAll(async () => {
    for (const format of ['folder', 'wds', 'parquet'] as const)
      runs[format] = await evaluate(uris[format]);
  }, 600_000);

  it('plans the same counts and classes, each from its own format', async () => {
    const plans = {
      folder: await planOf(runs.folder!.runId),
      wds: await planOf(runs.wds!.runId),
      parquet: await planOf(runs.parquet!.runId),
    };
    expect(plans.folder.dataset.kind).toBe('image-folder');
    expect(plans.wds.dataset.kind).toBe('webdataset');
    expect(plans.parquet.dataset.kind).toBe('parquet');
    expect(plans.wds.dataset.templates).toEqual(TEMPLATES);
    for (const p of [plans.wds, plans.parquet]) {
      expect(p.counts).toEqual(plans.folder.counts);
      expect(p.classes).toEqual(plans.folder.classes);
      expect(p.classNames).toEqual(plans.folder.classNames);
      expect(p.dataset.skipped.count).toBe(0);
    }
  });

  it('embeds every image to the same vector', async () => {
    const folder = await vectorsOf(runs.folder!.summary);
    const wds = await vectorsOf(runs.wds!.summary);
    const parquet = await vectorsOf(runs.parquet!.summary);
    expect(folder.size).toBe(Object.keys(samples).length);
    for (const [path, at] of Object.entries(samples)) {
      const want = folder.get(`${uris.folder}${path}`)!;
      const row = `${uris.parquet}${at.parquet[0]}#row=${String(at.parquet[1]).padStart(10, '0')}`;
      expect(want).toBeDefined();
      expect(wds.get(`${uris.wds}${at.wds}`)).toEqual(want);
      expect(parquet.get(row)).toEqual(want);
    }
  });

  it('scores every route the same', async () => {
    const folder = await metricsOf(runs.folder!.summary);
    expect(Object.keys(folder).sort()).toEqual([
      'coop/4shot-seed1',
      'probe/4shot-seed1',
      'probe/all',
      'zero-shot/',
    ]);
    expect(await metricsOf(runs.wds!.summary)).toEqual(folder);
    expect(await metricsOf(runs.parquet!.summary)).toEqual(folder);
  });
});

describe('content addressing over containers', () => {
  it('a second run reuses every shard of both formats; a re-uploaded tar re-encodes only the shards with its samples', async () => {
    const first = runs.wds ?? (await evaluate(uris.wds, 'zero-shot'));
    const tar = `${parseS3Uri(uris.wds).key}train/0.tar`;
    const bytes = await store.requireBytes(tar);
    await store.putBytes(tar, bytes); // the same bytes: the same ETag
    const same = await evaluate(uris.wds, 'zero-shot');
    expect(same.summary.extraction.shardsReused).toBe(same.summary.extraction.shards);
    const parquetAgain = await evaluate(uris.parquet, 'zero-shot');
    expect(parquetAgain.summary.extraction.shardsReused).toBe(
      parquetAgain.summary.extraction.shards,
    );

    // Zeros after the end of the archive: every member is unchanged, the ETag is not.
    await store.putBytes(tar, Buffer.concat([bytes, Buffer.alloc(512)]));
    const changed = await evaluate(uris.wds, 'zero-shot');
    const plan = await planOf(changed.runId);
    const before = new Set(first.summary.extraction.shardKeys);
    const tarUri = store.uri(tar);
    let reencoded = 0;
    plan.shards.forEach((shard, i) => {
      const touched = shard.items.some((item) => item.part?.object === tarUri);
      const key = changed.summary.extraction.shardKeys[i]!;
      expect(before.has(key)).toBe(!touched);
      if (touched) reencoded++;
    });
    expect(reencoded).toBeGreaterThan(0);
    expect(reencoded).toBeLessThan(plan.shards.length);
    expect(changed.summary.extraction.shardsReused).toBe(plan.shards.length - reencoded);
  }, 300_000);
});

describe('inspect and export-wds over containers', () => {
  it('inspect reports each format with the same counts; Parquet exported as WebDataset embeds alike', async () => {
    const [folder, wds, parquet] = [
      await inspectDataset(pipeline.env, { uri: uris.folder }),
      await inspectDataset(pipeline.env, { uri: uris.wds }),
      await inspectDataset(pipeline.env, { uri: uris.parquet }),
    ];
    expect([folder.format, wds.format, parquet.format]).toEqual([
      'image-folder',
      'webdataset',
      'parquet',
    ]);
    for (const x of [wds, parquet]) {
      expect(x.splits).toEqual(folder.splits);
      expect(x.images).toBe(folder.images);
      expect(x.classes.fromDataset).toBe(true);
    }
    expect(wds.templates).toEqual(TEMPLATES);
    expect(wds.samples.test[0]).toBe(`${uris.wds}test/0.tar#s0000000.png`);

    const out = `${uris.parquet.replace(/parquet\/$/, '')}exported-wds/`;
    const exported = await exportDatasetAsWebDataset(
      pipeline.env,
      { uri: uris.parquet, out },
      { maxSamplesPerTar: 4, maxTarBytes: 1 << 20 },
    );
    expect(exported.samples).toBe(folder.images);
    expect(exported.failed.count).toBe(0);
    // The export holds the same image bytes: the same vectors as the ImageFolder's, split by split.
    const run = await evaluate(out, 'zero-shot');
    const asSet = (m: Map<string, Float32Array>) =>
      new Set(
        [...m.values()].map((v) =>
          Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex'),
        ),
      );
    expect(asSet(await vectorsOf(run.summary))).toEqual(
      asSet(await vectorsOf(runs.folder!.summary)),
    );
  }, 300_000);
});
