import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BundleError,
  badBundleFileName,
  bundleFilePath,
  fetchBundle,
  loadBundle,
} from '../../core/model/bundle';
import { PermanentError } from '../../core/util/errors';
import { MemoryS3 } from '../helpers/memory-s3';
import { TINY_BUNDLE } from '../helpers/fixtures';

// Issue 12, item 1: the names in bundle.json become paths on the worker. Each must be one path
// segment, checked when bundle.json is parsed (before any download or write), and every path
// must stay inside the bundle folder, for local bundles too. versitygw refuses `..` keys, so the
// S3 side is tested here against an in-memory S3 (AWS S3 itself stores such keys).

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const tinyManifest = () =>
  JSON.parse(readFileSync(join(TINY_BUNDLE, 'bundle.json'), 'utf8')) as {
    files: Record<string, string>;
    graphs: { image: { file: string } };
  };

/** A scratch folder: `bundle/` (a copy of the tiny bundle) beside `outside/`. */
function scratch() {
  const root = mkdtempSync(join(tmpdir(), 'clipeval-bundle-files-'));
  const bundle = join(root, 'bundle');
  cpSync(TINY_BUNDLE, bundle, { recursive: true });
  mkdirSync(join(root, 'outside'));
  return { root, bundle };
}

describe('bundle file names', () => {
  it.each([
    ['', /empty/],
    ['.', /folder/],
    ['..', /folder/],
    ['../x.onnx', /separator/],
    ['../../../../.bashrc', /separator/],
    ['/etc/passwd', /separator/],
    ['sub/image.onnx', /separator/],
    ['..\\image.onnx', /separator/],
    ['C:\\image.onnx', /separator/],
    ['image\u0000.onnx', /control/],
    ['line\nbreak.onnx', /control/],
    ['esc\u001b[31m.onnx', /control/],
    ['sep\u2028.onnx', /control/],
    ['bundle.json', /manifest/],
    ['x'.repeat(256), /255/],
  ])('refuses %j', (name, why) => {
    expect(badBundleFileName(name)).toMatch(why);
    expect(() => bundleFilePath('/tmp/b', name)).toThrow(BundleError);
  });

  it.each(['image.onnx', 'image.int8.onnx', 'vocab.json', 'merges.txt', '..onnx', 'a..b'])(
    'accepts %j',
    (name) => {
      expect(badBundleFileName(name)).toBeUndefined();
      expect(bundleFilePath('/tmp/b', name)).toBe(`/tmp/b/${name}`);
    },
  );
});

describe('local bundles', () => {
  it('refuses a bundle.json whose image graph is ../outside/image.onnx (it loaded before)', async () => {
    const { root, bundle } = scratch();
    renameSync(join(bundle, 'image.onnx'), join(root, 'outside', 'image.onnx'));
    const m = tinyManifest();
    const hash = m.files['image.onnx']!;
    delete m.files['image.onnx'];
    m.files['../outside/image.onnx'] = hash;
    m.graphs.image.file = '../outside/image.onnx';
    writeFileSync(join(bundle, 'bundle.json'), JSON.stringify(m));

    const err = await loadBundle(bundle).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BundleError);
    expect(err).toBeInstanceOf(PermanentError); // not retried
    // Names the bundle, the entry and the fix.
    expect((err as Error).message).toContain(bundle);
    expect((err as Error).message).toMatch(/files\["\.\.\/outside\/image\.onnx"\]/);
    expect((err as Error).message).toMatch(/one path segment.*re-export the bundle/);
  });

  it('refuses a bundle file that is a link to a file outside the folder', async () => {
    const { root, bundle } = scratch();
    renameSync(join(bundle, 'vocab.json'), join(root, 'outside', 'vocab.json'));
    symlinkSync(join(root, 'outside', 'vocab.json'), join(bundle, 'vocab.json'));
    await expect(loadBundle(bundle)).rejects.toThrow(/vocab\.json is a link to .*outside/);
  });

  it('refuses a bundle file over maxFileBytes', async () => {
    const { bundle } = scratch();
    await expect(loadBundle(bundle, { maxFileBytes: 1_000_000 })).rejects.toThrow(
      /coop\.onnx is 6\.4 MiB, over the limit of 976\.6 KiB per bundle file.*CLIPEVAL_MAX_BUNDLE_FILE_BYTES/,
    );
    await expect(loadBundle(bundle, { maxFileBytes: 7_000_000 })).resolves.toMatchObject({
      dir: bundle,
    });
  });
});

describe('fetchBundle from S3', () => {
  /** The tiny bundle as objects under s3://bkt/m/, bundle.json rewritten by `edit`. */
  function s3Bundle(
    edit?: (m: ReturnType<typeof tinyManifest>) => void,
    extra: Record<string, string> = {},
  ) {
    const m = tinyManifest();
    edit?.(m);
    const manifest = edit
      ? JSON.stringify(m)
      : readFileSync(join(TINY_BUNDLE, 'bundle.json'), 'utf8');
    const s3 = new MemoryS3();
    s3.put('bkt', 'm/bundle.json', manifest);
    for (const f of readdirSync(TINY_BUNDLE).filter((f) => f !== 'bundle.json'))
      s3.put('bkt', `m/${f}`, readFileSync(join(TINY_BUNDLE, f)));
    for (const [key, body] of Object.entries(extra)) s3.put('bkt', key, body);
    return s3;
  }

  it('refuses bundle.json naming ../../x before any download or write', async () => {
    const payload = 'echo pwned\n';
    const s3 = s3Bundle((m) => (m.files['../../x'] = sha256(payload)), {
      'm/../../x': payload,
    });
    const root = mkdtempSync(join(tmpdir(), 'clipeval-fetch-'));
    const cache = join(root, 'a', 'cache');
    mkdirSync(cache, { recursive: true });

    await expect(fetchBundle(s3.store('bkt'), 's3://bkt/m/', cache)).rejects.toThrow(
      /s3:\/\/bkt\/m\/bundle\.json: files\["\.\.\/\.\.\/x"\] is "\.\.\/\.\.\/x", which is not a plain file name/,
    );
    expect(s3.reads.map((r) => r.key)).toEqual(['m/bundle.json']); // nothing else was read
    expect(existsSync(join(root, 'x'))).toBe(false);
    expect(existsSync(join(root, 'a', 'x'))).toBe(false);
    expect(readdirSync(root)).toEqual(['a']);
    expect(readdirSync(join(root, 'a'))).toEqual(['cache']);
    expect(readdirSync(cache)).toEqual([]); // no staging folder left
  });

  it('refuses a graph name with a separator even when files lists it', async () => {
    const s3 = s3Bundle((m) => {
      m.files['sub/image.onnx'] = m.files['image.onnx']!;
      m.graphs.image.file = 'sub/image.onnx';
    });
    const cache = mkdtempSync(join(tmpdir(), 'clipeval-fetch-'));
    await expect(fetchBundle(s3.store('bkt'), 's3://bkt/m', cache)).rejects.toThrow(BundleError);
    expect(readdirSync(cache)).toEqual([]);
  });

  it('checks each file against its sha256 before writing it, and cleans up', async () => {
    const s3 = s3Bundle(undefined, { 'm/merges.txt': 'not the merges' });
    const cache = mkdtempSync(join(tmpdir(), 'clipeval-fetch-'));
    await expect(fetchBundle(s3.store('bkt'), 's3://bkt/m', cache)).rejects.toThrow(
      /Bundle s3:\/\/bkt\/m: sha256 of merges\.txt is .*bundle\.json says .*re-upload/,
    );
    expect(readdirSync(cache)).toEqual([]);
  });

  it('refuses a file over maxFileBytes from its size, without reading its body', async () => {
    const s3 = s3Bundle();
    const cache = mkdtempSync(join(tmpdir(), 'clipeval-fetch-'));
    await expect(
      fetchBundle(s3.store('bkt'), 's3://bkt/m', cache, { maxFileBytes: 1_000_000 }),
    ).rejects.toThrow(/coop\.onnx is 6\.4 MiB, over the limit of 976\.6 KiB per bundle file/);
    const coop = s3.reads.find((r) => r.key === 'm/coop.onnx')!;
    expect(coop.consumed).toBeLessThanOrEqual(65536);
    expect(readdirSync(cache)).toEqual([]);
  });

  it('fetches the intact bundle (the same hash as the local one)', async () => {
    const s3 = s3Bundle();
    const cache = mkdtempSync(join(tmpdir(), 'clipeval-fetch-'));
    const fetched = await fetchBundle(s3.store('bkt'), 's3://bkt/m', cache);
    expect(fetched.hash).toBe((await loadBundle(TINY_BUNDLE)).hash);
    expect(readdirSync(cache)).toEqual([fetched.hash]);
  });
});
