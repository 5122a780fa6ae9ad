import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { failFastOnPermanentErrors } from '../../activities/permanent-errors';
import { type PlanDatasetInput, planDatasetActivity } from '../../activities/plan-dataset';
import type { PlanningLimits } from '../../core/config/run-limits';
import { EXTRACTION_ONLY, parseRunSpec } from '../../core/config/run-spec';
import { type PlanningProgress, loadDataset } from '../../core/dataset/load';
import { type PlanSummary, buildPlan } from '../../core/dataset/plan';
import { DatasetError, type DatasetItem } from '../../core/dataset/types';
import { JsonTooLargeError } from '../../core/storage/object-store';
import { PermanentError } from '../../core/util/errors';
import { MemoryS3 } from '../helpers/memory-s3';

// Planning against an in-memory S3 (the real ObjectStore over a fake client): bucket-root
// datasets, the object and class limits, progress while manifest objects are HEADed, and JSON
// too large for one string. Issue 12, items 6 and 7.

const storeOn = (s3: MemoryS3) => s3.store('out');
const datasetSpec = (uri: string) => ({
  ...parseRunSpec({ dataset: { uri: 's3://bkt/placeholder/' }, ...EXTRACTION_ONLY }).dataset,
  uri, // bypasses the spec's own check, as a hand-made workflow input would
});
const limits = (l: Partial<PlanningLimits> = {}): PlanningLimits => ({
  maxDatasetObjects: 5_000_000,
  maxClasses: 100_000,
  ...l,
});

describe('planning: the bucket root is never listed', () => {
  it('refuses an ImageFolder or a manifest at the bucket root, naming the fix', async () => {
    const s3 = new MemoryS3(['out']);
    s3.put('bkt', 'list.jsonl', '{"key":"s3://bkt/a/1.jpg","label":"a"}\n');
    for (const uri of ['s3://bkt/', 's3://bkt', 's3://bkt/list.jsonl']) {
      const load = loadDataset(storeOn(s3), datasetSpec(uri));
      await expect(load).rejects.toThrow(DatasetError);
      await expect(loadDataset(storeOn(s3), datasetSpec(uri))).rejects.toThrow(
        /at the bucket root, so planning would list the whole bucket "bkt"\. Put the dataset under a prefix \(e\.g\. s3:\/\/bkt\/my-dataset\//,
      );
    }
    expect(s3.count('ListObjectsV2')).toBe(0);
    // The run spec refuses it before anything starts.
    expect(() => parseRunSpec({ dataset: { uri: 's3://bkt/' } })).toThrow(
      /dataset\.uri: a dataset cannot be the bucket root/,
    );
  });
});

describe('planning: CLIPEVAL_MAX_DATASET_OBJECTS', () => {
  it('stops listing an ImageFolder past the limit, with a message', async () => {
    const s3 = new MemoryS3(['out']);
    for (let i = 0; i < 3500; i++) s3.put('bkt', `ds/c${i % 2}/${i}.jpg`, 'x');
    const load = loadDataset(storeOn(s3), datasetSpec('s3://bkt/ds/'), {
      limits: limits({ maxDatasetObjects: 1500 }),
    });
    await expect(load).rejects.toThrow(
      /has more than 1500 objects \(2000 listed so far\); one run plans at most 1500 \(CLIPEVAL_MAX_DATASET_OBJECTS\)/,
    );
    expect(s3.count('ListObjectsV2')).toBe(2); // not the 4 pages of the whole prefix
  });

  it('refuses a manifest with more rows than the limit', async () => {
    const s3 = new MemoryS3(['out']);
    const rows = Array.from({ length: 30 }, (_, i) => `{"key":"${i}.jpg","label":"a"}`);
    s3.put('bkt', 'ds/list.jsonl', rows.join('\n'));
    await expect(
      loadDataset(storeOn(s3), datasetSpec('s3://bkt/ds/list.jsonl'), {
        limits: limits({ maxDatasetObjects: 20 }),
      }),
    ).rejects.toThrow(
      /has 30 rows; one run plans at most 20 objects \(CLIPEVAL_MAX_DATASET_OBJECTS\)/,
    );
  });

  it("HEADs each row instead of keeping a listing of the manifest's folder past the limit", async () => {
    const s3 = new MemoryS3(['out']);
    for (let i = 0; i < 2500; i++) s3.put('bkt', `ds/img/${i}.jpg`, 'x');
    const rows = Array.from({ length: 10 }, (_, i) => `{"key":"img/${i}.jpg","label":"c${i % 2}"}`);
    s3.put('bkt', 'ds/list.jsonl', rows.join('\n'));
    const loaded = await loadDataset(storeOn(s3), datasetSpec('s3://bkt/ds/list.jsonl'), {
      limits: limits({ maxDatasetObjects: 1500 }),
    });
    expect(loaded.items).toHaveLength(10);
    expect(s3.count('ListObjectsV2')).toBe(2);
    expect(s3.count('HeadObject')).toBe(1 + 10); // the manifest, then each row
  });
});

describe('planning: progress while manifest objects are checked', () => {
  // 1,000 rows with full s3:// URIs in another bucket: none is in the listing of the manifest's
  // folder, so each is HEADed (16 at a time), which took longer than the heartbeat timeout.
  const manifestOfFullUris = () => {
    const s3 = new MemoryS3(['out']);
    const rows = Array.from({ length: 1000 }, (_, i) => {
      s3.put('images', `all/${i}.jpg`, 'x');
      return JSON.stringify({
        key: `s3://images/all/${i}.jpg`,
        label: `c${i % 2}`,
        split: i % 5 ? 'train' : 'test',
      });
    });
    s3.put('bkt', 'ds/list.jsonl', rows.join('\n'));
    return s3;
  };

  it('reports progress while the HEADs run, not only after', async () => {
    const s3 = manifestOfFullUris();
    const progress: PlanningProgress[] = [];
    const loaded = await loadDataset(storeOn(s3), datasetSpec('s3://bkt/ds/list.jsonl'), {
      onProgress: (p) => {
        progress.push(p);
        s3.accesses.push({ op: 'progress', bucket: '', key: String(p.rowsChecked) });
      },
    });
    expect(loaded.items).toHaveLength(1000);
    const checked = progress.map((p) => p.rowsChecked ?? 0).filter((n) => n > 0);
    expect(checked).toEqual([256, 512, 768, 1000]);
    expect(progress.at(-1)).toMatchObject({ rowsChecked: 1000, rows: 1000 });
    // The first report of checked rows comes long before the last HEAD.
    const firstReport = s3.accesses.findIndex((a) => a.op === 'progress' && a.key === '256');
    const lastHead = s3.accesses.map((a) => a.op === 'HeadObject').lastIndexOf(true);
    expect(firstReport).toBeGreaterThan(0);
    expect(firstReport).toBeLessThan(lastHead - 500);
  });

  it('heartbeats that progress from the planDataset activity, and writes compact JSON', async () => {
    const s3 = manifestOfFullUris();
    const beats: unknown[] = [];
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const activity = planDatasetActivity({ store: storeOn(s3) });
    const summary = await env.run<[PlanDatasetInput], PlanSummary, typeof activity>(activity, {
      runId: 'r1',
      spec: { dataset: { uri: 's3://bkt/ds/list.jsonl' }, ...EXTRACTION_ONLY },
    });
    expect(summary.images).toBe(1000);
    expect(beats).toContainEqual({ objectsListed: 1, rowsChecked: 256, rows: 1000 });
    expect(beats.at(-1)).toEqual({ objectsListed: 1, rowsChecked: 1000, rows: 1000 });
    const plan = Buffer.from(s3.get('out', 'runs/r1/plan.json')!).toString('utf8');
    expect(plan).not.toMatch(/\n/); // compact: no indentation
    expect((JSON.parse(plan) as { counts: { total: number } }).counts.total).toBe(1000);
  });
});

describe('planning: CLIPEVAL_MAX_CLASSES', () => {
  const items = (classes: number): DatasetItem[] =>
    Array.from({ length: classes * 2 }, (_, i) => ({
      uri: `s3://bkt/ds/${i}.jpg`,
      size: 1,
      etag: `e${i}`,
      className: `class${i % classes}`,
      split: i < classes ? 'train' : 'test',
    }));
  const plan = (classes: number, maxClasses: number) =>
    buildPlan({
      runId: 'r',
      spec: parseRunSpec({ dataset: { uri: 's3://bkt/ds/' }, ...EXTRACTION_ONLY }),
      kind: 'manifest',
      items: items(classes),
      skipped: [],
      limits: limits({ maxClasses }),
    });

  it('refuses more classes than the limit at planning, naming the setting', () => {
    expect(plan(5, 5).classes).toHaveLength(5);
    expect(() => plan(6, 5)).toThrow(DatasetError);
    expect(() => plan(6, 5)).toThrow(
      /has 6 classes; one run handles at most 5 \(CLIPEVAL_MAX_CLASSES: per-class metrics/,
    );
  });
});

describe('JSON too large for one string', () => {
  // V8 refuses strings past ~2^29 characters with RangeError "Invalid string length"; a value
  // whose toJSON throws that RangeError stands in for a 512 MiB plan or metrics file.
  const huge = {
    toJSON() {
      throw new RangeError('Invalid string length');
    },
  };

  it('is a permanent JsonTooLargeError naming the object and what to change; nothing is written', async () => {
    const s3 = new MemoryS3(['out']);
    const write = storeOn(s3).putJson('runs/r/plan.json', huge, 'Split the dataset.');
    await expect(write).rejects.toThrow(JsonTooLargeError);
    const err = await storeOn(s3)
      .putJson('runs/r/plan.json', huge, 'Split the dataset.')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(
      /^s3:\/\/out\/runs\/r\/plan\.json is too large to write as JSON \(Invalid string length: one JSON file holds at most \d+ characters\)\. Split the dataset\.$/,
    );
    expect(s3.count('PutObject')).toBe(0);
  });

  it('fails the activity without retries', async () => {
    const activity = failFastOnPermanentErrors(() =>
      storeOn(new MemoryS3(['out'])).putJson('k.json', huge),
    );
    await expect(activity()).rejects.toMatchObject({
      name: 'ApplicationFailure',
      type: 'JsonTooLargeError',
      nonRetryable: true,
    });
  });
});
