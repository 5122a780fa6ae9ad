/**
 * @file Indexes a tar in S3 by reading its headers through ranged GETs: each regular file's
 * name, data offset and size, never the whole tar in memory. Reads go in windows (WINDOW bytes):
 * headers inside a window are parsed from it; when the next header lies past the window, the
 * next window starts at that header, so large members are skipped unread and small ones are
 * read in bulk (requests ~ bytes needed / WINDOW). After a skip of more than a window (members
 * larger than it) the next read is a small one: only a header or two is needed there.
 *
 * Why hand-written: tar-stream's and modern-tar's extractors parse one contiguous stream. They
 * cannot skip a member's data without being fed every byte of it, so planning through them would
 * download every shard whole (all of ImageNet's ~140 GB to learn 1.28 M offsets) where only the
 * headers (~1 KiB a sample) are needed. tar-stream's header decoder (headers.js), which could
 * parse headers read by range, is not exported (its package.json "exports" allows only ".").
 * Handled: ustar (with its name prefix), GNU 'L' long names, pax 'x' headers (path, size), 'g'
 * global pax headers (skipped), base-256 sizes, checksums (signed or unsigned sums).
 * test/unit/webdataset.test.ts checks the walker against tar-stream's extract (same names, same
 * bytes at the offsets) on ustar, pax and GNU tars.
 */
import type { ObjectStore } from '../../storage/object-store';
import { shown } from '../../util/text';
import { DatasetError } from '../types';

/** Bytes per ranged read while walking headers. */
export const WINDOW = 8 * 1024 * 1024;
/** The read after skipping a member larger than a window (or an eighth of a smaller window): a header or two. */
const SMALL_WINDOW = 64 * 1024;
/** The largest pax or GNU long-name record accepted: a bigger one is a corrupt header. */
const MAX_META = 1024 * 1024;
const BLOCK = 512;

/** A regular file in the tar; `data` is set when the caller asked for it (wantData). */
export interface TarEntry {
  name: string;
  /** Byte offset of the member's data in the tar. */
  offset: number;
  size: number;
  data?: Uint8Array;
}

/** Where the tar was cut short (an upload that stopped): the walk ends there. */
export interface TarCut {
  /** The member the tar ends inside; undefined when it ends inside a header. */
  name: string | undefined;
  offset: number;
  reason: string;
}

export interface TarIndex {
  entries: TarEntry[];
  truncated?: TarCut;
  requests: number;
  bytesRead: number;
}

export interface IndexTarOptions {
  /** The tar's size (from the listing): where it ends. */
  size: number;
  /** Read only this version of the tar (If-Match). */
  etag?: string;
  /** Whether to return this member's bytes (small members: a WebDataset .cls label). */
  wantData?: (name: string, size: number) => boolean;
  /** Bytes per read (tests use small windows). */
  window?: number;
  signal?: AbortSignal;
}

/** First bytes of compressed streams: a tar read by byte range cannot be compressed. */
const COMPRESSED: [string, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a]],
];

const GZIP_NAME = /\.(tar\.gz|tgz)$/i;

/** The fix for a compressed tar (its name or its first bytes say so). */
export function compressedTarError(uri: string, how: string): DatasetError {
  return new DatasetError(
    `${shown(uri)} is a ${how}-compressed tar. WebDataset shards are read by byte range (only the headers at planning, ` +
      `only each image's bytes at extraction), which a compressed stream does not allow: decompress it ` +
      `(e.g. gunzip) and upload it as a plain .tar.`,
  );
}

/** Walks the tar `key` of `store` header by header (see the file comment). */
export async function indexTar(
  store: ObjectStore,
  key: string,
  opts: IndexTarOptions,
): Promise<TarIndex> {
  const uri = store.uri(key);
  if (GZIP_NAME.test(key)) throw compressedTarError(uri, 'gzip');
  const window = opts.window ?? WINDOW;
  const size = opts.size;
  const out: TarIndex = { entries: [], requests: 0, bytesRead: 0 };
  let win: { start: number; bytes: Uint8Array } = { start: 0, bytes: new Uint8Array(0) };
  let lastEnd = 0; // where the last read ended: a read far beyond it followed a large skip

  /** Bytes [a, b) of the tar (b <= size), from the window or a new read starting at a. */
  const bytesAt = async (a: number, b: number): Promise<Uint8Array> => {
    if (a >= win.start && b <= win.start + win.bytes.length) {
      return win.bytes.subarray(a - win.start, b - win.start);
    }
    const span = a - lastEnd > window ? Math.min(window / 8, SMALL_WINDOW) : window;
    const end = Math.min(size, a + Math.max(span, b - a));
    const bytes = await store.getRange(key, a, end, {
      ...(opts.etag ? { ifMatch: opts.etag } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    out.requests++;
    out.bytesRead += bytes.length;
    if (bytes.length < b - a) {
      // The listing said `size`; the object has fewer bytes (replaced since it was listed).
      throw new Error(
        `${shown(uri)}: read ${bytes.length} bytes at ${a} where ${b - a} were expected (the tar changed since it was listed); retry`,
      );
    }
    win = { start: a, bytes };
    lastEnd = a + bytes.length;
    return bytes.subarray(0, b - a);
  };

  let pos = 0;
  let longName: string | undefined; // from a GNU 'L' or pax 'x' header, for the next header
  let paxSize: number | undefined;
  if (size > 0) checkNotCompressed(uri, await bytesAt(0, Math.min(size, BLOCK)));
  while (pos < size) {
    if (pos + BLOCK > size) {
      out.truncated = {
        name: undefined,
        offset: pos,
        reason: `the tar ends inside a header at byte ${pos} (truncated)`,
      };
      break;
    }
    const header = await bytesAt(pos, pos + BLOCK);
    if (header.every((b) => b === 0)) break; // end-of-archive blocks
    const h = parseHeader(header, uri, pos);
    const name = longName ?? h.name;
    const memberSize = paxSize ?? h.size;
    longName = undefined;
    paxSize = undefined;
    const dataStart = pos + BLOCK;
    const dataEnd = dataStart + memberSize;
    if (dataEnd > size) {
      out.truncated = {
        name: h.type === 'file' ? name : undefined,
        offset: dataStart,
        reason: `the tar ends inside this member (${memberSize} bytes from byte ${dataStart}; the tar has ${size}): truncated`,
      };
      break;
    }
    if (h.type === 'gnu-long-name' || h.type === 'pax') {
      if (memberSize > MAX_META) throw corrupt(uri, pos, `a ${memberSize}-byte extended header`);
      const meta = await bytesAt(dataStart, dataEnd);
      if (h.type === 'gnu-long-name') {
        longName = decodeName(meta);
      } else {
        const pax = parsePax(meta, uri, pos);
        longName = pax.path;
        paxSize = pax.size;
      }
    } else if (h.type === 'file') {
      const entry: TarEntry = { name, offset: dataStart, size: memberSize };
      if (opts.wantData?.(name, memberSize)) {
        entry.data = (await bytesAt(dataStart, dataEnd)).slice(); // a copy: the window is let go
      }
      out.entries.push(entry);
    }
    pos = dataStart + Math.ceil(memberSize / BLOCK) * BLOCK;
  }
  return out;
}

type HeaderType = 'file' | 'gnu-long-name' | 'pax' | 'other';

interface Header {
  name: string;
  size: number;
  type: HeaderType;
}

function checkNotCompressed(uri: string, first: Uint8Array): void {
  for (const [how, magic] of COMPRESSED) {
    if (magic.every((b, i) => first[i] === b)) throw compressedTarError(uri, how);
  }
}

/** One 512-byte header block, its checksum verified. */
function parseHeader(b: Uint8Array, uri: string, at: number): Header {
  const stored = parseOctal(b.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!; // the checksum field counts as spaces
    unsigned += v;
    signed += v > 127 ? v - 256 : v; // some old tars summed signed bytes
  }
  if (stored === undefined || (stored !== unsigned && stored !== signed)) {
    throw corrupt(uri, at, 'a header whose checksum does not match');
  }
  const size = parseSize(b.subarray(124, 136));
  if (size === undefined) throw corrupt(uri, at, 'a header with an unreadable size field');
  const flag = String.fromCharCode(b[156]!);
  const type: HeaderType =
    flag === '0' || flag === '\0' || flag === '7'
      ? 'file'
      : flag === 'L'
        ? 'gnu-long-name'
        : flag === 'x'
          ? 'pax'
          : 'other'; // directories, links, 'g' global pax, GNU 'K'...: skipped with their data
  let name = decodeName(b.subarray(0, 100));
  // POSIX ustar ("ustar\0") splits long names into prefix/name; GNU ("ustar  ") has no prefix.
  const posix = b[257] === 0x75 && b[262] === 0 && ascii(b.subarray(257, 262)) === 'ustar';
  if (posix) {
    const prefix = decodeName(b.subarray(345, 500));
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  return { name, size, type };
}

function corrupt(uri: string, at: number, what: string): DatasetError {
  return new DatasetError(
    `${shown(uri)} is not a readable tar: ${what} at byte ${at}. The file is corrupt there: ` +
      `re-create the shard (e.g. with webdataset's TarWriter or Python's tarfile) and upload it again.`,
  );
}

const ascii = (b: Uint8Array): string => String.fromCharCode(...b);

/** A NUL-terminated name field as UTF-8 (what Python's tarfile and webdataset write). */
function decodeName(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Buffer.from(b.subarray(0, end === -1 ? b.length : end)).toString('utf8');
}

/** An octal field (NUL/space padded); undefined when it holds anything else. */
function parseOctal(b: Uint8Array): number | undefined {
  const text = ascii(b)
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : text === '' ? 0 : undefined;
}

/** The size field: octal, or base-256 (high bit of the first byte set) for sizes over 8 GiB. */
function parseSize(b: Uint8Array): number | undefined {
  if ((b[0]! & 0x80) === 0) return parseOctal(b);
  if (b[0] === 0xff) return undefined; // negative
  let v = b[0]! & 0x7f;
  for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
  return Number.isSafeInteger(v) ? v : undefined;
}

/** A pax extended header's records ("<len> <key>=<value>\n"): the path and size it sets. */
function parsePax(b: Uint8Array, uri: string, at: number): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  let i = 0;
  while (i < b.length) {
    if (b[i] === 0) break; // padding
    const space = b.indexOf(0x20, i);
    const len = space === -1 ? NaN : Number(ascii(b.subarray(i, space)));
    if (!Number.isSafeInteger(len) || len <= 0 || i + len > b.length) {
      throw corrupt(uri, at, 'a pax header with a malformed record');
    }
    const record = Buffer.from(b.subarray(space + 1, i + len - 1)).toString('utf8');
    const eq = record.indexOf('=');
    const k = record.slice(0, eq);
    const v = record.slice(eq + 1);
    if (k === 'path') out.path = v;
    if (k === 'size') {
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
        throw corrupt(uri, at, 'a pax header with an unreadable size');
      }
      out.size = Number(v);
    }
    i += len;
  }
  return out;
}
