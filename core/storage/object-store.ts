/**
 * @file The one module that talks to S3. Everything else reads and writes objects through an
 * ObjectStore: JSON, bytes and text, `undefined` for an object that is not there (so no caller
 * writes the not-found try/catch again), optional If-Match so a read can insist on the version
 * it planned with, and single-PutObject writes (an object appears whole or not at all).
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { constants as bufferConstants } from 'node:buffer';
import { type S3Settings, createS3Client } from './s3-client';
import { InvalidS3UriError, formatS3Uri, parseS3Uri } from './s3-uri';
import { PermanentError } from '../util/errors';

/** One listed object: what the planner needs to fingerprint a dataset. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
}

export interface ReadOptions {
  /** Fail (HTTP 412, an ObjectChangedError) unless the object still has this ETag. */
  ifMatch?: string;
  /**
   * Refuse (ObjectTooLargeError) an object over this many bytes: checked on the response's
   * Content-Length before the body is read (the body is then aborted), and while it streams.
   */
  maxBytes?: number;
  signal?: AbortSignal;
}

/** A required object is missing: names its URI. */
export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  constructor(readonly uri: string) {
    super(`${uri} does not exist`);
  }
}

/** A read with `maxBytes` met a larger object; nothing more of it was read. */
export class ObjectTooLargeError extends Error {
  override readonly name = 'ObjectTooLargeError';
  constructor(
    readonly uri: string,
    /** The object's size when S3 said it; undefined when the limit was hit while streaming. */
    readonly size: number | undefined,
    readonly maxBytes: number,
  ) {
    super(
      `${uri} is ${size === undefined ? `over ${maxBytes}` : size} bytes, more than the limit of ${maxBytes}`,
    );
  }
}

/** A read with `ifMatch` found another version of the object (HTTP 412 PreconditionFailed). */
export class ObjectChangedError extends Error {
  override readonly name = 'ObjectChangedError';
  constructor(
    readonly uri: string,
    readonly expectedEtag: string,
    options?: { cause?: unknown },
  ) {
    super(`${uri} no longer has ETag ${expectedEtag}: it was changed or replaced`, options);
  }
}

/**
 * A value too large to serialise as one JSON string: V8 strings hold at most
 * MAX_JSON_CHARS characters (~512 Mi on 64-bit). Deterministic, so permanent: the message names the object
 * and the setting to change.
 */
export class JsonTooLargeError extends PermanentError {
  override readonly name = 'JsonTooLargeError';
}

/** V8's string length limit (2^29 - 24 on 64-bit Node 20): the most characters one JSON file can have. */
export const MAX_JSON_CHARS = bufferConstants.MAX_STRING_LENGTH;

/** JSON.stringify without indentation; a RangeError (string too long) becomes a JsonTooLargeError. */
export function toJson(value: unknown, uri: () => string, fix?: string): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new JsonTooLargeError(
      `${uri()} is too large to write as JSON (${err.message}: one JSON file holds at most ${MAX_JSON_CHARS} characters).` +
        (fix ? ` ${fix}` : ''),
    );
  }
}

export class ObjectStore {
  constructor(
    readonly client: S3Client,
    readonly bucket: string,
  ) {}

  /** A store on its own S3 client (createS3Client's settings) for the given bucket. */
  static connect(settings: S3Settings & { bucket: string }): ObjectStore {
    return new ObjectStore(createS3Client(settings), settings.bucket);
  }

  /** The same client on another bucket (datasets and bundles may live outside the output bucket). */
  inBucket(bucket: string): ObjectStore {
    return bucket === this.bucket ? this : new ObjectStore(this.client, bucket);
  }

  /** The store and key an s3:// URI names. */
  at(uri: string): { store: ObjectStore; key: string } {
    const { bucket, key } = parseS3Uri(uri);
    return { store: this.inBucket(bucket), key };
  }

  uri(key: string): string {
    return formatS3Uri({ bucket: this.bucket, key });
  }

  async getBytes(key: string, opts: ReadOptions = {}): Promise<Uint8Array | undefined> {
    try {
      const r = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(opts.ifMatch ? { IfMatch: quoteEtag(opts.ifMatch) } : {}),
        }),
        opts.signal ? { abortSignal: opts.signal } : {},
      );
      return await readBody(r.Body, r.ContentLength, opts.maxBytes, () => this.uri(key));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      if (opts.ifMatch && isPreconditionFailed(err))
        throw new ObjectChangedError(this.uri(key), opts.ifMatch, { cause: err });
      throw err;
    }
  }

  /**
   * Bytes [start, end) of an object (one ranged GetObject): how container datasets (WebDataset
   * tars, Parquet files) are read without fetching whole objects. A range past the end returns
   * what exists (S3's rule); a missing object is an ObjectNotFoundError.
   */
  async getRange(
    key: string,
    start: number,
    end: number,
    opts: Omit<ReadOptions, 'maxBytes'> = {},
  ): Promise<Uint8Array> {
    if (end <= start) return new Uint8Array(0);
    try {
      const r = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: `bytes=${start}-${end - 1}`,
          ...(opts.ifMatch ? { IfMatch: quoteEtag(opts.ifMatch) } : {}),
        }),
        opts.signal ? { abortSignal: opts.signal } : {},
      );
      return await readBody(r.Body, r.ContentLength, end - start, () => this.uri(key));
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(this.uri(key));
      if (opts.ifMatch && isPreconditionFailed(err))
        throw new ObjectChangedError(this.uri(key), opts.ifMatch, { cause: err });
      if (isRangeNotSatisfiable(err)) return new Uint8Array(0);
      throw err;
    }
  }

  async getText(key: string, opts: ReadOptions = {}): Promise<string | undefined> {
    const bytes = await this.getBytes(key, opts);
    return bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8');
  }

  async getJson<T>(key: string, opts: ReadOptions = {}): Promise<T | undefined> {
    const text = await this.getText(key, opts);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  /** getBytes for an object that must exist: a missing one is an ObjectNotFoundError. */
  async requireBytes(key: string, opts: ReadOptions = {}): Promise<Uint8Array> {
    return (await this.getBytes(key, opts)) ?? this.missing(key);
  }

  async requireText(key: string, opts: ReadOptions = {}): Promise<string> {
    return (await this.getText(key, opts)) ?? this.missing(key);
  }

  async requireJson<T>(key: string, opts: ReadOptions = {}): Promise<T> {
    return (await this.getJson<T>(key, opts)) ?? this.missing(key);
  }

  /** Single PutObject: the object appears whole or not at all. */
  async putBytes(key: string, body: Uint8Array | string, contentType?: string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ...(contentType ? { ContentType: contentType } : {}),
      }),
    );
  }

  /**
   * Compact JSON (no indentation: these are machine files, and sizes must scale) in one
   * PutObject. A value beyond V8's string limit is a JsonTooLargeError naming the object and
   * `fix`, what to change (retrying cannot help).
   */
  async putJson(key: string, value: unknown, fix?: string): Promise<void> {
    await this.putBytes(
      key,
      toJson(value, () => this.uri(key), fix),
      'application/json',
    );
  }

  async head(key: string): Promise<ListedObject | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: r.ContentLength ?? 0, etag: cleanEtag(r.ETag) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.head(key)) !== undefined;
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** Every object under a prefix, page by page; `onPage` lets callers heartbeat. */
  async list(prefix: string, onPage?: (listedSoFar: number) => void): Promise<ListedObject[]> {
    const out: ListedObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        out.push({ key: o.Key, size: o.Size ?? 0, etag: cleanEtag(o.ETag) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      onPage?.(out.length);
    } while (token);
    return out;
  }

  async bucketExists(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return true;
    } catch (err) {
      if (isNotFound(err) || isNoSuchBucket(err)) return false;
      throw err;
    }
  }

  /** Creates the bucket unless it exists (local stack). */
  async ensureBucket(): Promise<void> {
    const { Buckets } = await this.client.send(new ListBucketsCommand({}));
    if (!Buckets?.some((b) => b.Name === this.bucket)) {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  private missing(key: string): never {
    throw new ObjectNotFoundError(this.uri(key));
  }
}

/** S3 error names that mean "the thing is not there" rather than "try again". */
export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

function isPreconditionFailed(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412;
}

type Body = AsyncIterable<Uint8Array> & {
  destroy?: () => void;
  transformToByteArray?: () => Promise<Uint8Array>;
};

/**
 * A GetObject body as bytes, refusing more than `maxBytes` (from Content-Length before reading,
 * else while streaming; the body is aborted either way). With a known length the bytes go
 * straight into one array of that size (no second copy), and a body that ends early or runs
 * long is an error (retryable: the next read may be whole).
 */
async function readBody(
  raw: unknown,
  length: number | undefined,
  maxBytes: number | undefined,
  uri: () => string,
): Promise<Uint8Array> {
  const body = raw as Body;
  if (maxBytes !== undefined && length !== undefined && length > maxBytes) {
    body.destroy?.();
    throw new ObjectTooLargeError(uri(), length, maxBytes);
  }
  if (typeof body[Symbol.asyncIterator] !== 'function') {
    const bytes = await body.transformToByteArray!();
    if (maxBytes !== undefined && bytes.length > maxBytes)
      throw new ObjectTooLargeError(uri(), bytes.length, maxBytes);
    return bytes;
  }
  const out = length !== undefined ? new Uint8Array(length) : undefined;
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      if (maxBytes !== undefined && total + chunk.length > maxBytes)
        throw new ObjectTooLargeError(uri(), undefined, maxBytes);
      if (out) {
        if (total + chunk.length > out.length)
          throw new Error(`${uri()}: the body is longer than its Content-Length (${out.length})`);
        out.set(chunk, total);
      } else {
        chunks.push(chunk);
      }
      total += chunk.length;
    }
  } catch (err) {
    body.destroy?.();
    throw err;
  }
  if (out && total !== out.length)
    throw new Error(`${uri()}: the body ended after ${total} of ${out.length} bytes`);
  if (out) return out;
  const joined = new Uint8Array(total);
  chunks.reduce((at, c) => (joined.set(c, at), at + c.length), 0);
  return joined;
}

/** A range that starts at or past the object's end (HTTP 416). */
function isRangeNotSatisfiable(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'InvalidRange' || e?.$metadata?.httpStatusCode === 416;
}

function isNoSuchBucket(err: unknown): boolean {
  return (err as { name?: string })?.name === 'NoSuchBucket';
}

/** S3 error codes that refuse one key as such (too long, not a valid name): the same every time. */
const KEY_REFUSED = new Set(['KeyTooLongError', 'InvalidURI', 'InvalidObjectName', 'InvalidKey']);

/**
 * Whether a read failed because of the key itself, so no retry can succeed: the URI does not
 * parse, the key has no UTF-8 form (a lone surrogate: the SDK cannot encode it), the store
 * refuses the key (too long for it, an invalid name), or the object is not there (deleted since
 * planning, or listed by a store that could not spell its key). Credentials, throttling,
 * timeouts and server errors are not: those are retried.
 */
export function isUnreadableKey(err: unknown): boolean {
  if (err instanceof InvalidS3UriError || err instanceof URIError) return true;
  if (err instanceof ObjectNotFoundError || isNotFound(err)) return true;
  return KEY_REFUSED.has((err as { name?: string })?.name ?? '');
}

const cleanEtag = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');
const quoteEtag = (etag: string) => (etag.startsWith('"') ? etag : `"${etag}"`);
