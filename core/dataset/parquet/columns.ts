/**
 * @file The two columns a Parquet dataset needs, checked against the file's schema before any
 * row is read: an integer label (a Hugging Face ClassLabel) and the image's encoded bytes.
 */
import type { FileMetaData, SchemaTree } from './hyparquet';

/**
 * How the image column holds the bytes: Hugging Face's Image feature (a struct whose `bytes`
 * field is binary, beside its `path`), or a plain binary column (how other tools export images;
 * its values are the encoded bytes, so nothing is lost by accepting it).
 */
export type ImageColumnKind = 'struct' | 'binary';

/** A column problem, phrased to follow "<file>: ". */
export class ColumnError extends Error {
  override readonly name = 'ColumnError';
}

export interface ColumnNames {
  image: string;
  label: string;
  /** Captions for zero-shot retrieval (dataset.captionColumn): list<string> or string. */
  caption?: string;
}

const isString = (n: SchemaTree) =>
  n.element.converted_type === 'UTF8' || n.element.logical_type?.type === 'STRING';
const isBinary = (n: SchemaTree) =>
  n.children.length === 0 && n.element.type === 'BYTE_ARRAY' && !isString(n);
const repeated = (n: SchemaTree) => n.element.repetition_type === 'REPEATED';

/** A column's type in words, for messages: int64, string, binary, struct<bytes: binary, ...>, list. */
export function describeColumn(n: SchemaTree): string {
  const e = n.element;
  if (repeated(n) || e.converted_type === 'LIST' || e.logical_type?.type === 'LIST') return 'list';
  if (e.converted_type === 'MAP' || e.logical_type?.type === 'MAP') return 'map';
  if (n.children.length > 0)
    return `struct<${n.children.map((c) => `${c.element.name}: ${describeColumn(c)}`).join(', ')}>`;
  if (isString(n)) return 'string';
  if (e.type === 'BYTE_ARRAY') return 'binary';
  const logical = e.logical_type?.type ?? e.converted_type;
  return logical && logical !== 'INTEGER'
    ? `${e.type?.toLowerCase()} (${logical.toLowerCase()})`
    : (e.type ?? '?').toLowerCase();
}

/** Whether a column holds strings or lists of strings (a caption column), and which. */
function captionKind(n: SchemaTree): 'string' | 'list' | undefined {
  if (n.children.length === 0) {
    if (!isString(n)) return undefined;
    return repeated(n) ? 'list' : 'string'; // a bare repeated string: a legacy list
  }
  if (describeColumn(n) !== 'list') return undefined;
  // LIST: <name> (LIST) > repeated group > element; descend to the one leaf.
  let leaf = n;
  while (leaf.children.length === 1) leaf = leaf.children[0]!;
  return leaf.children.length === 0 && isString(leaf) ? 'list' : undefined;
}

/**
 * Checks the schema's label, image and caption columns (ColumnError naming what is wrong and the
 * fix) and says how the image column holds its bytes, and whether the file is labelled: with a
 * caption column, a file without the label column is a captions-only dataset.
 */
export function checkColumns(
  schema: SchemaTree,
  names: ColumnNames,
): { imageKind: ImageColumnKind; labelled: boolean } {
  const top = new Map(schema.children.map((c) => [c.element.name, c]));
  const listed = [...top.values()]
    .map((c) => `${c.element.name} (${describeColumn(c)})`)
    .join(', ');
  if (names.caption !== undefined) {
    const caption = top.get(names.caption);
    if (!caption)
      throw new ColumnError(
        `no caption column "${names.caption}"; its columns are ${listed}. Set dataset.captionColumn to the column of captions.`,
      );
    if (!captionKind(caption))
      throw new ColumnError(
        `caption column "${names.caption}" is ${describeColumn(caption)}, not a string or a list of strings. Set dataset.captionColumn to the column of captions.`,
      );
  }
  const label = top.get(names.label);
  if (!label && names.caption !== undefined)
    return { imageKind: imageKindOf(top, names, listed), labelled: false };
  if (!label) {
    throw new ColumnError(
      `no label column "${names.label}"; its columns are ${listed || 'none'}. Set dataset.labelColumn to the integer class-label column.`,
    );
  }
  const e = label.element;
  const integer =
    label.children.length === 0 &&
    !repeated(label) &&
    (e.type === 'INT32' || e.type === 'INT64') &&
    (e.logical_type === undefined || e.logical_type.type === 'INTEGER') &&
    (e.converted_type === undefined || /^U?INT_/.test(e.converted_type));
  if (!integer) {
    throw new ColumnError(
      `label column "${names.label}" is ${describeColumn(label)}, not an integer (a ClassLabel id). ` +
        'Store labels as integer ids with their names in the dataset card (datasets: cast_column(..., ClassLabel(names=[...]))), or set dataset.labelColumn to the integer column.',
    );
  }
  return { imageKind: imageKindOf(top, names, listed), labelled: true };
}

function imageKindOf(
  top: Map<string | undefined, SchemaTree>,
  names: ColumnNames,
  listed: string,
): ImageColumnKind {
  const image = top.get(names.image);
  if (!image) {
    throw new ColumnError(
      `no image column "${names.image}"; its columns are ${listed}. Set dataset.imageColumn to the column holding the encoded images.`,
    );
  }
  if (isBinary(image) && !repeated(image)) return 'binary';
  const bytes = image.children.find((c) => c.element.name === 'bytes');
  const struct =
    image.children.length > 0 &&
    !repeated(image) &&
    describeColumn(image) !== 'list' &&
    describeColumn(image) !== 'map';
  if (struct && bytes && isBinary(bytes) && !repeated(bytes)) return 'struct';
  throw new ColumnError(
    `image column "${names.image}" is ${describeColumn(image)}; clipeval reads encoded images from a struct with a binary "bytes" field ` +
      '(Hugging Face\'s Image feature) or a binary column. Embed the images in the file (datasets: cast_column("' +
      `${names.image}", Image()) before push_to_hub/to_parquet), or set dataset.imageColumn to such a column.`,
  );
}

/** The byte range of a row group's chunks of one top-level column (all its leaves). */
export function columnSpan(
  metadata: FileMetaData,
  rowGroup: number,
  column: string,
): { start: number; end: number; uncompressed: number } {
  let start = Infinity;
  let end = 0;
  let uncompressed = 0;
  for (const chunk of metadata.row_groups[rowGroup]!.columns) {
    const meta = chunk.meta_data;
    if (!meta || meta.path_in_schema[0] !== column) continue;
    // As hyparquet plans its reads: a chunk starts at its dictionary page when it has one.
    const from = Number(meta.dictionary_page_offset || meta.data_page_offset);
    start = Math.min(start, from);
    end = Math.max(end, from + Number(meta.total_compressed_size));
    uncompressed += Number(meta.total_uncompressed_size);
  }
  return start === Infinity ? { start: 0, end: 0, uncompressed: 0 } : { start, end, uncompressed };
}
