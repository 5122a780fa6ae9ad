import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGpuActivities } from '../../activities';
import type { ClipevalEnv } from '../../core/config/env';
import { parseRunSpec, type RunSpecInput } from '../../core/config/run-spec';
import type { CaptionsFile } from '../../core/dataset/captions';
import type { Plan } from '../../core/dataset/plan';
import { planDataset } from '../../core/dataset/plan-dataset';
import { syntheticDataset } from '../../core/dataset/synthetic';
import { readMatrix } from '../../core/embeddings/reader';
import { planShardKeys } from '../../core/embeddings/shard-key';
import { loadBundle } from '../../core/model/bundle';
import { ClipTextEncoder } from '../../core/model/onnx/encoders';
import { tokenizerForBundle } from '../../core/model/text/tokenizer';
import { decodeCaptionBlock } from '../../core/routes/retrieval/caption-blocks';
import type {
  RetrievalResultFile,
  RetrievalSummary,
} from '../../core/routes/retrieval/retrieval-result';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { parseS3Uri } from '../../core/storage/s3-uri';
import { l2NormalizeRows } from '../../core/util/vectors';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import type { EvaluationSummary } from '../../contract/progress';
import { TINY_BUNDLE } from '../helpers/fixtures';
import {
  asWorkflow,
  putObjects,
  startPipeline,
  type TestPipeline,
  uniqueId,
} from '../helpers/stack';
import { packTar, sampleFiles } from '../helpers/wds-tars';

// Zero-shot retrieval through Temporal on the real stack: a captions-only WebDataset of real
// JPEGs, recall equal to a full-matrix recomputation from the stored embeddings, the summary and
// report sections, reuse of caption blocks and of the result, and bad captions named.
let env: ClipevalEnv;
let client: Client;
let bundle: string;
let pipeline: TestPipeline;

beforeAll(async () => {
  pipeline = await startPipeline();
  ({ env, client, bundle } = pipeline);
});
afterAll(() => pipeline.close());

const storeIn = (bucket = env.s3.bucket) => ObjectStore.connect({ ...env.s3, bucket });
const readJson = <T>(uri: string) => {
  const { bucket, key } = parseS3Uri(uri);
  return storeIn(bucket).requireJson<T>(key);
};
const CLASSIFICATION_OFF = {
  zeroShot: { enabled: false },
  coop: { enabled: false },
  probe: { enabled: false },
} as const;

const PHRASES: Record<string, string[]> = {
  red_circle: ['a red circle', 'a round red shape on a pale background', 'red disc'],
  greenSquare: ['a green square', 'a photo of a green box', 'green block'],
  'blue-triangle': ['a blue triangle', 'a pointed blue shape', 'blue wedge'],
};

/**
 * A captions-only WebDataset (no classnames.txt): 12 JPEG test images with 1 to 3 captions each,
 * one sample whose caption is too long (skipped at planning) and one whose image cannot be decoded
 * (left out of retrieval with its captions).
 */
async function uploadCaptioned(): Promise<{ uri: string; goodKeys: string[] }> {
  const images = await syntheticDataset({ perSplit: { train: 0, val: 0, test: 4 }, size: 48 });
  const samples = await Promise.all(
    images.map(async (img, n) => ({
      key: `s${String(n).padStart(7, '0')}`,
      jpeg: await sharp(img.body).jpeg({ quality: 90 }).toBuffer(),
      captions: PHRASES[img.className]!.slice(0, 1 + (n % 3)).map((p) => `${p} number ${n}`),
    })),
  );
  const files = samples.flatMap((s) => [
    ...sampleFiles([{ key: s.key, ext: 'jpg', image: s.jpeg }]),
    // CRLF and an empty line: split as str.splitlines, empty lines dropped.
    { name: `${s.key}.txt`, data: s.captions.join('\r\n') + '\n\n' },
  ]);
  files.push(
    { name: 's0000100.jpg', data: samples[0]!.jpeg },
    { name: 's0000100.txt', data: `${'x'.repeat(2001)}\n` },
    { name: 's0000101.jpg', data: 'not a jpeg at all' },
    { name: 's0000101.txt', data: 'a caption of an image that cannot be decoded\n' },
  );
  const prefix = `${uniqueId('captioned')}/`;
  await putObjects(env, env.s3.bucket, prefix, {
    'test/0.tar': await packTar(files),
    'test/nshards.txt': '1\n',
  });
  return { uri: `s3://${env.s3.bucket}/${prefix}`, goodKeys: samples.map((s) => s.key) };
}

async function run(uri: string, extra: Partial<RunSpecInput> = {}, runId = uniqueId('retr')) {
  const spec = parseRunSpec({
    dataset: { uri },
    model: { bundle },
    shardSize: 8,
    ...CLASSIFICATION_OFF,
    ...extra,
  });
  await startEvaluation(client, env, spec, runId);
  const outcome = await waitForRun(client, runId);
  if (outcome.status !== 'COMPLETED')
    expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
  return { runId, summary: outcome.summary };
}

/** CLIP_benchmark's recall from the full [captions, images] matrix, sorted (ties: lower index first). */
function fullMatrixRecall(
  images: Float32Array,
  texts: Float32Array,
  dim: number,
  captionImage: readonly number[],
  ks: readonly number[],
) {
  const nI = images.length / dim;
  const nT = texts.length / dim;
  const score = (t: number, i: number) => {
    let s = 0;
    for (let d = 0; d < dim; d++) s += texts[t * dim + d]! * images[i * dim + d]!;
    return Math.fround(s);
  };
  const scores = Array.from({ length: nT }, (_, t) =>
    Array.from({ length: nI }, (_, i) => score(t, i)),
  );
  const order = (row: number[]) =>
    row
      .map((s, j) => ({ s, j }))
      .sort((a, b) => b.s - a.s || a.j - b.j)
      .map((x) => x.j);
  const t2i: Record<string, number> = {};
  const i2t: Record<string, number> = {};
  for (const k of ks) {
    t2i[String(k)] =
      scores.filter((row, t) => order(row).slice(0, k).includes(captionImage[t]!)).length / nT;
    let hits = 0;
    for (let i = 0; i < nI; i++) {
      const top = order(scores.map((row) => row[i]!)).slice(0, k);
      if (top.some((t) => captionImage[t] === i)) hits++;
    }
    i2t[String(k)] = hits / nI;
  }
  return { imageToText: i2t, textToImage: t2i };
}

describe('zero-shot retrieval', () => {
  let uri: string;
  let goodKeys: string[];
  let first: { runId: string; summary: EvaluationSummary };

  beforeAll(async () => {
    ({ uri, goodKeys } = await uploadCaptioned());
    first = await run(uri);
  }, 300_000);

  it('ranks the captioned test images that decoded, and says which were left out', () => {
    const r = first.summary.retrieval!;
    expect(r).toBeDefined();
    expect(first.summary.routes).toEqual([]);
    expect(r.images).toBe(12);
    expect(r.captions).toBe(goodKeys.reduce((n, _, i) => n + 1 + (i % 3), 0));
    expect(r.notes.join('\n')).toMatch(/1 captioned test image\(s\) have no embedding/);
    expect(Object.keys(r.imageToText).sort()).toEqual(['1', '10', '5']);
  });

  it('equals CLIP_benchmark recall recomputed from the stored embeddings', async () => {
    const plan = await storeIn().requireJson<Plan>(keys.plan(first.runId));
    const local = await loadBundle(TINY_BUNDLE);
    const test = await readMatrix(storeIn(), planShardKeys(plan, local), {
      bundleHash: local.hash,
      split: 'test',
      view: 0,
    });
    const captions = await storeIn().requireJson<CaptionsFile>(keys.captions(first.runId));
    const file = await readJson<RetrievalResultFile>(first.summary.retrieval!.metricsUri);
    // The ranked images are the captions file's test images that have an embedding, in its order.
    const rowOf = new Map(test.rows.map((r, i) => [r.key, i]));
    const ranked = captions.images.filter((c) => rowOf.has(c.uri));
    expect(file.details.images).toEqual(ranked.map((c) => c.uri));
    const dim = test.dim;
    const images = new Float32Array(ranked.length * dim);
    ranked.forEach((c, j) => {
      const row = rowOf.get(c.uri)!;
      images.set(test.embeddings.subarray(row * dim, (row + 1) * dim), j * dim);
    });
    // Captions encoded here, directly with the text tower: the stored blocks hold the same.
    const texts = ranked.flatMap((c) => c.captions);
    const captionImage = ranked.flatMap((c, j) => c.captions.map(() => j));
    const encoder = await ClipTextEncoder.create(local, { threads: 1 });
    const tokens = (await tokenizerForBundle(local)).encodeBatch(texts);
    const direct = await encoder.encode(tokens.ids, tokens.shape);
    await encoder.close();
    const stored = await Promise.all(
      file.details.captionBlocks.map(async (u) => {
        const { bucket, key } = parseS3Uri(u);
        return decodeCaptionBlock(await storeIn(bucket).requireBytes(key));
      }),
    );
    expect(stored.flatMap((b) => b.texts)).toEqual(texts);
    const storedEmb = Float32Array.from(stored.flatMap((b) => Array.from(b.embeddings)));
    direct.forEach((v, i) => expect(storedEmb[i]).toBeCloseTo(v, 5));
    const ref = fullMatrixRecall(
      l2NormalizeRows(images, dim),
      l2NormalizeRows(storedEmb, dim),
      dim,
      captionImage,
      [1, 5, 10],
    );
    expect(first.summary.retrieval!.imageToText).toEqual(ref.imageToText);
    expect(first.summary.retrieval!.textToImage).toEqual(ref.textToImage);
    expect(file.details.captionImage).toEqual(captionImage);
  });

  it('writes the CLIP_benchmark layout, the summary section and the report table', async () => {
    const r = first.summary.retrieval!;
    const bench = await readJson<{ task: string; metrics: Record<string, number> }>(
      r.metricsUri.replace('metrics.json', 'clip-benchmark.json'),
    );
    expect(bench.task).toBe('zeroshot_retrieval');
    expect(Object.keys(bench.metrics).sort()).toEqual(
      [1, 5, 10]
        .flatMap((k) => [`image_retrieval_recall@${k}`, `text_retrieval_recall@${k}`])
        .sort(),
    );
    expect(bench.metrics['image_retrieval_recall@1']).toBe(r.textToImage['1']);
    expect(bench.metrics['text_retrieval_recall@5']).toBe(r.imageToText['5']);
    const summary = await readJson<{ retrieval: unknown }>(first.summary.summaryUri);
    expect(summary.retrieval).toEqual(r);
    const report = await readJson<{ retrieval: { imageToText: unknown } }>(
      first.summary.report.reportUri,
    );
    expect(report.retrieval.imageToText).toEqual(r.imageToText);
    const { key } = parseS3Uri(first.summary.report.htmlUri);
    const html = await storeIn().requireText(key);
    expect(html).toContain('<h2>Zero-shot retrieval</h2>');
    expect(html).toContain('image → text recall@k');
  });

  it('names the sample whose caption is too long (a counted skip)', async () => {
    const plan = await storeIn().requireJson<Plan>(keys.plan(first.runId));
    const skip = plan.dataset.skipped.examples.find((s) => s.uri.endsWith('#s0000100.jpg'));
    expect(skip?.reason).toMatch(/caption 1 is 2001 characters.*at most 2000/);
    expect(plan.classes).toEqual([]);
    expect(plan.dataset.captions?.images).toBe(13); // 12 good, 1 that does not decode
  });

  it('reuses its result when resumed, and another run reuses the caption blocks', async () => {
    const { activities } = createGpuActivities(env);
    const again: RetrievalSummary = await new MockActivityEnvironment(asWorkflow(first.runId)).run(
      activities.retrieveZeroShot,
      {
        runId: first.runId,
        planUri: `s3://${env.s3.bucket}/${keys.plan(first.runId)}`,
        bundle,
        augment: { views: 0, seed: 0 },
      },
    );
    expect(again.reused).toBe(true);
    expect(again.imageToText).toEqual(first.summary.retrieval!.imageToText);

    const second = await run(uri);
    const file = await readJson<RetrievalResultFile>(second.summary.retrieval!.metricsUri);
    expect(second.summary.retrieval!.reused).toBeUndefined();
    expect(file.details.captionBlocks.length).toBeGreaterThan(0);
    expect(file.details.captionBlocksReused).toBe(file.details.captionBlocks.length);
    expect(second.summary.retrieval!.textToImage).toEqual(first.summary.retrieval!.textToImage);
  }, 300_000);

  it('refuses the classification routes on a captions-only dataset, naming the fields', async () => {
    await expect(
      planDataset(storeIn(), {
        runId: uniqueId('retr-cls'),
        spec: { dataset: { uri }, model: { bundle }, coop: { enabled: false } },
      }),
    ).rejects.toThrow(/no labels.*Set zeroShot\.enabled, probe\.enabled to false/s);
  });
});

describe('captions in a manifest', () => {
  it('plans a JSONL manifest with captions, all test when it has no labels and no split', async () => {
    const prefix = `${uniqueId('capman')}/`;
    const img = await sharp({
      create: { width: 16, height: 16, channels: 3, background: { r: 9, g: 99, b: 199 } },
    })
      .jpeg()
      .toBuffer();
    await putObjects(env, env.s3.bucket, prefix, {
      'a.jpg': img,
      'b.jpg': img,
      'list.jsonl': [
        JSON.stringify({ key: 'a.jpg', captions: ['first', 'second'] }),
        JSON.stringify({ key: 'b.jpg', captions: ['third'] }),
      ].join('\n'),
      'bad.jsonl': [
        JSON.stringify({ key: 'a.jpg', captions: ['fine'] }),
        JSON.stringify({ key: 'b.jpg', captions: ['', 'empty first'] }),
        JSON.stringify({ key: 'b.jpg', captions: 'not a list' }),
      ].join('\n'),
    });
    const runId = uniqueId('capman');
    const plan = await planDataset(storeIn(), {
      runId,
      spec: {
        dataset: { uri: `s3://${env.s3.bucket}/${prefix}list.jsonl` },
        ...CLASSIFICATION_OFF,
      },
    });
    expect(plan.bySplit).toEqual({ train: 0, val: 0, test: 2 });
    expect(plan.routes.retrieval).toBe(true);
    const captions = await storeIn().requireJson<CaptionsFile>(keys.captions(runId));
    expect(captions.images.map((i) => i.captions)).toEqual([['first', 'second'], ['third']]);
    await expect(
      planDataset(storeIn(), {
        runId: uniqueId('capman'),
        spec: {
          dataset: { uri: `s3://${env.s3.bucket}/${prefix}bad.jsonl` },
          ...CLASSIFICATION_OFF,
        },
      }),
    ).rejects.toThrow(/row 2: caption 1 is empty.*row 3: captions is not a list of strings/s);
  });
});
