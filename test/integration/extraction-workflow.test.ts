import type { Client } from '@temporalio/client';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec } from '../../core/config/run-spec';
import { readMatrix } from '../../core/embeddings/reader';
import { ObjectStore } from '../../core/storage/object-store';
import { loadBundle } from '../../core/model/bundle';
import { ImageEncoder } from '../../core/model/onnx/encoders';
import { preprocessImage, preprocessParams } from '../../core/model/image/preprocess';
import { cosine } from '../../core/util/vectors';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import { TINY_BUNDLE } from '../helpers/fixtures';
import {
  deleteObject,
  putObjects,
  startPipeline,
  type TestPipeline,
  tinyPng,
  uniqueId,
} from '../helpers/stack';

// Extraction through Temporal: shards reused across runs, corrupt images quarantined, and runs
// that cannot produce any embedding fail clearly.
let env: ClipevalEnv;
let client: Client;
let bundle: string;
let pipeline: TestPipeline;

beforeAll(async () => {
  pipeline = await startPipeline();
  ({ env, client, bundle } = pipeline);
});
afterAll(() => pipeline.close());

async function run(prefix: string, opts: { shardSize?: number; bundle?: string } = {}) {
  const spec = parseRunSpec({
    dataset: { uri: `s3://${env.s3.bucket}/${prefix}` },
    model: { bundle: opts.bundle ?? bundle },
    shardSize: opts.shardSize ?? 8,
    ...EXTRACTION_ONLY,
  });
  const { runId } = await startEvaluation(client, env, spec, uniqueId('extract'));
  return waitForRun(client, runId);
}

/** Outside readers: pyarrow and DuckDB (in the project venv) read every shard and check it. */
async function checkWithPyarrow(shardKeys: string[], rows: number) {
  const python = join(__dirname, '..', '..', '.venv', 'bin', 'python');
  if (!existsSync(python)) expect.fail(`${python} is missing: run bash infra/exporter/setup.sh`);
  const dir = mkdtempSync(join(tmpdir(), 'clipeval-shards-'));
  const store = ObjectStore.connect(env.s3);
  const files = await Promise.all(
    shardKeys.map(async (key, i) => {
      const file = join(dir, `${i}.arrow`);
      writeFileSync(file, await store.requireBytes(key));
      return file;
    }),
  );
  const expected = { rows, dim: 16, bundle_hash: (await loadBundle(TINY_BUNDLE)).hash };
  const r = spawnSync(
    python,
    [
      join(__dirname, '..', '..', 'infra', 'checks', 'check_shards.py'),
      JSON.stringify(expected),
      ...files,
    ],
    { encoding: 'utf8' },
  );
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(new RegExp(`^ok: ${files.length} shards, ${rows} rows`));
}

/** Every shard row equals the encoder called directly on the same file (cosine >= 0.99999). */
async function expectEqualToDirectEncoding(shardKeys: string[]) {
  const tiny = await loadBundle(TINY_BUNDLE);
  const store = ObjectStore.connect(env.s3);
  const matrix = await readMatrix(store, shardKeys, {
    bundleHash: tiny.hash,
  });
  // The float reference graph: the worker's default (the uint8 graph) must give its embeddings.
  const encoder = await ImageEncoder.create(tiny, { threads: 1, inputFormat: 'float32-nchw' });
  try {
    const p = tiny.manifest.preprocessing;
    const params = preprocessParams(p);
    for (const [i, row] of matrix.rows.entries()) {
      const image = store.at(row.key);
      const direct = await encoder.encode(
        await preprocessImage(await image.store.requireBytes(image.key), params),
        1,
      );
      expect(
        cosine(matrix.embeddings.subarray(i * matrix.dim, (i + 1) * matrix.dim), direct),
      ).toBeGreaterThanOrEqual(0.99999);
    }
  } finally {
    await encoder.close();
  }
}

async function images(prefix: string, names: string[], from = 0) {
  const files: Record<string, Buffer> = {};
  for (const [i, name] of names.entries()) files[name] = await tinyPng(from + i);
  await putObjects(env, env.s3.bucket, prefix, files);
}

describe('evaluateDataset: extraction', () => {
  it('re-encodes only the shards around images added to one class', async () => {
    const prefix = `${uniqueId('grow')}/`;
    await images(
      prefix,
      Array.from(
        { length: 48 },
        (_, i) => `train/${['cat', 'dog', 'owl'][i % 3]}/${String(i).padStart(3, '0')}.png`,
      ),
    );
    const first = await run(prefix);
    if (first.status !== 'COMPLETED') expect.fail(`first run: ${first.status}`);
    expect(first.summary.extraction).toMatchObject({ imagesDone: 48, shardsReused: 0 });
    await checkWithPyarrow(first.summary.extraction.shardKeys, 48);
    await expectEqualToDirectEncoding(first.summary.extraction.shardKeys);

    await images(prefix, ['train/dog/017a.png', 'train/dog/017b.png'], 100);
    const second = await run(prefix);
    if (second.status !== 'COMPLETED') expect.fail(`second run: ${second.status}`);
    const x = second.summary.extraction;
    expect(x.imagesDone).toBe(50);
    expect(x.shards - x.shardsReused).toBeGreaterThanOrEqual(1);
    expect(x.shards - x.shardsReused).toBeLessThanOrEqual(3);
    console.log(
      `after adding 2 images: ${x.shards - x.shardsReused} of ${x.shards} shards encoded, ${x.shardsReused} reused`,
    );

    // A shard deleted and another corrupted in S3 are detected (manifest hash) and re-extracted.
    const keysNow = x.shardKeys;
    await deleteObject(env, env.s3.bucket, keysNow[0]!);
    await putObjects(env, env.s3.bucket, '', { [keysNow[1]!]: 'garbage' });
    const third = await run(prefix);
    if (third.status !== 'COMPLETED') expect.fail(`third run: ${third.status}`);
    expect(third.summary.extraction.shardsReused).toBe(x.shards - 2);
    expect(third.summary.extraction.shardKeys).toEqual(keysNow);
    await checkWithPyarrow(third.summary.extraction.shardKeys, 50);
  });

  it('quarantines a corrupt image in every shard and completes', async () => {
    const prefix = `${uniqueId('corrupt')}/`;
    await images(
      prefix,
      Array.from({ length: 12 }, (_, i) => `train/${i % 2 ? 'a' : 'b'}/${i}.png`),
    );
    const corrupt: Record<string, string> = {};
    for (let i = 0; i < 12; i += 3) corrupt[`train/${i % 2 ? 'a' : 'b'}/${i}x.png`] = 'not a png';
    await putObjects(env, env.s3.bucket, prefix, corrupt);
    const r = await run(prefix, { shardSize: 4 });
    if (r.status !== 'COMPLETED') expect.fail(`run: ${r.status}`);
    expect(r.summary.extraction).toMatchObject({ imagesDone: 12, imagesFailed: 4 });
  });

  it('fails clearly when no image can be decoded', async () => {
    const prefix = `${uniqueId('allbad')}/`;
    await putObjects(env, env.s3.bucket, prefix, {
      'test/a/1.png': 'x',
      'test/a/2.png': 'y',
      'test/b/3.jpg': '',
    });
    const r = await run(prefix);
    expect(r.status).toBe('FAILED');
    if (r.status === 'FAILED')
      expect(r.error).toMatch(/No image of 3 could be decoded \(3 failed\)/);
  });

  it('fails without retrying when the model bundle does not exist', async () => {
    const prefix = `${uniqueId('nobundle')}/`;
    await images(prefix, ['test/a/1.png']);
    const r = await run(prefix, { bundle: `s3://${env.s3.bucket}/models/does-not-exist/` });
    expect(r.status).toBe('FAILED');
    if (r.status === 'FAILED')
      expect(r.error).toMatch(/Cannot read s3:\/\/.*does-not-exist\/bundle\.json/);
  });
});
