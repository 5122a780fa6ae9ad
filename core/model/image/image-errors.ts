export type ImageDecodeReason =
  | 'empty'
  | 'truncated'
  | 'not-an-image'
  | 'too-large'
  | 'unsupported'
  /** The object cannot be read under its key (refused by the store, gone, or not a valid key). */
  | 'unreadable'
  /** The object changed since the run was planned (its ETag differs): re-plan the run. */
  | 'changed';

/**
 * An image that cannot be turned into a tensor. Callers count these per reason and skip the
 * image; they are never retried (the bytes will not change).
 */
export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';
  constructor(
    readonly reason: ImageDecodeReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  return prefix.every((b, i) => bytes[at + i] === b);
}

/**
 * Width x height a PNG declares in its IHDR, or undefined. libspng refuses a PNG without image
 * data before sharp's pixel limit is consulted, so the limit is also checked on this.
 */
export function pngDeclaredPixels(bytes: Uint8Array): number | undefined {
  if (bytes.length < 24 || !startsWith(bytes, PNG_SIGNATURE)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(12) !== 0x49484452) return undefined; // 'IHDR'
  return view.getUint32(16) * view.getUint32(20);
}

/** Whether a file of a known format lacks its end (end markers / declared container size). */
function looksTruncated(bytes: Uint8Array): boolean {
  const n = bytes.length;
  if (startsWith(bytes, [0xff, 0xd8])) return !(bytes[n - 2] === 0xff && bytes[n - 1] === 0xd9);
  if (startsWith(bytes, PNG_SIGNATURE)) {
    return !startsWith(bytes, [0x49, 0x45, 0x4e, 0x44], n - 8); // 'IEND' chunk last
  }
  if (startsWith(bytes, [0x47, 0x49, 0x46])) return bytes[n - 1] !== 0x3b; // GIF trailer ';'
  if (startsWith(bytes, [0x52, 0x49, 0x46, 0x46]) && n >= 8) {
    const riffSize = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
    return n < riffSize + 8;
  }
  return false;
}

const TRUNCATION =
  /premature end|unexpected end|end of file|truncated|out of data|bad seek|read error at scanline/i;

/** Maps a sharp/libvips failure to a reason. Messages are libvips', matched loosely. */
export function classifySharpError(err: unknown, bytes: Uint8Array): ImageDecodeError {
  const message = err instanceof Error ? err.message : String(err);
  const make = (reason: ImageDecodeReason): ImageDecodeError =>
    new ImageDecodeError(reason, `${reason}: ${message.split('\n')[0]}`, { cause: err });
  if (/pixel limit/i.test(message)) return make('too-large');
  if (/unsupported image format/i.test(message)) return make('not-an-image');
  if (looksTruncated(bytes) || TRUNCATION.test(message)) return make('truncated');
  return make('not-an-image');
}
