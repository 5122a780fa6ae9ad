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
import { type S3Settings, createS3Client } from './s3-client';
import { formatS3Uri, parseS3Uri } from './s3-uri';

/** One listed object: what the planner needs to fingerprint a dataset. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
}

export interface ReadOptions {
  /** Fail (HTTP 412) unless the object still has this ETag. */
  ifMatch?: string;
  signal?: AbortSignal;
}

/** A required object is missing: names its URI. */
export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  constructor(readonly uri: string) {
    super(`${uri} does not exist`);
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
      return await r.Body!.transformToByteArray();
    } catch (err) {
      if (isNotFound(err)) return undefined;
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

  async putJson(key: string, value: unknown): Promise<void> {
    await this.putBytes(key, JSON.stringify(value, null, 1), 'application/json');
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

function isNoSuchBucket(err: unknown): boolean {
  return (err as { name?: string })?.name === 'NoSuchBucket';
}

const cleanEtag = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');
const quoteEtag = (etag: string) => (etag.startsWith('"') ? etag : `"${etag}"`);
