import { parse as parseCsv } from 'csv-parse/sync';
import type { DatasetSpec } from '../config/run-spec';
import { isS3Uri, parseS3Uri, type S3Location } from '../storage/s3-uri';
import { checkCaptions, csvCaptions } from './captions';
import { seededSplit } from './split';
import { quoted, shown, shownList } from '../util/text';
import {
  DatasetError,
  MAX_KEY_BYTES,
  ProblemList,
  SPLITS,
  type Split,
  hasDotSegment,
  hasLoneSurrogate,
  isSplit,
  normalizeClassName,
} from './types';

export type ManifestFormat = 'jsonl' | 'csv';

export function manifestFormat(key: string): ManifestFormat | undefined {
  const k = key.toLowerCase();
  if (k.endsWith('.jsonl') || k.endsWith('.ndjson')) return 'jsonl';
  if (k.endsWith('.csv')) return 'csv';
  return undefined;
}

/** A manifest row with its object resolved to a full location. */
export interface ManifestEntry {
  row: number;
  location: S3Location;
  /** Absent in a manifest without labels (captions only). */
  className?: string;
  split: Split;
  captions?: string[];
}

interface RawRow {
  /** The line of the file where the row starts (JSONL: its line; CSV: its first line). */
  row: number;
  /** The row's fields by column name; a null-prototype object (a column may be `__proto__`). */
  fields: Record<string, unknown>;
}

/** The row's own field `name` (never one inherited from Object.prototype). */
const field = (fields: Record<string, unknown>, name: string): unknown =>
  Object.hasOwn(fields, name) ? fields[name] : undefined;

function rawRows(text: string, format: ManifestFormat, where: string): RawRow[] {
  return format === 'csv' ? csvRows(text, where) : jsonlRows(text, where);
}

function jsonlRows(text: string, where: string): RawRow[] {
  const rows: RawRow[] = [];
  const problems = new ProblemList();
  // A UTF-8 byte-order mark (editors on Windows write one) is not part of the first line.
  text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        const value: unknown = JSON.parse(line);
        if (value === null || typeof value !== 'object' || Array.isArray(value))
          throw new Error('not an object');
        rows.push({ row: i + 1, fields: value as Record<string, unknown> });
      } catch (err) {
        problems.add(`line ${i + 1}: not a JSON object (${shown((err as Error).message)})`);
      }
    });
  problems.throwIfAny(`Manifest ${where} has invalid lines`);
  return rows;
}

/** Line breaks as an editor counts them. */
const LINE_BREAK = /\r\n|\n|\r/g;
const countBreaks = (s: string): number => s.match(LINE_BREAK)?.length ?? 0;

/**
 * CSV rows with the line each starts on: a quoted field may hold line breaks, so a row's line is
 * counted from the raw text of the rows before it (and the empty lines skipped before it), not
 * from its index.
 */
function csvRows(text: string, where: string): RawRow[] {
  let records: { record: string[]; raw: string }[];
  try {
    records = parseCsv(text, {
      skip_empty_lines: true,
      trim: true,
      bom: true,
      raw: true,
      relax_column_count: true,
    }) as unknown as { record: string[]; raw: string }[];
  } catch (err) {
    throw new DatasetError(`Manifest ${where} is not valid CSV: ${shown((err as Error).message)}`);
  }
  const [header, ...body] = records;
  if (!header) return [];
  const columns = header.record;
  const repeated = columns.filter((c, i) => columns.indexOf(c) !== i);
  if (repeated.length > 0)
    throw new DatasetError(`Manifest ${where}: the CSV header repeats ${shownList(repeated)}`);
  const problems = new ProblemList();
  const rows: RawRow[] = [];
  let line = 1 + countBreaks(header.raw);
  for (const { record, raw } of body) {
    const start = line + countBreaks(/^[\s]*/.exec(raw)![0]); // empty lines skipped before it
    line += countBreaks(raw);
    if (record.length === 1 && record[0] === '') continue; // a line of spaces
    if (record.length !== columns.length) {
      problems.add(
        `row ${start}: ${record.length} field(s), but the header has ${columns.length} (${shownList(columns)})`,
      );
      continue;
    }
    const fields: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    columns.forEach((c, i) => (fields[c] = record[i]));
    rows.push({ row: start, fields });
  }
  problems.throwIfAny(`Manifest ${where} has invalid rows`);
  return rows;
}

/**
 * Resolves a relative key against the manifest's folder. `..` may move within the folder but
 * never above it: a manifest must not reach objects outside the dataset it describes (full
 * s3:// URIs are the explicit way to point elsewhere).
 */
export function resolveRelativeKey(folder: string, key: string): string | undefined {
  if (key.startsWith('/')) return undefined;
  const out: string[] = [];
  for (const seg of key.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(seg);
  }
  return out.length === 0 ? undefined : folder + out.join('/');
}

/**
 * Where a row's key points: a full s3:// URI as given, a relative key inside the manifest's
 * folder; or why it cannot be read (the rest of a message that starts with the key).
 */
function rowLocation(key: string, manifest: S3Location, folder: string): S3Location | string {
  if (hasLoneSurrogate(key)) return 'is not valid Unicode (a lone surrogate): no S3 key holds it';
  let location: S3Location;
  if (isS3Uri(key)) {
    location = parseS3Uri(key);
    if (location.key === '' || location.key.endsWith('/')) return 'names a folder, not an object';
    if (hasDotSegment(location.key))
      return 'has a "." or ".." path segment, which S3 clients and proxies may resolve to another object; give the key without it';
  } else if (/^s3:\/\//i.test(key)) {
    return 'is not a valid S3 URI (expected s3://bucket/key with a lowercase bucket name)';
  } else {
    const resolved = resolveRelativeKey(folder, key);
    if (resolved === undefined)
      return `escapes the manifest's folder s3://${manifest.bucket}/${shown(folder)}`;
    location = { bucket: manifest.bucket, key: resolved };
  }
  const bytes = Buffer.byteLength(location.key, 'utf8');
  if (bytes > MAX_KEY_BYTES)
    return `is ${bytes} bytes long; S3 keys are at most ${MAX_KEY_BYTES} bytes of UTF-8`;
  return location;
}

/**
 * A row's captions: absent, or a list (JSONL: a list of strings; CSV: a JSON list in the cell),
 * or why they are none.
 */
function rowCaptions(raw: unknown, format: ManifestFormat): string[] | string | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (format === 'csv' && typeof raw === 'string') return csvCaptions(raw);
  return checkCaptions(raw);
}

/**
 * Parses a manifest (JSONL or CSV; fields key, label, split and captions). A manifest where no row
 * has a label is unlabelled: each row then needs captions (zero-shot retrieval only) and, without
 * a split column, every row is test (nothing can train on unlabelled images). Every row problem
 * is collected and reported together, with row numbers, before anything is planned.
 */
export function parseManifest(
  text: string,
  manifest: S3Location,
  spec: DatasetSpec,
): ManifestEntry[] {
  const where = `s3://${manifest.bucket}/${shown(manifest.key)}`;
  const format = manifestFormat(manifest.key);
  if (!format) throw new DatasetError(`Manifest ${where}: expected a .jsonl or .csv file`);
  const folder = manifest.key.includes('/')
    ? manifest.key.slice(0, manifest.key.lastIndexOf('/') + 1)
    : '';
  const rows = rawRows(text, format, where);
  if (rows.length === 0) throw new DatasetError(`Manifest ${where} has no rows`);

  const hasSplit = rows.some((r) => {
    const split = field(r.fields, 'split');
    return split !== undefined && split !== '';
  });
  const labelled = rows.some((r) => {
    const label = field(r.fields, 'label');
    return label !== undefined && label !== null && label !== '';
  });
  const allowed = spec.classes ? new Set(spec.classes.map(normalizeClassName)) : undefined;
  const problems = new ProblemList();
  const seen = new Map<string, number>();
  const entries: ManifestEntry[] = [];
  for (const { row, fields } of rows) {
    const rawKey = field(fields, 'key');
    const rawLabel = field(fields, 'label');
    const rawSplit = field(fields, 'split');
    // Keys lose only surrounding spaces and tabs: any other character may be part of the key.
    const key = typeof rawKey === 'string' ? rawKey.replace(/^[ \t]+|[ \t]+$/g, '') : '';
    const label =
      typeof rawLabel === 'string' || typeof rawLabel === 'number'
        ? normalizeClassName(String(rawLabel).trim())
        : '';
    const split = typeof rawSplit === 'string' ? rawSplit.trim() : '';
    const captions = rowCaptions(field(fields, 'captions'), format);
    const missing = [
      !key && 'key',
      labelled && !label && 'label',
      !labelled && !captions && 'captions (no row has a label, so every row needs captions)',
      hasSplit && !split && 'split',
    ].filter(Boolean);
    if (missing.length > 0) {
      problems.add(`row ${row}: missing field(s) ${missing.join(', ')}`);
      continue;
    }
    if (split && !isSplit(split)) {
      problems.add(`row ${row}: unknown split ${quoted(split)} (expected ${SPLITS.join(', ')})`);
      continue;
    }
    if (typeof captions === 'string') {
      problems.add(`row ${row}: ${captions}`);
      continue;
    }
    if (allowed && labelled && !allowed.has(label)) {
      problems.add(`row ${row}: label ${quoted(label)} is not in dataset.classes`);
      continue;
    }
    const location = rowLocation(key, manifest, folder);
    if (typeof location === 'string') {
      problems.add(`row ${row}: key ${quoted(key)} ${location}`);
      continue;
    }
    const uri = `s3://${location.bucket}/${location.key}`;
    const first = seen.get(uri);
    if (first !== undefined) {
      problems.add(`row ${row}: duplicate key ${shown(uri)} (first at row ${first})`);
      continue;
    }
    seen.set(uri, row);
    entries.push({
      row,
      location,
      ...(labelled ? { className: label } : {}),
      split: split
        ? (split as Split)
        : labelled
          ? seededSplit(uri, spec.splitSeed, spec.splitRatio)
          : 'test',
      ...(captions ? { captions } : {}),
    });
  }
  problems.throwIfAny(`Manifest ${where} has invalid rows`);
  return entries;
}
