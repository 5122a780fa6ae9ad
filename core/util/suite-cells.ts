/**
 * @file The cells of a suite (one per model and dataset) and each cell's run-spec input: run ∪
 * dataset overrides ∪ model bundle. Pure and free of imports, so the suite workflow builds each
 * child's input with the very function that validated it at suite start (core/config/suite-spec.ts);
 * the child's planning activity validates it once more, as it does for every run.
 */

/** What a cell is built from: the validated suite spec's models, datasets and shared run fields. */
export interface SuiteCellSource {
  models: readonly { name: string; bundle: string }[];
  datasets: readonly ({ name: string; uri: string } & Record<string, unknown>)[];
  run: Readonly<Record<string, unknown>>;
}

export interface SuiteCell {
  model: string;
  dataset: string;
  modelIndex: number;
  datasetIndex: number;
}

/**
 * The fields of a dataset entry that belong under the run spec's `dataset:`; every other field
 * (classNames, zeroShot, fewShot, ...) overrides the run spec's top-level section of that name.
 */
export const DATASET_ENTRY_FIELDS = [
  'format',
  'layout',
  'imageColumn',
  'labelColumn',
  'splitRatio',
  'splitSeed',
  'classes',
] as const;

/**
 * The child run id of a cell: `<suiteId>--<model>--<dataset>`. Names never contain `--` or start or
 * end with a separator (suite-spec.ts), so distinct cells get distinct ids, and a resumed suite
 * (same suite id) finds its finished children under the same ids.
 */
export function suiteCellRunId(suiteId: string, model: string, dataset: string): string {
  return `${suiteId}--${model}--${dataset}`;
}

/** Every cell, dataset-major: a dataset's column of the leaderboard fills in before the next. */
export function suiteCells(spec: SuiteCellSource): SuiteCell[] {
  return spec.datasets.flatMap((d, datasetIndex) =>
    spec.models.map((m, modelIndex) => ({
      model: m.name,
      dataset: d.name,
      modelIndex,
      datasetIndex,
    })),
  );
}

/** The unvalidated run spec of one cell (parseRunSpec validates it). */
export function cellRunSpecInput(
  spec: SuiteCellSource,
  cell: Pick<SuiteCell, 'modelIndex' | 'datasetIndex'>,
): Record<string, unknown> {
  const model = spec.models[cell.modelIndex]!;
  const { uri, ...entry } = spec.datasets[cell.datasetIndex]!;
  const datasetFields: Record<string, unknown> = {};
  const overrides: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entry)) {
    if (key === 'name') continue; // the cell's name, not a run-spec field
    const into = (DATASET_ENTRY_FIELDS as readonly string[]).includes(key)
      ? datasetFields
      : overrides;
    setOwn(into, key, value);
  }
  const withDataset = deepMerge(deepMerge(spec.run, overrides), {
    dataset: { ...datasetFields, uri },
  });
  return deepMerge(withDataset, { model: { bundle: model.bundle } });
}

/**
 * `over` merged into `base`: mappings merge key by key, anything else (lists, scalars) replaces.
 * Keys are defined as own properties, so a user key such as `__proto__` (a class label) stays
 * data and never reaches a prototype.
 */
export function deepMerge(
  base: Readonly<Record<string, unknown>>,
  over: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(base)) setOwn(out, key, value);
  for (const [key, value] of Object.entries(over)) {
    const now = Object.prototype.hasOwnProperty.call(out, key) ? out[key] : undefined;
    setOwn(out, key, isMapping(now) && isMapping(value) ? deepMerge(now, value) : value);
  }
  return out;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}
