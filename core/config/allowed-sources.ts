/**
 * @file Where a run may read from: the deployment's boundary for datasets, manifest rows and model
 * bundles, checked by the workers (planning, and wherever a bundle is resolved), since anyone who
 * can start a workflow chooses the spec.
 *
 * S3 (`CLIPEVAL_ALLOWED_SOURCES`, comma-separated `bucket` or `bucket/prefix` entries):
 * - unset (the default): a dataset may be in any bucket the worker can read; its manifest rows
 *   only in the dataset's own bucket or the output bucket; an s3:// bundle only in the output
 *   bucket or under CLIPEVAL_DEFAULT_BUNDLE's prefix;
 * - set: datasets, manifest rows and bundles only under a listed entry, the output bucket, or
 *   (bundles) CLIPEVAL_DEFAULT_BUNDLE's prefix. The output bucket and the default bundle are the
 *   deployment's own settings, so they are always allowed.
 *
 * Local bundle folders (`CLIPEVAL_ALLOWED_BUNDLE_DIRS`, comma-separated absolute folders, or
 * `none`): unset, any folder the worker can read (the local CLI and in-process workers keep working
 * with `--bundle ./dir`); set, only folders inside one of them (symbolic links resolved), or none.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { isS3Uri, parseS3Uri, type S3Location } from '../storage/s3-uri';
import { ConfigError } from './errors';

export interface SourcePolicy {
  /** The output bucket (CLIPEVAL_BUCKET): always allowed. */
  outputBucket: string;
  /** CLIPEVAL_DEFAULT_BUNDLE's location, when it is in S3: always allowed for bundles. */
  defaultBundle?: S3Location;
  /** CLIPEVAL_ALLOWED_SOURCES (each key '' or a folder ending in '/'); undefined: the defaults above. */
  allowed?: S3Location[];
  /** CLIPEVAL_ALLOWED_BUNDLE_DIRS (absolute); undefined: any local folder; []: none. */
  bundleDirs?: string[];
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses CLIPEVAL_ALLOWED_SOURCES (undefined when unset); a bad entry is a ConfigError. */
export function parseAllowedSources(value: string | undefined): S3Location[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((raw) => {
    const entry = raw.trim().replace(/^s3:\/\//, '');
    const slash = entry.indexOf('/');
    const bucket = slash < 0 ? entry : entry.slice(0, slash);
    const key = slash < 0 ? '' : folder(entry.slice(slash + 1));
    if (!BUCKET.test(bucket) || hasDotSegment(key)) {
      throw new ConfigError(
        `Invalid environment configuration: CLIPEVAL_ALLOWED_SOURCES entry "${raw.trim()}" is not a bucket or bucket/prefix ` +
          '(comma-separated, e.g. "datasets,models/clip/").',
        'environment',
      );
    }
    return { bucket, key };
  });
}

/** Parses CLIPEVAL_ALLOWED_BUNDLE_DIRS (undefined when unset, [] for `none`). */
export function parseAllowedBundleDirs(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === 'none') return [];
  return value.split(',').map((raw) => {
    const dir = raw.trim();
    if (!isAbsolute(dir)) {
      throw new ConfigError(
        `Invalid environment configuration: CLIPEVAL_ALLOWED_BUNDLE_DIRS entry "${dir}" is not an absolute folder ` +
          '(comma-separated absolute folders, or "none" for s3:// bundles only).',
        'environment',
      );
    }
    return resolve(dir);
  });
}

/** The policy of a deployment's settings (loadEnv builds it). */
export function sourcePolicy(opts: {
  outputBucket: string;
  defaultBundle: string;
  allowedSources?: string | undefined;
  allowedBundleDirs?: string | undefined;
}): SourcePolicy {
  const allowed = parseAllowedSources(opts.allowedSources);
  const bundleDirs = parseAllowedBundleDirs(opts.allowedBundleDirs);
  const defaultBundle = s3Location(opts.defaultBundle);
  return {
    outputBucket: opts.outputBucket,
    ...(defaultBundle
      ? { defaultBundle: { ...defaultBundle, key: folder(defaultBundle.key) } }
      : {}),
    ...(allowed ? { allowed } : {}),
    ...(bundleDirs ? { bundleDirs } : {}),
  };
}

/** Refuses a dataset URI outside CLIPEVAL_ALLOWED_SOURCES (any bucket when it is unset). */
export function checkDatasetSource(policy: SourcePolicy | undefined, uri: string): void {
  if (!policy?.allowed) return;
  const at = s3Location(uri);
  if (at && allowedS3(policy, at)) return;
  throw new ConfigError(
    `Dataset ${uri} is outside the sources this deployment allows (${describe(policy)}). ` +
      'Use a dataset there, or add its bucket or prefix to CLIPEVAL_ALLOWED_SOURCES on the workers.',
    'environment',
  );
}

/**
 * Why a manifest row's object may not be read (undefined: it may): rows stay in the dataset's
 * own bucket or the output bucket unless CLIPEVAL_ALLOWED_SOURCES says otherwise.
 */
export function manifestObjectRefusal(
  policy: SourcePolicy | undefined,
  datasetBucket: string,
  at: S3Location,
): string | undefined {
  if (!policy) return undefined;
  if (policy.allowed) {
    return allowedS3(policy, at)
      ? undefined
      : `s3://${at.bucket}/${at.key} is outside CLIPEVAL_ALLOWED_SOURCES (${describe(policy)})`;
  }
  return at.bucket === datasetBucket || at.bucket === policy.outputBucket
    ? undefined
    : `s3://${at.bucket}/${at.key} is in bucket "${at.bucket}", neither the dataset's bucket nor the output bucket; ` +
        'allow it with CLIPEVAL_ALLOWED_SOURCES on the workers';
}

/** Refuses a bundle reference (s3:// prefix or local folder) the deployment does not allow. */
export function checkBundleSource(policy: SourcePolicy | undefined, ref: string): void {
  if (!policy) return;
  if (isS3Uri(ref)) {
    const at = parseS3Uri(ref);
    const inDefault = policy.defaultBundle && under(policy.defaultBundle, at);
    if (inDefault || allowedS3(policy, at, { defaults: 'output-only' })) return;
    throw new ConfigError(
      `Bundle ${ref} is outside the sources this deployment allows for bundles ` +
        `(${describe(policy)}${policy.defaultBundle ? `, CLIPEVAL_DEFAULT_BUNDLE s3://${policy.defaultBundle.bucket}/${policy.defaultBundle.key}` : ''}). ` +
        'Upload the bundle there (`clipeval model upload`), or add its bucket or prefix to CLIPEVAL_ALLOWED_SOURCES on the workers.',
      'environment',
    );
  }
  if (!policy.bundleDirs) return;
  const real = realFolder(ref);
  if (policy.bundleDirs.some((root) => inside(realFolder(root), real))) return;
  throw new ConfigError(
    policy.bundleDirs.length === 0
      ? `Bundle ${ref}: local bundle folders are off on this worker (CLIPEVAL_ALLOWED_BUNDLE_DIRS=none). Upload it with \`clipeval model upload\` and use its s3:// URI.`
      : `Bundle ${ref} (${real}) is outside CLIPEVAL_ALLOWED_BUNDLE_DIRS (${policy.bundleDirs.join(', ')}). ` +
          'Move it into one of those folders, or upload it with `clipeval model upload` and use its s3:// URI.',
    'environment',
  );
}

/**
 * True if `at` is in an allowed place: the output bucket, or (when set) under an entry of
 * CLIPEVAL_ALLOWED_SOURCES. With the list unset, bundles get only the output bucket.
 */
function allowedS3(
  policy: SourcePolicy,
  at: S3Location,
  opts: { defaults?: 'output-only' } = {},
): boolean {
  if (at.bucket === policy.outputBucket) return true;
  if (!policy.allowed) return opts.defaults !== 'output-only';
  return policy.allowed.some((entry) => under(entry, at));
}

/** `at` (an object or a folder) lies under `entry`; keys with . or .. segments never lie under a prefix. */
function under(entry: S3Location, at: S3Location): boolean {
  if (entry.bucket !== at.bucket) return false;
  if (entry.key === '') return true;
  if (hasDotSegment(at.key)) return false;
  return at.key.startsWith(entry.key) || `${at.key}/` === entry.key;
}

function describe(policy: SourcePolicy): string {
  const list = policy.allowed
    ? `CLIPEVAL_ALLOWED_SOURCES=${policy.allowed.map((e) => e.bucket + (e.key ? `/${e.key}` : '')).join(',')}`
    : 'CLIPEVAL_ALLOWED_SOURCES unset';
  return `${list}; output bucket ${policy.outputBucket}`;
}

function s3Location(uri: string): S3Location | undefined {
  return isS3Uri(uri) ? parseS3Uri(uri) : undefined;
}

const folder = (prefix: string) => (prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`);

const hasDotSegment = (key: string) => key.split('/').some((s) => s === '.' || s === '..');

/** The folder with symbolic links resolved (as given, resolved, when it does not exist yet). */
function realFolder(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return resolve(dir);
  }
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}
