/**
 * @file How `clipeval dataset inspect` and `export-wds` print their results for a person. Keys,
 * labels and reasons come from other people's objects: escape codes in them are shown, not obeyed.
 */
import type { DatasetInspection, ExportWdsResult } from '../client/datasets';
import { SPLITS } from '../core/dataset/types';
import { formatBytes } from '../core/util/byte-budget';
import { terminalText } from './format';

const FORMAT_NAMES: Record<DatasetInspection['format'], string> = {
  'image-folder': 'ImageFolder',
  manifest: 'manifest',
  webdataset: 'WebDataset',
  parquet: 'Parquet',
};

/** How many shipped templates the text shows (--json has them all). */
const TEMPLATES_SHOWN = 3;

export function formatDatasetSummary(s: DatasetInspection): string {
  const out = [
    `dataset  ${s.uri}`,
    `format   ${FORMAT_NAMES[s.format]}${s.layout ? ` (${s.layout})` : ''}`,
    `images   ${s.images}`,
    `classes  ${s.classes.count}${s.classes.fromDataset ? " (the dataset's own label space)" : ''}: ` +
      `${s.classes.first.map((c) => JSON.stringify(c)).join(', ')}${s.classes.count > s.classes.first.length ? ', ...' : ''}`,
    `splits   ${SPLITS.map((sp) => `${sp} ${s.splits[sp]}`).join(', ')}`,
    `skipped  ${s.skipped.count}`,
  ];
  for (const [reason, n] of Object.entries(s.skipped.byReason)) out.push(`  ${n} ${reason}`);
  for (const e of s.skipped.examples) out.push(`  e.g. ${e.uri} (${e.reason})`);
  if (s.templates) {
    out.push(
      `templates ${s.templates.length} shipped by the dataset (zeroShot.templates: dataset)`,
    );
    for (const t of s.templates.slice(0, TEMPLATES_SHOWN)) out.push(`  ${JSON.stringify(t)}`);
    if (s.templates.length > TEMPLATES_SHOWN) out.push('  ...');
  }
  out.push(
    s.planning.ok
      ? `planning ok: a run plans ${s.planning.images} images in ${s.planning.shards} shard(s)`
      : `planning would fail: ${s.planning.error}`,
  );
  out.push('samples');
  for (const sp of SPLITS) for (const uri of s.samples[sp]) out.push(`  ${sp.padEnd(5)} ${uri}`);
  return terminalText(out.join('\n'));
}

export function formatExportResult(r: ExportWdsResult): string {
  const out = [`exported to ${r.out}`];
  for (const sp of SPLITS) {
    const s = r.splits[sp];
    if (s)
      out.push(
        `  ${sp.padEnd(5)} ${s.samples} samples in ${s.tars} tar(s), ${formatBytes(s.bytes)}`,
      );
  }
  out.push(`  total ${r.samples} samples, ${formatBytes(r.bytes)}`);
  if (r.failed.count > 0) {
    const reasons = Object.entries(r.failed.byReason).map(([why, n]) => `${n} ${why}`);
    out.push(`  ${r.failed.count} image(s) left out: ${reasons.join(', ')}`);
    for (const f of r.failed.examples.slice(0, 5)) out.push(`    ${f.uri}: ${f.reason}`);
  }
  if (r.removed.length > 0)
    out.push(`  removed ${r.removed.length} stale object(s) of an earlier export`);
  return terminalText(out.join('\n'));
}
