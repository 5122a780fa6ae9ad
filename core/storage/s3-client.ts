import { S3Client } from '@aws-sdk/client-s3';

// clipeval supports Node 20 (pinned SDK versions in the lockfile); the SDK's notice that
// *future* releases need Node 22 would otherwise print on every command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Where S3 is: a region, and an endpoint for S3-compatible servers. */
export interface S3Settings {
  region: string;
  endpoint?: string | undefined;
}

/**
 * The one S3 client factory. With an explicit endpoint (versitygw, MinIO, Ceph, R2...) it uses
 * path-style addressing, and computes/validates checksums only when an operation requires them:
 * the SDK's default CRC32 trailers (since 3.729) are rejected or mishandled by many non-AWS
 * servers. Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID etc.) unless given.
 */
export function createS3Client(
  s3: S3Settings,
  credentials?: { accessKeyId: string; secretAccessKey: string },
): S3Client {
  return new S3Client({
    region: s3.region,
    ...(credentials ? { credentials } : {}),
    maxAttempts: 5,
    ...(s3.endpoint
      ? {
          endpoint: s3.endpoint,
          forcePathStyle: true,
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }
      : {}),
  });
}
