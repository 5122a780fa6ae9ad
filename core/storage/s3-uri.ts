import { PermanentError } from '../util/errors';
import { quoted } from '../util/text';

/** An object or prefix in S3-compatible storage. */
export interface S3Location {
  bucket: string;
  key: string;
}

/**
 * `s3://bucket[/key]`. The key is everything after the bucket's slash, whatever it holds: S3 keys
 * may contain any character, line breaks (LF, CR, U+2028, U+2029, NEL) and control characters
 * included, hence the `s` flag (without it `.` stops at a line terminator and a valid key would
 * not parse).
 */
const S3_URI = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/s;

export function isS3Uri(value: string): boolean {
  return S3_URI.test(value);
}

/** Parses `s3://bucket/key`; throws a message that says what a valid URI looks like. */
export function parseS3Uri(uri: string): S3Location {
  const m = S3_URI.exec(uri);
  if (!m) throw new InvalidS3UriError(uri);
  return { bucket: m[1]!, key: m[2] ?? '' };
}

/** A string that is not an S3 URI: the same string never parses, so permanent. */
export class InvalidS3UriError extends PermanentError {
  override readonly name = 'InvalidS3UriError';
  constructor(readonly uri: string) {
    super(`${quoted(uri, 300)} is not an S3 URI: expected s3://bucket/key`);
  }
}

export function formatS3Uri(loc: S3Location): string {
  return `s3://${loc.bucket}/${loc.key}`;
}
