import { PermanentError } from '../util/errors';
export const SPLITS = ['train', 'val', 'test'] as const;
export type Split = (typeof SPLITS)[number];

export function isSplit(s: string): s is Split {
  return (SPLITS as readonly string[]).includes(s);
}

/**
 * Where an image's bytes lie inside a container object: a member of a WebDataset tar (its data's
 * byte range), or a row of a Parquet file (its row group, its row in the file, the image column).
 * `object` is the container's URI; the item's ETag is the container's.
 */
export type ItemPart =
  | { kind: 'tar'; object: string; offset: number; length: number }
  | { kind: 'parquet'; object: string; rowGroup: number; row: number; column: string };

/** One labelled image of the dataset, as planned (not yet read). */
export interface DatasetItem {
  /**
   * The image's identity. An object of its own: its URI, s3://bucket/key (datasets may span
   * buckets when a manifest says so). Inside a container: `<container URI>#<member name>` or
   * `<container URI>#row=<10-digit row>`, so (object, ETag, member or row) names it.
   */
  uri: string;
  /** Encoded bytes (a Parquet row's size is unknown until read: 0). */
  size: number;
  etag: string;
  /** Absent in an unlabelled dataset (captions only: zero-shot retrieval). */
  className?: string;
  split: Split;
  /** Set when the image is inside a container (WebDataset, Parquet). */
  part?: ItemPart;
  /** The image's captions (core/dataset/captions.ts), for zero-shot retrieval. */
  captions?: string[];
}

/** An object the planner left out, with the reason (counted in the plan, never fatal). */
export interface SkippedObject {
  uri: string;
  reason: string;
}

/**
 * The dataset cannot be planned as given (empty prefix, missing bucket, bad manifest rows...).
 * Not retryable: the message says what is wrong and how to fix it.
 */
export class DatasetError extends PermanentError {
  override readonly name = 'DatasetError';
}

/** Collects row-level problems so the user sees them all at once, not one per attempt. */
export class ProblemList {
  private readonly problems: string[] = [];
  private count = 0;
  constructor(private readonly limit = 20) {}

  add(problem: string): void {
    this.count++;
    if (this.problems.length < this.limit) this.problems.push(problem);
  }

  throwIfAny(what: string): void {
    if (this.count === 0) return;
    const more =
      this.count > this.problems.length
        ? `\n  ... and ${this.count - this.problems.length} more`
        : '';
    throw new DatasetError(
      `${what}: ${this.count} problem(s)\n  - ${this.problems.join('\n  - ')}${more}`,
    );
  }
}

/**
 * A class name as planned: labels and folder names in Unicode NFC, so the NFC and NFD spellings of
 * one name (`café` typed on Linux, uploaded from macOS) are one class, not two. Keys are never
 * normalised: they name objects, and S3 compares them byte for byte.
 */
export const normalizeClassName = (name: string): string => name.normalize('NFC');

/** S3's limit on a key: 1,024 bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;

/**
 * Whether a key has a `.` or `..` path segment. S3 stores such keys literally, but URL parsers,
 * proxies and some S3-compatible stores resolve them (to another object, or outside the dataset),
 * so clipeval never reads one.
 */
export const hasDotSegment = (key: string): boolean =>
  key.split('/').some((seg) => seg === '.' || seg === '..');

/** Whether a string holds a lone surrogate (no UTF-8 encoding, so no S3 key can hold it). */
export const hasLoneSurrogate = (s: string): boolean => /\p{Cs}/u.test(s);

/** File extensions clipeval decodes (sharp/libvips); anything else in an ImageFolder is skipped. */
export const IMAGE_EXTENSIONS = [
  '.jpg',
  '.jpeg',
  '.png',
  '.webp',
  '.gif',
  '.tif',
  '.tiff',
  '.avif',
];

export function hasImageExtension(key: string): boolean {
  const k = key.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => k.endsWith(ext));
}
