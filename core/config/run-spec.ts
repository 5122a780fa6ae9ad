/**
 * @file The run spec: what a user asks one evaluation run to do. It is the single schema for
 * run-spec files (YAML or JSON), CLI flags and the programmatic API. Unknown fields are errors, so
 * a typo never silently falls back to a default.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { isS3Uri } from '../storage/s3-uri';
import { ConfigError, formatIssues } from './errors';

const splitRatio = z
  .strictObject({
    train: z.number().min(0).max(1),
    val: z.number().min(0).max(1),
    test: z.number().min(0).max(1),
  })
  .refine((r) => Math.abs(r.train + r.val + r.test - 1) < 1e-9, {
    message: 'train + val + test must add up to 1',
  });

export const datasetSpecSchema = z.strictObject({
  /** An ImageFolder prefix (`s3://b/p/`) or a manifest object (`s3://b/p/list.jsonl|.csv`). */
  uri: z.string().refine(isS3Uri, 'expected s3://bucket/prefix or s3://bucket/path/manifest.jsonl'),
  /** ImageFolder layout: `split/class/file`, `class/file`, or detect from the top-level folders. */
  layout: z.enum(['auto', 'split-folders', 'class-folders']).default('auto'),
  /** Used where the data has no split: `class/file` folders, or a manifest without a split column. */
  splitRatio: splitRatio.default({ train: 0.8, val: 0.1, test: 0.1 }),
  splitSeed: z.int().min(0).default(0),
  /** Optional closed class list: labels outside it are errors, listed classes must have images. */
  classes: z.array(z.string().min(1)).min(1).optional(),
});

/** Zero-shot: class prototypes from prompt templates (CLIP's recipe). */
const zeroShotSpecSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** `default` (5 hand-written), `openai-imagenet` (OpenAI's 80), or your own list with `{c}`. */
  templates: z
    .union([
      z.enum(['default', 'openai-imagenet']),
      z
        .array(
          z.string().refine((t) => t.includes('{c}'), 'each template needs the {c} placeholder'),
        )
        .min(1),
    ])
    .default('default'),
});

/** CoOp (Zhou et al.): defaults are the published recipe; `epochs` defaults by shot count. */
const coopSpecSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Learnable context vectors; ignored when `init` gives words (their token count is used). */
  nCtx: z.int().min(1).max(64).default(16),
  /** `random` (N(0, 0.02^2)) or initialisation words such as "a photo of a". */
  init: z.string().min(1).default('random'),
  classTokenPosition: z.enum(['end', 'middle', 'front']).default('end'),
  /** Class-specific context (CSC): one context per class instead of one shared. */
  classSpecific: z.boolean().default(false),
  /** Default by shots: 1 -> 50, 2 and 4 -> 100, 8 and 16 (and more) -> 200. */
  epochs: z.int().min(1).max(10000).optional(),
  lr: z.number().positive().default(0.002),
  momentum: z.number().min(0).max(1).default(0.9),
  weightDecay: z.number().min(0).default(5e-4),
  batchSize: z.int().min(1).max(4096).default(32),
  warmupEpochs: z.int().min(0).default(1),
  warmupLr: z.number().positive().default(1e-5),
  /** Train on the augmented views too (when extraction made them), as CoOp's random crops do. */
  useAugmentedViews: z.boolean().default(true),
  /** A worker silent this long is presumed dead; training resumes from the last epoch checkpoint. */
  heartbeatTimeoutSeconds: z.int().min(5).max(3600).default(300),
});

/** Linear probe on the frozen, normalised image embeddings. */
const probeSpecSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** `lbfgs`: CLIP's logistic regression with a C sweep; `adamw`: CLIP_benchmark's linear layer. */
  recipe: z.enum(['lbfgs', 'adamw']).default('lbfgs'),
  /** Also fit on the whole train split, besides the few-shot subsets. */
  fullData: z.boolean().default(true),
  maxIterations: z.int().min(1).max(100000).default(1000),
  epochs: z.int().min(1).max(1000).default(10),
  lr: z.number().positive().default(0.1),
  batchSize: z.int().min(1).max(65536).default(64),
});

/** Few-shot protocol for CoOp and the probe: k images per class, one fit per (shots, seed). */
const fewShotSpecSchema = z.strictObject({
  shots: z.array(z.int().min(1).max(10000)).min(1).default([16]),
  seeds: z.array(z.int().min(0)).min(1).default([1]),
});

/**
 * Scheduled runs are compared with the schedule's previous successful run: a route whose
 * `metric` drops by more than `maxDrop` (a fraction: 0.02 = 2 accuracy points) marks the run a
 * regression.
 */
const regressionSpecSchema = z.strictObject({
  maxDrop: z.number().min(0).max(1).default(0.02),
  metric: z.enum(['acc1', 'meanPerClassRecall']).default('acc1'),
});

export const runSpecSchema = z.strictObject({
  dataset: datasetSpecSchema,
  model: z
    .strictObject({
      /** Model bundle: a local folder (single-machine use) or an s3:// prefix (workers fetch it once). */
      bundle: z.string().min(1).optional(),
    })
    .default({}),
  /** Images per embedding shard at most; shards are the unit of extraction work and reuse. */
  shardSize: z.int().min(1).max(65536).default(1024),
  extraction: z
    .strictObject({
      /** Images per encoder call. */
      batchSize: z.int().min(1).max(1024).default(32),
      /** Images fetched and decoded concurrently per shard. */
      concurrency: z.int().min(1).max(256).default(8),
      /** Shards extracted at once across the gpu workers (a sliding window). */
      parallelism: z.int().min(1).max(1000).default(4),
      /** A worker silent this long is presumed dead and its shard retried elsewhere. */
      heartbeatTimeoutSeconds: z.int().min(2).max(3600).default(120),
      /** Augmented views per train image (CLIP's RandomResizedCrop + flip), besides the center crop. */
      augmentedViews: z.int().min(0).max(64).default(0),
      /** Seed of the augmentation; the same seed gives the same views on every run. */
      augmentSeed: z.int().min(0).default(0),
    })
    .default({
      batchSize: 32,
      concurrency: 8,
      parallelism: 4,
      heartbeatTimeoutSeconds: 120,
      augmentedViews: 0,
      augmentSeed: 0,
    }),
  /** Display names for class labels (`n02085620: Chihuahua`); others are humanised. */
  classNames: z.record(z.string(), z.string().min(1)).default({}),
  zeroShot: zeroShotSpecSchema.default(() => zeroShotSpecSchema.parse({})),
  coop: coopSpecSchema.default(() => coopSpecSchema.parse({})),
  probe: probeSpecSchema.default(() => probeSpecSchema.parse({})),
  fewShot: fewShotSpecSchema.default(() => fewShotSpecSchema.parse({})),
  regression: regressionSpecSchema.default(() => regressionSpecSchema.parse({})),
});

/** A spec fragment that turns every decision route off: embedding extraction alone. */
export const EXTRACTION_ONLY = {
  zeroShot: { enabled: false },
  coop: { enabled: false },
  probe: { enabled: false },
} as const;

export type RunSpec = z.infer<typeof runSpecSchema>;
export type RunSpecInput = z.input<typeof runSpecSchema>;
export type DatasetSpec = RunSpec['dataset'];
export type ZeroShotSpec = RunSpec['zeroShot'];
export type CoopSpec = RunSpec['coop'];
export type ProbeSpec = RunSpec['probe'];
export type FewShotSpec = RunSpec['fewShot'];
export type RegressionSpec = RunSpec['regression'];

/** Validates a spec object; `source` names where it came from in the error message. */
export function parseRunSpec(input: unknown, source = 'run spec'): RunSpec {
  const parsed = runSpecSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid ${source}:\n${formatIssues(parsed.error.issues, (p) => p)}`,
      source,
    );
  }
  return parsed.data;
}

/** Reads a run-spec file (.yaml, .yml or .json) without validating it. */
export async function readRunSpecFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read run spec ${path}: ${(err as Error).message}`, path);
  }
  let data: unknown;
  try {
    data = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      `Run spec ${path} is not valid YAML/JSON: ${(err as Error).message}`,
      path,
    );
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`Run spec ${path} must be a mapping of fields (e.g. "dataset:")`, path);
  }
  return data as Record<string, unknown>;
}

/** Spec file plus CLI overrides (`--dataset`), validated as one. */
export async function loadRunSpec(opts: {
  file?: string;
  datasetUri?: string;
  bundle?: string;
}): Promise<RunSpec> {
  const base = opts.file ? await readRunSpecFile(opts.file) : {};
  const dataset = { ...(base.dataset as object | undefined) } as Record<string, unknown>;
  if (opts.datasetUri !== undefined) dataset.uri = opts.datasetUri;
  const model = { ...(base.model as object | undefined) } as Record<string, unknown>;
  if (opts.bundle !== undefined) model.bundle = opts.bundle;
  return parseRunSpec({ ...base, dataset, model }, opts.file ?? 'run spec');
}
