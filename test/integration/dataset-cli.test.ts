import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipevalEnv } from '../../core/config/env';
import type { ObjectStore } from '../../core/storage/object-store';
import { putObjects, runCli, testEnv, testStore, tinyPng, uniqueId } from '../helpers/stack';

// `clipeval dataset inspect` and `export-wds` as a user runs them, against the stack's S3. Neither
// needs Temporal: TEMPORAL_ADDRESS points at a closed port to prove it.
let env: ClipevalEnv;
let store: ObjectStore;
beforeAll(() => {
  env = testEnv();
  store = testStore(env);
});
afterAll(() => store.client.destroy());

const clipeval = (args: string[]) =>
  runCli(args, { extraEnv: { TEMPORAL_ADDRESS: '127.0.0.1:1' }, timeoutMs: 60_000 });

async function names(tar: Uint8Array): Promise<[string, string][]> {
  const ex = extract();
  const out: [string, string][] = [];
  const done = (async () => {
    for await (const e of ex) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      const data = Buffer.concat(chunks);
      out.push([
        e.header.name,
        e.header.name.endsWith('.cls') ? data.toString() : `${data.length}`,
      ]);
    }
  })();
  ex.end(Buffer.from(tar));
  await done;
  return out;
}

describe('clipeval dataset', () => {
  it('inspects an ImageFolder prefix (text and --json), exports it as WebDataset, and inspects errors', async () => {
    const prefix = `${uniqueId('ds-cli')}/`;
    const images = {
      'train/cat/1.png': await tinyPng(1),
      'train/dog/2.png': await tinyPng(2),
      'test/cat/3.png': await tinyPng(3),
      'test/dog/4.png': await tinyPng(4),
      'notes.txt': 'not an image',
    };
    await putObjects(env, env.s3.bucket, prefix, images);
    const uri = `s3://${env.s3.bucket}/${prefix}`;

    const json = await clipeval(['dataset', 'inspect', uri, '--json']);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      uri,
      format: 'image-folder',
      layout: 'split-folders',
      images: 4,
      classes: { count: 2, first: ['cat', 'dog'] },
      splits: { train: 2, val: 0, test: 2 },
      skipped: { count: 1, examples: [{ uri: `${uri}notes.txt` }] },
      samples: { train: [`${uri}train/cat/1.png`, `${uri}train/dog/2.png`] },
      planning: { ok: true, images: 4 },
    });
    const text = await clipeval(['dataset', 'inspect', uri]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/format +ImageFolder \(split-folders\)/);
    expect(text.stdout).toMatch(/splits +train 2, val 0, test 2/);
    expect(text.stdout).toContain(`test  ${uri}test/cat/3.png`);
    expect(text.stdout).toMatch(/planning ok: a run plans 4 images in \d+ shard/);
    // A spec whose run would not plan (a closed class list without "dog") is reported, not fatal.
    const specFile = join(mkdtempSync(join(tmpdir(), 'spec-')), 'run.json');
    writeFileSync(specFile, JSON.stringify({ dataset: { uri, classes: ['cat'] } }));
    const refused = await clipeval(['dataset', 'inspect', '--spec', specFile, '--json']);
    expect(refused.code).toBe(0);
    expect(JSON.parse(refused.stdout)).toMatchObject({
      planning: { ok: false, error: expect.stringMatching(/not in dataset\.classes/) as string },
    });

    const out = `s3://${env.s3.bucket}/${prefix.replace(/\/$/, '-wds/')}`;
    const exported = await clipeval([
      'dataset',
      'export-wds',
      '--dataset',
      uri,
      '--out',
      out,
      '--json',
    ]);
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ out, samples: 4, failed: { count: 0 } });
    const wds = prefix.replace(/\/$/, '-wds/');
    expect(await store.getText(`${wds}classnames.txt`)).toBe('cat\ndog\n');
    expect(await store.getText(`${wds}train/nshards.txt`)).toBe('1\n');
    expect(await names((await store.getBytes(`${wds}test/0.tar`))!)).toEqual([
      ['s0000000.png', String(images['test/cat/3.png'].length)],
      ['s0000000.cls', '0'],
      ['s0000001.png', String(images['test/dog/4.png'].length)],
      ['s0000001.cls', '1'],
    ]);
    // Again: the same export, accepted; into the dataset itself: refused, exit 2.
    const again = await clipeval(['dataset', 'export-wds', '--dataset', uri, '--out', out]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/test +2 samples in 1 tar\(s\)/);
    const inside = await clipeval([
      'dataset',
      'export-wds',
      '--dataset',
      uri,
      '--out',
      `${uri}wds/`,
    ]);
    expect(inside.code).toBe(2);
    expect(inside.stderr).toMatch(/overlaps the dataset/);
  });

  it('exits 2 with a clear message for an empty prefix, a missing bucket, no dataset and a bad --format', async () => {
    const empty = await clipeval([
      'dataset',
      'inspect',
      `s3://${env.s3.bucket}/${uniqueId('none')}/`,
    ]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/^clipeval: error: /);
    const bucket = await clipeval(['dataset', 'inspect', 's3://no-such-bucket-here/ds/']);
    expect(bucket.code).toBe(2);
    expect(bucket.stderr).toMatch(/bucket "no-such-bucket-here" does not exist/);
    const none = await clipeval(['dataset', 'inspect']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/No dataset: give its URI/);
    const format = await clipeval(['dataset', 'inspect', 's3://b/ds/', '--format', 'zip']);
    expect(format.code).toBe(2);
    expect(format.stderr).toMatch(/--format zip: expected one of auto, imagefolder/);
  });
});
