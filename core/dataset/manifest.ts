import { parse as parseCsv } from 'csv-parse/sync';
import type { DatasetSpec } from '../config/run-spec';
import { isS3Uri, parseS3Uri, type S3Location } from '../storage/s3-uri';
import { seededSplit } from './split';
import { DatasetError, ProblemList, SPLITS, type Split, isSplit } from './types';

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
  className: string;
  split: Split;
}

interface RawRow {
  row: number;
  fields: Record<string, unknown>;
}

function rawRows(text: string, format: ManifestFormat, where: string): RawRow[] {
  if (format === 'csv') {
    let records: Record<string, string>[];
    try {
      records = parseCsv(text, { columns: true, skip_empty_lines: true, trim: true, bom: true });
    } catch (err) {
      throw new DatasetError(`Manifest ${where} is not valid CSV: ${(err as Error).message}`);
    }
    return records.map((fields, i) => ({ row: i + 2, fields })); // row 1 is the header
  }
  const rows: RawRow[] = [];
  const problems = new ProblemList();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      const value: unknown = JSON.parse(line);
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        throw new Error('not an object');
      rows.push({ row: i + 1, fields: value as Record<string, unknown> });
    } catch (err) {
      problems.add(`line ${i + 1}: not a JSON object (${(err as Error).message})`);
    }
  });
  problems.throwIfAny(`Manifest ${where} has invalid lines`);
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
 * Parses a manifest (JSONL or CSV; fields key, label and split). Every row problem is
 * collected and reported together, with row numbers, before anything is planned.
 */
export function parseManifest(
  text: string,
  manifest: S3Location,
  spec: DatasetSpec,
): ManifestEntry[] {
  const where = `s3://${manifest.bucket}/${manifest.key}`;
  const format = manifestFormat(manifest.key);
  if (!format) throw new DatasetError(`Manifest ${where}: expected a .jsonl or .csv file`);
  const folder = manifest.key.includes('/')
    ? manifest.key.slice(0, manifest.key.lastIndexOf('/') + 1)
    : '';
  const rows = rawRows(text, format, where);
  if (rows.length === 0) throw new DatasetError(`Manifest ${where} has no rows`);

  const hasSplit = rows.some((r) => r.fields.split !== undefined && r.fields.split !== '');
  const allowed = spec.classes ? new Set(spec.classes) : undefined;
  const problems = new ProblemList();
  const seen = new Map<string, number>();
  const entries: ManifestEntry[] = [];
  for (const { row, fields } of rows) {
    const key = typeof fields.key === 'string' ? fields.key.trim() : '';
    const label =
      typeof fields.label === 'string' || typeof fields.label === 'number'
        ? String(fields.label).trim()
        : '';
    const split = typeof fields.split === 'string' ? fields.split.trim() : '';
    const missing = [!key && 'key', !label && 'label', hasSplit && !split && 'split'].filter(
      Boolean,
    );
    if (missing.length > 0) {
      problems.add(`row ${row}: missing field(s) ${missing.join(', ')}`);
      continue;
    }
    if (split && !isSplit(split)) {
      problems.add(`row ${row}: unknown split "${split}" (expected ${SPLITS.join(', ')})`);
      continue;
    }
    if (allowed && !allowed.has(label)) {
      problems.add(`row ${row}: label "${label}" is not in dataset.classes`);
      continue;
    }
    let location: S3Location;
    if (isS3Uri(key)) location = parseS3Uri(key);
    else {
      const resolved = resolveRelativeKey(folder, key);
      if (resolved === undefined) {
        problems.add(
          `row ${row}: key "${key}" escapes the manifest's folder s3://${manifest.bucket}/${folder}`,
        );
        continue;
      }
      location = { bucket: manifest.bucket, key: resolved };
    }
    const uri = `s3://${location.bucket}/${location.key}`;
    const first = seen.get(uri);
    if (first !== undefined) {
      problems.add(`row ${row}: duplicate key ${uri} (first at row ${first})`);
      continue;
    }
    seen.set(uri, row);
    entries.push({
      row,
      location,
      className: label,
      split: split ? (split as Split) : seededSplit(uri, spec.splitSeed, spec.splitRatio),
    });
  }
  problems.throwIfAny(`Manifest ${where} has invalid rows`);
  return entries;
}
