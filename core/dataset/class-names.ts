/**
 * @file Class labels are folder names or manifest labels (`golden_retriever`, `sea-lion`,
 * `TrafficLight`); prompts need words. Explicit display names from the run spec win; the rest are
 * humanised: underscores and hyphens become spaces, camelCase is split. A built-in dataset's name
 * instead takes every name from its published list (benchmark-class-names.ts).
 */
import type { BenchmarkName } from '../config/benchmark-texts/benchmark-texts';
import { shown, shownList } from '../util/text';
import { type ClassOrder, benchmarkClassNames } from './benchmark-class-names';

/** `golden_retriever` -> `golden retriever`, `TrafficLight` -> `Traffic Light`. */
export function humanizeClassName(label: string): string {
  return label
    .replace(/[_-]+/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * The names prompts use, in class-index order. A built-in dataset's name as `display` names every
 * class from its list, by `order` (a ConfigError when it cannot: benchmark-class-names.ts). In a
 * mapping, unknown keys are an error; it is read through a Map of its own entries, so a label
 * named like an Object.prototype member (`constructor`, `toString`, `__proto__`) is humanised or
 * looked up like any other, never answered by the prototype. Keys are compared in NFC, as labels
 * are.
 */
export function promptClassNames(
  labels: readonly string[],
  display: BenchmarkName | Readonly<Record<string, string>> = {},
  order: ClassOrder = 'given',
): string[] {
  if (typeof display === 'string') return benchmarkClassNames(display, labels, order);
  const names = new Map<string, string>();
  for (const [label, name] of Object.entries(display)) {
    const key = label.normalize('NFC');
    if (names.has(key))
      throw new Error(`classNames names ${shown(key)} twice (NFC and NFD spellings are one label)`);
    names.set(key, name);
  }
  const known = new Set(labels);
  const unknown = [...names.keys()].filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new Error(
      `classNames names labels the dataset does not have: ${shownList(unknown, 5)}. ` +
        `Use the dataset's labels as keys (e.g. ${shownList(labels.slice(0, 3))}).`,
    );
  }
  return labels.map((l) => names.get(l) ?? humanizeClassName(l));
}
