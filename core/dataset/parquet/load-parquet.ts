/**
 * @file Planning a Parquet dataset (Hugging Face's layout) from S3: each file's footer and each
 * row group's label column (and caption column, with dataset.captionColumn) are read by byte
 * range; the images are not read until extraction. With a caption column and no label column
 * the dataset is captions-only (zero-shot retrieval).
 */
import type { DatasetSpec } from '../../config/run-spec';
import type { ListedObject, ObjectStore } from '../../storage/object-store';
import { formatBytes } from '../../util/byte-budget';
import { forEachLimited, mapLimited } from '../../util/concurrency';
import { shown } from '../../util/text';
import type { ContainerLoadContext, LoadedDataset } from '../loaded';
import { checkCaptions } from '../captions';
import { DatasetError, type DatasetItem, type SkippedObject, type Split } from '../types';
import { findClassNames } from './class-labels';
import { ColumnError, type ColumnNames, checkColumns, columnSpan } from './columns';
import { type FileMetaData, type SchemaTree, parquetLibrary } from './hyparquet';
import { parquetColumnNames } from './names';
import { CorruptParquetError, isReadFailure, readFooter, s3AsyncBuffer } from './s3-buffer';
import { parquetFileSplit } from './splits';

/** Files whose footers or labels are read at once. */
const PARALLEL_FILES = 8;

/**
 * The largest decoded image column of one row group (1 GiB, the default
 * CLIPEVAL_IMAGE_MEMORY_BUDGET). Extraction decodes a row group's image column whole (Parquet
 * pages are not addressable by row without an offset index), so a larger one could not be held
 * by a worker: planning refuses it and says how to rewrite the file.
 */
export const MAX_ROW_GROUP_IMAGE_BYTES = 1024 ** 3;

export interface ParquetLoadOptions {
  /** Overrides MAX_ROW_GROUP_IMAGE_BYTES (tests). */
  maxRowGroupImageBytes?: number;
}

interface ParquetFile {
  object: ListedObject;
  uri: string;
  split: Split;
  config: string;
  metadata: FileMetaData;
  labelled: boolean;
}

/** Reads the Parquet files under `prefix` and returns one item per labelled row. */
export async function loadParquet(
  data: ObjectStore,
  prefix: string,
  listing: readonly ListedObject[],
  spec: DatasetSpec,
  context: ContainerLoadContext,
  opts: ParquetLoadOptions = {},
): Promise<LoadedDataset> {
  const names = parquetColumnNames(spec);
  const objects = listing
    .filter((o) => /\.parquet$/i.test(o.key))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (objects.length === 0) {
    throw new DatasetError(
      `Dataset ${spec.uri} holds no .parquet files. Check dataset.uri and dataset.format.`,
    );
  }
  // Split names first: a wrong layout fails before any read.
  const placed = objects.map((object) => ({
    object,
    uri: data.uri(object.key),
    ...parquetFileSplit(object.key, prefix, data.uri(object.key)),
  }));
  const progress = (containersRead: number) =>
    context.onProgress({
      objectsListed: listing.length,
      containersRead,
      containers: objects.length,
    });
  progress(0);

  const maxImageBytes = opts.maxRowGroupImageBytes ?? MAX_ROW_GROUP_IMAGE_BYTES;
  const files: ParquetFile[] = await mapLimited(placed, PARALLEL_FILES, async (f) => {
    const metadata = await footerOf(data, f.object, f.uri);
    const labelled = await checkFile(f.uri, metadata, names, maxImageBytes);
    progress(0); // a heartbeat per footer: files count as read once their labels are
    return { ...f, metadata, labelled };
  });
  const labelled = files[0]!.labelled;
  const other = files.find((f) => f.labelled !== labelled);
  if (other) {
    throw new DatasetError(
      `Dataset ${spec.uri}: ${files[0]!.uri} ${labelled ? 'has' : 'has no'} label column "${names.label}" but ${other.uri} ${other.labelled ? 'has' : 'has not'}. ` +
        'Every file needs the same columns.',
    );
  }
  const rows = files.reduce((n, f) => n + Number(f.metadata.num_rows), 0);
  if (rows > context.limits.maxDatasetObjects) {
    throw new DatasetError(
      `Dataset ${spec.uri} has ${rows} rows in ${files.length} Parquet file(s); one run plans at most ${context.limits.maxDatasetObjects} ` +
        '(CLIPEVAL_MAX_DATASET_OBJECTS). Point dataset.uri at fewer files or split the dataset into several runs.',
    );
  }
  const classes = !labelled
    ? undefined
    : (spec.classes ??
      (await findClassNames({
        data,
        prefix,
        listing,
        labelColumn: names.label,
        config: files[0]!.config,
        first: { uri: files[0]!.uri, metadata: files[0]!.metadata },
      })));

  // Per file, then joined in file order: the result does not depend on which file read first.
  const perFile = files.map(() => ({ items: [] as DatasetItem[], skipped: [] as SkippedObject[] }));
  let read = 0;
  await forEachLimited(files.length, PARALLEL_FILES, async (i) => {
    await labelRows(data, files[i]!, names, classes, perFile[i]!.items, perFile[i]!.skipped);
    progress(++read);
  });
  const items = perFile.flatMap((f) => f.items);
  const skipped = perFile.flatMap((f) => f.skipped);
  return { kind: 'parquet', items, skipped, ...(classes ? { classes: [...classes] } : {}) };
}

async function footerOf(
  data: ObjectStore,
  object: ListedObject,
  uri: string,
): Promise<FileMetaData> {
  try {
    return await readFooter(s3AsyncBuffer({ store: data, ...object }));
  } catch (err) {
    if (err instanceof CorruptParquetError) {
      throw new DatasetError(
        `Parquet file ${uri} cannot be read: ${err.message}. Re-upload it, or remove it from the dataset prefix.`,
      );
    }
    throw err;
  }
}

/** The column checks and the row-group memory bound, before any row is planned. */
async function checkFile(
  uri: string,
  metadata: FileMetaData,
  names: ColumnNames,
  maxImageBytes: number,
): Promise<boolean> {
  const { parquetSchema: schemaOf } = await parquetLibrary();
  let labelled: boolean;
  try {
    const schema: SchemaTree = schemaOf(metadata);
    labelled = checkColumns(schema, names).labelled;
  } catch (err) {
    if (err instanceof ColumnError) throw new DatasetError(`Parquet file ${uri}: ${err.message}`);
    throw new DatasetError(
      `Parquet file ${uri} cannot be read: its schema does not parse (${shown(String(err))}). Re-upload it.`,
    );
  }
  metadata.row_groups.forEach((_, g) => {
    const { uncompressed } = columnSpan(metadata, g, names.image);
    if (uncompressed > maxImageBytes) {
      throw new DatasetError(
        `Parquet file ${uri}: row group ${g} holds ${formatBytes(uncompressed)} of images in column "${names.image}"; a worker reads a row group's images whole ` +
          `and takes at most ${formatBytes(maxImageBytes)}. Rewrite the file with smaller row groups (pyarrow.parquet.write_table(..., row_group_size=100), as Hugging Face writes images).`,
      );
    }
  });
  return labelled;
}

/** Reads each row group's label and caption columns (a ranged GET each) and plans its rows. */
async function labelRows(
  data: ObjectStore,
  file: ParquetFile,
  names: ColumnNames,
  classes: readonly string[] | undefined,
  items: DatasetItem[],
  skipped: SkippedObject[],
): Promise<void> {
  const base = s3AsyncBuffer({ store: data, ...file.object });
  let groupStart = 0;
  for (const [g, group] of file.metadata.row_groups.entries()) {
    const count = Number(group.num_rows);
    const first = groupStart;
    groupStart += count;
    if (count === 0) continue; // an empty row group plans nothing
    const labels = classes
      ? await readColumn(base, file, g, first, count, names.label, 'label')
      : undefined;
    const captions = names.caption
      ? await readColumn(base, file, g, first, count, names.caption, 'caption')
      : undefined;
    for (let i = 0; i < count; i++) {
      const row = first + i;
      const uri = `${file.uri}#row=${String(row).padStart(10, '0')}`;
      const value = labels?.[i];
      const label = value === null || value === undefined ? undefined : Number(value);
      const why = classes ? labelProblem(label, classes.length) : undefined;
      const rowCaptions = captions ? captionsOf(captions[i], !classes) : undefined;
      const problem = why ?? (typeof rowCaptions === 'string' ? rowCaptions : undefined);
      if (problem) {
        skipped.push({ uri, reason: problem });
        continue;
      }
      items.push({
        uri,
        size: 0,
        etag: file.object.etag,
        ...(classes ? { className: classes[label!]! } : {}),
        split: file.split,
        part: { kind: 'parquet', object: file.uri, rowGroup: g, row, column: names.image },
        ...(Array.isArray(rowCaptions) ? { captions: rowCaptions } : {}),
      });
    }
  }
}

/**
 * A row's captions (a string is one caption), none (null, in a labelled dataset), or why they
 * cannot be planned: the skip reason.
 */
function captionsOf(value: unknown, required: boolean): string[] | string | undefined {
  if (value === null || value === undefined)
    return required
      ? 'captions are null (a captions-only dataset needs them on every row)'
      : undefined;
  const checked = checkCaptions(typeof value === 'string' ? [value] : value);
  return typeof checked === 'string' ? `captions: ${checked}` : checked;
}

/** Why a row's label cannot be planned (the skip reason: a few fixed phrases, counted). */
function labelProblem(label: number | undefined, classes: number): string | undefined {
  if (label === undefined) return 'label is null';
  if (label === -1) return 'label -1 (unlabelled: Hugging Face marks rows without a label so)';
  if (!Number.isInteger(label) || label < 0 || label >= classes)
    return `label outside the class names (ids 0..${classes - 1})`;
  return undefined;
}

/** One column of a row group's rows (one GET: its chunk); `what` names it in messages. */
async function readColumn(
  base: ReturnType<typeof s3AsyncBuffer>,
  file: ParquetFile,
  rowGroup: number,
  rowStart: number,
  count: number,
  column: string,
  what: 'label' | 'caption',
): Promise<unknown[]> {
  const { parquetReadObjects, compressors } = await parquetLibrary();
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({
      file: base, // one GET: the label column's chunk in this row group
      metadata: file.metadata,
      columns: [column],
      rowStart,
      rowEnd: rowStart + count,
      rowFormat: 'object',
      compressors,
      utf8: what === 'caption', // captions as strings; labels are integers either way
    });
  } catch (err) {
    if (isReadFailure(err)) throw err;
    throw new DatasetError(
      `Parquet file ${file.uri}: row group ${rowGroup}'s ${what} column "${column}" cannot be decoded (${shown(err instanceof Error ? err.message : String(err))}). Re-upload the file.`,
    );
  }
  if (rows.length !== count) {
    throw new DatasetError(
      `Parquet file ${file.uri}: row group ${rowGroup} says ${count} rows but its ${what} column "${column}" holds ${rows.length}. Re-upload the file.`,
    );
  }
  return rows.map((r) => r[column]);
}
