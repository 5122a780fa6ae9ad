/** An object or prefix in S3-compatible storage. */
export interface S3Location {
  bucket: string;
  key: string;
}

const S3_URI = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/;

export function isS3Uri(value: string): boolean {
  return S3_URI.test(value);
}

/** Parses `s3://bucket/key`; throws a message that says what a valid URI looks like. */
export function parseS3Uri(uri: string): S3Location {
  const m = S3_URI.exec(uri);
  if (!m) throw new Error(`"${uri}" is not an S3 URI: expected s3://bucket/key`);
  return { bucket: m[1]!, key: m[2] ?? '' };
}

export function formatS3Uri(loc: S3Location): string {
  return `s3://${loc.bucket}/${loc.key}`;
}
