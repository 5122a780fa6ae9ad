/**
 * @file What `clipeval dataset inspect` shows: a small summary of a dataset as planning loads it
 * (format, layout, classes, splits, skipped objects, shipped templates, sample keys). Pure over
 * the loaded dataset, so it says exactly what a run would plan from, without running anything.
 */
import type { LoadedDataset } from './loaded';
import type { DatasetKind } from './plan';
import { SPLITS, type SkippedObject, type Split, normalizeClassName } from './types';

export interface DatasetSummary {
  uri: string;
  format: DatasetKind;
  layout?: LoadedDataset['layout'];
  images: number;
  /**
   * The label space: the dataset's own (classnames.txt, a ClassLabel) in id order when it has one,
   * else the labels found, sorted (as planning orders them without dataset.classes).
   */
  classes: { count: number; first: string[]; fromDataset: boolean };
  /** Images per split (all three splits, zero where absent). */
  splits: Record<Split, number>;
  skipped: { count: number; byReason: Record<string, number>; examples: SkippedObject[] };
  /** Prompt templates the dataset ships (zeroshot_classification_templates.txt), if any. */
  templates?: string[];
  /** The first sample keys (item URIs) of each split, in plan order (sorted by URI). */
  samples: Record<Split, string[]>;
}

export interface SummaryOptions {
  /** Class names listed (default 10). */
  classes?: number;
  /** Skipped examples listed (default 5). */
  skippedExamples?: number;
  /** Sample keys listed per split (default 3). */
  samplesPerSplit?: number;
}

export function summarizeDataset(
  uri: string,
  data: LoadedDataset,
  opts: SummaryOptions = {},
): DatasetSummary {
  const classes =
    data.classes?.map(normalizeClassName) ??
    [
      ...new Set(
        data.items.flatMap((i) =>
          i.className === undefined ? [] : [normalizeClassName(i.className)],
        ),
      ),
    ].sort();
  const splits: Record<Split, number> = { train: 0, val: 0, test: 0 };
  const uris: Record<Split, string[]> = { train: [], val: [], test: [] };
  for (const item of data.items) {
    splits[item.split]++;
    uris[item.split].push(item.uri);
  }
  const perSplit = opts.samplesPerSplit ?? 3;
  const samples = Object.fromEntries(
    SPLITS.map((s) => [s, firstSorted(uris[s], perSplit)]),
  ) as Record<Split, string[]>;
  const byReason: Record<string, number> = {};
  for (const s of data.skipped) byReason[s.reason] = (byReason[s.reason] ?? 0) + 1;
  return {
    uri,
    format: data.kind,
    ...(data.layout ? { layout: data.layout } : {}),
    images: data.items.length,
    classes: {
      count: classes.length,
      first: classes.slice(0, opts.classes ?? 10),
      fromDataset: data.classes !== undefined,
    },
    splits,
    skipped: {
      count: data.skipped.length,
      byReason,
      examples: data.skipped.slice(0, opts.skippedExamples ?? 5),
    },
    ...(data.templates ? { templates: [...data.templates] } : {}),
    samples,
  };
}

/** The n smallest strings, in order, without sorting the whole list (a split may hold millions). */
function firstSorted(xs: readonly string[], n: number): string[] {
  const first: string[] = [];
  for (const x of xs) {
    if (first.length === n && x >= first[n - 1]!) continue;
    const at = first.findIndex((f) => x < f);
    first.splice(at === -1 ? first.length : at, 0, x);
    if (first.length > n) first.pop();
  }
  return first;
}
