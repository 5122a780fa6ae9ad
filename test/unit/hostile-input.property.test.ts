import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import type { SourcePolicy } from '../../core/config/allowed-sources';
import { ConfigError } from '../../core/config/errors';
import { planDataset } from '../../core/dataset/plan-dataset';
import type { Plan } from '../../core/dataset/plan';
import { DatasetError, hasDotSegment } from '../../core/dataset/types';
import { parseS3Uri } from '../../core/storage/s3-uri';
import { MemoryS3 } from '../helpers/memory-s3';

// Property-based: hostile manifests (JSONL and CSV) and hostile ImageFolder listings, run through
// the whole planning stage (planDataset: spec, listing or manifest, HEADs, plan, plan.json) on an
// in-memory S3. Whatever the input, planning ends in a plan or in a DatasetError / ConfigError
// that names the input, within a time bound, and never reads or writes outside the dataset's
// folder and the run's own keys. fast-check prints the seed and the shrunk input on a failure.

const DATA = 'data';
const OUT = 'out';
const FOLDER = 'sets/ds/';
const RUN = 'run-1';
/**
 * The deployment's boundary (CLIPEVAL_ALLOWED_SOURCES=data/sets/ds/): a manifest's full s3:// URIs
 * may name any bucket by design; with this policy, anything outside the dataset's folder is
 * refused before a single request.
 */
const SOURCES: SourcePolicy = { outputBucket: OUT, allowed: [{ bucket: DATA, key: FOLDER }] };
/** What a message must never carry raw (it reaches terminals and logs): controls, separators. */
// eslint-disable-next-line no-control-regex -- the characters to look for
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/;

const LINE_TERMINATORS = ['\n', '\r', '\r\n', '\u000b', '\u000c', '\u0085', '\u2028', '\u2029'];
const HOSTILE = [
  ...LINE_TERMINATORS,
  '\u0000',
  '\u0001',
  '\u001b[31m',
  '\u007f',
  '\u009b',
  '\u202e',
  '\ufeff',
  '\ud800', // a lone surrogate
  '%2e%2e',
  '%2F',
  '%00',
  '%0A',
  '..',
  '.',
  '/',
  '//',
  '../',
  './',
  '\\',
  '"',
  "'",
  ',',
  '{c}',
  '$&',
  '$1',
  'é',
  'e\u0301',
  ' ',
  '\t',
  's3://',
  'İ',
];
const PROTOTYPE_NAMES = [
  'constructor',
  'toString',
  '__proto__',
  'hasOwnProperty',
  'valueOf',
  'isPrototypeOf',
  '__defineGetter__',
];

const fragment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 3, arbitrary: fc.constantFrom('a', 'b', 'img', 'cat', 'Cat', 'x.jpg', '.png') },
  { weight: 1, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES) },
  { weight: 2, arbitrary: fc.string({ maxLength: 5 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 3 }) },
);
const text = (max: number) =>
  fc.array(fragment, { minLength: 1, maxLength: max }).map((p) => p.join(''));
/** A key: hostile text, sometimes a huge one, sometimes an image name. */
const keyArb = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.tuple(text(5), fc.constantFrom('', '.jpg', '.png')).map(([k, e]) => k + e),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('k'.repeat(1100), `${'é'.repeat(600)}.jpg`, 'x/'.repeat(300)),
  },
);
const labelArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'Cat',
      'cat',
      'caf\u00e9',
      'cafe\u0301',
      'a\u2028b',
      '$&',
      'sea_lion',
      'sea-lion',
    ),
  },
  { weight: 3, arbitrary: text(3) },
  { weight: 1, arbitrary: fc.integer({ min: -5, max: 5 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'L'.repeat(20_000)) },
);
const splitArb = fc.constantFrom(
  undefined,
  'train',
  'val',
  'test',
  'test',
  '',
  'TRAIN',
  ' test ',
  '__proto__',
  'constructor',
);

interface Row {
  key?: string;
  label?: string | number;
  split?: string;
}
/** A row, sometimes followed by a twin of its key: another case, NFD, or a full s3:// URI. */
const rowsArb = fc
  .array(
    fc.tuple(
      fc.record({ key: keyArb, label: labelArb, split: splitArb }, { requiredKeys: [] }),
      fc.constantFrom('none', 'none', 'upper', 'nfd', 'uri', 'uri-dot', 'other-bucket'),
    ),
    { minLength: 0, maxLength: 12 },
  )
  .map((pairs) =>
    pairs.flatMap(([row, twin]): Row[] => {
      const r = row as Row;
      if (twin === 'none' || typeof r.key !== 'string') return [r];
      const key =
        twin === 'upper'
          ? r.key.toUpperCase()
          : twin === 'nfd'
            ? r.key.normalize('NFD')
            : twin === 'uri'
              ? `s3://${DATA}/${FOLDER}${r.key}`
              : twin === 'uri-dot'
                ? `s3://${DATA}/${FOLDER}../${r.key}`
                : `s3://${DATA}/elsewhere/${r.key}`;
      return [r, { ...r, key }];
    }),
  );

/** Keys that S3 holds and a manifest may name: hostile characters, yet a plan is possible. */
const cleanKeyArb = text(4)
  .map((k) => `${k}.jpg`)
  .filter(
    (k) =>
      !/\p{Cs}/u.test(k) &&
      !hasDotSegment(k) &&
      !k.startsWith('/') &&
      !k.includes('//') &&
      k.replace(/^[ \t]+|[ \t]+$/g, '') === k &&
      !/^s3:/i.test(k),
  );
const cleanLabelArb = fc.oneof(
  fc.constantFrom(...PROTOTYPE_NAMES, 'caf\u00e9', 'cafe\u0301', 'a\u2028b', '$&', 'x"y', '</s>'),
  text(2).filter((l) => l.trim() !== ''),
);
/** Rows that can all be planned: present objects, labels, one split scheme for all rows. */
const cleanRowsArb = fc
  .tuple(
    fc.uniqueArray(cleanKeyArb, { minLength: 2, maxLength: 12 }),
    fc.array(cleanLabelArb, { minLength: 2, maxLength: 4 }),
    fc.boolean(),
  )
  .map(([keys, labels, withSplit]) =>
    keys.map((key, i): Row => ({
      key,
      label: labels[i % labels.length]!,
      ...(withSplit ? { split: i % 2 ? 'test' : 'train' } : {}),
    })),
  );

const specArb = fc.record({
  routes: fc.constantFrom('extraction', 'extraction', 'all', 'zero-shot'),
  classes: fc.oneof(
    { weight: 6, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.array(labelArb, { minLength: 1, maxLength: 4 }) },
  ),
  classNames: fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    {
      weight: 1,
      arbitrary: fc.dictionary(
        fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES), text(2)),
        fc.constantFrom('x', 'proto', 'constructor', 'toString', ''),
        { maxKeys: 3 },
      ),
    },
    // A built-in class list (core/config/benchmark-texts): matched to hostile labels or refused.
    { weight: 1, arbitrary: fc.constantFrom('pcam', 'clevr_count_all', 'mnist') },
  ),
});

type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;
type SpecCase = ValueOf<typeof specArb>;

function runSpec(uri: string, s: SpecCase): Record<string, unknown> {
  const off = { enabled: false };
  return {
    dataset: { uri, ...(s.classes ? { classes: s.classes } : {}) },
    ...(s.classNames ? { classNames: s.classNames } : {}),
    ...(s.routes === 'extraction'
      ? { zeroShot: off, coop: off, probe: off }
      : s.routes === 'zero-shot'
        ? { coop: off, probe: off }
        : {}),
  };
}

/** A manifest as a file: JSONL (with junk lines) or CSV (quoted, sometimes an extra column). */
const manifestArb = fc.record({
  rows: fc.oneof(rowsArb, cleanRowsArb, cleanRowsArb),
  format: fc.constantFrom('jsonl', 'csv'),
  bom: fc.boolean(),
  crlf: fc.boolean(),
  junk: fc.oneof(
    { weight: 3, arbitrary: fc.constant([] as string[]) },
    fc.array(
      fc.constantFrom(
        'not json',
        '[1]',
        'null',
        '{"__proto__":{"key":"x.jpg","label":"y"}}',
        '{"key":{"toString":1},"label":"x"}',
        '{"key":"a.jpg","label":"b","__proto__":{"split":"test"}}',
      ),
      { maxLength: 2 },
    ),
  ),
  extraColumn: fc.constantFrom(
    undefined,
    undefined,
    undefined,
    '__proto__',
    'constructor',
    'label',
  ),
  /** Whether each row's object is in the store (almost always). */
  present: fc.array(fc.oneof({ weight: 19, arbitrary: fc.constant(true) }, fc.constant(false)), {
    minLength: 40,
    maxLength: 40,
  }),
});

type ManifestCase = ValueOf<typeof manifestArb>;

function manifestText(m: ManifestCase): string {
  const eol = m.crlf ? '\r\n' : '\n';
  let body: string;
  if (m.format === 'jsonl') {
    body = [...m.rows.map((r) => JSON.stringify(r)), ...m.junk].join(eol);
  } else {
    const cols = ['key', 'label', 'split', ...(m.extraColumn ? [m.extraColumn] : [])];
    const q = (v: string | number | undefined) =>
      v === undefined ? '' : `"${String(v).replace(/"/g, '""')}"`;
    const field = (r: Row, c: string) => (r as Record<string, string | number | undefined>)[c];
    const rows = m.rows.map((r) => cols.map((c) => q(field(r, c))).join(','));
    body = [cols.join(','), ...rows].join(eol);
  }
  return (m.bom ? '\uFEFF' : '') + body;
}

/** Puts the objects a manifest names (some of them), and decoys outside the dataset. */
function storeFor(m: ManifestCase, manifestKey: string, text: string): MemoryS3 {
  const s3 = new MemoryS3([DATA, OUT]);
  s3.put(DATA, manifestKey, text);
  s3.put(DATA, 'sets/secret.png', 'decoy');
  s3.put(DATA, 'elsewhere/x.png', 'decoy');
  m.rows.forEach((r, i) => {
    if (typeof r.key !== 'string' || !m.present[i % m.present.length]) return;
    const key = r.key.startsWith(`s3://${DATA}/`)
      ? r.key.slice(`s3://${DATA}/`.length)
      : FOLDER + r.key;
    s3.put(DATA, key, `image ${i}`);
  });
  return s3;
}

/** planDataset, bounded: a hang is a failure of the property, not of the test run. */
async function planBounded(s3: MemoryS3, spec: Record<string, unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('planning did not finish within 5 s')), 5000);
  });
  try {
    const plan = planDataset(s3.store(OUT), { runId: RUN, spec }, { sources: SOURCES });
    return await Promise.race([plan, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The properties every outcome has: the error kind and message, and where planning reached. */
/** How the cases ended: the generators must reach plans, not only errors. */
const outcomes = { planned: 0, failed: 0 };

async function checkPlanning(s3: MemoryS3, spec: Record<string, unknown>, datasetUri: string) {
  let planned: Plan | undefined;
  try {
    await planBounded(s3, spec);
    planned = await s3.store(OUT).requireJson<Plan>(`runs/${RUN}/plan.json`);
    outcomes.planned++;
  } catch (err) {
    outcomes.failed++;
    if (err instanceof DatasetError) {
      // Names the input: the dataset, or the run spec field at fault.
      if (!err.message.startsWith('Run spec')) expect(err.message).toContain(datasetUri);
      expect(err.message).not.toMatch(RAW_CONTROL);
    } else if (err instanceof ConfigError) {
      expect(err.message).toMatch(/run spec/);
    } else {
      throw new Error(`planning threw ${(err as Error)?.name}: ${(err as Error)?.message}`, {
        cause: err,
      });
    }
  }
  // Reads only in the dataset's folder (and the bucket itself); writes only the run's plan.
  for (const a of s3.accesses) {
    if (a.bucket === DATA) {
      if (a.op === 'HeadBucket') continue;
      expect(a.key.startsWith(FOLDER), `${a.op} ${JSON.stringify(a.key)}`).toBe(true);
      expect(hasDotSegment(a.key.slice(FOLDER.length)), JSON.stringify(a.key)).toBe(false);
      expect(a.op).not.toMatch(/Put|Delete/);
    } else {
      expect(a.bucket).toBe(OUT);
      expect(a.key.startsWith(`runs/${RUN}/`), `${a.op} ${JSON.stringify(a.key)}`).toBe(true);
      if (/Put|Delete/.test(a.op)) expect(a.key).toBe(`runs/${RUN}/plan.json`);
    }
  }
  if (!planned) return undefined;
  const items = planned.shards.flatMap((s) => s.items);
  expect(items).toHaveLength(planned.counts.total);
  for (const i of items) {
    const { bucket, key } = parseS3Uri(i.uri);
    expect(bucket).toBe(DATA);
    expect(key.startsWith(FOLDER)).toBe(true);
    expect(hasDotSegment(key.slice(FOLDER.length))).toBe(false);
  }
  expect(new Set(items.map((i) => i.uri)).size).toBe(items.length);
  for (const name of planned.classNames) expect(typeof name).toBe('string');
  return planned;
}

/** Runs this many cases per property: the suite stays within ~20 s on a small machine. */
const RUNS = Number(process.env.CLIPEVAL_PROPERTY_RUNS ?? 1000);

describe('hostile manifests', () => {
  beforeEach(() => {
    outcomes.planned = outcomes.failed = 0;
  });
  it('plan or fail clearly, never reaching outside the dataset or the run', async () => {
    await fc.assert(
      fc.asyncProperty(manifestArb, specArb, async (m, s) => {
        const manifestKey = `${FOLDER}list.${m.format}`;
        const text = manifestText(m);
        const s3 = storeFor(m, manifestKey, text);
        const uri = `s3://${DATA}/${manifestKey}`;
        await checkPlanning(s3, runSpec(uri, s), uri);
      }),
      { numRuns: RUNS },
    );
    // The generators reach plans too, not only refusals.
    expect(outcomes.planned).toBeGreaterThan(RUNS / 10);
  }, 60_000);
});

describe('hostile ImageFolder listings', () => {
  beforeEach(() => {
    outcomes.planned = outcomes.failed = 0;
  });
  const hostilePathArb = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.tuple(
        fc.constantFrom('train', 'train', 'val', 'test', 'test', 'test', '..', '.', 'TEST'),
        labelArb,
        keyArb,
      ),
    },
    { weight: 1, arbitrary: fc.tuple(fc.constant(undefined), labelArb, keyArb) },
    { weight: 1, arbitrary: fc.tuple(fc.constant(undefined), fc.constant(undefined), keyArb) },
  );
  /** split/class/file paths a plan can come from: hostile names, one split scheme. */
  const cleanPathsArb = fc
    .tuple(
      fc.uniqueArray(cleanKeyArb, { minLength: 2, maxLength: 12 }),
      fc.array(cleanLabelArb, { minLength: 2, maxLength: 4 }),
      fc.boolean(),
    )
    .map(([files, labels, splitFolders]) =>
      files.map((file, i): [string | undefined, string | undefined, string] => [
        splitFolders ? (i % 2 ? 'test' : 'train') : undefined,
        labels[i % labels.length]!,
        file,
      ]),
    );
  const pathsArb = fc.oneof(
    fc.array(hostilePathArb, { maxLength: 16 }),
    cleanPathsArb,
    cleanPathsArb,
  );
  it('plan or fail clearly; every listed object is planned or a counted skip', async () => {
    await fc.assert(
      fc.asyncProperty(pathsArb, specArb, async (paths, s) => {
        const s3 = new MemoryS3([DATA, OUT]);
        s3.put(DATA, 'sets/secret.png', 'decoy');
        const listed = new Set<string>();
        for (const [split, label, file] of paths) {
          const rel = [split, label, file].filter((p) => p !== undefined).join('/');
          const key = FOLDER + rel;
          if (Buffer.byteLength(key) > 1024 || /\p{Cs}/u.test(key)) continue; // S3 cannot hold it
          s3.put(DATA, key, 'image');
          if (!key.endsWith('/')) listed.add(key);
        }
        const uri = `s3://${DATA}/${FOLDER}`;
        const plan = await checkPlanning(s3, runSpec(uri, s), uri);
        if (plan) {
          expect(plan.counts.total + plan.dataset.skipped.count).toBe(listed.size);
        }
      }),
      { numRuns: RUNS },
    );
    expect(outcomes.planned).toBeGreaterThan(RUNS / 10);
  }, 60_000);
});

describe('huge manifests', () => {
  it('plans 20,000 rows with hostile keys, and refuses a 1 MB key by name, within the bound', async () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => ({
      key: `${HOSTILE[i % HOSTILE.length]!.replace(/\.|\/|\ud800|^s3:\/\/$/g, '_')}${i}.jpg`,
      label: PROTOTYPE_NAMES[i % PROTOTYPE_NAMES.length],
      split: i % 3 ? 'train' : 'test',
    }));
    const manifestKey = `${FOLDER}big.jsonl`;
    const s3 = new MemoryS3([DATA, OUT]);
    s3.put(DATA, manifestKey, rows.map((r) => JSON.stringify(r)).join('\n'));
    for (const r of rows) s3.put(DATA, FOLDER + r.key.replace(/^[ \t]+|[ \t]+$/g, ''), 'image');
    const uri = `s3://${DATA}/${manifestKey}`;
    const plan = await checkPlanning(s3, runSpec(uri, { routes: 'extraction' } as SpecCase), uri);
    expect(plan?.counts.total).toBe(20_000);

    const huge = new MemoryS3([DATA, OUT]);
    const big = JSON.stringify({ key: `${'\u2028'.repeat(1 << 20)}.jpg`, label: 'x' });
    huge.put(
      DATA,
      manifestKey,
      `${big}\n${JSON.stringify({ key: 'a.jpg', label: 'L'.repeat(1 << 20) })}`,
    );
    await expect(
      planDataset(
        huge.store(OUT),
        { runId: RUN, spec: runSpec(uri, { routes: 'extraction' } as SpecCase) },
        { sources: SOURCES },
      ),
    ).rejects.toThrow(
      /row 1: key "(\\u\{2028\}){200}…" \(1048580 characters\) is 3145740 bytes long/,
    );
  }, 60_000);
});
