import {
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

/** One listed object: what the planner needs to fingerprint a dataset. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
}

/** S3 error names that mean "the thing is not there" rather than "try again". */
export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

export function isNoSuchBucket(err: unknown): boolean {
  return (err as { name?: string })?.name === 'NoSuchBucket';
}

const cleanEtag = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');

/** Lists every object under a prefix, page by page; `onPage` lets callers heartbeat. */
export async function listAll(
  s3: S3Client,
  bucket: string,
  prefix: string,
  onPage?: (listedSoFar: number) => void,
): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
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

export async function headObject(s3: S3Client, bucket: string, key: string): Promise<ListedObject> {
  const r = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return { key, size: r.ContentLength ?? 0, etag: cleanEtag(r.ETag) };
}

export async function bucketExists(s3: S3Client, bucket: string): Promise<boolean> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return true;
  } catch (err) {
    if (isNotFound(err) || isNoSuchBucket(err)) return false;
    throw err;
  }
}

export async function getText(s3: S3Client, bucket: string, key: string): Promise<string> {
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return r.Body!.transformToString('utf8');
}

/** Single PutObject: the object appears whole or not at all. */
export async function putJson(
  s3: S3Client,
  bucket: string,
  key: string,
  value: unknown,
): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: JSON.stringify(value, null, 1),
      ContentType: 'application/json',
    }),
  );
}

export async function getJson<T>(s3: S3Client, bucket: string, key: string): Promise<T> {
  return JSON.parse(await getText(s3, bucket, key)) as T;
}
