import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunSpec } from '../../core/config/run-spec';
import { type SuiteSpecInput, parseSuiteSpec } from '../../core/config/suite-spec';
import { decodeShard } from '../../core/embeddings/shard-format';
import type { ExtractionCounts } from '../../core/runs/summary';
import { keys } from '../../core/storage/keys';
import { suiteCellRunId } from '../../core/util/suite-cells';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import { startSuite, waitForSuite } from '../../client/suites';
import type { EvaluationSummary } from '../../contract/progress';
import {
  type TestPipeline,
  startPipeline,
  testStore,
  uniqueId,
  uploadRenamedTinyBundle,
  uploadShapes,
} from '../helpers/stack';

// The decode-once pixel cache through Temporal, real workers and S3: a suite of 3 models of one
// geometry over one dataset, all cells at once, decodes each image once (the other cells read the
// crops the first wrote, or waited for it), the counts are in every cell's summary, the cells'
// embeddings equal a run that decoded afresh with the cache off, and a run in another geometry
// (fast preprocessing) decodes everything again.
let pipeline: TestPipeline;
let dataset: string;
let images: number;
const models: { name: string; bundle: string }[] = [];

beforeAll(async () => {
  pipeline = await startPipeline();
  const { env } = pipeline;
  models.push({ name: 'geo-a', bundle: pipeline.bundle });
  for (const name of ['geo-b', 'geo-c'])
    models.push({ name, bundle: await uploadRenamedTinyBundle(env, name) });
  // 3 classes x 10 images, 64 px, shards of 8: several shards and pixel blocks per cell.
  const shapes = await uploadShapes(env, { train: 6, val: 1, test: 3 }, { label: 'pixels' });
  dataset = shapes.uri;
  images = shapes.images.length;
}, 300_000);
afterAll(() => pipeline.close());

const run = {
  shardSize: 8,
  coop: { enabled: false },
  probe: { enabled: false },
} as const;

async function cellCounts(runId: string): Promise<ExtractionCounts> {
  const result = (await pipeline.client.workflow.getHandle(runId).result()) as EvaluationSummary;
  const written = await testStore(pipeline.env).requireJson<{ extraction: ExtractionCounts }>(
    keys.runSummary(runId),
  );
  // The run summary (summary.json) carries the same counts as the workflow's result.
  expect(written.extraction.imagesDecoded).toBe(result.extraction.imagesDecoded);
  expect(written.extraction.imagesFromPixelCache).toBe(result.extraction.imagesFromPixelCache);
  return written.extraction;
}

/** A run's embeddings, every shard's float32 bytes in order, and its row keys. */
async function embeddingsOf(runId: string): Promise<{ bytes: Buffer; rows: string[] }> {
  const result = (await pipeline.client.workflow.getHandle(runId).result()) as EvaluationSummary;
  const store = testStore(pipeline.env);
  const parts: Buffer[] = [];
  const rows: string[] = [];
  for (const key of result.extraction.shardKeys) {
    const shard = decodeShard(await store.requireBytes(key));
    const e = shard.embeddings;
    parts.push(Buffer.from(e.buffer, e.byteOffset, e.byteLength));
    rows.push(...shard.rows.map((r) => `${r.key}#${r.view}`));
  }
  return { bytes: Buffer.concat(parts), rows };
}

describe('the pixel cache across a suite', () => {
  const suiteId = uniqueId('pixel-suite');

  beforeAll(async () => {
    const spec = parseSuiteSpec({
      models,
      datasets: [{ name: 'shapes', uri: dataset }],
      concurrency: 3,
      run,
    } satisfies SuiteSpecInput);
    await startSuite(pipeline.client, pipeline.env, spec, suiteId);
    const outcome = await waitForSuite(pipeline.client, suiteId);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));
    expect(outcome.summary.completed).toBe(3);
  }, 600_000);

  it('decodes each image once for the whole suite and counts it in every cell summary', async () => {
    const counts = await Promise.all(
      models.map((m) => cellCounts(suiteCellRunId(suiteId, m.name, 'shapes'))),
    );
    for (const c of counts) {
      expect(c.shardsReused).toBe(0); // three models: three embedding spaces, nothing reused
      expect(c.imagesDone).toBe(images);
      expect(c.imagesDecoded + c.imagesFromPixelCache).toBe(images);
    }
    expect(counts.reduce((t, c) => t + c.imagesDecoded, 0)).toBe(images);
    expect(counts.reduce((t, c) => t + c.imagesFromPixelCache, 0)).toBe(2 * images);
  });

  it('gives a model from cached crops the bytes it gets decoding afresh (cache off)', async () => {
    // The cell that read the most crops from the cache (cells running at once share the
    // decoding block by block, so each may have decoded some).
    let reader = models[0]!;
    let most = -1;
    for (const m of models) {
      const c = await cellCounts(suiteCellRunId(suiteId, m.name, 'shapes'));
      if (c.imagesFromPixelCache > most) [reader, most] = [m, c.imagesFromPixelCache];
    }
    expect(most).toBeGreaterThan(0);
    const spec = parseRunSpec({
      dataset: { uri: dataset },
      model: { bundle: reader.bundle },
      ...run,
      extraction: { pixelCache: 'off' },
    });
    // Another run id, the same embedding space: its shards would be reused, so empty them first.
    const cell = suiteCellRunId(suiteId, reader.name, 'shapes');
    const cached = await embeddingsOf(cell);
    expect(cached.rows).toHaveLength(images);
    const result = (await pipeline.client.workflow.getHandle(cell).result()) as EvaluationSummary;
    const store = testStore(pipeline.env);
    for (const key of result.extraction.shardKeys) {
      await store.delete(key);
      await store.delete(keys.manifestOfShard(key));
    }
    const { runId } = await startEvaluation(pipeline.client, pipeline.env, spec, uniqueId('fresh'));
    const outcome = await waitForRun(pipeline.client, runId);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));
    expect(outcome.summary.extraction.shardsReused).toBe(0);
    expect(outcome.summary.extraction.imagesDecoded).toBe(images);
    expect(outcome.summary.extraction.imagesFromPixelCache).toBe(0);
    const fresh = await embeddingsOf(runId);
    expect(fresh.rows).toEqual(cached.rows);
    expect(fresh.bytes.equals(cached.bytes)).toBe(true); // byte-identical, not merely close
  }, 300_000);

  it('is not read by a run of another geometry (fast preprocessing)', async () => {
    const spec = parseRunSpec({
      dataset: { uri: dataset },
      model: { bundle: models[0]!.bundle },
      ...run,
      extraction: { preprocessing: 'fast' },
    });
    const { runId } = await startEvaluation(pipeline.client, pipeline.env, spec, uniqueId('fast'));
    const outcome = await waitForRun(pipeline.client, runId);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));
    expect(outcome.summary.extraction.imagesDecoded).toBe(images);
    expect(outcome.summary.extraction.imagesFromPixelCache).toBe(0);
  }, 300_000);
});
