import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { extract } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { EXTRACTION_ONLY, parseRunSpec, type RunSpecInput } from '../../core/config/run-spec';
import { type ExportWdsOptions, exportWebDataset } from '../../core/dataset/export-wds';
import { loadDataset } from '../../core/dataset/load';
import { buildPlan, type Plan } from '../../core/dataset/plan';
import { DatasetError } from '../../core/dataset/types';
import { DEFAULT_TEMPLATES } from '../../core/routes/zero-shot/templates';
import { MemoryS3 } from '../helpers/memory-s3';
import { runPythonJson } from '../helpers/python';

// The WebDataset export on the in-memory S3, read back with tar-stream's extract (an independent
// tar reader), never with clipeval's own WebDataset loader.

const PNG = Buffer.from('89504e470d0a1a0a', 'hex');
const JPEG = Buffer.from('ffd8ffe0', 'hex');
/** Distinct bytes per image (the export copies bytes; it never decodes them). */
const image = (magic: Buffer, n: number) => Buffer.concat([magic, randomBytes(100 + n * 37)]);

async function untar(bytes: Uint8Array): Promise<{ name: string; data: Buffer }[]> {
  const ex = extract();
  const members: { name: string; data: Buffer }[] = [];
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      members.push({ name: entry.header.name, data: Buffer.concat(chunks) });
    }
  })();
  ex.end(Buffer.from(bytes));
  await done;
  return members;
}

const OPTS: ExportWdsOptions = { maxSamplesPerTar: 10_000, maxTarBytes: 256 * 1024 ** 2 };

async function planOf(s3: MemoryS3, uri: string, extra: Partial<RunSpecInput> = {}): Promise<Plan> {
  const spec = parseRunSpec({ dataset: { uri }, ...EXTRACTION_ONLY, ...extra });
  const loaded = await loadDataset(s3.store('src'), spec.dataset);
  return buildPlan({ runId: 'r', spec, ...loaded });
}

/** An ImageFolder with split folders: 5 train and 3 test images over two classes. */
function imageFolder(s3: MemoryS3): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const keys = [
    'train/golden_retriever/a.jpg',
    'train/golden_retriever/b.JPEG',
    'train/tabby/c.png',
    'train/tabby/d.jpg',
    'train/tabby/e.png',
    'test/golden_retriever/f.jpg',
    'test/tabby/g.png',
    'test/tabby/h.jpg',
  ];
  keys.forEach((k, i) => {
    const bytes = image(k.endsWith('png') ? PNG : JPEG, i);
    files.set(`s3://src/ds/${k}`, bytes);
    s3.put('src', `ds/${k}`, bytes);
  });
  return files;
}

/** Every tar of a split, in order, as (name, data) members; checks nshards.txt against them. */
async function splitMembers(s3: MemoryS3, prefix: string, split: string) {
  const nshards = new TextDecoder().decode(s3.get('out', `${prefix}${split}/nshards.txt`));
  expect(nshards).toMatch(/^\d+\n$/);
  const tars = Array.from({ length: Number(nshards) }, (_, i) =>
    s3.get('out', `${prefix}${split}/${i}.tar`),
  );
  expect(tars.every((t) => t !== undefined)).toBe(true);
  expect(s3.get('out', `${prefix}${split}/${tars.length}.tar`)).toBeUndefined();
  return Promise.all(tars.map((t) => untar(t!)));
}

const text = (s3: MemoryS3, key: string) => new TextDecoder().decode(s3.get('out', key));

describe('export-wds', () => {
  it('writes an ImageFolder as CLIP_benchmark WebDataset: names, labels, bytes, files', async () => {
    const s3 = new MemoryS3(['src', 'out']);
    const files = imageFolder(s3);
    const plan = await planOf(s3, 's3://src/ds/');
    const r = await exportWebDataset(
      s3.store('out'),
      { plan, templates: DEFAULT_TEMPLATES, out: 's3://out/wds/pets' },
      OPTS,
    );
    expect(r.out).toBe('s3://out/wds/pets/');
    expect(r.samples).toBe(8);
    expect(r.failed.count).toBe(0);
    const tarBytes = (split: string) => s3.get('out', `wds/pets/${split}/0.tar`)!.length;
    expect(r.splits).toEqual({
      train: { tars: 1, samples: 5, bytes: tarBytes('train') },
      test: { tars: 1, samples: 3, bytes: tarBytes('test') },
    });
    // The names prompts use (humanised labels), one per line, in label-id order.
    expect(plan.classes).toEqual(['golden_retriever', 'tabby']);
    expect(text(s3, 'wds/pets/classnames.txt')).toBe('golden retriever\ntabby\n');
    expect(text(s3, 'wds/pets/zeroshot_classification_templates.txt')).toBe(
      DEFAULT_TEMPLATES.map((t) => `${t}\n`).join(''),
    );
    for (const split of ['train', 'test'] as const) {
      const [members] = await splitMembers(s3, 'wds/pets/', split);
      const items = plan.shards.flatMap((s) => s.items).filter((i) => i.split === split);
      // Samples numbered in plan order, image then .cls; jpeg spelled jpg, lowercase.
      expect(members!.map((m) => m.name)).toEqual(
        items.flatMap((item, n) => {
          const key = `s${String(n).padStart(7, '0')}`;
          const ext = /\.png$/i.test(item.uri) ? 'png' : 'jpg';
          return [`${key}.${ext}`, `${key}.cls`];
        }),
      );
      items.forEach((item, n) => {
        expect(members![2 * n]!.data.equals(files.get(item.uri)!)).toBe(true);
        expect(members![2 * n + 1]!.data.toString()).toBe(String(item.label)); // str(int), no newline
      });
    }
    expect(s3.get('out', 'wds/pets/val/nshards.txt')).toBeUndefined(); // no val images, no val split
    expect(JSON.parse(text(s3, 'wds/pets/clipeval-export.json'))).toMatchObject({
      dataset: 's3://src/ds/',
      fingerprint: plan.dataset.fingerprint,
      complete: true,
      samples: 8,
    });
  });

  it('respects the sample and byte limits per tar; an oversized image gets a tar of its own', async () => {
    const s3 = new MemoryS3(['src', 'out']);
    imageFolder(s3);
    s3.put('src', 'ds/train/tabby/z-big.png', image(PNG, 3000)); // ~111 KB, over the byte limit
    const plan = await planOf(s3, 's3://src/ds/');
    const byCount = await exportWebDataset(
      s3.store('out'),
      { plan, templates: ['{c}'], out: 's3://out/by-count/' },
      { ...OPTS, maxSamplesPerTar: 2 },
    );
    const train = await splitMembers(s3, 'by-count/', 'train');
    expect(train.map((t) => t.length / 2)).toEqual([2, 2, 2]);
    expect(byCount.splits.train!.tars).toBe(3);

    // Small images take 2,048 bytes per sample (two members of a header and one block each), and
    // a tar ends with 1,024 zero bytes: two samples fill 5,120 bytes exactly.
    const maxTarBytes = 5120;
    const bySize = await exportWebDataset(
      s3.store('out'),
      { plan, templates: ['{c}'], out: 's3://out/by-size/' },
      { ...OPTS, maxTarBytes },
    );
    const tars = Array.from({ length: bySize.splits.train!.tars }, (_, i) =>
      s3.get('out', `by-size/train/${i}.tar`)!,
    );
    const members = await Promise.all(tars.map(untar));
    expect(members.map((m) => m.length / 2)).toEqual([2, 2, 1, 1]);
    expect(tars[0]!.length).toBe(maxTarBytes);
    // Each tar is within the limit, except the one holding only the oversized image.
    members.forEach((m, i) => {
      const big = m.some((x) => x.data.length > maxTarBytes);
      if (big) expect(m.length).toBe(2);
      else expect(tars[i]!.length).toBeLessThanOrEqual(maxTarBytes);
    });
    expect(members.filter((m) => m.some((x) => x.data.length > maxTarBytes))).toHaveLength(1);
    // Numbering continues across tars.
    expect(
      members
        .flat()
        .filter((m) => m.name.endsWith('.cls'))
        .map((m) => m.name),
    ).toEqual(Array.from({ length: 6 }, (_, n) => `s${String(n).padStart(7, '0')}.cls`));
    expect(bySize.bytes).toBe(
      tars.reduce((a, t) => a + t.length, 0) +
        Array.from(
          { length: bySize.splits.test!.tars },
          (_, i) => s3.get('out', `by-size/test/${i}.tar`)!.length,
        ).reduce((a, n) => a + n, 0),
    );
  });

  it('exports a manifest: extension from the bytes when the key has none; unreadable images are counted, not fatal', async () => {
    const s3 = new MemoryS3(['src', 'out']);
    const png = image(PNG, 1);
    s3.put('src', 'm/img/one', png); // no extension: sniffed as png
    s3.put('src', 'm/img/two.JPG', image(JPEG, 2));
    s3.put('src', 'm/img/gone.jpg', image(JPEG, 3));
    s3.put('src', 'm/img/changed.jpg', image(JPEG, 4));
    s3.put('src', 'm/img/text', 'not an image at all');
    s3.put(
      'src',
      'm/list.jsonl',
      [
        '{"key":"img/one","label":"cat","split":"test"}',
        '{"key":"img/two.JPG","label":"dog","split":"test"}',
        '{"key":"img/gone.jpg","label":"dog","split":"test"}',
        '{"key":"img/changed.jpg","label":"cat","split":"test"}',
        '{"key":"img/text","label":"cat","split":"test"}',
      ].join('\n'),
    );
    const plan = await planOf(s3, 's3://src/m/list.jsonl');
    s3.buckets.get('src')!.delete('m/img/gone.jpg');
    s3.put('src', 'm/img/changed.jpg', image(JPEG, 5)); // a new ETag since planning
    const r = await exportWebDataset(
      s3.store('out'),
      { plan, templates: ['a photo of a {c}.'], out: 's3://out/m-wds/' },
      OPTS,
    );
    expect(r.samples).toBe(2);
    expect(r.failed.count).toBe(3);
    expect(r.failed.byReason).toEqual({ unreadable: 1, changed: 1, 'not-an-image': 1 });
    expect(r.failed.examples.map((f) => f.uri).sort()).toEqual(
      ['s3://src/m/img/changed.jpg', 's3://src/m/img/gone.jpg', 's3://src/m/img/text'].sort(),
    );
    const [members] = await splitMembers(s3, 'm-wds/', 'test');
    expect(members!.map((m) => m.name)).toEqual([
      's0000000.png',
      's0000000.cls',
      's0000001.jpg',
      's0000001.cls',
    ]);
    expect(members![0]!.data.equals(png)).toBe(true);
    expect(members!.filter((m) => m.name.endsWith('.cls')).map((m) => m.data.toString())).toEqual([
      String(plan.classes.indexOf('cat')),
      String(plan.classes.indexOf('dog')),
    ]);
  });

  it('is idempotent, refuses a prefix holding something else, and --overwrite removes stale shards', async () => {
    const s3 = new MemoryS3(['src', 'out']);
    imageFolder(s3);
    const plan = await planOf(s3, 's3://src/ds/');
    const input = { plan, templates: ['{c}'], out: 's3://out/x/' };
    const snapshot = () => new Map([...s3.buckets.get('out')!].map(([k, o]) => [k, o.body]));
    await exportWebDataset(s3.store('out'), input, { ...OPTS, maxSamplesPerTar: 2 });
    const first = snapshot();
    await exportWebDataset(s3.store('out'), input, { ...OPTS, maxSamplesPerTar: 2 });
    expect(snapshot()).toEqual(first); // the same objects, byte for byte

    // Other settings are another export: refused without --overwrite.
    await expect(
      exportWebDataset(s3.store('out'), input, { ...OPTS, maxSamplesPerTar: 10 }),
    ).rejects.toThrow(/already holds an export of "?s3:\/\/src\/ds\/.*--overwrite/s);
    const r = await exportWebDataset(s3.store('out'), input, {
      ...OPTS,
      maxSamplesPerTar: 10,
      overwrite: true,
    });
    expect(r.removed.sort()).toEqual([
      's3://out/x/test/1.tar',
      's3://out/x/train/1.tar',
      's3://out/x/train/2.tar',
    ]);
    expect(text(s3, 'x/train/nshards.txt')).toBe('1\n');
    expect(s3.get('out', 'x/train/1.tar')).toBeUndefined();

    // Someone else's objects: refused, named.
    s3.put('out', 'theirs/data.bin', 'x');
    await expect(
      exportWebDataset(s3.store('out'), { ...input, out: 's3://out/theirs/' }, OPTS),
    ).rejects.toThrow(/1 object\(s\) \(theirs\/data\.bin\) that are not a clipeval export/);
    expect(s3.get('out', 'theirs/classnames.txt')).toBeUndefined();
  });

  it('refuses a bucket root, an output inside the dataset, and a class name with a line break', async () => {
    const s3 = new MemoryS3(['src', 'out']);
    imageFolder(s3);
    const plan = await planOf(s3, 's3://src/ds/');
    const run = (out: string, p = plan) =>
      exportWebDataset(s3.store('out'), { plan: p, templates: ['{c}'], out }, OPTS);
    await expect(run('s3://out/')).rejects.toThrow(/bucket root/);
    await expect(run('s3://src/ds/wds/')).rejects.toThrow(DatasetError);
    await expect(run('s3://src/')).rejects.toThrow(/bucket root/);
    await expect(run('s3://src/ds')).rejects.toThrow(/overlaps the dataset/);
    const named = await planOf(s3, 's3://src/ds/', { classNames: { tabby: 'tabby\ncat' } });
    await expect(run('s3://out/n/', named)).rejects.toThrow(/holds a line break.*classNames/s);
    expect(s3.buckets.get('out')!.size).toBe(0);
  });
});

describe('export-wds read by Python webdataset (what CLIP_benchmark reads with)', () => {
  it('gives the same keys, labels and image bytes', async () => {
    const s3 = new MemoryS3(['src', 'out']);
    const files = imageFolder(s3);
    const plan = await planOf(s3, 's3://src/ds/');
    await exportWebDataset(
      s3.store('out'),
      { plan, templates: ['{c}'], out: 's3://out/py/' },
      { ...OPTS, maxSamplesPerTar: 2 },
    );
    const root = mkdtempSync(join(tmpdir(), 'wds-'));
    for (const [key, o] of s3.buckets.get('out')!) {
      mkdirSync(dirname(join(root, key)), { recursive: true });
      writeFileSync(join(root, key), o.body);
    }
    const read = runPythonJson(
      `
import hashlib, json, sys
import webdataset as wds
d = json.load(sys.stdin)
out = {}
for split in ("train", "test"):
    n = int(open(f"{d['root']}/{split}/nshards.txt").read())
    urls = [f"{d['root']}/{split}/{i}.tar" for i in range(n)]
    rows = []
    for s in wds.WebDataset(urls, shardshuffle=False).decode():
        ext = [k for k in s if k in ("png", "jpg")]
        rows.append([s["__key__"], s["cls"], ext, hashlib.sha256(s[ext[0]]).hexdigest()])
    out[split] = rows
print(json.dumps(out))
`,
      { root: join(root, 'py') },
    ) as Record<string, [string, number, string[], string][]>;
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    for (const split of ['train', 'test'] as const) {
      const items = plan.shards.flatMap((s) => s.items).filter((i) => i.split === split);
      expect(read[split]).toEqual(
        items.map((item, n) => [
          `s${String(n).padStart(7, '0')}`,
          item.label,
          [/\.png$/i.test(item.uri) ? 'png' : 'jpg'],
          sha(files.get(item.uri)!),
        ]),
      );
    }
  });
});
