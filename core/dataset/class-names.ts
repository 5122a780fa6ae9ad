/**
 * @file Class labels are folder names or manifest labels (`golden_retriever`, `sea-lion`,
 * `TrafficLight`); prompts need words. Explicit display names from the run spec win; the rest are
 * humanised: underscores and hyphens become spaces, camelCase is split.
 */

/** `golden_retriever` -> `golden retriever`, `TrafficLight` -> `Traffic Light`. */
export function humanizeClassName(label: string): string {
  return label
    .replace(/[_-]+/g, ' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The names prompts use, in class-index order; unknown keys in `display` are an error. */
export function promptClassNames(
  labels: readonly string[],
  display: Readonly<Record<string, string>> = {},
): string[] {
  const unknown = Object.keys(display).filter((k) => !labels.includes(k));
  if (unknown.length > 0) {
    throw new Error(
      `classNames names labels the dataset does not have: ${unknown.slice(0, 5).join(', ')}. ` +
        `Use the dataset's labels as keys (e.g. ${labels.slice(0, 3).join(', ')}).`,
    );
  }
  return labels.map((l) => display[l] ?? humanizeClassName(l));
}
