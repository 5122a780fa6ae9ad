/**
 * @file A Parquet file in S3 as hyparquet's AsyncBuffer: every slice is one ranged GET that
 * insists on the listed ETag (If-Match), so a file replaced since planning is an
 * ObjectChangedError rather than a mix of two versions. And the footer read, with its size bounded.
 *
 * hyparquet plans the slices: for the one column a read selects, one slice per column chunk in
 * the row groups asked for (leaves of a struct joined into one slice when together under 2 MiB),
 * and it decodes from that slice without copying it. So a row group's column costs one GET (two
 * for an Image struct over 2 MiB: its `bytes` and `path` leaves), never one per row.
 */
import type { ObjectStore } from '../../storage/object-store';
import { formatBytes } from '../../util/byte-budget';
import { type AsyncBuffer, type FileMetaData, parquetLibrary } from './hyparquet';

/** A Parquet object: its store, key, size and ETag (from the listing). */
export interface ParquetObject {
  store: ObjectStore;
  key: string;
  size: number;
  etag: string;
}

/** Errors of the GETs themselves (as opposed to decoding what they returned). */
const readFailures = new WeakSet<object>();

/**
 * Whether hyparquet failed because a GET did (the file changed or is gone, the network, S3
 * throttling): such an error is the storage's, to be passed on as it is, never called a corrupt file.
 */
export function isReadFailure(err: unknown): boolean {
  return typeof err === 'object' && err !== null && readFailures.has(err);
}

export function s3AsyncBuffer(file: ParquetObject, signal?: AbortSignal): AsyncBuffer {
  return {
    byteLength: file.size,
    async slice(start: number, end = file.size): Promise<ArrayBuffer> {
      try {
        const bytes = await file.store.getRange(file.key, start, end, {
          ifMatch: file.etag,
          ...(signal ? { signal } : {}),
        });
        return toArrayBuffer(bytes);
      } catch (err) {
        if (typeof err === 'object' && err !== null) readFailures.add(err);
        throw err;
      }
    },
  };
}

/** The bytes as an ArrayBuffer of their own: the GET's buffer when it is exactly theirs (no copy). */
function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return whole && bytes.buffer instanceof ArrayBuffer ? bytes.buffer : bytes.slice().buffer;
}

/** The file is not a readable Parquet file (no magic, a footer that does not parse...). */
export class CorruptParquetError extends Error {
  override readonly name = 'CorruptParquetError';
}

/** Bytes read from the end first: HF footers (with their `huggingface` metadata) fit. */
const FOOTER_GUESS = 64 * 1024;
/**
 * The largest footer read. A footer grows with row groups x columns (a few hundred bytes each);
 * a length beyond this is a corrupt file, which must not make planning read gigabytes.
 */
export const MAX_FOOTER_BYTES = 64 * 1024 * 1024;

/**
 * The file's metadata, in one ranged GET (two when the footer is over 64 KiB). A file too short
 * to be Parquet, without the PAR1 magic, with a footer length that cannot be, or a footer that
 * does not parse is a CorruptParquetError.
 */
export async function readFooter(file: AsyncBuffer): Promise<FileMetaData> {
  const { parquetMetadata } = await parquetLibrary();
  const size = file.byteLength;
  if (size < 12)
    throw new CorruptParquetError(`it is ${size} bytes, too short to be a Parquet file`);
  const tailStart = Math.max(0, size - FOOTER_GUESS);
  const tail = new Uint8Array(await file.slice(tailStart, size));
  if (tail.length !== size - tailStart)
    throw new CorruptParquetError(`it ended after ${tailStart + tail.length} of ${size} bytes`);
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  if (view.getUint32(tail.length - 4, true) !== 0x31524150)
    throw new CorruptParquetError(
      'it does not end with the Parquet magic "PAR1" (not a Parquet file, or truncated)',
    );
  const length = view.getUint32(tail.length - 8, true);
  if (length + 12 > size || length > MAX_FOOTER_BYTES) {
    throw new CorruptParquetError(
      `its footer claims ${formatBytes(length)} in a file of ${formatBytes(size)}` +
        (length > MAX_FOOTER_BYTES ? ` (at most ${formatBytes(MAX_FOOTER_BYTES)} is read)` : ''),
    );
  }
  let footer = tail.subarray(tail.length - 8 - length);
  if (length + 8 > tail.length) {
    const head = new Uint8Array(await file.slice(size - 8 - length, tailStart));
    footer = new Uint8Array(length + 8);
    footer.set(head);
    footer.set(tail, head.length);
  }
  let metadata: FileMetaData;
  try {
    metadata = parquetMetadata(footer);
  } catch (err) {
    throw new CorruptParquetError(
      `its footer does not parse (${err instanceof Error ? err.message : String(err)})`,
      { cause: err },
    );
  }
  // A footer that parses as Thrift can still lack what every reader relies on.
  const shaped =
    Array.isArray(metadata.schema) &&
    metadata.schema.length > 0 &&
    Array.isArray(metadata.row_groups) &&
    metadata.row_groups.every((g) => Array.isArray(g.columns) && typeof g.num_rows === 'bigint');
  if (!shaped) throw new CorruptParquetError('its footer lacks the schema or row groups');
  return metadata;
}
