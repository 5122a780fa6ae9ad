/**
 * @file Reading a shard's images from Parquet files at extraction: per (file, row group), one
 * ranged GET of the image column's chunks on first demand, decoded for the rows the shard asks
 * for, each row handed out once and the row group dropped when its last row is served. Memory is
 * bounded by the row groups in flight (planning refuses row groups too large to hold).
 */
import {
  ObjectChangedError,
  ObjectNotFoundError,
  type ObjectStore,
  ObjectTooLargeError,
} from '../../storage/object-store';
import { PartUnreadableError, type PartReader, type PartReadOptions } from '../parts';
import type { PlanItem } from '../plan';
import type { ItemPart } from '../types';
import { columnSpan } from './columns';
import { type FileMetaData, parquetLibrary } from './hyparquet';
import {
  CorruptParquetError,
  isReadFailure,
  type ParquetObject,
  readFooter,
  s3AsyncBuffer,
} from './s3-buffer';

type ParquetPart = Extract<ItemPart, { kind: 'parquet' }>;

interface FileEntry {
  object: ParquetObject;
  uri: string;
  footer?: Promise<FileMetaData>;
}

interface GroupEntry {
  file: FileEntry;
  rowGroup: number;
  column: string;
  /** Rows of the group this shard asks for, not yet served. */
  rows: Set<number>;
  /** Their image values, decoded on first demand. */
  values?: Promise<Map<number, unknown>>;
}

export function parquetPartReader(store: ObjectStore, items: readonly PlanItem[]): PartReader {
  const files = new Map<string, FileEntry>();
  const groups = new Map<string, GroupEntry>();
  const given = new Set<string>();
  for (const item of items) {
    given.add(item.uri);
    const part = parquetPart(item);
    let file = files.get(part.object);
    if (!file) {
      const at = store.at(part.object);
      // The planned ETag is the file's: every read insists on it (If-Match).
      file = {
        uri: part.object,
        object: { store: at.store, key: at.key, size: -1, etag: item.etag },
      };
      files.set(part.object, file);
    }
    const key = groupKey(part);
    const group = groups.get(key) ?? {
      file,
      rowGroup: part.rowGroup,
      column: part.column,
      rows: new Set<number>(),
    };
    group.rows.add(part.row);
    groups.set(key, group);
  }

  return {
    async read(item: PlanItem, opts: PartReadOptions = {}): Promise<Uint8Array> {
      const part = parquetPart(item);
      const key = groupKey(part);
      let group = groups.get(key);
      if (!group?.rows.has(part.row)) {
        if (!given.has(item.uri))
          throw new Error(`${item.uri} was not given to this shard's Parquet reader`);
        // Read again (already served): its row group is read again for this row alone.
        group = {
          file: files.get(part.object)!,
          rowGroup: part.rowGroup,
          column: part.column,
          rows: new Set([part.row]),
        };
      }
      group.values ??= decodeGroup(group, opts.signal);
      let values: Map<number, unknown>;
      try {
        values = await group.values;
      } finally {
        // Served (or failed) once: the group is dropped with its last row.
        group.rows.delete(part.row);
        if (group.rows.size === 0 && groups.get(key) === group) groups.delete(key);
      }
      const value = values.get(part.row);
      values.delete(part.row);
      return imageBytes(value, item, part, opts.maxBytes);
    },
  };
}

function parquetPart(item: PlanItem): ParquetPart {
  if (item.part?.kind !== 'parquet') throw new Error(`${item.uri} is not a Parquet row`);
  return item.part;
}

const groupKey = (p: ParquetPart) => `${p.object}\n${p.rowGroup}\n${p.column}`;

/** The footer once per file and shard (its size from the first ranged read's answer). */
function footerOf(file: FileEntry, signal?: AbortSignal): Promise<FileMetaData> {
  file.footer ??= (async () => {
    const { store, key, etag } = file.object;
    // The item has no file size, which the footer's position needs: one HEAD per file and shard.
    const head = await store.head(key);
    if (!head) throw new ObjectNotFoundError(file.uri);
    if (head.etag !== etag) throw new ObjectChangedError(file.uri, etag);
    file.object.size = head.size;
    try {
      return await readFooter(s3AsyncBuffer({ store, key, etag, size: file.object.size }, signal));
    } catch (err) {
      if (err instanceof CorruptParquetError)
        throw new PartUnreadableError(`Parquet file ${file.uri} cannot be read: ${err.message}`);
      throw err;
    }
  })();
  return file.footer;
}

/** One ranged GET of the group's image column chunks, decoded for the rows asked. */
async function decodeGroup(group: GroupEntry, signal?: AbortSignal): Promise<Map<number, unknown>> {
  const metadata = await footerOf(group.file, signal);
  const { parquetReadObjects, compressors } = await parquetLibrary();
  const rowGroup = metadata.row_groups[group.rowGroup];
  if (!rowGroup)
    throw new PartUnreadableError(
      `Parquet file ${group.file.uri} has no row group ${group.rowGroup}`,
    );
  const groupStart = metadata.row_groups
    .slice(0, group.rowGroup)
    .reduce((n, g) => n + Number(g.num_rows), 0);
  const rows = [...group.rows].sort((a, b) => a - b);
  const rowStart = rows[0]!;
  const rowEnd = rows[rows.length - 1]! + 1;
  if (rowStart < groupStart || rowEnd > groupStart + Number(rowGroup.num_rows))
    throw new PartUnreadableError(
      `Parquet file ${group.file.uri}: rows ${rowStart}..${rowEnd - 1} are not all in row group ${group.rowGroup}`,
    );
  const base = s3AsyncBuffer(group.file.object, signal);
  const span = columnSpan(metadata, group.rowGroup, group.column);
  if (span.end <= span.start)
    throw new PartUnreadableError(`Parquet file ${group.file.uri} has no column "${group.column}"`);
  let decoded: Record<string, unknown>[];
  try {
    decoded = await parquetReadObjects({
      file: base, // the image column's chunks in this row group, as hyparquet plans them
      metadata,
      columns: [group.column],
      rowStart,
      rowEnd,
      rowFormat: 'object',
      compressors,
      utf8: false,
    });
  } catch (err) {
    if (isReadFailure(err)) throw err;
    throw new PartUnreadableError(
      `Parquet file ${group.file.uri}: row group ${group.rowGroup}'s column "${group.column}" cannot be decoded (${err instanceof Error ? err.message : String(err)})`,
      { cause: err },
    );
  }
  const values = new Map<number, unknown>();
  for (const row of rows) values.set(row, decoded[row - rowStart]?.[group.column]);
  return values;
}

/** A row's encoded image: the Image struct's `bytes`, or a binary column's value. */
function imageBytes(
  value: unknown,
  item: PlanItem,
  part: ParquetPart,
  maxBytes?: number,
): Uint8Array {
  const bytes =
    value instanceof Uint8Array
      ? value
      : value !== null && typeof value === 'object'
        ? (value as { bytes?: unknown }).bytes
        : undefined;
  if (!(bytes instanceof Uint8Array)) {
    const what =
      value === null || value === undefined
        ? 'is null'
        : 'has no "bytes" (an image stored by path only?)';
    throw new PartUnreadableError(
      `row ${part.row} of ${part.object}: column "${part.column}" ${what}`,
    );
  }
  if (maxBytes !== undefined && bytes.length > maxBytes)
    throw new ObjectTooLargeError(item.uri, bytes.length, maxBytes);
  // A copy: a view would keep the whole row group's buffer alive while this image is decoded.
  return bytes.slice();
}
