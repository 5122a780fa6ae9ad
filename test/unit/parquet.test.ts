import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PLANNING_LIMITS } from '../../core/config/run-limits';
import { EXTRACTION_ONLY, parseRunSpec, type DatasetSpec } from '../../core/config/run-spec';
import { loadDataset, type LoadedDataset } from '../../core/dataset/load';
import { loadParquet } from '../../core/dataset/parquet/load-parquet';
import { parquetPartReader } from '../../core/dataset/parquet/read-parquet';
import { PartUnreadableError } from '../../core/dataset/parts';
import type { PlanItem } from '../../core/dataset/plan';
import { DatasetError } from '../../core/dataset/types';
import { ObjectChangedError, ObjectTooLargeError } from '../../core/storage/object-store';
import { extractShard, type ShardManifest } from '../../core/embeddings/extract-shard';
import { decodeShard } from '../../core/embeddings/shard-format';
import { loadBundle, type ModelBundle } from '../../core/model/bundle';
import { TINY_BUNDLE } from '../helpers/fixtures';
import { MemoryS3 } from '../helpers/memory-s3';
import { standInEncoder } from '../helpers/stand-in-encoder';
import { imageBytes, type ParquetFixture, writeParquetFixtures } from '../helpers/parquet-fixtures';

// Issue 14, the Parquet source: Hugging Face's layout (data/<split>-NNNNN-of-NNNNN.parquet, or
// the parquet-converter's <config>/<split>/0000.parquet), files written by pyarrow as `datasets`
// writes them, read from an in-memory S3 through the real ObjectStore.

const CARD = `---
dataset_info:
  features:
  - name: image
    dtype: image
  - name: label
    dtype:
      class_label:
        names:
          '0': cat
          '1': dog
          '2': bird
  splits:
  - name: train
    num_examples: 9
---
# A card
`;

const INFOS = JSON.stringify({
  default: { features: { label: { names: ['alpha', 'beta'], _type: 'ClassLabel' } } },
});

/** Bytes of the hub images: a few KiB, so image reads stand out from label reads. */
const HUB_REPEAT = 400;

/** About 1 MiB per image. */
const BIG_REPEAT = 180_000;

/** Datasets (folders under the fixture dir), each uploaded under s3://bkt/<name>/. */
const FIXTURES: ParquetFixture[] = [
  // hub: README names win over the files' own metadata (x, y, z).
  {
    path: 'hub/data/train-00000-of-00002.parquet',
    labels: [0, 1, 0, 1, 0, 1],
    tag: 'tA',
    hfNames: ['x', 'y', 'z'],
    imageRepeat: HUB_REPEAT,
  },
  {
    path: 'hub/data/train-00001-of-00002.parquet',
    labels: [1, 0, 1],
    tag: 'tB',
    imageRepeat: HUB_REPEAT,
    hfNames: ['x', 'y', 'z'],
  },
  {
    path: 'hub/data/test-00000-of-00001.parquet',
    labels: [0, 1, 0, 1, 1],
    tag: 'te',
    rowGroupSize: 2,
    imageRepeat: HUB_REPEAT,
  },
  {
    path: 'hub/data/validation-00000-of-00001.parquet',
    labels: [0, 1],
    tag: 'va',
    imageRepeat: HUB_REPEAT,
  },
  // converter layout, zstd and gzip pages, names from dataset_infos.json
  {
    path: 'converter/default/train/0000.parquet',
    labels: [0, 1, 1, 0, 1],
    tag: 'cz',
    compression: 'zstd',
    imageRepeat: 2000,
  },
  {
    path: 'converter/default/validation/0000.parquet',
    labels: [1, 0],
    tag: 'cg',
    compression: 'gzip',
  },
  {
    path: 'meta-only/data/train-00000-of-00001.parquet',
    labels: [0, 1, 1],
    tag: 'm',
    hfNames: ['u', 'v'],
  },
  { path: 'no-names/data/train-00000-of-00001.parquet', labels: [0, 1], tag: 'n' },
  {
    path: 'bad-labels/data/train-00000-of-00001.parquet',
    labels: [0, 5, null, -1, 1],
    tag: 'bl',
    hfNames: ['p', 'q'],
    emptyRowGroupAfter: 2,
  },
  { path: 'no-label/data/train-00000-of-00001.parquet', labels: [0], tag: 'x', label: 'none' },
  {
    path: 'string-label/data/train-00000-of-00001.parquet',
    labels: [0],
    tag: 'x',
    label: 'string',
  },
  {
    path: 'int32-label/data/train-00000-of-00001.parquet',
    labels: [1, 0],
    tag: 'i32',
    label: 'int32',
    hfNames: ['a', 'b'],
  },
  {
    path: 'string-image/data/train-00000-of-00001.parquet',
    labels: [0],
    tag: 'x',
    image: 'string',
    hfNames: ['a'],
  },
  {
    path: 'no-image/data/train-00000-of-00001.parquet',
    labels: [0],
    tag: 'x',
    image: 'none',
    hfNames: ['a'],
  },
  {
    path: 'binary-image/data/train-00000-of-00001.parquet',
    labels: [0, 1],
    tag: 'bin',
    image: 'binary',
    hfNames: ['a', 'b'],
  },
  {
    path: 'null-image/data/train-00000-of-00001.parquet',
    labels: [0, 1, 0],
    tag: 'ni',
    nullImages: [1],
    hfNames: ['a', 'b'],
  },
  { path: 'bad-split/data/extra-00000-of-00001.parquet', labels: [0], tag: 'x', hfNames: ['a'] },
  {
    path: 'corrupt/data/train-00000-of-00001.parquet',
    labels: [0, 1],
    tag: 'c',
    hfNames: ['a', 'b'],
  },
  // A row group whose image column is over 2 MiB uncompressed (hyparquet then reads each leaf on its own).
  {
    path: 'big/data/train-00000-of-00001.parquet',
    labels: [0, 1, 0],
    tag: 'big',
    imageRepeat: BIG_REPEAT,
    compression: 'none',
    hfNames: ['a', 'b'],
  },
];

/** Three PNGs, for a real extraction from Parquet. */
const pngs = () =>
  Promise.all(
    [1, 2, 3].map((n) =>
      sharp({
        create: { width: 20 + n, height: 20, channels: 3, background: { r: 40 * n, g: 0, b: 0 } },
      })
        .png()
        .toBuffer(),
    ),
  );

let dir: string;
let s3: MemoryS3;
let bundle: ModelBundle;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'clipeval-parquet-'));
  const images = (await pngs()).map((b) => b.toString('base64'));
  writeParquetFixtures(dir, [
    ...FIXTURES,
    {
      path: 'pngs/data/test-00000-of-00001.parquet',
      labels: [0, 1, 0],
      tag: 'png',
      images,
      nullImages: [1],
      hfNames: ['red', 'blue'],
    },
  ]);
  bundle = await loadBundle(TINY_BUNDLE);
  s3 = new MemoryS3(['bkt']);
  for (const file of walk(dir)) s3.put('bkt', relative(dir, file), readFileSync(file));
  s3.put('bkt', 'hub/README.md', CARD);
  s3.put('bkt', 'hub/.gitattributes', '*.parquet filter=lfs');
  s3.put('bkt', 'converter/dataset_infos.json', INFOS);
  // A corrupt footer: the file's last bytes are not the magic.
  const good = s3.get('bkt', 'corrupt/data/train-00000-of-00001.parquet')!;
  const bad = Buffer.from(good);
  bad.write('XXXX', bad.length - 4);
  s3.put('bkt', 'corrupt/data/train-00000-of-00001.parquet', bad);
  // A footer whose metadata is garbage, and a text file named .parquet.
  const garbled = Buffer.from(good);
  const length = garbled.readUInt32LE(garbled.length - 8);
  for (let i = garbled.length - 8 - length; i < garbled.length - 8; i++)
    garbled[i] = (i * 131) & 255;
  s3.put('bkt', 'garbled/data/train-00000-of-00001.parquet', garbled);
  s3.put('bkt', 'not-parquet/data/train-00000-of-00001.parquet', 'label,image\n0,cat.png\n');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function walk(d: string): string[] {
  return readdirSync(d).flatMap((n) => {
    const p = join(d, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const spec = (name: string, extra: Partial<DatasetSpec> = {}): DatasetSpec =>
  parseRunSpec({ dataset: { uri: `s3://bkt/${name}/`, ...extra }, ...EXTRACTION_ONLY }).dataset;

const load = (name: string, extra: Partial<DatasetSpec> = {}) =>
  loadDataset(s3.store('bkt'), spec(name, extra));

/** The loaded items as plan items (label ids from the label space). */
function planItems(loaded: LoadedDataset): PlanItem[] {
  return loaded.items.map((i) => ({
    uri: i.uri,
    size: i.size,
    etag: i.etag,
    label: loaded.classes!.indexOf(i.className!),
    split: i.split,
    ...(i.part ? { part: i.part } : {}),
  }));
}

const planError = async (p: Promise<unknown>): Promise<string> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DatasetError);
  return (err as Error).message;
};

describe('planning a Parquet dataset', () => {
  it('plans every labelled row with its split, class, ETag and place in the file', async () => {
    const progress: unknown[] = [];
    const loaded = await loadDataset(s3.store('bkt'), spec('hub'), {
      onProgress: (p) => progress.push(p),
    });
    expect(loaded.kind).toBe('parquet');
    // README's names, not the files' own "huggingface" metadata (x, y, z).
    expect(loaded.classes).toEqual(['cat', 'dog', 'bird']);
    expect(loaded.skipped).toEqual([]);
    const bySplit = (s: string) => loaded.items.filter((i) => i.split === s).length;
    expect([bySplit('train'), bySplit('val'), bySplit('test')]).toEqual([9, 2, 5]);
    const file = 's3://bkt/hub/data/test-00000-of-00001.parquet';
    const test = loaded.items.filter((i) => i.uri.startsWith(file));
    expect(test.map((i) => [i.uri.slice(file.length), i.className])).toEqual([
      ['#row=0000000000', 'cat'],
      ['#row=0000000001', 'dog'],
      ['#row=0000000002', 'cat'],
      ['#row=0000000003', 'dog'],
      ['#row=0000000004', 'dog'],
    ]);
    expect(test[3]).toMatchObject({
      size: 0,
      etag: s3.etagOf('bkt', 'hub/data/test-00000-of-00001.parquet'),
      split: 'test',
      part: { kind: 'parquet', object: file, rowGroup: 1, row: 3, column: 'image' },
    });
    expect(progress.at(-1)).toMatchObject({ containersRead: 4, containers: 4 });
  });

  it('reads only footers and label columns: one ranged GET per file footer and per row group, with If-Match', async () => {
    const before = s3.accesses.length;
    await load('hub');
    const reads = s3.accesses.slice(before).filter((a) => a.op === 'GetObject') as typeof s3.reads;
    const parquetReads = reads.filter((r) => r.key.endsWith('.parquet'));
    // 4 footers + row groups: 2 + 1 (train files, 4 rows each) + 3 (test, 2 rows each) + 1 (val).
    expect(parquetReads).toHaveLength(4 + 2 + 1 + 3 + 1);
    for (const r of parquetReads) {
      expect(r.range).toMatch(/^bytes=\d+-\d+$/);
      expect(r.ifMatch).toBe(`"${s3.etagOf('bkt', r.key)}"`);
    }
    // The label reads (all but the footers, which end at the file's end) hold no images.
    const labelReads = parquetReads.filter(
      (r) => Number(r.range!.split('-')[1]) !== s3.get('bkt', r.key)!.length - 1,
    );
    expect(labelReads).toHaveLength(7);
    const labelBytes = labelReads.reduce((n, r) => n + r.consumed, 0);
    const imageBytesTotal = 16 * imageBytes('tA', 0, HUB_REPEAT).length;
    expect(labelBytes).toBeLessThan(imageBytesTotal / 10);
  });

  it('reads the converter layout, zstd and gzip pages, and class names from dataset_infos.json', async () => {
    const loaded = await load('converter');
    expect(loaded.classes).toEqual(['alpha', 'beta']);
    expect(loaded.items.map((i) => [i.split, i.className])).toEqual([
      ['train', 'alpha'],
      ['train', 'beta'],
      ['train', 'beta'],
      ['train', 'alpha'],
      ['train', 'beta'],
      ['val', 'beta'],
      ['val', 'alpha'],
    ]);
  });

  it("takes class names from the files' huggingface metadata, or from dataset.classes", async () => {
    expect((await load('meta-only')).classes).toEqual(['u', 'v']);
    const given = await load('hub', { classes: ['kitty', 'puppy', 'birdie'] });
    expect(given.classes).toEqual(['kitty', 'puppy', 'birdie']);
    expect(given.items[0]!.className).toBe('kitty');
    expect((await load('no-names', { classes: ['a', 'b'] })).items).toHaveLength(2);
  });

  it('says where class names are looked for when there are none', async () => {
    const msg = await planError(load('no-names'));
    expect(msg).toContain('README.md');
    expect(msg).toContain('dataset_infos.json');
    expect(msg).toContain('"huggingface" metadata');
    expect(msg).toContain('dataset.classes');
  });

  it('skips rows whose label is outside the class names, null or -1, with the reason, and plans nothing for an empty row group', async () => {
    const loaded = await load('bad-labels');
    const file = 's3://bkt/bad-labels/data/train-00000-of-00001.parquet';
    expect(loaded.items.map((i) => [i.uri.slice(file.length), i.className, i.part])).toEqual([
      [
        '#row=0000000000',
        'p',
        { kind: 'parquet', object: file, rowGroup: 0, row: 0, column: 'image' },
      ],
      [
        '#row=0000000004',
        'q',
        { kind: 'parquet', object: file, rowGroup: 3, row: 4, column: 'image' },
      ],
    ]);
    expect(loaded.skipped).toEqual([
      { uri: `${file}#row=0000000001`, reason: 'label outside the class names (ids 0..1)' },
      { uri: `${file}#row=0000000002`, reason: 'label is null' },
      {
        uri: `${file}#row=0000000003`,
        reason: 'label -1 (unlabelled: Hugging Face marks rows without a label so)',
      },
    ]);
  });

  it('accepts int32 labels and a plain binary image column', async () => {
    expect((await load('int32-label')).items.map((i) => i.className)).toEqual(['b', 'a']);
    expect((await load('binary-image')).items).toHaveLength(2);
  });

  it('refuses a file without the label column, listing its columns and the setting', async () => {
    const msg = await planError(load('no-label'));
    expect(msg).toContain('s3://bkt/no-label/data/train-00000-of-00001.parquet');
    expect(msg).toContain('no label column "label"');
    expect(msg).toContain('image (struct<bytes: binary, path: string>)');
    expect(msg).toContain('dataset.labelColumn');
    // Naming another column fixes it (given the class names).
    const msg2 = await planError(load('hub', { labelColumn: 'class' }));
    expect(msg2).toContain('label (int64)');
  });

  it('refuses a label column that is not an integer', async () => {
    const msg = await planError(load('string-label'));
    expect(msg).toContain('label column "label" is string, not an integer');
  });

  it('refuses an image column of another type, or none', async () => {
    const msg = await planError(load('string-image'));
    expect(msg).toContain('image column "image" is string');
    expect(msg).toContain('binary "bytes" field');
    expect(msg).toContain('dataset.imageColumn');
    expect(await planError(load('no-image'))).toContain('no image column "image"');
    expect(await planError(load('hub', { imageColumn: 'label' }))).toContain(
      'image column "label" is int64',
    );
  });

  it('refuses a corrupt footer, a garbled one and a file that is not Parquet, naming the file', async () => {
    const corrupt = await planError(load('corrupt'));
    expect(corrupt).toContain('s3://bkt/corrupt/data/train-00000-of-00001.parquet cannot be read');
    expect(corrupt).toContain('PAR1');
    expect(await planError(load('garbled'))).toContain('footer does not parse');
    expect(await planError(load('not-parquet'))).toContain('cannot be read');
  });

  it('refuses a split it does not know, naming the file and the accepted names', async () => {
    const msg = await planError(load('bad-split'));
    expect(msg).toContain('data/extra-00000-of-00001.parquet');
    expect(msg).toContain('split "extra"');
    expect(msg).toContain('train, val, validation, test');
  });

  it('refuses more rows than a run may plan, and row groups too large to read whole', async () => {
    const limits = { ...DEFAULT_PLANNING_LIMITS, maxDatasetObjects: 10 };
    expect(await planError(loadDataset(s3.store('bkt'), spec('hub'), { limits }))).toContain(
      'has 16 rows',
    );
    const listing = await s3.store('bkt').list('hub/');
    const msg = await planError(
      loadParquet(
        s3.store('bkt'),
        'hub/',
        listing,
        spec('hub'),
        { limits: DEFAULT_PLANNING_LIMITS, onProgress: () => {} },
        { maxRowGroupImageBytes: 1000 },
      ),
    );
    expect(msg).toContain('row group 0 holds');
    expect(msg).toContain('row_group_size');
  });
});

describe('reading Parquet rows at extraction', () => {
  it("returns each row's exact image bytes: one GET per row group (not per image), with If-Match", async () => {
    const loaded = await load('hub');
    const items = planItems(loaded).filter(
      (i) => i.uri.includes('/train-00000-') || i.uri.includes('/test-'),
    );
    const reader = parquetPartReader(s3.store('bkt'), items);
    const before = s3.accesses.length;
    for (const item of items) {
      const tag = item.uri.includes('/test-') ? 'te' : 'tA';
      const p = item.part as { row: number };
      expect(Buffer.from(await reader.read(item))).toEqual(imageBytes(tag, p.row, HUB_REPEAT));
    }
    const accesses = s3.accesses.slice(before);
    const gets = accesses.filter((a) => a.op === 'GetObject') as typeof s3.reads;
    // Per file a HEAD (its size) and a footer GET; then one GET per row group: 2 + 3.
    expect(accesses.filter((a) => a.op === 'HeadObject')).toHaveLength(2);
    expect(gets).toHaveLength(2 + 2 + 3);
    for (const g of gets) expect(g.ifMatch).toBe(`"${s3.etagOf('bkt', g.key)}"`);
  });

  it('reads a row group over 2 MiB in one GET per leaf of the Image struct (bytes, path), not per image', async () => {
    const items = planItems(await load('big'));
    const reader = parquetPartReader(s3.store('bkt'), items);
    const before = s3.accesses.length;
    for (const item of items) {
      const row = (item.part as { row: number }).row;
      expect(Buffer.from(await reader.read(item))).toEqual(imageBytes('big', row, BIG_REPEAT));
    }
    const ops = s3.accesses.slice(before).map((a) => a.op);
    // HEAD, footer, then the `bytes` and `path` chunks of the one row group.
    expect(ops).toEqual(['HeadObject', 'GetObject', 'GetObject', 'GetObject']);
  });

  it('reads only the row groups of the rows asked', async () => {
    const loaded = await load('hub');
    const items = planItems(loaded).filter(
      (i) =>
        i.uri.includes('/test-') &&
        (i.part as { row: number }).row >= 2 &&
        (i.part as { row: number }).row <= 3,
    );
    const reader = parquetPartReader(s3.store('bkt'), items);
    const before = s3.accesses.length;
    for (const item of items) await reader.read(item);
    // HEAD + footer + row group 1 only (rows 2 and 3 are both in it).
    expect(s3.accesses.slice(before).map((a) => a.op)).toEqual([
      'HeadObject',
      'GetObject',
      'GetObject',
    ]);
  });

  it('decodes zstd and gzip pages and a plain binary column', async () => {
    for (const [name, tags] of [
      ['converter', { train: 'cz', val: 'cg' }],
      ['binary-image', { train: 'bin' }],
    ] as const) {
      const items = planItems(await load(name));
      const reader = parquetPartReader(s3.store('bkt'), items);
      for (const item of items) {
        const tag = (tags as Record<string, string>)[item.split]!;
        const row = (item.part as { row: number }).row;
        expect(Buffer.from(await reader.read(item))).toEqual(
          imageBytes(tag, row, tag === 'cz' ? 2000 : 40),
        );
      }
    }
  });

  it('fails a null image as unreadable, naming the row; the other rows read', async () => {
    const items = planItems(await load('null-image'));
    const reader = parquetPartReader(s3.store('bkt'), items);
    await expect(reader.read(items[0]!)).resolves.toEqual(new Uint8Array(imageBytes('ni', 0)));
    const err = await reader.read(items[1]!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PartUnreadableError);
    expect((err as Error).message).toContain(
      'row 1 of s3://bkt/null-image/data/train-00000-of-00001.parquet',
    );
    await expect(reader.read(items[2]!)).resolves.toEqual(new Uint8Array(imageBytes('ni', 2)));
  });

  it('refuses an image over maxBytes, and a file changed since planning', async () => {
    const items = planItems(await load('meta-only'));
    const reader = parquetPartReader(s3.store('bkt'), items);
    await expect(reader.read(items[0]!, { maxBytes: 100 })).rejects.toBeInstanceOf(
      ObjectTooLargeError,
    );
    await expect(reader.read(items[1]!, { maxBytes: 10_000 })).resolves.toHaveLength(
      imageBytes('m', 1).length,
    );

    const changed = new MemoryS3(['bkt']);
    const key = 'meta-only/data/train-00000-of-00001.parquet';
    changed.put('bkt', key, { body: s3.get('bkt', key)!, etag: 'another-version' });
    const stale = parquetPartReader(changed.store('bkt'), items);
    await expect(stale.read(items[0]!)).rejects.toBeInstanceOf(ObjectChangedError);
  });

  it('passes a failed GET on as the storage error, never as a corrupt file', async () => {
    // The footer reads; the next GET of the file fails (throttled), then the file is replaced.
    const key = 'meta-only/data/train-00000-of-00001.parquet';
    const flaky = failingAfter(
      s3,
      key,
      1,
      Object.assign(new Error('slow down'), { name: 'SlowDown' }),
    );
    const err = await loadDataset(flaky.store('bkt'), spec('meta-only')).catch((e: unknown) => e);
    expect((err as Error).name).toBe('SlowDown');

    const items = planItems(await load('meta-only'));
    const reader = parquetPartReader(
      failingAfter(s3, key, 1, new Error('socket hang up')).store('bkt'),
      items,
    );
    await expect(reader.read(items[0]!)).rejects.toThrow('socket hang up');
  });

  it('insists on the planned ETag on its GETs (If-Match), not only on the HEAD', async () => {
    const items = planItems(await load('meta-only'));
    const key = 'meta-only/data/train-00000-of-00001.parquet';
    const moved = new MemoryS3(['bkt']);
    moved.put('bkt', key, s3.get('bkt', key)!);
    // Replaced right after the HEAD: the footer's GET carries the old ETag and gets HTTP 412.
    const send = moved.send.bind(moved);
    moved.send = async (command) => {
      const r = await send(command);
      if (command.constructor.name === 'HeadObjectCommand')
        moved.put('bkt', key, { body: s3.get('bkt', key)!, etag: 'replaced' });
      return r;
    };
    await expect(
      parquetPartReader(moved.store('bkt'), items).read(items[0]!),
    ).rejects.toBeInstanceOf(ObjectChangedError);
  });

  it('feeds extraction: the images are embedded, a null image is a counted unreadable failure', async () => {
    const loaded = await load('pngs');
    const items = planItems(loaded);
    s3.buckets.set('out-bucket', new Map());
    const store = s3.store('out-bucket');
    const r = await extractShard(
      { store, bundle, encoder: standInEncoder(16, 224, 0.25) },
      { items, datasetFingerprint: 'fp' },
      { batchSize: 2, concurrency: 2 },
    );
    expect(r).toMatchObject({ images: 2, failed: 1 });
    const manifest = await store.requireJson<ShardManifest>(
      r.shardKey.replace(/\.arrow$/, '.json'),
    );
    expect(manifest.failed).toHaveLength(1);
    expect(manifest.failed[0]!.uri).toBe(items[1]!.uri);
    expect(manifest.failed[0]!.reason).toMatch(/^unreadable: .*row 1 of .* column "image" is null/);
    const shard = decodeShard(await store.requireBytes(r.shardKey));
    expect(shard.rows.map((row) => row.key)).toEqual([items[0]!.uri, items[2]!.uri]);
  });
});

/** `s3` again, except that GETs of `key` after the first `ok` ones throw `err`. */
function failingAfter(s3: MemoryS3, key: string, ok: number, err: Error): MemoryS3 {
  const copy = new MemoryS3();
  for (const [b, objects] of s3.buckets) copy.buckets.set(b, new Map(objects));
  let gets = 0;
  const send = copy.send.bind(copy);
  copy.send = async (command) => {
    const input = command.input as { Key?: string };
    if (command.constructor.name === 'GetObjectCommand' && input.Key === key && ++gets > ok)
      throw err;
    return send(command);
  };
  return copy;
}
