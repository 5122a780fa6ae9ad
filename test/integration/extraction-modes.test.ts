import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchJpeg } from '../../bench/fixtures';
import type { ClipevalEnv } from '../../core/config/env';
import { type ImageGraph, parseRunSpec, type PreprocessingMode } from '../../core/config/run-spec';
import { readShards } from '../../core/embeddings/reader';
import { decodeShard } from '../../core/embeddings/shard-format';
import { spaceOf } from '../../core/embeddings/shard-key';
import { loadBundle, type ModelBundle } from '../../core/model/bundle';
import { decodeToCropFast } from '../../core/model/image/fast-crop';
import { decodeToCrop } from '../../core/model/image/preprocess';
import { ImageEncoder } from '../../core/model/onnx/encoders';
import type { RouteResultFile } from '../../core/routes/route-result';
import { ObjectStore } from '../../core/storage/object-store';
import { parseS3Uri } from '../../core/storage/s3-uri';
import { cosine } from '../../core/util/vectors';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import type { EvaluationSummary } from '../../contract/progress';
import { TINY_BUNDLE } from '../helpers/fixtures';
import {
  startPipeline,
  type TestPipeline,
  testEnv,
  uniqueId,
  uploadShapes,
} from '../helpers/stack';

// extraction.preprocessing and extraction.imageGraph through Temporal, real workers and S3: each
// choice is its own embedding space (no shard reused across choices, each shard's metadata names
// its choice), its vectors are those of the chosen crop and graph, and zero-shot runs on them.
// A graph the bundle lacks fails the run at once, naming the bundle and the fix.
let env: ClipevalEnv;
let client: Client;
let bundleUri: string;
let pipeline: TestPipeline;
let tiny: ModelBundle;
let store: ObjectStore;
let dataset: string;

// 3 classes x 3 PNGs of 256 px (fast's libvips resize, not exact's fallback for small images),
// and a 640x480 JPEG (fast's shrink-on-load).
const TEST_IMAGES = 10;

beforeAll(async () => {
  pipeline = await startPipeline();
  ({ env, client, bundle: bundleUri } = pipeline);
  tiny = await loadBundle(TINY_BUNDLE);
  store = ObjectStore.connect(env.s3);
  const extra = { 'test/red_circle/photo.jpg': await benchJpeg(3) };
  const shapes = { size: 256, label: 'modes', extra };
  dataset = (await uploadShapes(env, { train: 0, val: 0, test: 3 }, shapes)).uri;
});
afterAll(() => pipeline?.close());

interface Choice {
  preprocessing: PreprocessingMode;
  imageGraph: ImageGraph;
}

/** A zero-shot run over the shared dataset (4 images a shard at most) with the given choice. */
async function run(extraction: Partial<Choice>, on = pipeline) {
  const spec = parseRunSpec({
    dataset: { uri: dataset },
    model: { bundle: bundleUri },
    shardSize: 4,
    extraction,
    coop: { enabled: false },
    probe: { enabled: false },
  });
  const { runId } = await startEvaluation(on.client, on.env, spec, uniqueId('modes'));
  return { runId, outcome: await waitForRun(on.client, runId) };
}

async function completed(extraction: Partial<Choice>, on = pipeline): Promise<EvaluationSummary> {
  const { outcome } = await run(extraction, on);
  if (outcome.status !== 'COMPLETED')
    expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
  return outcome.summary;
}

/** The space every shard key of a run is under (one per run), checked against spaceOf. */
function spaceOfRun(summary: EvaluationSummary, choice: Choice): string {
  const spaces = new Set(summary.extraction.shardKeys.map((k) => k.split('/')[1]));
  expect([...spaces]).toEqual([spaceOf(tiny, choice).space]);
  return [...spaces][0]!;
}

/** Every shard's schema metadata names the run's mode, graph and fingerprint. */
async function expectMetadata(summary: EvaluationSummary, choice: Choice) {
  for (const key of summary.extraction.shardKeys) {
    const { metadata } = decodeShard(await store.requireBytes(key));
    expect(metadata).toMatchObject({
      bundleHash: tiny.hash,
      preprocessing: choice.preprocessing,
      imageGraph: choice.imageGraph,
      preprocessFingerprint: spaceOf(tiny, choice).preprocessFingerprint,
    });
  }
}

/** Zero-shot ran on every test image and wrote its metrics. */
async function expectZeroShot(summary: EvaluationSummary) {
  const zs = summary.routes.filter((r) => r.route === 'zero-shot');
  expect(zs).toHaveLength(1);
  expect(zs[0]!.n).toBe(TEST_IMAGES);
  const { bucket, key } = parseS3Uri(zs[0]!.metricsUri);
  const file = await ObjectStore.connect({ ...env.s3, bucket }).requireJson<RouteResultFile>(key);
  expect(file.metrics.n).toBe(TEST_IMAGES);
  expect(file.summary.acc1).toBe(zs[0]!.acc1);
}

/** The run's vectors by image key. */
async function vectors(summary: EvaluationSummary): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for await (const m of readShards(store, summary.extraction.shardKeys, { bundleHash: tiny.hash }))
    m.rows.forEach((r, i) => out.set(r.key, m.embeddings.slice(i * m.dim, (i + 1) * m.dim)));
  expect(out.size).toBe(TEST_IMAGES);
  return out;
}

const distance = (a: Float32Array, b: Float32Array) =>
  Math.hypot(...Array.from(a, (x, i) => x - b[i]!));

/** An image's vector encoded here, in a batch of one, with a choice's crop and graph. */
async function directly(uri: string, choice: Choice, encoders: Map<ImageGraph, ImageEncoder>) {
  let encoder = encoders.get(choice.imageGraph);
  if (!encoder) {
    encoder = await ImageEncoder.create(tiny, { threads: 1, precision: choice.imageGraph });
    encoders.set(choice.imageGraph, encoder);
  }
  const image = store.at(uri);
  const bytes = await image.store.requireBytes(image.key);
  const crop = choice.preprocessing === 'fast' ? decodeToCropFast : decodeToCrop;
  return encoder.encode((await crop(bytes, tiny.manifest.preprocessing)).rgb.slice(), 1);
}

/**
 * Every vector of a run is the chosen crop through the chosen graph, encoded here (cosine >=
 * 0.99999: only the batch differs), and nearer to it than to `other`'s. The tiny random model
 * barely tells the choices apart (measured: fast vs exact and fp16 vs fp32 at distances 2e-5 to
 * 9e-4 between unit vectors), but a batch of one against the worker's batches moved none of them
 * at all (distance 0), so the nearer one says which mode and graph the worker really ran.
 */
async function expectEncodedAs(got: Map<string, Float32Array>, choice: Choice, other: Choice) {
  const encoders = new Map<ImageGraph, ImageEncoder>();
  try {
    const rows: string[] = [];
    for (const [uri, vector] of got) {
      const [mine, theirs] = [
        await directly(uri, choice, encoders),
        await directly(uri, other, encoders),
      ];
      expect(cosine(vector, mine)).toBeGreaterThanOrEqual(0.99999);
      const [near, far] = [distance(vector, mine), distance(vector, theirs)];
      rows.push(`${near.toExponential(1)} < ${far.toExponential(1)}`);
      expect(near).toBeLessThan(far);
    }
    console.log(
      `distance to ${JSON.stringify(choice)} < to ${JSON.stringify(other)}: ${rows.join(', ')}`,
    );
  } finally {
    await Promise.all([...encoders.values()].map((e) => e.close()));
  }
}

describe('extraction.preprocessing and extraction.imageGraph, through the workflow', () => {
  const FAST: Choice = { preprocessing: 'fast', imageGraph: 'fp32' };
  const EXACT: Choice = { preprocessing: 'exact', imageGraph: 'fp32' };
  const FP16: Choice = { preprocessing: 'exact', imageGraph: 'fp16' };

  it('fast: its own space, metadata fast/fp32, zero-shot metrics; then exact re-encodes every shard', async () => {
    const fast = await completed({ preprocessing: 'fast' });
    expect(fast.extraction).toMatchObject({ imagesDone: TEST_IMAGES, shardsReused: 0 });
    await expectMetadata(fast, FAST);
    await expectZeroShot(fast);

    const exact = await completed({ preprocessing: 'exact' });
    expect(exact.extraction).toMatchObject({ imagesDone: TEST_IMAGES, shardsReused: 0 });
    await expectMetadata(exact, EXACT);
    await expectZeroShot(exact);
    expect(spaceOfRun(fast, FAST)).not.toBe(spaceOfRun(exact, EXACT));

    await expectEncodedAs(await vectors(fast), FAST, EXACT);
    await expectEncodedAs(await vectors(exact), EXACT, FAST);

    // Within one choice shards are reused: the zeros above mean the spaces differ, nothing else.
    const again = await completed({ preprocessing: 'fast' });
    expect(again.extraction.shards).toBeGreaterThan(1);
    expect(again.extraction.shardsReused).toBe(again.extraction.shards);
    expect(again.extraction.shardKeys).toEqual(fast.extraction.shardKeys);
  }, 240_000);

  it('fp16: its own space, metadata exact/fp16, the fp16 graph’s vectors, zero-shot metrics', async () => {
    const fp16 = await completed({ imageGraph: 'fp16' });
    expect(fp16.extraction).toMatchObject({ imagesDone: TEST_IMAGES, shardsReused: 0 });
    await expectMetadata(fp16, FP16);
    await expectZeroShot(fp16);
    const others = [FAST, EXACT].map((c) => spaceOf(tiny, c).space);
    expect(others).not.toContain(spaceOfRun(fp16, FP16));

    await expectEncodedAs(await vectors(fp16), FP16, EXACT);

    // A spec naming no graph, planned by a cpu worker with CLIPEVAL_IMAGE_GRAPH=fp16 (its env):
    // the same space as the spec's fp16, so every shard is reused.
    const byEnv = await startPipeline({ ...testEnv(), imageGraph: 'fp16' });
    try {
      const planned = await completed({}, byEnv);
      expect(planned.extraction.shardsReused).toBe(planned.extraction.shards);
      expect(planned.extraction.shardKeys).toEqual(fp16.extraction.shardKeys);
    } finally {
      await byEnv.close();
    }
  }, 240_000);

  it('int8 with a bundle that has no int8 graph: fails at once, one attempt, naming the bundle and the fix', async () => {
    const { runId, outcome } = await run({ imageGraph: 'int8' });
    expect(outcome.status).toBe('FAILED');
    if (outcome.status !== 'FAILED') return;
    expect(outcome.error).toContain(`${bundleUri}: Bundle random-tiny (`);
    expect(outcome.error).toMatch(/has no int8 image graph/);
    expect(outcome.error).toMatch(/re-export it with --int8/);
    expect(outcome.error).toMatch(/extraction\.imageGraph/);
    const history = await client.workflow.getHandle(runId).fetchHistory();
    const events = history.events ?? [];
    const extractions = new Set(
      events
        .filter(
          (e) =>
            e.activityTaskScheduledEventAttributes?.activityType?.name === 'extractShardImages',
        )
        .map((e) => String(e.eventId)),
    );
    expect(extractions.size).toBeGreaterThan(0);
    const attempts = events.flatMap((e) => {
      const s = e.activityTaskStartedEventAttributes;
      return s && extractions.has(String(s.scheduledEventId)) ? [s.attempt ?? 0] : [];
    });
    expect(attempts.length).toBeGreaterThan(0);
    expect(attempts.every((a) => a === 1)).toBe(true);
    const failures = events.flatMap((e) => {
      const f = e.activityTaskFailedEventAttributes;
      return f && extractions.has(String(f.scheduledEventId)) ? [f.failure] : [];
    });
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) expect(f?.applicationFailureInfo?.nonRetryable).toBe(true);
  }, 120_000);
});
