import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EXTRACTION_ONLY, parseRunSpec, type DatasetSpec } from '../../core/config/run-spec';
import { loadDataset } from '../../core/dataset/load';
import { buildPlan, type PlanItem } from '../../core/dataset/plan';
import { DatasetError, type DatasetItem } from '../../core/dataset/types';
import { MAX_BLOCK, tarPartReader } from '../../core/dataset/webdataset/read-tar';
import { indexTar } from '../../core/dataset/webdataset/tar-index';
import { ObjectChangedError, ObjectTooLargeError } from '../../core/storage/object-store';
import { MemoryS3, type Read } from '../helpers/memory-s3';
import {
  type TarFile,
  type WdsSample,
  extractTar,
  packTar,
  pythonTar,
  sampleFiles,
} from '../helpers/wds-tars';

const BUCKET = 'bkt';
const spec = (dataset: Partial<DatasetSpec> = {}): DatasetSpec =>
  parseRunSpec({ dataset: { uri: 's3://bkt/ds/', ...dataset }, ...EXTRACTION_ONLY }).dataset;

/** Image bytes, distinct per n and the same on every call (they need not decode: nothing here decodes). */
const image = (n: number, size = 1500): Buffer => {
  const b = Buffer.alloc(size, n & 0xff);
  b.writeUInt32BE(n, 0);
  return b;
};

/** Samples key s0000000.. with labels i % classes. */
const samples = (n: number, classes: number, from = 0, size = 1500): WdsSample[] =>
  Array.from({ length: n }, (_, j) => {
    const i = from + j;
    return {
      key: `s${String(i).padStart(7, '0')}`,
      image: image(i, size),
      cls: `${i % classes}\n`,
    };
  });

async function putTar(s3: MemoryS3, key: string, files: TarFile[]): Promise<Buffer> {
  const tar = await packTar(files);
  s3.put(BUCKET, key, tar);
  return tar;
}

function dataset(classnames: string[] | null = ['cat', 'dog']): MemoryS3 {
  const s3 = new MemoryS3([BUCKET]);
  if (classnames) s3.put(BUCKET, 'ds/classnames.txt', classnames.join('\n') + '\n');
  return s3;
}

const load = (
  s3: MemoryS3,
  ds: Partial<DatasetSpec> = {},
  limits?: { maxDatasetObjects: number },
) =>
  loadDataset(s3.store(BUCKET), spec(ds), limits ? { limits: { maxClasses: 100, ...limits } } : {});

const tarReads = (s3: MemoryS3): Read[] => s3.reads.filter((r) => r.key.endsWith('.tar'));

const bytesOf = (s3: MemoryS3, item: DatasetItem): Buffer => {
  const part = item.part!;
  if (part.kind !== 'tar') throw new Error('not a tar part');
  const key = part.object.slice(`s3://${BUCKET}/`.length);
  return Buffer.from(s3.get(BUCKET, key)!.subarray(part.offset, part.offset + part.length));
};

describe('tar index (against tar-stream extract)', () => {
  const long = `${'deep/'.repeat(30)}sämple\u00e9-${'x'.repeat(120)}`;
  const files: TarFile[] = [
    { name: 's0.jpg', data: image(0) },
    { name: 's0.cls', data: '1' },
    { name: `${long}.png`, data: image(1, 70_000) },
    { name: `${long}.cls`, data: '0\n' },
    { name: 'empty.txt', data: '' },
    { name: 'odd size.webp', data: image(2, 513) },
    { name: `${'dir12345/'.repeat(12)}s9.jpg`, data: image(3, 100) }, // ustar: prefix + name
  ];
  // Each with the marker of its long-name mechanism, so the test is known to exercise it.
  const cases: [string, () => Promise<Buffer> | Buffer, string][] = [
    ['ustar (tar-stream pack)', () => packTar(files), 'dir12345/dir12345'],
    [
      'pax (Python tarfile)',
      () => pythonTar([{ name: 'dir/', data: '' }, ...files], 'PAX'),
      '././@PaxHeader',
    ],
    [
      'GNU (Python tarfile)',
      () => pythonTar([{ name: 'dir/', data: '' }, ...files], 'GNU'),
      '././@LongLink',
    ],
  ];
  for (const [format, make, marker] of cases) {
    for (const window of [1024, 8 * 1024 * 1024]) {
      it(`${format}, ${window}-byte windows: same names and bytes as tar-stream`, async () => {
        const tar = await make();
        expect(tar.includes(marker)).toBe(true);
        const s3 = new MemoryS3([BUCKET]);
        s3.put(BUCKET, 't.tar', tar);
        const oracle = await extractTar(tar);
        expect(oracle.map((m) => m.name)).toEqual(files.map((f) => f.name));
        const index = await indexTar(s3.store(BUCKET), 't.tar', {
          size: tar.length,
          window,
          wantData: (name) => name.endsWith('.cls'),
        });
        expect(index.truncated).toBeUndefined();
        expect(index.entries.map((e) => e.name)).toEqual(oracle.map((m) => m.name));
        index.entries.forEach((e, i) => {
          expect(e.offset).toBe(oracle[i]!.offset);
          expect(
            Buffer.from(tar.subarray(e.offset, e.offset + e.size)).equals(oracle[i]!.data),
          ).toBe(true);
          if (e.name.endsWith('.cls'))
            expect(Buffer.from(e.data!).equals(oracle[i]!.data)).toBe(true);
          else expect(e.data).toBeUndefined();
        });
        // Every read is ranged and the whole tar is never read at once with small windows.
        expect(s3.reads.every((r) => r.range !== undefined)).toBe(true);
        if (window === 1024) expect(index.bytesRead).toBeLessThan(tar.length);
      });
    }
  }

  it('reads base-256 sizes (GNU, for members over 8 GiB)', async () => {
    const tar = await packTar([{ name: 'a.jpg', data: image(0, 700) }]);
    tar.fill(0, 124, 136);
    tar[124] = 0x80;
    tar.writeUInt16BE(700, 134);
    tar.fill(0x20, 148, 156);
    const sum = tar.subarray(0, 512).reduce((a, b) => a + b, 0);
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    const s3 = new MemoryS3([BUCKET]);
    s3.put(BUCKET, 't.tar', tar);
    const index = await indexTar(s3.store(BUCKET), 't.tar', { size: tar.length });
    expect(index.entries).toEqual([{ name: 'a.jpg', offset: 512, size: 700 }]);
  });

  it('skips large members unread: requests follow the headers, not the bytes', async () => {
    const big = Array.from({ length: 20 }, (_, i) => [
      { name: `s${i}.jpg`, data: image(i, 300_000) },
      { name: `s${i}.cls`, data: '0' },
    ]).flat();
    const tar = await packTar(big);
    const s3 = new MemoryS3([BUCKET]);
    s3.put(BUCKET, 't.tar', tar);
    const index = await indexTar(s3.store(BUCKET), 't.tar', {
      size: tar.length,
      window: 128 * 1024,
      wantData: (n) => n.endsWith('.cls'),
    });
    expect(index.entries).toHaveLength(40);
    // One read per sample (the .cls header and data, then the next image's header), plus the first.
    expect(index.requests).toBeLessThanOrEqual(21);
    expect(index.bytesRead).toBeLessThan(tar.length / 10);
  });
});

describe('WebDataset planning', () => {
  it('plans splits, classes, templates and byte ranges from the layout', async () => {
    const s3 = dataset(['cat', 'dog', 'bird']);
    s3.put(
      BUCKET,
      'ds/zeroshot_classification_templates.txt',
      'a photo of a {c}.\n\nart of the {c}.\n',
    );
    const train = [samples(5, 3), samples(4, 3, 5)];
    const val = samples(3, 3);
    await putTar(s3, 'ds/train/0.tar', sampleFiles(train[0]!));
    await putTar(s3, 'ds/train/1.tar', sampleFiles(train[1]!));
    s3.put(BUCKET, 'ds/train/nshards.txt', '2\n');
    await putTar(s3, 'ds/validation/0.tar', sampleFiles(val));
    const progress: unknown[] = [];
    const r = await loadDataset(s3.store(BUCKET), spec(), { onProgress: (p) => progress.push(p) });
    expect(r.kind).toBe('webdataset');
    expect(r.classes).toEqual(['cat', 'dog', 'bird']);
    expect(r.templates).toEqual(['a photo of a {c}.', 'art of the {c}.']);
    expect(r.skipped).toEqual([]);
    expect(r.items).toHaveLength(12);
    const first = r.items[0]!;
    expect(first).toMatchObject({
      uri: 's3://bkt/ds/train/0.tar#s0000000.jpg',
      etag: s3.etagOf(BUCKET, 'ds/train/0.tar'),
      size: 1500,
      className: 'cat',
      split: 'train',
      part: { kind: 'tar', object: 's3://bkt/ds/train/0.tar', offset: 512, length: 1500 },
    });
    expect(r.items.filter((i) => i.split === 'val')).toHaveLength(3);
    expect(r.items.map((i) => i.className).slice(0, 4)).toEqual(['cat', 'dog', 'bird', 'cat']);
    const all = [...train.flat(), ...val];
    r.items.forEach((item, i) =>
      expect(bytesOf(s3, item).equals(Buffer.from(all[i]!.image!))).toBe(true),
    );
    expect(progress.at(-1)).toMatchObject({ containersRead: 3, containers: 3 });
  });

  it('gives the plan the .cls ids as labels, over the whole label space', async () => {
    const s3 = dataset(['cat', 'dog', 'bird', 'fish']); // no fish in the data: ids must not shift
    await putTar(s3, 'ds/train/0.tar', sampleFiles(samples(6, 3)));
    const loaded = await load(s3);
    const plan = buildPlan({
      runId: 'r',
      spec: parseRunSpec({ dataset: { uri: 's3://bkt/ds/' }, ...EXTRACTION_ONLY }),
      ...loaded,
    });
    expect(plan.classes).toEqual(['cat', 'dog', 'bird', 'fish']);
    const planned = plan.shards.flatMap((sh) => sh.items);
    expect(planned.map((i) => [i.uri.split('#')[1], i.label]).sort()).toEqual(
      samples(6, 3).map((x) => [`${x.key}.jpg`, Number(x.cls)]),
    );
    expect(planned.every((i) => i.part?.kind === 'tar')).toBe(true);
  });

  it('takes class names from dataset.classes over classnames.txt, and needs one of them', async () => {
    const s3 = dataset(null);
    await putTar(s3, 'ds/test/0.tar', sampleFiles(samples(2, 2)));
    await expect(load(s3)).rejects.toThrow(/no classnames\.txt.*dataset\.classes/s);
    const r = await load(s3, { classes: ['x', 'y'] });
    expect(r.classes).toEqual(['x', 'y']);
    expect(r.items.map((i) => i.className)).toEqual(['x', 'y']);
  });

  it('counts bad samples with their reasons: missing pairs, bad labels, two images', async () => {
    const s3 = dataset();
    await putTar(s3, 'ds/train/0.tar', [
      ...sampleFiles([{ key: 'a', image: image(1), cls: '0' }]),
      ...sampleFiles([{ key: 'no-cls', image: image(2) }]),
      ...sampleFiles([{ key: 'no-image', cls: '1' }]),
      ...sampleFiles([{ key: 'big-label', image: image(3), cls: '2' }]),
      ...sampleFiles([{ key: 'not-int', image: image(4), cls: '1.0' }]),
      ...sampleFiles([{ key: 'neg', image: image(5), cls: '-1' }]),
      { name: 'two.jpg', data: image(6) },
      { name: 'two.png', data: image(7) },
      { name: 'two.cls', data: '1' },
      { name: 'a.json', data: '{}' },
      { name: 'notes.txt', data: 'ignored' },
    ]);
    const r = await load(s3);
    expect(r.items.map((i) => i.uri)).toEqual(['s3://bkt/ds/train/0.tar#a.jpg']);
    const reasons = Object.fromEntries(r.skipped.map((s) => [s.uri.split('#')[1]!, s.reason]));
    expect(reasons).toEqual({
      'no-cls.jpg': 'an image without its .cls label (key "no-cls")',
      'no-image.cls': 'a .cls label without an image (key "no-image")',
      'big-label.jpg': "label 2 is outside the dataset's 2 classes (0..1)",
      'not-int.jpg': 'its .cls holds "1.0", not a label index (a decimal integer)',
      'neg.jpg': 'its .cls holds "-1", not a label index (a decimal integer)',
      'two.jpg': '2 images under one key "two" (.jpg, .png): a sample has one',
    });
  });

  it('keeps the first of duplicate keys, in one tar and across shards', async () => {
    const s3 = dataset();
    await putTar(s3, 'ds/train/0.tar', sampleFiles([...samples(2, 2), ...samples(1, 2)]));
    await putTar(s3, 'ds/train/1.tar', sampleFiles(samples(3, 2, 1)));
    // Another split may reuse keys (CLIP_benchmark numbers each split from s0000000).
    await putTar(s3, 'ds/test/0.tar', sampleFiles(samples(1, 2)));
    const r = await load(s3);
    expect(r.items.map((i) => i.uri)).toEqual([
      's3://bkt/ds/test/0.tar#s0000000.jpg',
      's3://bkt/ds/train/0.tar#s0000000.jpg',
      's3://bkt/ds/train/0.tar#s0000001.jpg',
      's3://bkt/ds/train/1.tar#s0000002.jpg',
      's3://bkt/ds/train/1.tar#s0000003.jpg',
    ]);
    expect(r.skipped).toEqual([
      {
        uri: 's3://bkt/ds/train/0.tar#s0000000.jpg',
        reason: 'duplicate key "s0000000" (first in s3://bkt/ds/train/0.tar)',
      },
      {
        uri: 's3://bkt/ds/train/1.tar#s0000001.jpg',
        reason: 'duplicate key "s0000001" (first in s3://bkt/ds/train/0.tar)',
      },
    ]);
  });

  it("counts a truncated tar's cut member and keeps what precedes it", async () => {
    const s3 = dataset();
    const tar = await packTar(sampleFiles(samples(3, 2)));
    s3.put(BUCKET, 'ds/train/0.tar', tar.subarray(0, 512 * 2 + 1500 + 512 + 700)); // inside s1.jpg
    s3.put(BUCKET, 'ds/train/1.tar', tar.subarray(0, 3072 + 100)); // inside s1.jpg's header
    const r = await load(s3, { classes: ['cat', 'dog'] });
    expect(r.items.map((i) => i.uri)).toEqual(['s3://bkt/ds/train/0.tar#s0000000.jpg']);
    expect(r.skipped).toEqual([
      {
        uri: 's3://bkt/ds/train/0.tar#s0000001.jpg',
        reason: expect.stringMatching(/ends inside this member.*truncated/) as unknown,
      },
      {
        uri: 's3://bkt/ds/train/1.tar',
        reason: 'the tar ends inside a header at byte 3072 (truncated)',
      },
      {
        uri: 's3://bkt/ds/train/1.tar#s0000000.jpg',
        reason: 'duplicate key "s0000000" (first in s3://bkt/ds/train/0.tar)',
      },
    ]);
  });

  it('refuses a corrupt header with the tar, the byte offset and the fix', async () => {
    const s3 = dataset();
    const tar = await packTar(sampleFiles(samples(3, 2)));
    const at = 3072; // the second sample's image header (2 headers, 1536 + 512 bytes of data before)
    tar[at + 3] = tar[at + 3]! ^ 0xff;
    s3.put(BUCKET, 'ds/train/0.tar', tar);
    await expect(load(s3)).rejects.toThrow(
      new RegExp(
        `s3://bkt/ds/train/0.tar is not a readable tar: .*checksum.* at byte ${at}.*re-create`,
      ),
    );
  });

  it("refuses gzip'd tars by name and by content, saying to gunzip", async () => {
    const byName = dataset();
    byName.put(BUCKET, 'ds/train/0.tar.gz', Buffer.from([0x1f, 0x8b, 8, 0]));
    await expect(load(byName)).rejects.toThrow(/gzip-compressed tar.*gunzip.*plain \.tar/s);
    const byContent = dataset();
    byContent.put(
      BUCKET,
      'ds/train/0.tar',
      Buffer.concat([Buffer.from([0x1f, 0x8b]), randomBytes(2000)]),
    );
    const err = await load(byContent).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect(String(err)).toMatch(/train\/0\.tar is a gzip-compressed tar/);
  });

  it('checks nshards.txt against the objects', async () => {
    const s3 = dataset();
    await putTar(s3, 'ds/train/0.tar', sampleFiles(samples(1, 2)));
    await putTar(s3, 'ds/train/2.tar', sampleFiles(samples(1, 2, 1)));
    s3.put(BUCKET, 'ds/train/nshards.txt', '3');
    await expect(load(s3)).rejects.toThrow(
      /nshards\.txt says 3 shards, but the folder holds 2 tar\(s\) \(missing 1\.tar\)\. Upload the missing shards/,
    );
    s3.put(BUCKET, 'ds/train/nshards.txt', '2');
    await expect(load(s3)).rejects.toThrow(/says 2 shards.*not in 0\.\.1: 2\.tar/);
    s3.put(BUCKET, 'ds/train/nshards.txt', 'two');
    await expect(load(s3)).rejects.toThrow(/should hold the split's shard count/);
    s3.put(BUCKET, 'ds/train/nshards.txt', '3');
    await putTar(s3, 'ds/train/1.tar', sampleFiles(samples(1, 2, 2)));
    expect((await load(s3)).items).toHaveLength(3);
  });

  it('refuses unknown split folders, bad class lists and templates without {c}', async () => {
    const s3 = dataset(['cat', 'dog']);
    await putTar(s3, 'ds/train/0.tar', sampleFiles(samples(1, 2)));
    await putTar(s3, 'ds/holdout\n/0.tar', sampleFiles(samples(1, 2)));
    await expect(load(s3)).rejects.toThrow(
      /unknown split folder "holdout\\u\{a\}" holds tar shards/,
    );
    s3.buckets.get(BUCKET)!.delete('ds/holdout\n/0.tar');
    s3.put(BUCKET, 'ds/classnames.txt', 'cat\ndog\ncat\n');
    await expect(load(s3)).rejects.toThrow(/names a class more than once: "cat" \(lines 1 and 3\)/);
    s3.put(BUCKET, 'ds/classnames.txt', 'cat\n\ndog\n');
    await expect(load(s3)).rejects.toThrow(/empty line\(s\) \(line 2\)/);
    s3.put(BUCKET, 'ds/classnames.txt', 'cat\r\ndog\r\n\r\n');
    s3.put(BUCKET, 'ds/zeroshot_classification_templates.txt', 'a {c}.\na photo.\n');
    await expect(load(s3)).rejects.toThrow(/template\(s\) without \{c\} \(line 2\)/);
  });

  it('holds the sample count to maxDatasetObjects', async () => {
    const s3 = dataset();
    await putTar(s3, 'ds/train/0.tar', sampleFiles(samples(6, 2)));
    await expect(load(s3, {}, { maxDatasetObjects: 5 })).rejects.toThrow(
      /more than 5 samples \(6 indexed so far\).*CLIPEVAL_MAX_DATASET_OBJECTS/,
    );
  });

  it('indexes a 200-sample shard in one read of its headers', async () => {
    const s3 = dataset();
    await putTar(s3, 'ds/train/0.tar', sampleFiles(samples(200, 2)));
    const r = await load(s3);
    expect(r.items).toHaveLength(200);
    const reads = tarReads(s3);
    expect(reads).toHaveLength(1); // the tar (~500 KB) is within one window
    expect(reads.every((x) => x.ifMatch === `"${s3.etagOf(BUCKET, 'ds/train/0.tar')}"`)).toBe(true);
  });
});

describe('tar part reader', () => {
  const planItems = (items: DatasetItem[]): PlanItem[] =>
    items.map((i) => ({
      uri: i.uri,
      size: i.size,
      etag: i.etag,
      label: 0,
      split: i.split,
      part: i.part!,
    }));

  async function planned(n: number, size = 1500) {
    const s3 = dataset();
    await putTar(s3, 'ds/train/0.tar', sampleFiles(samples(n, 2, 0, size)));
    const items = planItems((await load(s3)).items);
    s3.accesses.length = 0;
    return { s3, items };
  }

  it('reads 200 small samples in one coalesced GET, with If-Match, the same bytes as the members', async () => {
    const { s3, items } = await planned(200);
    const reader = tarPartReader(s3.store(BUCKET), items);
    const want = samples(200, 2);
    for (const [i, item] of items.entries()) {
      expect(Buffer.from(await reader.read(item)).equals(Buffer.from(want[i]!.image!))).toBe(true);
    }
    expect(s3.reads).toHaveLength(1);
    const last = items.at(-1)!.part as { offset: number; length: number };
    expect(s3.reads[0]).toMatchObject({
      ifMatch: `"${s3.etagOf(BUCKET, 'ds/train/0.tar')}"`,
      range: `bytes=512-${last.offset + last.length - 1}`,
    });
  });

  it('splits blocks at large gaps and at the block limit, and lets a read block go', async () => {
    const { s3, items } = await planned(3, Math.floor(MAX_BLOCK / 3));
    const reader = tarPartReader(s3.store(BUCKET), [items[0]!, items[2]!]); // a gap: one more GET
    await reader.read(items[0]!);
    await reader.read(items[2]!);
    expect(s3.reads).toHaveLength(2);
    // 3 x 5.3 MiB: the first two make one block, the third would take it over 16 MiB.
    const all = tarPartReader(s3.store(BUCKET), items);
    for (const item of items) await all.read(item);
    expect(s3.reads).toHaveLength(4);
    await all.read(items[0]!); // its block was let go once both its members were read
    expect(s3.reads).toHaveLength(5);
  });

  it('refuses a member over maxBytes before any request, and a changed tar', async () => {
    const { s3, items } = await planned(2);
    const reader = tarPartReader(s3.store(BUCKET), items);
    await expect(reader.read(items[0]!, { maxBytes: 1000 })).rejects.toBeInstanceOf(
      ObjectTooLargeError,
    );
    expect(s3.reads).toHaveLength(0);
    await putTar(s3, 'ds/train/0.tar', sampleFiles(samples(2, 2, 7))); // re-uploaded, other bytes
    await expect(reader.read(items[0]!)).rejects.toBeInstanceOf(ObjectChangedError);
  });
});
