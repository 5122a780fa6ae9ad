/**
 * @file Display names from a built-in dataset's class list (`classNames: cifar10`), matched to the
 * plan's classes. The list is in the benchmark's class-id order, and a plan's class ids are its
 * class list's positions, which are the dataset's own ids only when the order was given
 * (dataset.classes, a WebDataset's classnames.txt, a Parquet ClassLabel). Otherwise the plan
 * sorts the labels by name, so a class's position says nothing about its benchmark id. In order:
 *
 * 1. labels that are the list's names (compared ignoring case, `_`, `-`, `/` and spacing:
 *    `american_bulldog` is `American Bulldog`) get their names, whatever the order;
 * 2. sorted labels that are numbers name classes by id: exactly 0..n-1, or 1..n (1-based folders);
 * 3. a given order names classes by position;
 * 4. anything else is refused: a sorted order would name classes by chance.
 *
 * The count must match in every case (a subset of the classes takes a mapping).
 */
import { ConfigError } from '../config/errors';
import { type BenchmarkName, benchmarkClassList } from '../config/benchmark-texts/benchmark-texts';
import { shownList } from '../util/text';

/** Where a plan's class order came from: given with the data or spec, or its labels sorted. */
export type ClassOrder = 'given' | 'sorted';

const SOURCE = 'run spec classNames';

const FIX =
  'List the classes as dataset.classes in the benchmark’s order (position i = benchmark class i), ' +
  'or give classNames as a mapping of label: display name.';

/** The built-in list's names for `labels` (the plan's classes, in class-id order). */
export function benchmarkClassNames(
  name: BenchmarkName,
  labels: readonly string[],
  order: ClassOrder,
): string[] {
  const list = benchmarkClassList(name);
  if (labels.length !== list.length) {
    throw new ConfigError(
      `run spec classNames: ${name} names ${list.length} classes, but the dataset has ${labels.length} (${shownList(labels, 5)}). ${FIX}`,
      SOURCE,
    );
  }
  const byText = namesByText(list, labels);
  if (byText) return byText;
  if (order === 'given') return [...list];
  const ids = labels.map((l) => (/^\d+$/.test(l) ? Number(l) : undefined));
  if (ids.every((id) => id !== undefined)) {
    const byId = namesById(list, ids);
    if (byId) return byId;
    throw new ConfigError(
      `run spec classNames: ${name} names classes by id, and the dataset's labels are numbers (${shownList(labels, 5)}), ` +
        `but not the ids 0..${list.length - 1} (or 1..${list.length}), each once. ${FIX}`,
      SOURCE,
    );
  }
  throw new ConfigError(
    `run spec classNames: ${name} names classes by the benchmark's class ids, but this dataset's class ids are its labels sorted by name ` +
      `(${shownList(labels, 5)}), which are neither ${name}'s class names nor numeric ids, so position i need not be the benchmark's class i. ${FIX}`,
    SOURCE,
  );
}

/** How two spellings of a class name compare: case, `_ - /` and spacing aside. */
function textKey(s: string): string {
  return s
    .normalize('NFC')
    .toLowerCase()
    .replace(/[\s_/-]+/g, ' ')
    .trim();
}

/** The list's names by label text, if every label is one of them, each a different one. */
function namesByText(list: readonly string[], labels: readonly string[]): string[] | undefined {
  const byKey = new Map<string, string | null>();
  // A key two names share (ImageNet's two `missile`s) matches neither.
  for (const n of list) byKey.set(textKey(n), byKey.has(textKey(n)) ? null : n);
  const names = labels.map((l) => byKey.get(textKey(l)));
  if (names.some((n) => n === undefined || n === null)) return undefined;
  return new Set(names).size === labels.length ? (names as string[]) : undefined;
}

/** The list's names by numeric label, 0-based or 1-based, if the ids are exactly one of those. */
function namesById(list: readonly string[], ids: readonly number[]): string[] | undefined {
  const distinct = new Set(ids);
  if (distinct.size !== list.length) return undefined;
  const min = Math.min(...ids);
  const max = Math.max(...ids);
  const base = min === 0 && max === list.length - 1 ? 0 : min === 1 && max === list.length ? 1 : -1;
  return base < 0 ? undefined : ids.map((id) => list[id - base]!);
}
