import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fetchBundle, loadBundle, resolveBundle, uploadBundle } from '../../core/model/bundle';
import { ObjectStore } from '../../core/storage/object-store';
import { TINY_BUNDLE } from '../helpers/fixtures';
import { deleteObject, testEnv, uniqueId } from '../helpers/stack';

// Bundles in S3 (real versitygw): upload, fetch once into a hash-keyed cache, verify.
describe('model bundles in S3', () => {
  const env = testEnv();
  const store = ObjectStore.connect(env.s3);

  it('uploads, fetches into the cache once, and serves later fetches from it', async () => {
    const uri = `s3://${env.s3.bucket}/${uniqueId('bundles')}/tiny`;
    const local = await uploadBundle(store, TINY_BUNDLE, uri);
    const cache = mkdtempSync(join(tmpdir(), 'clipeval-cache-'));
    const fetched = await fetchBundle(store, uri, cache);
    expect(fetched.hash).toBe(local.hash);
    expect(fetched.dir).toBe(join(cache, local.hash));
    expect(readdirSync(cache)).toEqual([local.hash]); // no staging folders left behind

    // The graphs are not downloaded again: the cache answers even when they are gone from S3.
    await deleteObject(
      env,
      env.s3.bucket,
      `${uri.slice(`s3://${env.s3.bucket}/`.length)}/image.onnx`,
    );
    expect((await resolveBundle(uri, { store, cacheDir: cache })).hash).toBe(local.hash);
    expect((await resolveBundle(TINY_BUNDLE, { store, cacheDir: cache })).hash).toBe(local.hash);
  });

  it('refuses a corrupted object and leaves nothing in the cache', async () => {
    const prefix = `${uniqueId('bundles')}/tiny`;
    await uploadBundle(store, TINY_BUNDLE, `s3://${env.s3.bucket}/${prefix}`);
    await store.putBytes(`${prefix}/vocab.json`, '{}');
    const cache = mkdtempSync(join(tmpdir(), 'clipeval-cache-'));
    await expect(fetchBundle(store, `s3://${env.s3.bucket}/${prefix}`, cache)).rejects.toThrow(
      /sha256 of vocab\.json is .*bundle\.json says/,
    );
    expect(readdirSync(cache)).toEqual([]);
    const bundle = await loadBundle(TINY_BUNDLE);
    expect(existsSync(join(cache, bundle.hash))).toBe(false);
  });

  it('says which object it could not read', async () => {
    await expect(
      fetchBundle(
        store,
        `s3://${env.s3.bucket}/${uniqueId('nothing')}/`,
        mkdtempSync(join(tmpdir(), 'c-')),
      ),
    ).rejects.toThrow(/Cannot read s3:\/\/.*\/bundle\.json: NoSuchKey/);
  });
});
