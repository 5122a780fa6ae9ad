import type { S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectStore } from '../../core/storage/object-store';

/** One stored object: its bytes, and how its GetObject answers. */
export interface MemoryObject {
  body: Uint8Array;
  /** ETag (unquoted); default the MD5 of the body, as S3 does for single-part uploads. */
  etag?: string;
  /** Leave Content-Length out of the GetObject response (a chunked body). */
  noLength?: boolean;
  /** Content-Length to announce instead of the body's real length (a body that ends early). */
  announce?: number;
}

/** One request: the command's name without "Command", its bucket and its key (or prefix). */
export interface Access {
  op: string;
  bucket: string;
  key: string;
}

/** A GetObject: its If-Match, and what became of the body it was given. */
export interface Read extends Access {
  ifMatch?: string;
  /** Bytes of the body the reader consumed. */
  consumed: number;
  /** The body was closed before it was read to the end. */
  destroyed: boolean;
  /** The Range header of a ranged read (`bytes=a-b`). */
  range?: string;
}

/** GetObject bodies come in chunks of this size, so a test can see how much was read. */
const CHUNK = 65536;

/**
 * An in-memory S3 for module-level tests: an S3Client stand-in whose `send` answers the commands
 * ObjectStore sends (Get/Head/Put/Delete object, ListObjectsV2, HeadBucket, ListBuckets) with
 * S3's semantics and S3's error shapes, so the real ObjectStore runs on top of it. GetObject
 * honours If-Match and streams its body (a Node Readable, like the SDK's in Node, that also has
 * `transformToByteArray`), recording how much of it was consumed. Every request is logged in
 * `accesses`, so a test can check where a run reached. Like S3 it refuses keys over 1,024 bytes
 * (KeyTooLongError, 400); like the SDK it cannot encode a lone surrogate (URIError).
 */
export class MemoryS3 {
  readonly buckets = new Map<string, Map<string, MemoryObject>>();
  /** Every request, in order (a test may push its own notes in between). */
  readonly accesses: (Access | Read)[] = [];
  /** Errors to throw for a key on read (a key refused by the store, a throttled request...). */
  readonly faults = new Map<string, Error>();

  /** `buckets` exist empty; `put` creates any other bucket it writes to. */
  constructor(buckets: string[] = []) {
    for (const b of buckets) this.buckets.set(b, new Map());
  }

  /** An ObjectStore on this fake, for `bucket`. */
  store(bucket: string): ObjectStore {
    return new ObjectStore(this as unknown as S3Client, bucket);
  }

  /** Stores an object directly (not logged). */
  put(bucket: string, key: string, body: Uint8Array | string | MemoryObject): void {
    let objects = this.buckets.get(bucket);
    if (!objects) this.buckets.set(bucket, (objects = new Map<string, MemoryObject>()));
    objects.set(
      key,
      typeof body === 'string' || body instanceof Uint8Array ? toObject(body) : body,
    );
  }

  /** The stored bytes of an object, read directly (not logged). */
  get(bucket: string, key: string): Uint8Array | undefined {
    return this.buckets.get(bucket)?.get(key)?.body;
  }

  etagOf(bucket: string, key: string): string {
    return etag(this.buckets.get(bucket)!.get(key)!);
  }

  get reads(): Read[] {
    return this.accesses.filter((a): a is Read => a.op === 'GetObject');
  }

  get puts(): Access[] {
    return this.accesses.filter((a) => a.op === 'PutObject');
  }

  /** How many requests of `op` (e.g. 'ListObjectsV2') were sent. */
  count(op: string): number {
    return this.accesses.filter((a) => a.op === op).length;
  }

  // The S3Client surface ObjectStore uses.
  async send(command: { constructor: { name: string }; input: Record<string, unknown> }) {
    await Promise.resolve(); // asynchronous, like the real client
    const input = command.input as { Bucket?: string; Key?: string; Prefix?: string } & Record<
      string,
      unknown
    >;
    const bucket = input.Bucket ?? '';
    const key = input.Key ?? input.Prefix ?? '';
    const op = command.constructor.name.replace(/Command$/, '');
    const ifMatch = typeof input.IfMatch === 'string' ? input.IfMatch : undefined;
    const access: Access | Read =
      op === 'GetObject'
        ? { op, bucket, key, ...(ifMatch ? { ifMatch } : {}), consumed: 0, destroyed: false }
        : { op, bucket, key };
    this.accesses.push(access);
    if (op === 'ListBuckets')
      return { Buckets: [...this.buckets.keys()].map((Name) => ({ Name })) };
    if (op === 'HeadBucket') {
      if (!this.buckets.has(bucket)) throw s3Error('NotFound', 404);
      return {};
    }
    const objects = this.buckets.get(bucket);
    if (!objects) throw s3Error('NoSuchBucket', 404);
    if (op === 'ListObjectsV2') return this.listPage(objects, key, input.ContinuationToken);
    if (/\p{Cs}/u.test(key)) throw new URIError('URI malformed'); // as the SDK's encoder does
    if (Buffer.byteLength(key) > 1024) throw s3Error('KeyTooLongError', 400);
    const fault = this.faults.get(key);
    if (fault !== undefined && (op === 'GetObject' || op === 'HeadObject')) throw fault;
    const o = objects.get(key);
    switch (op) {
      case 'PutObject':
        objects.set(key, toObject(input.Body as Uint8Array | string));
        return {};
      case 'DeleteObject':
        objects.delete(key);
        return {};
      case 'HeadObject':
        if (!o) throw s3Error('NotFound', 404);
        return { ContentLength: o.body.length, ETag: `"${etag(o)}"` };
      case 'GetObject':
        if (!o) throw s3Error('NoSuchKey', 404);
        if (ifMatch !== undefined && ifMatch.replace(/"/g, '') !== etag(o))
          throw s3Error('PreconditionFailed', 412);
        if (typeof input.Range === 'string') {
          const [, a, b] = /^bytes=(\d+)-(\d+)$/.exec(input.Range)!;
          const start = Number(a);
          if (start >= o.body.length) throw s3Error('InvalidRange', 416);
          const part = o.body.subarray(start, Math.min(o.body.length, Number(b) + 1));
          (access as Read).range = input.Range;
          return {
            Body: body(part, access as Read),
            ETag: `"${etag(o)}"`,
            ContentLength: part.length,
          };
        }
        return {
          Body: body(o.body, access as Read),
          ETag: `"${etag(o)}"`,
          ...(o.noLength ? {} : { ContentLength: o.announce ?? o.body.length }),
        };
      default:
        throw new Error(`MemoryS3: ${op} is not implemented`);
    }
  }

  destroy(): void {}

  /** Keys in UTF-8 byte order, as S3 lists them, 1,000 a page. */
  private listPage(objects: Map<string, MemoryObject>, prefix: string, token: unknown) {
    const keys = [...objects.keys()]
      .filter((k) => k.startsWith(prefix))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const start = typeof token === 'string' ? Number(token) : 0;
    const page = keys.slice(start, start + 1000);
    const more = start + 1000 < keys.length;
    return {
      Contents: page.map((Key) => {
        const o = objects.get(Key)!;
        return { Key, Size: o.body.length, ETag: `"${etag(o)}"` };
      }),
      IsTruncated: more,
      ...(more ? { NextContinuationToken: String(start + 1000) } : {}),
    };
  }
}

/**
 * A GetObject body: a Readable (ObjectStore streams it, to stop at maxBytes) that also has the
 * SDK's `transformToByteArray`. It yields `bytes` in 64 KiB chunks, counting into `read` what the
 * reader takes, and marks the read destroyed if it is closed before the end.
 */
function body(bytes: Uint8Array, read: Read) {
  const chunks = function* () {
    for (let at = 0; at < bytes.length; at += CHUNK) {
      const chunk = bytes.subarray(at, at + CHUNK);
      read.consumed += chunk.length;
      yield chunk;
    }
  };
  const stream = Readable.from(chunks(), { objectMode: false });
  stream.on('close', () => {
    if (read.consumed < bytes.length) read.destroyed = true;
  });
  return Object.assign(stream, {
    // Buffer.concat copies: the caller cannot change the stored object.
    transformToByteArray: async () => Buffer.concat((await stream.toArray()) as Uint8Array[]),
  });
}

/** An error shaped as the SDK throws S3's: a name (the error code) and the HTTP status. */
export function s3Error(name: string, status: number): Error {
  return Object.assign(new Error(`${name} (${status})`), {
    name,
    $metadata: { httpStatusCode: status },
  });
}

const toObject = (body: Uint8Array | string): MemoryObject => ({
  body: typeof body === 'string' ? Buffer.from(body) : body,
});

const etag = (o: MemoryObject) => o.etag ?? createHash('md5').update(o.body).digest('hex');
