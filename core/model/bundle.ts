/**
 * @file A model bundle: bundle.json plus the ONNX graphs and tokenizer files it lists, each with
 * its sha256. The bundle's identity (`hash`) is the sha256 of bundle.json, which covers every
 * file, so embeddings can be keyed by it. Written by infra/exporter/export.py.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import type { ObjectStore } from '../storage/object-store';
import { isS3Uri } from '../storage/s3-uri';
import { PermanentError } from '../util/errors';

const graphSchema = z.strictObject({
  file: z.string(),
  input: z.string(),
  output: z.string(),
  /** Optional dynamic-int8 variant of the same graph (exporter --int8). */
  int8: z.string().optional(),
});
const bundleSchema = z.object({
  format: z.literal('clipeval-bundle/1'),
  name: z.string(),
  source: z.record(z.string(), z.string()),
  architecture: z.object({
    embedDim: z.int().positive(),
    vision: z.object({
      imageSize: z.int(),
      patchSize: z.int(),
      width: z.int(),
      layers: z.int(),
      heads: z.int(),
    }),
    text: z.object({ width: z.int(), layers: z.int(), heads: z.int(), vocabSize: z.int() }),
  }),
  logitScale: z.number().positive(),
  tokenizer: z.object({
    vocab: z.string(),
    merges: z.string(),
    contextLength: z.int().positive(),
    bosTokenId: z.int(),
    eosTokenId: z.int(),
    padTokenId: z.int(),
  }),
  preprocessing: z.object({
    imageSize: z.int().positive(),
    resize: z.literal('shortest-edge'),
    interpolation: z.literal('bicubic'),
    crop: z.literal('center'),
    rescale: z.number(),
    mean: z.tuple([z.number(), z.number(), z.number()]),
    std: z.tuple([z.number(), z.number(), z.number()]),
  }),
  graphs: z.object({ image: graphSchema, text: graphSchema }),
  /** CoOp's training graph: prompt embeddings -> text features, loss and d loss / d context. */
  coop: z.strictObject({ file: z.string(), maxLength: z.int().positive() }).optional(),
  opset: z.int(),
  files: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)),
});

export type BundleManifest = z.infer<typeof bundleSchema>;

export interface ModelBundle {
  /** Local folder holding the verified files. */
  dir: string;
  manifest: BundleManifest;
  /** sha256 of bundle.json: the bundle's identity. */
  hash: string;
}

export class BundleError extends PermanentError {
  override readonly name = 'BundleError';
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function parseManifest(text: string, where: string): BundleManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new BundleError(`${where}/bundle.json is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = bundleSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new BundleError(
      `${where}/bundle.json is not a clipeval bundle (${issues}). Re-export it with infra/exporter/export.py.`,
    );
  }
  const listed = new Set(Object.keys(parsed.data.files));
  const graphFiles = Object.values(parsed.data.graphs).flatMap((g) => [
    g.file,
    ...(g.int8 ? [g.int8] : []),
  ]);
  if (parsed.data.coop) graphFiles.push(parsed.data.coop.file);
  for (const f of [...graphFiles, parsed.data.tokenizer.vocab, parsed.data.tokenizer.merges]) {
    if (!listed.has(f))
      throw new BundleError(
        `${where}/bundle.json uses ${f} but does not list its sha256 under "files"`,
      );
  }
  return parsed.data;
}

/** Loads a local bundle and verifies every file's sha256 before anything uses it. */
export async function loadBundle(dir: string): Promise<ModelBundle> {
  const folder = resolve(dir);
  const manifestPath = join(folder, 'bundle.json');
  if (!existsSync(manifestPath))
    throw new BundleError(`${folder} is not a model bundle: bundle.json is missing`);
  const text = await readFile(manifestPath);
  const manifest = parseManifest(text.toString('utf8'), folder);
  for (const [file, expected] of Object.entries(manifest.files)) {
    const path = join(folder, file);
    if (!existsSync(path))
      throw new BundleError(`Bundle ${folder} is missing ${file} (listed in bundle.json)`);
    const actual = await fileSha256(path);
    if (actual !== expected) {
      throw new BundleError(
        `Bundle ${folder}: sha256 of ${file} is ${actual}, bundle.json says ${expected}. ` +
          'The file is corrupt or was changed after export: re-export or re-upload the bundle.',
      );
    }
  }
  return { dir: folder, manifest, hash: sha256(text) };
}

/**
 * Brings an s3:// bundle into a local cache keyed by its bundle.json hash (downloaded once per
 * worker, verified, then moved into place in one rename so a crash never leaves a half bundle).
 */
export async function fetchBundle(
  store: ObjectStore,
  uri: string,
  cacheDir: string,
): Promise<ModelBundle> {
  const { store: from, key } = store.at(uri);
  const prefix = folderKey(key);
  const get = async (name: string) => {
    const cannotRead = (why: string) =>
      new BundleError(`Cannot read ${uri.replace(/\/?$/, '/')}${name}: ${why}`);
    const bytes = await from.getBytes(prefix + name).catch((err: Error) => {
      throw cannotRead(`${err.name}: ${err.message}`);
    });
    if (bytes === undefined) throw cannotRead('NoSuchKey: The specified key does not exist.');
    return Buffer.from(bytes);
  };
  const manifestBytes = await get('bundle.json');
  const manifest = parseManifest(manifestBytes.toString('utf8'), uri);
  const hash = sha256(manifestBytes);
  const target = join(cacheDir, hash);
  if (existsSync(join(target, 'bundle.json'))) return loadBundle(target);

  const staging = `${target}.partial-${process.pid}-${Date.now()}`;
  await mkdir(staging, { recursive: true });
  try {
    for (const file of Object.keys(manifest.files))
      await writeFile(join(staging, file), await get(file));
    await writeFile(join(staging, 'bundle.json'), manifestBytes);
    const verified = await loadBundle(staging);
    await rename(staging, target).catch((err: NodeJS.ErrnoException) => {
      if (!existsSync(join(target, 'bundle.json'))) throw err; // another process won the race: fine
    });
    return { ...verified, dir: target };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** A bundle reference from config: a local folder or an s3:// prefix. */
export async function resolveBundle(
  ref: string,
  deps: { store: ObjectStore; cacheDir: string },
): Promise<ModelBundle> {
  return isS3Uri(ref) ? fetchBundle(deps.store, ref, deps.cacheDir) : loadBundle(ref);
}

/** Uploads a local bundle to an s3:// prefix: verified first, bundle.json last (readers key on it). */
export async function uploadBundle(
  store: ObjectStore,
  dir: string,
  uri: string,
): Promise<ModelBundle> {
  const bundle = await loadBundle(dir);
  const { store: to, key } = store.at(uri);
  const prefix = folderKey(key);
  for (const file of [...Object.keys(bundle.manifest.files), 'bundle.json'])
    await to.putBytes(prefix + file, await readFile(join(bundle.dir, file)));
  return bundle;
}

/** An s3:// prefix's key as a folder: '' or ending in '/'. */
const folderKey = (key: string) => (key === '' || key.endsWith('/') ? key : `${key}/`);
