import { cpSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCpuActivities, createGpuActivities } from '../../activities';
import {
  checkBundleSource,
  checkDatasetSource,
  manifestObjectRefusal,
  parseAllowedSources,
  sourcePolicy,
} from '../../core/config/allowed-sources';
import { loadEnv } from '../../core/config/env';
import { ConfigError } from '../../core/config/errors';
import { loadDataset } from '../../core/dataset/load';
import { resolveBundle } from '../../core/model/bundle';
import type { ObjectStore } from '../../core/storage/object-store';
import { TINY_BUNDLE } from '../helpers/fixtures';

// Issue 12, item 9: manifest s3:// URIs and bundle references could name any bucket or local path.

/** A store that fails the test if anything touches it: refusals come before any request. */
const untouchable = new Proxy({} as ObjectStore, {
  get: (_t, prop) => {
    throw new Error(`the store was used (${String(prop)}) before the source was checked`);
  },
});

const policy = (opts: { allowed?: string; dirs?: string; defaultBundle?: string } = {}) =>
  sourcePolicy({
    outputBucket: 'out',
    defaultBundle: opts.defaultBundle ?? 's3://out/models/clip-vit-base-patch32/',
    allowedSources: opts.allowed,
    allowedBundleDirs: opts.dirs,
  });

describe('allowed sources: S3', () => {
  it('parses bucket and bucket/prefix entries, and names the variable on a bad one', () => {
    expect(parseAllowedSources('data, s3://models/clip , raw/a/b/')).toEqual([
      { bucket: 'data', key: '' },
      { bucket: 'models', key: 'clip/' },
      { bucket: 'raw', key: 'a/b/' },
    ]);
    expect(() => parseAllowedSources('Bad_Bucket')).toThrow(
      /CLIPEVAL_ALLOWED_SOURCES entry "Bad_Bucket" is not a bucket or bucket\/prefix/,
    );
    expect(() => parseAllowedSources('data/../x')).toThrow(ConfigError);
    expect(() =>
      loadEnv({ CLIPEVAL_BUCKET: 'out', CLIPEVAL_ALLOWED_SOURCES: 'data,NOPE' }),
    ).toThrow(/CLIPEVAL_ALLOWED_SOURCES entry "NOPE"/);
    expect(loadEnv({ CLIPEVAL_BUCKET: 'out' }).sources).toEqual({
      outputBucket: 'out',
      defaultBundle: { bucket: 'out', key: 'models/clip-vit-base-patch32/' },
    });
  });

  it('by default: any dataset bucket, manifest rows in its own bucket or the output bucket', () => {
    const p = policy();
    expect(() => checkDatasetSource(p, 's3://anyone/data/')).not.toThrow();
    expect(manifestObjectRefusal(p, 'ds', { bucket: 'ds', key: 'a.png' })).toBeUndefined();
    expect(manifestObjectRefusal(p, 'ds', { bucket: 'out', key: 'a.png' })).toBeUndefined();
    expect(manifestObjectRefusal(p, 'ds', { bucket: 'secrets', key: 'db.png' })).toMatch(
      /s3:\/\/secrets\/db\.png is in bucket "secrets", neither the dataset's bucket nor the output bucket; allow it with CLIPEVAL_ALLOWED_SOURCES/,
    );
  });

  it('with CLIPEVAL_ALLOWED_SOURCES: only listed buckets and prefixes, plus the output bucket', () => {
    const p = policy({ allowed: 'datasets,shared/public/' });
    expect(() => checkDatasetSource(p, 's3://datasets/cats/')).not.toThrow();
    expect(() => checkDatasetSource(p, 's3://shared/public/cats/manifest.csv')).not.toThrow();
    expect(() => checkDatasetSource(p, 's3://shared/public')).not.toThrow();
    expect(() => checkDatasetSource(p, 's3://out/demo/')).not.toThrow();
    expect(() => checkDatasetSource(p, 's3://shared/private/x/')).toThrow(
      'Dataset s3://shared/private/x/ is outside the sources this deployment allows (CLIPEVAL_ALLOWED_SOURCES=datasets,shared/public/; output bucket out)',
    );
    // A prefix is a folder: public/ does not cover publicity/, and . or .. segments never match.
    expect(() => checkDatasetSource(p, 's3://shared/publicity/')).toThrow(ConfigError);
    expect(() => checkDatasetSource(p, 's3://shared/public/../private/')).toThrow(ConfigError);
    // Rows: the dataset's own bucket is no longer implied.
    expect(manifestObjectRefusal(p, 'shared', { bucket: 'shared', key: 'private/a.png' })).toMatch(
      /outside CLIPEVAL_ALLOWED_SOURCES/,
    );
    expect(manifestObjectRefusal(p, 'shared', { bucket: 'datasets', key: 'a.png' })).toBe(
      undefined,
    );
  });

  it('refuses a dataset before any request to S3', async () => {
    await expect(
      loadDataset(
        untouchable,
        { uri: 's3://elsewhere/cats/' } as Parameters<typeof loadDataset>[1],
        { sources: policy({ allowed: 'datasets' }) },
      ),
    ).rejects.toThrow(/Dataset s3:\/\/elsewhere\/cats\/ is outside the sources/);
  });
});

describe('allowed sources: bundles', () => {
  it('s3:// bundles: the output bucket and the default bundle, or CLIPEVAL_ALLOWED_SOURCES', () => {
    const p = policy({ defaultBundle: 's3://models/clip-b32' });
    expect(() => checkBundleSource(p, 's3://out/models/tiny/')).not.toThrow();
    expect(() => checkBundleSource(p, 's3://models/clip-b32/')).not.toThrow();
    expect(() => checkBundleSource(p, 's3://models/clip-b32')).not.toThrow();
    expect(() => checkBundleSource(p, 's3://models/other/')).toThrow(
      /Bundle s3:\/\/models\/other\/ is outside the sources this deployment allows for bundles \(CLIPEVAL_ALLOWED_SOURCES unset; output bucket out, CLIPEVAL_DEFAULT_BUNDLE s3:\/\/models\/clip-b32\/\)/,
    );
    expect(() => checkBundleSource(p, 's3://attacker/bundle/')).toThrow(ConfigError);
    const listed = policy({ allowed: 'team-models/' });
    expect(() => checkBundleSource(listed, 's3://team-models/any/')).not.toThrow();
  });

  it('local folders: any when CLIPEVAL_ALLOWED_BUNDLE_DIRS is unset, else only inside it', () => {
    expect(() => checkBundleSource(policy(), TINY_BUNDLE)).not.toThrow();
    const fixtures = dirname(TINY_BUNDLE);
    expect(() => checkBundleSource(policy({ dirs: fixtures }), TINY_BUNDLE)).not.toThrow();
    const elsewhere = mkdtempSync(join(tmpdir(), 'clipeval-allowed-'));
    expect(() => checkBundleSource(policy({ dirs: elsewhere }), TINY_BUNDLE)).toThrow(
      `is outside CLIPEVAL_ALLOWED_BUNDLE_DIRS (${elsewhere})`,
    );
    // A link inside an allowed folder to a bundle outside it is judged by where it points.
    symlinkSync(TINY_BUNDLE, join(elsewhere, 'link'));
    expect(() => checkBundleSource(policy({ dirs: elsewhere }), join(elsewhere, 'link'))).toThrow(
      ConfigError,
    );
    // A sibling folder whose name starts like the allowed one is not inside it.
    mkdirSync(`${elsewhere}-sibling`);
    expect(() => checkBundleSource(policy({ dirs: elsewhere }), `${elsewhere}-sibling`)).toThrow(
      ConfigError,
    );
    expect(() => checkBundleSource(policy({ dirs: 'none' }), TINY_BUNDLE)).toThrow(
      /local bundle folders are off on this worker \(CLIPEVAL_ALLOWED_BUNDLE_DIRS=none\)/,
    );
    expect(() =>
      loadEnv({ CLIPEVAL_BUCKET: 'out', CLIPEVAL_ALLOWED_BUNDLE_DIRS: 'rel/dir' }),
    ).toThrow(/CLIPEVAL_ALLOWED_BUNDLE_DIRS entry "rel\/dir" is not an absolute folder/);
  });

  it('resolveBundle refuses before reading anything, and loads an allowed local bundle', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'clipeval-cache-'));
    await expect(
      resolveBundle('s3://attacker/bundle/', { store: untouchable, cacheDir, sources: policy() }),
    ).rejects.toThrow(ConfigError);
    const copy = join(mkdtempSync(join(tmpdir(), 'clipeval-allowed-')), 'tiny');
    cpSync(TINY_BUNDLE, copy, { recursive: true });
    const sources = policy({ dirs: dirname(copy) });
    expect((await resolveBundle(copy, { store: untouchable, cacheDir, sources })).dir).toBe(copy);
    await expect(
      resolveBundle(TINY_BUNDLE, { store: untouchable, cacheDir, sources }),
    ).rejects.toThrow(/outside CLIPEVAL_ALLOWED_BUNDLE_DIRS/);
  });

  it("the workers' bundle cache applies the deployment's settings", async () => {
    const env = loadEnv({
      CLIPEVAL_BUCKET: 'out',
      CLIPEVAL_S3_ENDPOINT: 'http://127.0.0.1:9',
      CLIPEVAL_ALLOWED_BUNDLE_DIRS: 'none',
    });
    for (const { resources } of [createCpuActivities(env), createGpuActivities(env)]) {
      await expect(resources.bundle('s3://attacker/bundle/')).rejects.toThrow(
        /Bundle s3:\/\/attacker\/bundle\/ is outside/,
      );
      await expect(resources.bundle(TINY_BUNDLE)).rejects.toThrow(/local bundle folders are off/);
      await resources.close();
    }
  });
});
