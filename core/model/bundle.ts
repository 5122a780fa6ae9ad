/**
 * @file A model bundle: bundle.json plus the ONNX graphs and tokenizer files it lists, each with
 * its sha256. The bundle's identity (`hash`) is the sha256 of bundle.json, which covers every
 * file, so embeddings can be keyed by it. Written by infra/exporter/export.py.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { lstat, mkdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { checkBundleSource, type SourcePolicy } from '../config/allowed-sources';
import { DEFAULT_RESOURCE_LIMITS } from '../config/env';
import { type ObjectStore, ObjectTooLargeError } from '../storage/object-store';
import { isS3Uri } from '../storage/s3-uri';
import { formatBytes } from '../util/byte-budget';
import { PermanentError } from '../util/errors';

/** Default largest bundle file (CLIPEVAL_MAX_BUNDLE_FILE_BYTES). */
export const DEFAULT_MAX_BUNDLE_FILE_BYTES = DEFAULT_RESOURCE_LIMITS.maxBundleFileBytes;
/** bundle.json itself: the exporter writes ~2 KB. */
const MAX_MANIFEST_BYTES = 1024 ** 2;
/** Files one bundle may list (the exporter writes at most 10). */
const MAX_BUNDLE_FILES = 64;

export interface BundleLimits {
  /** Largest file a bundle may have, in bytes (checked before download, and on local files). */
  maxFileBytes?: number;
}

/** What an image graph takes: normalised float32 NCHW, or the center crops' uint8 NHWC bytes. */
export const PIXEL_FORMATS = ['float32-nchw', 'uint8-nhwc'] as const;
/** floor: HF's CLIPImageProcessor; half-even: torchvision's CenterCrop (OpenCLIP). */
export const CROP_ROUNDINGS = ['floor', 'half-even'] as const;

export type PixelFormat = (typeof PIXEL_FORMATS)[number];

const variantSchema = z.strictObject({
  file: z.string(),
  input: z.string(),
  output: z.string(),
  inputFormat: z.enum(PIXEL_FORMATS),
});
/** One runnable graph: its file, its tensors' names and what its input holds. */
export type GraphVariant = z.infer<typeof variantSchema>;

const graphSchema = z.strictObject({
  file: z.string(),
  input: z.string(),
  output: z.string(),
  /** Optional dynamic-int8 variant of the same graph (exporter --int8). */
  int8: z.string().optional(),
  /**
   * Image graphs by precision (exporter since issue 13): uint8 NHWC input, normalisation inside;
   * fp32 and fp16 always, int8 with --int8. Absent in older bundles (the fields above then serve).
   */
  variants: z
    .strictObject({
      fp32: variantSchema.optional(),
      fp16: variantSchema.optional(),
      int8: variantSchema.optional(),
    })
    .optional(),
});
/** The model families the exporter reads (bundles from before the field are hf-clip). */
export const MODEL_FAMILIES = ['hf-clip', 'open-clip'] as const;
/**
 * How text becomes ids: `hf-clip` is HF `CLIPTokenizer` (NFC, whitespace runs, lowercase; special
 * tokens cut out of the raw text; pads with padTokenId), `open-clip` is OpenCLIP's
 * `SimpleTokenizer` (ftfy and HTML clean-up first; pads with 0). See core/model/text/.
 */
export const TOKENIZER_FLAVOURS = ['hf-clip', 'open-clip'] as const;
export type TokenizerFlavour = (typeof TOKENIZER_FLAVOURS)[number];

const tokenizerSchema = z.object({
  /** Absent in bundles exported before issue 15: HF's. */
  flavour: z.enum(TOKENIZER_FLAVOURS).default('hf-clip'),
  vocab: z.string(),
  merges: z.string(),
  contextLength: z.int().positive(),
  bosTokenId: z.int().nonnegative(),
  eosTokenId: z.int().nonnegative(),
  padTokenId: z.int().nonnegative(),
  /**
   * Added tokens besides the start and end tokens that HF cuts out of the raw text before
   * normalising (e.g. a pad token "!" saved as special: every "!" is then that id).
   */
  addedTokens: z
    .array(z.strictObject({ content: z.string().min(1), id: z.int().nonnegative() }))
    .optional(),
});

/**
 * Image preprocessing. Fields added after a bundle format existed are optional without defaults:
 * the parsed object feeds the embedding space's fingerprint (core/embeddings/shard-key.ts), so an
 * older bundle must parse to exactly what it did before.
 */
const preprocessingSchema = z
  .object({
    /** The center crop's side S: the image graph's input size. */
    imageSize: z.int().positive(),
    /** The shortest edge's length after resizing (absent: imageSize, as every CLIP checkpoint). */
    resizeSize: z.int().positive().optional(),
    resize: z.literal('shortest-edge'),
    interpolation: z.literal('bicubic'),
    crop: z.literal('center'),
    /** How the crop's start is rounded (core/model/image/pixels.ts); absent: floor, as HF. */
    cropRounding: z.enum(CROP_ROUNDINGS).optional(),
    rescale: z.number().positive(),
    mean: z.tuple([z.number(), z.number(), z.number()]),
    std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
  })
  .refine((p) => p.resizeSize === undefined || p.resizeSize === p.imageSize, {
    message:
      'resizeSize differs from imageSize: clipeval resizes the shortest edge to the crop size only',
    path: ['resizeSize'],
  });

const bundleSchema = z.object({
  format: z.literal('clipeval-bundle/1'),
  name: z.string(),
  /** Which library's model the graphs were exported from. */
  family: z.enum(MODEL_FAMILIES).default('hf-clip'),
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
  tokenizer: tokenizerSchema,
  preprocessing: preprocessingSchema,
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

/**
 * Why `name` is not a plain file name of one path segment, or undefined when it is. Bundle file
 * names become paths under the bundle folder; anything that could leave the folder, name it, or
 * hide in a terminal or a log line is refused.
 */
export function badBundleFileName(name: string): string | undefined {
  if (name === '') return 'it is empty';
  if (name === '.' || name === '..') return 'it names a folder, not a file';
  if (/[/\\]/.test(name)) return 'it has a path separator (a file name is one path segment)';
  if ([...name].some(isControl)) return 'it has a control character';
  if (name === 'bundle.json') return 'bundle.json is the manifest itself';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'it is longer than 255 bytes';
  return undefined;
}

/** C0/C1 controls (NUL, line breaks, escapes), DEL, and the Unicode line/paragraph separators. */
function isControl(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029;
}

/** Every file name a manifest uses, with the field it comes from (for messages). */
function namedFiles(m: BundleManifest): { field: string; name: string }[] {
  const out = Object.keys(m.files).map((name) => ({
    field: `files[${JSON.stringify(name)}]`,
    name,
  }));
  for (const [tower, g] of Object.entries(m.graphs)) {
    out.push({ field: `graphs.${tower}.file`, name: g.file });
    if (g.int8 !== undefined) out.push({ field: `graphs.${tower}.int8`, name: g.int8 });
    for (const [precision, v] of Object.entries(g.variants ?? {}))
      out.push({ field: `graphs.${tower}.variants.${precision}.file`, name: v.file });
  }
  if (m.coop) out.push({ field: 'coop.file', name: m.coop.file });
  out.push({ field: 'tokenizer.vocab', name: m.tokenizer.vocab });
  out.push({ field: 'tokenizer.merges', name: m.tokenizer.merges });
  return out;
}

/**
 * The path of bundle file `name` in `dir`, checked to be directly inside it (a BundleError
 * otherwise). Names are validated when bundle.json is parsed; this is the second line.
 */
export function bundleFilePath(dir: string, name: string): string {
  const folder = resolve(dir);
  const path = resolve(folder, name);
  if (badBundleFileName(name) !== undefined || dirname(path) !== folder)
    throw new BundleError(
      `Bundle ${folder}: ${JSON.stringify(name)} is not a file inside the bundle folder`,
    );
  return path;
}

/** A bundle's file by name (graphs, tokenizer files): always inside its folder. */
export function bundleFile(bundle: ModelBundle, name: string): string {
  return bundleFilePath(bundle.dir, name);
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
  const names = namedFiles(parsed.data);
  if (Object.keys(parsed.data.files).length > MAX_BUNDLE_FILES)
    throw new BundleError(
      `${where}/bundle.json lists ${Object.keys(parsed.data.files).length} files, more than ${MAX_BUNDLE_FILES}. Re-export it with infra/exporter/export.py.`,
    );
  for (const { field, name } of names) {
    const why = badBundleFileName(name);
    if (why !== undefined)
      throw new BundleError(
        `${where}/bundle.json: ${field} is ${JSON.stringify(name)}, which is not a plain file name (${why}). ` +
          'Every file of a bundle lies directly in its folder and is named by one path segment: ' +
          're-export the bundle with infra/exporter/export.py, or fix bundle.json.',
      );
  }
  const listed = new Set(Object.keys(parsed.data.files));
  const graphFiles = Object.values(parsed.data.graphs).flatMap((g) => [
    g.file,
    ...(g.int8 ? [g.int8] : []),
    ...Object.values(g.variants ?? {}).map((v) => v.file),
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

/**
 * Loads a local bundle and verifies every file before anything uses it: its name is one path
 * segment, its real path (symbolic links followed) lies directly in the folder, it is a regular
 * file no larger than `maxFileBytes`, and its sha256 is the one bundle.json lists.
 */
export async function loadBundle(dir: string, limits: BundleLimits = {}): Promise<ModelBundle> {
  const folder = resolve(dir);
  const manifestPath = join(folder, 'bundle.json');
  if (!existsSync(manifestPath))
    throw new BundleError(`${folder} is not a model bundle: bundle.json is missing`);
  const realFolder = await realpath(folder);
  const maxFileBytes = limits.maxFileBytes ?? DEFAULT_MAX_BUNDLE_FILE_BYTES;
  const text = await readFile(manifestPath);
  const manifest = parseManifest(text.toString('utf8'), folder);
  for (const [file, expected] of Object.entries(manifest.files)) {
    const path = bundleFilePath(folder, file);
    if (!existsSync(path))
      throw new BundleError(`Bundle ${folder} is missing ${file} (listed in bundle.json)`);
    const real = await realpath(path);
    if (dirname(real) !== realFolder)
      throw new BundleError(
        `Bundle ${folder}: ${file} is a link to ${real}, outside the bundle folder. ` +
          'Copy the file into the folder instead.',
      );
    const stat = await lstat(real);
    if (!stat.isFile()) throw new BundleError(`Bundle ${folder}: ${file} is not a regular file`);
    if (stat.size > maxFileBytes)
      throw new BundleError(tooLargeMessage(folder, file, stat.size, maxFileBytes));
    const actual = await fileSha256(real);
    if (actual !== expected) {
      throw new BundleError(
        `Bundle ${folder}: sha256 of ${file} is ${actual}, bundle.json says ${expected}. ` +
          'The file is corrupt or was changed after export: re-export or re-upload the bundle.',
      );
    }
  }
  return { dir: folder, manifest, hash: sha256(text) };
}

const tooLargeMessage = (where: string, file: string, size: number | undefined, max: number) =>
  `Bundle ${where}: ${file} is ${size === undefined ? 'larger than the limit' : formatBytes(size)}, ` +
  `over the limit of ${formatBytes(max)} per bundle file. Raise CLIPEVAL_MAX_BUNDLE_FILE_BYTES ` +
  'on the workers if this bundle is trusted and that large.';

/**
 * Brings an s3:// bundle into a local cache keyed by its bundle.json hash (downloaded once per
 * worker, verified, then moved into place in one rename so a crash never leaves a half bundle).
 * bundle.json is checked before anything is downloaded (file names: one path segment each), and
 * each file's size (from S3, before its body is read) and sha256 before it is written.
 */
export async function fetchBundle(
  store: ObjectStore,
  uri: string,
  cacheDir: string,
  limits: BundleLimits = {},
): Promise<ModelBundle> {
  const { store: from, key } = store.at(uri);
  const prefix = folderKey(key);
  const where = uri.replace(/\/?$/, '');
  const maxFileBytes = limits.maxFileBytes ?? DEFAULT_MAX_BUNDLE_FILE_BYTES;
  const get = async (name: string, maxBytes: number) => {
    const cannotRead = (why: string) => new BundleError(`Cannot read ${where}/${name}: ${why}`);
    const bytes = await from.getBytes(prefix + name, { maxBytes }).catch((err: Error) => {
      if (err instanceof ObjectTooLargeError)
        throw new BundleError(tooLargeMessage(where, name, err.size, maxBytes));
      throw cannotRead(`${err.name}: ${err.message}`);
    });
    if (bytes === undefined) throw cannotRead('NoSuchKey: The specified key does not exist.');
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
  const manifestBytes = await get('bundle.json', MAX_MANIFEST_BYTES);
  const manifest = parseManifest(manifestBytes.toString('utf8'), where);
  const hash = sha256(manifestBytes);
  const target = join(cacheDir, hash);
  if (existsSync(join(target, 'bundle.json'))) return loadBundle(target, limits);

  const staging = `${target}.partial-${process.pid}-${Date.now()}`;
  await mkdir(staging, { recursive: true });
  try {
    for (const [file, expected] of Object.entries(manifest.files)) {
      const bytes = await get(file, maxFileBytes);
      const actual = sha256(bytes);
      if (actual !== expected)
        throw new BundleError(
          `Bundle ${where}: sha256 of ${file} is ${actual}, bundle.json says ${expected}. ` +
            'The object is corrupt or was changed after upload: re-upload the bundle.',
        );
      // 'wx': a new file only (never through a link or over something already there).
      await writeFile(bundleFilePath(staging, file), bytes, { flag: 'wx' });
    }
    await writeFile(join(staging, 'bundle.json'), manifestBytes, { flag: 'wx' });
    const verified = await loadBundle(staging, limits);
    await rename(staging, target).catch((err: NodeJS.ErrnoException) => {
      if (!existsSync(join(target, 'bundle.json'))) throw err; // another process won the race: fine
    });
    return { ...verified, dir: target };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * A bundle reference from config: a local folder or an s3:// prefix, refused first when the
 * deployment's `sources` (CLIPEVAL_ALLOWED_SOURCES, CLIPEVAL_ALLOWED_BUNDLE_DIRS) do not allow it.
 */
export async function resolveBundle(
  ref: string,
  deps: { store: ObjectStore; cacheDir: string; limits?: BundleLimits; sources?: SourcePolicy },
): Promise<ModelBundle> {
  checkBundleSource(deps.sources, ref);
  return isS3Uri(ref)
    ? fetchBundle(deps.store, ref, deps.cacheDir, deps.limits)
    : loadBundle(ref, deps.limits);
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
  for (const file of Object.keys(bundle.manifest.files))
    await to.putBytes(prefix + file, await readFile(bundleFilePath(bundle.dir, file)));
  await to.putBytes(prefix + 'bundle.json', await readFile(join(bundle.dir, 'bundle.json')));
  return bundle;
}

/** An s3:// prefix's key as a folder: '' or ending in '/'. */
const folderKey = (key: string) => (key === '' || key.endsWith('/') ? key : `${key}/`);
