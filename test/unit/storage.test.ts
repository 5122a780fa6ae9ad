import { describe, expect, it } from 'vitest';
import { assertRunId, keys } from '../../core/storage/keys';
import { formatS3Uri, parseS3Uri } from '../../core/storage/s3-uri';

describe('S3 URIs and keys', () => {
  it('parses bucket and key', () => {
    expect(parseS3Uri('s3://my.bucket/a/b.png')).toEqual({ bucket: 'my.bucket', key: 'a/b.png' });
    expect(parseS3Uri('s3://bucket')).toEqual({ bucket: 'bucket', key: '' });
    expect(formatS3Uri({ bucket: 'b0b', key: 'x/y' })).toBe('s3://b0b/x/y');
  });

  it('rejects non-S3 URIs with the expected form', () => {
    expect(() => parseS3Uri('https://bucket/key')).toThrow(/expected s3:\/\/bucket\/key/);
    expect(() => parseS3Uri('s3://UPPER/key')).toThrow(/not an S3 URI/);
  });

  it('names run objects under runs/<runId>/', () => {
    expect(keys.plan('run-1')).toBe('runs/run-1/plan.json');
    expect(keys.runPrefix('run-1')).toBe('runs/run-1/');
  });

  it('refuses run ids that could escape their prefix', () => {
    for (const bad of ['../x', 'a/b', '', '.hidden', 'x'.repeat(129)]) {
      expect(() => assertRunId(bad)).toThrow(/run id .* is not valid/);
    }
  });
});
