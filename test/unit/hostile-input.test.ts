import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { terminalJson, terminalText, formatOutcome } from '../../cli/format';
import { defaultRunId } from '../../client/evaluations';
import { EXTRACTION_ONLY, parseRunSpec, type RunSpec } from '../../core/config/run-spec';
import { humanizeClassName, promptClassNames } from '../../core/dataset/class-names';
import { readImageFolder } from '../../core/dataset/image-folder';
import { parseManifest } from '../../core/dataset/manifest';
import { buildPlan, type Plan } from '../../core/dataset/plan';
import { DatasetError, type DatasetItem, type Split } from '../../core/dataset/types';
import { extractShard } from '../../core/embeddings/extract-shard';
import { loadBundle, type ModelBundle } from '../../core/model/bundle';
import type { ClipTextEncoder } from '../../core/model/onnx/encoders';
import { type ClipTokenizer, tokenizerForBundle } from '../../core/model/text/tokenizer';
import { chartSpecs, renderChart, renderCharts, ReportRenderError } from '../../core/report/charts';
import { CSP, renderHtml } from '../../core/report/render-html';
import { buildPrompts } from '../../core/routes/coop/prompts';
import { classPrototypes } from '../../core/routes/zero-shot/prototypes';
import { fillTemplate } from '../../core/routes/zero-shot/templates';
import { assertRunId, keys } from '../../core/storage/keys';
import type { ListedObject } from '../../core/storage/object-store';
import { InvalidS3UriError, formatS3Uri, parseS3Uri } from '../../core/storage/s3-uri';
import { PermanentError } from '../../core/util/errors';
import { TINY_BUNDLE } from '../helpers/fixtures';
import { hostileReportData } from '../helpers/hostile-report';
import { MemoryS3, s3Error } from '../helpers/memory-s3';
import { standInEncoder } from '../helpers/stand-in-encoder';

// Hostile input, item by item (issue 12, items 2, 3, 4 and 13): keys with any character S3
// allows, labels that break expressions or shadow Object.prototype members, and the smaller
// traps (replacement patterns, BOMs, CSV line numbers, Unicode twins, terminal escapes).

/** Every Unicode line terminator, and the other characters that broke or could break a key. */
const LINE_TERMINATORS = ['\n', '\r', '\r\n', '\u000b', '\u000c', '\u0085', '\u2028', '\u2029'];
const CONTROLS = ['\u0000', '\u0001', '\u001b[31m', '\u007f', '\u009b2J', '\u202e'];
const PROTOTYPE_NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
const HUMANISED = ['constructor', 'to String', 'proto', 'has Own Property', 'value Of'];

const extractionSpec = (uri = 's3://bkt/ds/', extra: Record<string, unknown> = {}) =>
  parseRunSpec({ dataset: { uri }, ...EXTRACTION_ONLY, ...extra });
const withRoutes = (extra: Record<string, unknown> = {}) =>
  parseRunSpec({ dataset: { uri: 's3://bkt/ds/' }, ...extra });
const obj = (key: string): ListedObject => ({ key, size: 10, etag: `e-${key.length}` });
const items = (classes: string[], splits: Split[] = ['train', 'test']): DatasetItem[] =>
  classes.flatMap((c, ci) =>
    splits.map((split, i) => ({
      uri: `s3://bkt/ds/${split}/${ci}/${i}.jpg`,
      size: 1,
      etag: `e${ci}${i}`,
      className: c,
      split,
    })),
  );
const plan = (spec: RunSpec, its: DatasetItem[]): Plan =>
  buildPlan({ runId: 'r', spec, kind: 'manifest', items: its, skipped: [] });

describe('keys with line breaks and control characters (item 2)', () => {
  it('parses every key S3 allows and formats it back unchanged', () => {
    const keysToTry = [
      ...LINE_TERMINATORS.map((t) => `test/plain/line${t}break.jpg`),
      ...CONTROLS.map((c) => `a/${c}/b.png`),
      'a/%2e%2e/%2F%00%0A.png',
      'x'.repeat(1024),
      'trailing\n',
      '\n',
    ];
    for (const key of keysToTry) {
      const uri = `s3://my-bucket/${key}`;
      expect(parseS3Uri(uri)).toEqual({ bucket: 'my-bucket', key });
      expect(formatS3Uri(parseS3Uri(uri))).toBe(uri);
    }
  });

  it('refuses a non-URI with a permanent error', () => {
    const err = (() => {
      try {
        parseS3Uri('s3://UPPER/key\u2028');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidS3UriError);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/key\\u\{2028\}" is not an S3 URI/);
  });

  describe('extraction', () => {
    let bundle: ModelBundle;
    let png: Buffer;
    beforeAll(async () => {
      bundle = await loadBundle(TINY_BUNDLE);
      png = await sharp({
        create: { width: 16, height: 16, channels: 3, background: { r: 9, g: 99, b: 199 } },
      })
        .png()
        .toBuffer();
    });
    /** An encoder stand-in: the same unit vector for every image (the graph is not the point). */
    const encoder = (dim: number) => standInEncoder(dim, 224, 1 / Math.sqrt(dim));
    // No planned ETag: these reads are not If-Match reads (that is another test's subject).
    const item = (uri: string) => ({ uri, size: 1, etag: '', label: 0, split: 'test' as const });

    it('counts an image whose key cannot be read as failed, and encodes the rest', async () => {
      const s3 = new MemoryS3(['out', 'data']);
      const good = ['ds/line\u2028break.png', 'ds/cr\rlf\n.png', 'ds/esc\u001b[31m.png'];
      for (const k of good) s3.put('data', k, png);
      s3.put('data', 'ds/refused.png', png);
      s3.faults.set('ds/refused.png', s3Error('KeyTooLongError', 400));
      const unreadable = [
        's3://data/ds/refused.png', // the store refuses the key
        's3://data/ds/deleted.png', // gone since planning
        's3://data/ds/lone\ud800surrogate.png', // no UTF-8 form: the SDK cannot send it
        's3://NOT_A_BUCKET/x.png', // not an S3 URI at all
      ];
      const planned = [...good.map((k) => `s3://data/${k}`), ...unreadable].map(item);
      const { manifestKey, result } = await (async () => {
        const r = await extractShard(
          {
            store: s3.store('out'),
            bundle,
            encoder: encoder(bundle.manifest.architecture.embedDim),
          },
          { items: planned, datasetFingerprint: 'f' },
          { batchSize: 2, concurrency: 3 },
        );
        return { manifestKey: keys.manifestOfShard(r.shardKey), result: r };
      })();
      expect(result).toMatchObject({ images: good.length, failed: unreadable.length });
      const manifest = await s3
        .store('out')
        .requireJson<{ failed: { uri: string; reason: string }[] }>(manifestKey);
      expect(manifest.failed.map((f) => f.uri).sort()).toEqual([...unreadable].sort());
      for (const f of manifest.failed) expect(f.reason).toMatch(/^unreadable: /);
    });

    it('still fails the shard (to retry it) on an error that is not the key’s', async () => {
      const s3 = new MemoryS3(['out', 'data']);
      s3.put('data', 'ds/a.png', png);
      s3.faults.set('ds/a.png', s3Error('SlowDown', 503));
      await expect(
        extractShard(
          {
            store: s3.store('out'),
            bundle,
            encoder: encoder(bundle.manifest.architecture.embedDim),
          },
          { items: [item('s3://data/ds/a.png')], datasetFingerprint: 'f' },
          { batchSize: 2, concurrency: 2 },
        ),
      ).rejects.toMatchObject({ name: 'SlowDown' });
    });
  });
});

describe('hostile labels in the report (item 3)', () => {
  const reportData = hostileReportData;

  it('renders every chart and an inert page with a strict CSP', async () => {
    const data = reportData();
    const charts = await renderCharts(data);
    expect(charts.map((c) => c.name)).toEqual(['per-class', 'confusion-zero-shot']);
    const html = renderHtml(data, charts);
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="${CSP}">`);
    expect(CSP).toMatch(/default-src 'none'/);
    expect(CSP).not.toMatch(/script-src|unsafe-eval/);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<b onmouseover/);
    expect(html).toContain('&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    // Every label reached the per-class chart (as SVG text, escaped by Vega).
    const perClass = charts[0]!.svg;
    expect(perClass).toContain('quote&quot;double');
    expect(perClass).toContain('back\\slash\\');
  }, 60_000);

  it('sorts chart axes by a data field, never by an expression holding dataset strings', () => {
    const text = JSON.stringify(chartSpecs(reportData()).map((c) => c.spec));
    expect(text).not.toMatch(/"sort":\[/);
  });

  it('turns a chart its data cannot render into a permanent ReportRenderError', async () => {
    // The old way (a sort array holding U+2028) fails in Vega's expression parser, every time.
    const chart = {
      name: 'per-class',
      title: 't',
      caption: 'c',
      spec: {
        data: { values: [{ c: 'a\u2028b', v: 1 }] },
        mark: 'bar' as const,
        encoding: {
          y: { field: 'c', type: 'nominal' as const, sort: ['a\u2028b'] },
          x: { field: 'v', type: 'quantitative' as const },
        },
      },
    };
    const err = await renderChart(chart).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReportRenderError);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/chart "per-class" cannot be rendered/);
  });
});

describe('labels named like Object.prototype members (item 4)', () => {
  let tokenizer: ClipTokenizer;
  beforeAll(async () => {
    tokenizer = await tokenizerForBundle(await loadBundle(TINY_BUNDLE));
  });

  it('humanises them as words, and takes display names for them from the spec', () => {
    // Humanised like any label (`hasOwnProperty` -> `has Own Property`), never a prototype's value.
    expect(promptClassNames(PROTOTYPE_NAMES)).toEqual(HUMANISED);
    // From a spec file: JSON.parse keeps `__proto__` as an own key, and so does the spec schema.
    const spec = parseRunSpec(
      JSON.parse(
        '{"dataset":{"uri":"s3://bkt/ds/"},"classNames":{"__proto__":"prototype","toString":"string"}}',
      ),
    );
    expect(promptClassNames(PROTOTYPE_NAMES, spec.classNames)).toEqual([
      'constructor',
      'string',
      'prototype',
      'has Own Property',
      'value Of',
    ]);
    expect(() => promptClassNames(['a'], spec.classNames)).toThrow(/does not have: __proto__/);
  });

  it('plans them (manifest and counts included), and the plan survives JSON', () => {
    const jsonl = PROTOTYPE_NAMES.flatMap((l, i) => [
      JSON.stringify({ key: `${i}/a.jpg`, label: l, split: 'train' }),
      JSON.stringify({ key: `${i}/b.jpg`, label: l, split: 'test' }),
    ]).join('\n');
    const spec = withRoutes();
    const entries = parseManifest(jsonl, { bucket: 'bkt', key: 'ds/m.jsonl' }, spec.dataset);
    const p = plan(
      spec,
      entries.map((e) => ({
        uri: `s3://bkt/${e.location.key}`,
        size: 1,
        etag: 'e',
        className: e.className,
        split: e.split,
      })),
    );
    const round = JSON.parse(JSON.stringify(p)) as Plan;
    expect(round.classes).toEqual([...PROTOTYPE_NAMES].sort());
    expect(round.classNames).toEqual([...PROTOTYPE_NAMES].sort().map(humanizeClassName));
    for (const c of PROTOTYPE_NAMES)
      expect(round.counts.byClass[c]).toEqual({ train: 1, val: 0, test: 1 });
  });

  it('gives zero-shot the prompt text of the label, never of a prototype member', async () => {
    const p = JSON.parse(
      JSON.stringify(plan(withRoutes({ coop: { enabled: false } }), items(PROTOTYPE_NAMES))),
    ) as Plan;
    const texts: string[] = [];
    const capture = {
      encodeBatch: (t: readonly string[]) => (texts.push(...t), tokenizer.encodeBatch(t)),
    } as unknown as ClipTokenizer;
    const dim = 4;
    const textEncoder = {
      encode: (_: BigInt64Array, shape: [number, number]) =>
        Promise.resolve(new Float32Array(shape[0] * dim).fill(0.5)),
    } as unknown as ClipTextEncoder;
    await classPrototypes({ encoder: textEncoder, tokenizer: capture, dim }, p.classNames, [
      'a photo of a {c}.',
    ]);
    expect(texts).toEqual(
      [...PROTOTYPE_NAMES].sort().map((n) => `a photo of a ${humanizeClassName(n)}.`),
    );
    expect(texts.join()).not.toMatch(/null|undefined|\[object|function/);
  });

  it('lays out CoOp prompts for them', () => {
    const p = JSON.parse(JSON.stringify(plan(withRoutes(), items(PROTOTYPE_NAMES)))) as Plan;
    const layout = buildPrompts(tokenizer, p.classNames, {
      nCtx: 4,
      position: 'end',
      maxLength: 77,
    });
    expect(layout.batch.classes).toBe(PROTOTYPE_NAMES.length);
    const ids = Array.from(layout.batch.ids, Number);
    p.classNames.forEach((name, c) => {
      const nameIds = tokenizer.encode(name).slice(1, -1);
      const row = ids.slice(c * layout.batch.length, (c + 1) * layout.batch.length);
      expect(row.slice(5, 5 + nameIds.length)).toEqual(nameIds);
    });
  });
});

describe('smaller traps (item 13)', () => {
  it('puts a class name into a template verbatim, $ patterns included', () => {
    for (const name of ['$&', '$1', '$$', '$`', "$'", '$<name>', 'a$&b'])
      expect(fillTemplate('a photo of a {c}, {c}.', name)).toBe(`a photo of a ${name}, ${name}.`);
  });

  it('reads a JSONL manifest that starts with a UTF-8 byte-order mark', () => {
    const text = '\uFEFF{"key":"a.jpg","label":"cat"}\n{"key":"b.jpg","label":"dog"}\n';
    const rows = parseManifest(
      text,
      { bucket: 'bkt', key: 'ds/m.jsonl' },
      extractionSpec().dataset,
    );
    expect(rows.map((r) => [r.row, r.className])).toEqual([
      [1, 'cat'],
      [2, 'dog'],
    ]);
  });

  it('numbers CSV rows by the line they start on, quoted line breaks included', () => {
    const csv = [
      'key,label,split',
      '"a\nb.jpg",cat,train', // lines 2-3
      '',
      'c.jpg,"dog\r\nx",test', // lines 5-6
      'd.jpg,cat,holdout', // line 7
      'e.jpg,cat', // line 8
    ].join('\n');
    const loc = { bucket: 'bkt', key: 'ds/m.csv' };
    expect(() => parseManifest(csv, loc, extractionSpec().dataset)).toThrow(
      /row 8: 2 field\(s\), but the header has 3/,
    );
    const err = (() => {
      try {
        parseManifest(csv.split('\n').slice(0, 7).join('\n'), loc, extractionSpec().dataset);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(DatasetError);
    expect(err!.message).toMatch(/row 7: unknown split "holdout"/);
    const ok = parseManifest(csv.split('\n').slice(0, 6).join('\n'), loc, extractionSpec().dataset);
    expect(ok.map((r) => [r.row, r.location.key])).toEqual([
      [2, 'ds/a\nb.jpg'],
      [5, 'ds/c.jpg'],
    ]);
  });

  it('makes NFC and NFD spellings of a class name one class', () => {
    const nfc = 'caf\u00e9';
    const nfd = 'cafe\u0301';
    const folder = readImageFolder(
      [obj(`ds/train/${nfc}/1.jpg`), obj(`ds/train/${nfd}/2.jpg`), obj('ds/test/tea/3.jpg')],
      'bkt',
      'ds/',
      extractionSpec().dataset,
    );
    expect(new Set(folder.items.map((i) => i.className))).toEqual(new Set([nfc, 'tea']));
    // The keys are not touched: they name the objects.
    expect(folder.items.map((i) => i.uri)).toContain(`s3://bkt/ds/train/${nfd}/2.jpg`);
    const manifest = parseManifest(
      [nfc, nfd].map((l, i) => JSON.stringify({ key: `${i}.jpg`, label: l })).join('\n'),
      { bucket: 'bkt', key: 'ds/m.jsonl' },
      extractionSpec('s3://bkt/ds/', { dataset: { uri: 's3://bkt/ds/', classes: [nfd] } }).dataset,
    );
    expect(manifest.map((e) => e.className)).toEqual([nfc, nfc]);
    const p = plan(extractionSpec(), items([nfd, 'tea']));
    expect(p.classes).toEqual([nfc, 'tea']);
    expect(() =>
      plan(
        parseRunSpec({ dataset: { uri: 's3://bkt/ds/', classes: [nfc, nfd] }, ...EXTRACTION_ONLY }),
        items([nfc]),
      ),
    ).toThrow(/lists caf.* more than once \(NFC and NFD/);
  });

  it('refuses class names differing only in case when prompts would be identical', () => {
    expect(() => plan(withRoutes(), items(['Cat', 'cat', 'dog']))).toThrow(
      /prompts would be identical.*"Cat" and "cat"/,
    );
    expect(() => plan(withRoutes(), items(['sea_lion', 'sea-lion']))).toThrow(
      /"sea-lion" and "sea_lion"/,
    );
    // Display names that tell them apart, or the probe alone (labels are case-sensitive): fine.
    expect(
      plan(withRoutes({ classNames: { Cat: 'big cat' } }), items(['Cat', 'cat'])).classNames,
    ).toEqual(['big cat', 'cat']);
    const probeOnly = withRoutes({ zeroShot: { enabled: false }, coop: { enabled: false } });
    expect(plan(probeOnly, items(['Cat', 'cat'])).classes).toEqual(['Cat', 'cat']);
    // Keys differing only in case are distinct images.
    const folder = readImageFolder(
      [obj('ds/cat/A.jpg'), obj('ds/cat/a.jpg')],
      'bkt',
      'ds/',
      extractionSpec().dataset,
    );
    expect(folder.items).toHaveLength(2);
  });

  it('shows control characters from keys and labels as escapes in CLI output', () => {
    const evil = 'run\u001b[2J\u001b]0;pwned\u0007\r\u009b31m\u2028\u202e';
    const shown = terminalText(`error: ${evil}\n  next line\tok`);
    expect(shown).toBe(
      'error: run\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\u{d}\\u{9b}31m\\u{2028}\\u{202e}\n  next line\tok',
    );
    const outcome = {
      runId: 'r',
      status: 'FAILED' as const,
      error: `s3://b/${evil} does not exist`,
    };
    expect(formatOutcome(outcome as Parameters<typeof formatOutcome>[0])).not.toMatch(
      // eslint-disable-next-line no-control-regex -- what must not reach the terminal
      /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u202e]/,
    );
    const json = terminalJson({ key: evil });
    // eslint-disable-next-line no-control-regex -- what must not reach the terminal
    expect(json).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u202e]/);
    expect(JSON.parse(json)).toEqual({ key: evil });
  });

  it('prints a CLI error with escape codes escaped (exit 2)', () => {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join('cli', 'main.ts'),
        'report',
        'bad\u001b[31mid\u2028',
        '--out',
        '/tmp/x',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('bad\\u{1b}[31mid\\u{2028}');
    expect(r.stderr).not.toContain('\u001b[31mid');
  }, 60_000);

  it('makes a valid default run id from any dataset folder name', () => {
    const now = new Date('2026-11-27T02:00:00Z');
    const names = [
      'x'.repeat(300),
      `${'café '.repeat(60)}.jsonl`,
      '---',
      '\u2028\u001b',
      'ok-name',
      `${'a'.repeat(200)}.csv`,
    ];
    for (const name of names) {
      const id = defaultRunId(extractionSpec(`s3://bkt/data/${name}/`), now);
      expect(() => assertRunId(id)).not.toThrow();
      expect(id.length).toBeLessThanOrEqual(128);
      expect(id.endsWith('-20261127-020000')).toBe(true);
    }
    expect(defaultRunId(extractionSpec('s3://bkt/data/ok-name/'), now)).toBe(
      'ok-name-20261127-020000',
    );
    expect(defaultRunId(extractionSpec('s3://bkt/data/---/'), now)).toBe('dataset-20261127-020000');
  });
});
