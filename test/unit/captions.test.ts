import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunSpec } from '../../core/config/run-spec';
import { ConfigError } from '../../core/config/errors';
import { captionLines, checkCaptions, csvCaptions, splitLines } from '../../core/dataset/captions';
import { loadDataset } from '../../core/dataset/load';
import { parseManifest } from '../../core/dataset/manifest';
import { buildPlan, captionsFile, summarisePlan } from '../../core/dataset/plan';
import type { DatasetItem } from '../../core/dataset/types';
import { groupSamples } from '../../core/dataset/webdataset/samples';
import type { TarEntry } from '../../core/dataset/webdataset/tar-index';
import { MemoryS3 } from '../helpers/memory-s3';
import { type ParquetFixture, writeParquetFixtures } from '../helpers/parquet-fixtures';

const OFF = { zeroShot: { enabled: false }, coop: { enabled: false }, probe: { enabled: false } };

describe('captions', () => {
  it('splits a .txt as Python str.splitlines and drops empty lines', () => {
    expect(splitLines('a\r\nb\rc\nd\u2028e\x85f\v')).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    expect(splitLines('a\n\nb\n')).toEqual(['a', '', 'b']);
    expect(captionLines(Buffer.from('\ufeffa dog\r\n\r\n  \na cat\n'))).toEqual(['a dog', 'a cat']);
    expect(captionLines(Buffer.from('\n \n'))).toMatch(/no caption/);
    expect(captionLines(Uint8Array.from([0xff, 0xfe, 0x41]))).toMatch(/not UTF-8/);
  });

  it('refuses empty, non-text, overlong and too many captions, saying which', () => {
    expect(checkCaptions(['ok', ' '])).toBe('caption 2 is empty');
    expect(checkCaptions(['ok', 3])).toBe('caption 2 is not text (number)');
    expect(checkCaptions(['x'.repeat(2001)])).toMatch(/caption 1 is 2001 characters.*at most 2000/);
    expect(checkCaptions(Array.from({ length: 101 }, () => 'c'))).toMatch(
      /101 captions.*at most 100/,
    );
    expect(checkCaptions([])).toBe('captions is an empty list');
    expect(checkCaptions('a dog')).toBe('captions is not a list of strings');
    expect(csvCaptions('["a, dog", "a \\"cat\\""]')).toEqual(['a, dog', 'a "cat"']);
    expect(csvCaptions('a dog')).toMatch(/JSON list of strings/);
  });

  it('groups WebDataset .txt members into samples: captions beside labels, or alone', () => {
    let at = 0;
    const entry = (name: string, data?: string): TarEntry => ({
      name,
      offset: (at += 512),
      size: data?.length ?? 100,
      ...(data !== undefined ? { data: Buffer.from(data) } : {}),
    });
    const entries = [
      entry('a.jpg'),
      entry('a.cls', '0'),
      entry('a.txt', 'one\ntwo\n'),
      entry('b.jpg'),
      entry('b.cls', '1'),
      entry('c.jpg'),
      entry('c.txt', `${'x'.repeat(2001)}\n`),
      entry('c.cls', '0'),
      entry('lone.txt', 'caption without image'),
    ];
    const labelled = groupSamples(entries, 2, 's3://b/t.tar');
    expect(labelled.samples.map((s) => [s.key, s.label, s.captions])).toEqual([
      ['a', 0, ['one', 'two']],
      ['b', 1, undefined],
    ]);
    expect(labelled.skipped.map((s) => s.uri)).toEqual(['s3://b/t.tar#c.jpg']);
    expect(labelled.skipped[0]!.reason).toMatch(/its \.txt: caption 1 is 2001/);
    const unlabelled = groupSamples(entries, undefined, 's3://b/t.tar');
    expect(unlabelled.samples.map((s) => [s.key, s.label, s.captions])).toEqual([
      ['a', undefined, ['one', 'two']],
    ]);
    expect(unlabelled.skipped.map((s) => s.reason)).toEqual([
      expect.stringMatching(/^an image without its \.txt captions \(key "b"/),
      expect.stringMatching(/caption 1 is 2001/),
      'a .txt caption file without an image (key "lone")',
    ]);
  });

  it('reads a CSV manifest captions cell as a JSON list, naming bad rows', () => {
    const spec = parseRunSpec({ dataset: { uri: 's3://bkt/d/list.csv' }, ...OFF });
    const at = { bucket: 'bkt', key: 'd/list.csv' };
    const entries = parseManifest(
      'key,label,captions\na.jpg,cat,"[""a cat"", ""a small cat""]"\nb.jpg,dog,\n',
      at,
      spec.dataset,
    );
    expect(entries.map((e) => [e.className, e.captions])).toEqual([
      ['cat', ['a cat', 'a small cat']],
      ['dog', undefined],
    ]);
    expect(() =>
      parseManifest('key,captions\na.jpg,a cat\nb.jpg,"[""""]"\n', at, spec.dataset),
    ).toThrow(/row 2: captions is not a JSON list.*row 3: caption 1 is empty/s);
  });

  it('plans an unlabelled dataset without classes, refusing the classification routes by name', () => {
    const items: DatasetItem[] = ['b', 'a'].map((n) => ({
      uri: `s3://bkt/d/${n}.jpg`,
      size: 1,
      etag: n,
      split: 'test',
      captions: [`caption of ${n}`],
    }));
    const spec = parseRunSpec({ dataset: { uri: 's3://bkt/d/' }, ...OFF });
    const plan = buildPlan({ runId: 'r', spec, kind: 'manifest', items, skipped: [] });
    expect(plan.classes).toEqual([]);
    expect(plan.shards.flatMap((s) => s.items.map((i) => i.label))).toEqual([-1, -1]);
    expect(plan.dataset.captions).toMatchObject({ images: 2, captions: 2 });
    expect(captionsFile({ runId: 'r', items })!.images.map((i) => i.uri)).toEqual([
      's3://bkt/d/a.jpg',
      's3://bkt/d/b.jpg',
    ]);
    // The captions are part of the fingerprint: other captions, another fingerprint.
    const other = buildPlan({
      runId: 'r',
      spec,
      kind: 'manifest',
      items: items.map((i) => ({ ...i, captions: ['changed'] })),
      skipped: [],
    });
    expect(other.dataset.fingerprint).not.toBe(plan.dataset.fingerprint);
    const withProbe = parseRunSpec({ dataset: { uri: 's3://bkt/d/' }, ...OFF, probe: {} });
    expect(() =>
      buildPlan({ runId: 'r', spec: withProbe, kind: 'manifest', items, skipped: [] }),
    ).toThrow(ConfigError);
    expect(() =>
      buildPlan({ runId: 'r', spec: withProbe, kind: 'manifest', items, skipped: [] }),
    ).toThrow(/Set probe\.enabled to false/);
    const noCaptions = items.map(({ captions: _, ...i }) => ({ ...i, className: 'x' }));
    const forced = parseRunSpec({
      dataset: { uri: 's3://bkt/d/' },
      ...OFF,
      retrieval: { enabled: true },
    });
    expect(() =>
      buildPlan({ runId: 'r', spec: forced, kind: 'manifest', items: noCaptions, skipped: [] }),
    ).toThrow(/retrieval\.enabled is true, but s3:\/\/bkt\/d\/ has no captions/);
    // `auto` ranks test images only: captions in train alone leave it off, `true` refuses them.
    const trainOnly = items.map((i) => ({ ...i, className: 'x', split: 'train' as const }));
    const both = [
      ...trainOnly,
      { ...noCaptions[0]!, uri: 's3://bkt/d/t.jpg', split: 'test' as const },
    ];
    const auto = parseRunSpec({ dataset: { uri: 's3://bkt/d/' }, ...OFF, zeroShot: {} });
    const planned = buildPlan({
      runId: 'r',
      spec: auto,
      kind: 'manifest',
      items: both,
      skipped: [],
    });
    expect(planned.dataset.captions).toMatchObject({ images: 2, testImages: 0 });
    expect(summarisePlan(planned, 's3://bkt/p').routes.retrieval).toBe(false);
    expect(() =>
      buildPlan({ runId: 'r', spec: forced, kind: 'manifest', items: both, skipped: [] }),
    ).toThrow(/no test image has captions/);
  });
});

describe('Parquet captionColumn', () => {
  let dir: string;
  let s3: MemoryS3;
  const FILES: ParquetFixture[] = [
    {
      path: 'lists/data/test-00000-of-00001.parquet',
      labels: [0, 0, 0, 0],
      label: 'none',
      tag: 'l',
      captions: [['a dog', 'a brown dog'], ['a cat'], null, ['', 'empty first']],
    },
    {
      path: 'strings/data/test-00000-of-00001.parquet',
      labels: [0, 1],
      tag: 's',
      hfNames: ['cat', 'dog'],
      captions: ['one caption', null],
      captionType: 'string',
    },
  ];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'clipeval-captions-'));
    writeParquetFixtures(dir, FILES);
    s3 = new MemoryS3(['bkt']);
    const walk = (d: string): string[] =>
      readdirSync(d).flatMap((n) =>
        statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)],
      );
    for (const file of walk(dir)) s3.put('bkt', relative(dir, file), readFileSync(file));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const load = (name: string) =>
    loadDataset(
      s3.store('bkt'),
      parseRunSpec({ dataset: { uri: `s3://bkt/${name}/`, captionColumn: 'captions' } }).dataset,
    );

  it('reads list<string> captions of an unlabelled file, skipping rows without good ones', async () => {
    const r = await load('lists');
    expect(r.classes).toBeUndefined();
    expect(r.items.map((i) => [i.className, i.captions])).toEqual([
      [undefined, ['a dog', 'a brown dog']],
      [undefined, ['a cat']],
    ]);
    expect(r.skipped.map((s) => [s.uri.split('#')[1], s.reason])).toEqual([
      ['row=0000000002', expect.stringMatching(/captions are null/)],
      ['row=0000000003', 'captions: caption 1 is empty'],
    ]);
  });

  it('reads a string column as one caption per row beside the labels', async () => {
    const r = await load('strings');
    expect(r.items.map((i) => [i.className, i.captions])).toEqual([
      ['cat', ['one caption']],
      ['dog', undefined],
    ]);
  });

  it('names a missing caption column', async () => {
    await expect(
      loadDataset(
        s3.store('bkt'),
        parseRunSpec({ dataset: { uri: 's3://bkt/lists/', captionColumn: 'text' } }).dataset,
      ),
    ).rejects.toThrow(/no caption column "text".*dataset\.captionColumn/);
  });
});
