/**
 * @file The suite spec: many models evaluated on many datasets, one evaluation run per (model,
 * dataset) cell. Validated like the run spec (unknown fields are errors), and every cell's run
 * spec, run ∪ dataset overrides ∪ model bundle (core/util/suite-cells.ts), is validated by
 * parseRunSpec here, before anything starts, so a bad cell fails the whole suite at once.
 */
import { z } from 'zod';
import { ConfigError, formatIssues } from './errors';
import { MAX_SUITE_CELLS, MAX_SUITE_CONCURRENCY } from './run-limits';
import { type RunSpec, parseRunSpec, readRunSpecFile } from './run-spec';
import {
  DATASET_ENTRY_FIELDS,
  type SuiteCell,
  cellRunSpecInput,
  suiteCells,
} from '../util/suite-cells';

/** Cells reported when many fail the same way (one bad shared field fails them all). */
const CELL_ERRORS_SHOWN = 3;

/**
 * A model or dataset name: it names the leaderboard's rows and columns and is part of each child
 * run id `<suiteId>--<model>--<dataset>` and so of S3 keys. Letters and digits, single separators
 * between them (never `--`, which separates the parts), at most 32 characters so the run id fits.
 */
const suiteName = z
  .string()
  .max(32, 'at most 32 characters (it is part of each cell’s run id, at most 128)')
  .regex(
    /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/,
    'use letters, digits and single . _ - between them (e.g. vit-b-32, oxford_pets)',
  );

const modelEntrySchema = z.strictObject({
  name: suiteName,
  /** The model bundle: an s3:// prefix (or a local folder on a single machine). */
  bundle: z.string().min(1),
});

/** Per-dataset run-spec overrides: validated per cell by parseRunSpec, which names the field. */
const OVERRIDE_SECTIONS = [
  'classNames',
  'zeroShot',
  'coop',
  'probe',
  'tipAdapter',
  'fewShot',
  'shardSize',
  'extraction',
] as const;

const datasetEntrySchema = z.strictObject({
  name: suiteName,
  uri: z.string().min(1),
  ...Object.fromEntries(
    [...DATASET_ENTRY_FIELDS, ...OVERRIDE_SECTIONS].map((f) => [f, z.unknown().optional()]),
  ),
});

/** Run-spec fields shared by every cell; the model and the dataset's uri come from the suite. */
const sharedRunSchema = z
  .record(z.string(), z.unknown())
  .superRefine((run, ctx) => {
    if ('model' in run)
      ctx.addIssue({
        code: 'custom',
        path: ['model'],
        message: 'each cell’s model comes from `models:` (give every model a name and bundle)',
      });
    const dataset = run.dataset as Record<string, unknown> | undefined;
    if (dataset && typeof dataset === 'object' && 'uri' in dataset)
      ctx.addIssue({
        code: 'custom',
        path: ['dataset', 'uri'],
        message: 'each cell’s dataset comes from `datasets:` (give every dataset a name and uri)',
      });
  })
  .default({});

function uniqueNames(what: string) {
  return (entries: readonly { name: string }[], ctx: z.core.$RefinementCtx) => {
    const seen = new Set<string>();
    for (const [i, e] of entries.entries()) {
      if (seen.has(e.name))
        ctx.addIssue({
          code: 'custom',
          path: [i, 'name'],
          message: `${what} "${e.name}" is listed more than once: names are the leaderboard's ${what === 'model' ? 'rows' : 'columns'}`,
        });
      seen.add(e.name);
    }
  };
}

export const suiteSpecSchema = z
  .strictObject({
    models: z.array(modelEntrySchema).min(1).superRefine(uniqueNames('model')),
    datasets: z.array(datasetEntrySchema).min(1).superRefine(uniqueNames('dataset')),
    run: sharedRunSchema,
    /** Cells evaluated at once (child runs in flight). */
    concurrency: z.int().min(1).max(MAX_SUITE_CONCURRENCY).default(4),
  })
  .refine((s) => s.models.length * s.datasets.length <= MAX_SUITE_CELLS, {
    message: `at most ${MAX_SUITE_CELLS} cells (models x datasets) per suite: split it into several suites`,
  });

export type SuiteSpec = z.infer<typeof suiteSpecSchema>;
export type SuiteSpecInput = z.input<typeof suiteSpecSchema>;

/** A cell with its validated run spec. */
export type SuiteCellSpec = SuiteCell & { spec: RunSpec };

/**
 * Validates a suite spec and every cell's run spec. The error lists the suite's own problems, or
 * the first cells whose run spec is invalid, each naming the cell and the field.
 */
export function parseSuiteSpec(input: unknown, source = 'suite spec'): SuiteSpec {
  const parsed = suiteSpecSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid ${source}:\n${formatIssues(parsed.error.issues, (p) => p)}`,
      source,
    );
  }
  suiteCellSpecs(parsed.data, source);
  return parsed.data;
}

/** Every cell's validated run spec, dataset-major; a ConfigError names the invalid cells. */
export function suiteCellSpecs(spec: SuiteSpec, source = 'suite spec'): SuiteCellSpec[] {
  const problems: string[] = [];
  const out: SuiteCellSpec[] = [];
  for (const cell of suiteCells(spec)) {
    try {
      out.push({ ...cell, spec: parseRunSpec(cellRunSpecInput(spec, cell), 'run spec') });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(`cell ${cell.model} x ${cell.dataset}: ${err.message}`);
    }
  }
  if (problems.length > 0) {
    const more =
      problems.length > CELL_ERRORS_SHOWN
        ? `\n(and ${problems.length - CELL_ERRORS_SHOWN} more cells)`
        : '';
    throw new ConfigError(
      `Invalid ${source}: ${problems.length} cell(s) have an invalid run spec (run ∪ the dataset's overrides ∪ the model's bundle):\n${problems.slice(0, CELL_ERRORS_SHOWN).join('\n')}${more}`,
      source,
    );
  }
  return out;
}

/** Reads and validates a suite-spec file (.yaml, .yml or .json). */
export async function loadSuiteSpec(file: string): Promise<SuiteSpec> {
  return parseSuiteSpec(await readRunSpecFile(file, 'Suite spec'), `suite spec ${file}`);
}
