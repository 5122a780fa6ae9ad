/**
 * @file The run spec: what a user asks one evaluation run to do. It is the single schema for
 * run-spec files (YAML or JSON), CLI flags and the programmatic API. Unknown fields are errors, so
 * a typo never silently falls back to a default.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { isS3Uri, parseS3Uri } from '../storage/s3-uri';
import {
  CLASS_LIST_NAMES,
  TEMPLATE_SET_NAMES,
  type BenchmarkName,
  isClassListName,
  isTemplateSetName,
} from './benchmark-texts/benchmark-texts';
import { ConfigError, formatIssues } from './errors';
import { MAX_COOP_CONTEXT, MAX_FEW_SHOT_GRID, MAX_SEEDS, MAX_SHOT_COUNTS } from './run-limits';

/** How images become pixels: core/model/image/preprocess.ts (exact) or fast-crop.ts (fast). */
export const PREPROCESSING_MODES = ['exact', 'fast'] as const;
export type PreprocessingMode = (typeof PREPROCESSING_MODES)[number];

/** Which of a bundle's image graphs encodes: its fp32 graph, or its fp16 / dynamic-int8 variant. */
export const IMAGE_GRAPHS = ['fp32', 'fp16', 'int8'] as const;
export type ImageGraph = (typeof IMAGE_GRAPHS)[number];

/**
 * Whether extraction reads decoded crops from the pixel cache (core/embeddings/shard-pixels.ts),
 * writes the crops it decodes there, both (the default) or neither.
 */
export const PIXEL_CACHE_MODES = ['off', 'read', 'write', 'readwrite'] as const;
export type PixelCacheMode = (typeof PIXEL_CACHE_MODES)[number];

/**
 * Which classes a route trains and is tested on: `all-classes` (the standard protocol) or CoCoOp's
 * `base-to-new` (train on the first half of the class list, test on both halves: core/routes/base-to-new.ts).
 */
export const PROTOCOLS = ['all-classes', 'base-to-new'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

const splitRatio = z
  .strictObject({
    train: z.number().min(0).max(1),
    val: z.number().min(0).max(1),
    test: z.number().min(0).max(1),
  })
  .refine((r) => Math.abs(r.train + r.val + r.test - 1) < 1e-9, {
    message: 'train + val + test must add up to 1',
  });

/** The values that occur more than once in a list, each once, in order of first repeat. */
function duplicates<T>(xs: readonly T[]): T[] {
  const seen = new Set<T>();
  const dup = new Set<T>();
  for (const x of xs) (seen.has(x) ? dup : seen).add(x);
  return [...dup];
}

/** A list whose entries must be distinct; the issue names the repeated ones. */
function distinct<T extends z.ZodType<string | number>>(item: T, why: string) {
  return z.array(item).superRefine((xs, ctx) => {
    const dup = duplicates(xs);
    if (dup.length > 0) {
      const shown = dup.slice(0, 5).map((d) => JSON.stringify(d));
      ctx.addIssue({
        code: 'custom',
        message: `${shown.join(', ')}${dup.length > 5 ? ` and ${dup.length - 5} more` : ''} listed more than once: ${why}`,
      });
    }
  });
}

export const datasetSpecSchema = z.strictObject({
  /** An ImageFolder prefix (`s3://b/p/`) or a manifest object (`s3://b/p/list.jsonl|.csv`). */
  uri: z
    .string()
    .refine(isS3Uri, 'expected s3://bucket/prefix or s3://bucket/path/manifest.jsonl')
    // A dataset at the bucket root would make planning list the whole bucket.
    .refine(
      (u) => !isS3Uri(u) || parseS3Uri(u).key.replace(/^\/+|\/+$/g, '') !== '',
      'a dataset cannot be the bucket root (planning would list the whole bucket): put it under a prefix, e.g. s3://bucket/my-dataset/',
    ),
  /**
   * How the dataset is stored: one object per image (`imagefolder`, `manifest`), CLIP_benchmark's
   * WebDataset tars, or Hugging Face Parquet files; `auto` detects it from the objects
   * (core/dataset/detect-format.ts).
   */
  format: z.enum(['auto', 'imagefolder', 'manifest', 'webdataset', 'parquet']).default('auto'),
  /** ImageFolder layout: `split/class/file`, `class/file`, or detect from the top-level folders. */
  layout: z.enum(['auto', 'split-folders', 'class-folders']).default('auto'),
  /** Parquet: the image column (a struct with `bytes`, as Hugging Face's Image feature writes); default `image`. */
  imageColumn: z.string().min(1).optional(),
  /** Parquet: the integer label column (a Hugging Face ClassLabel); default `label`. */
  labelColumn: z.string().min(1).optional(),
  /**
   * Parquet: a column of captions (list<string>, or string: one caption) for zero-shot retrieval.
   * Without a labelColumn in the file the dataset is unlabelled (retrieval only).
   */
  captionColumn: z.string().min(1).optional(),
  /** Used where the data has no split: `class/file` folders, or a manifest without a split column. */
  splitRatio: splitRatio.default({ train: 0.8, val: 0.1, test: 0.1 }),
  splitSeed: z.int().min(0).default(0),
  /** Optional closed class list: labels outside it are errors, listed classes must have images. */
  classes: distinct(z.string().min(1), 'each class is listed once (its position is its id)')
    .min(1)
    .optional(),
});

/**
 * Display names by label, as a null-prototype object with an own property per label. Zod's
 * record drops a `__proto__` key silently (it assigns through the prototype setter), and a
 * plain object answers `constructor` or `toString` from its prototype: labels are user strings,
 * so they are never looked up on an object that has one. A string instead names a built-in
 * dataset's class list (core/config/benchmark-texts/), which planning applies by class id.
 */
const classNamesSchema = z
  .custom<Record<string, string> | string>()
  .transform((value, ctx): BenchmarkName | Record<string, string> => {
    const out = Object.create(null) as Record<string, string>;
    if (typeof value === 'string') {
      if (isClassListName(value)) return value;
      const why = isTemplateSetName(value)
        ? `the built-in dataset ${JSON.stringify(value)} has templates but no published class names`
        : `no built-in class list named ${JSON.stringify(value)}`;
      ctx.addIssue({
        code: 'custom',
        message: `${why}: expected one of ${CLASS_LIST_NAMES.join(', ')}, or a mapping of label: display name`,
      });
      return out;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'expected a mapping of label: display name, or a built-in dataset name (cifar10, ...)',
      });
      return out;
    }
    for (const [label, name] of Object.entries(value)) {
      if (typeof name === 'string' && name.trim() !== '') out[label] = name;
      else ctx.addIssue({ code: 'custom', path: [label], message: 'expected a display name' });
    }
    return out;
  });

/** The template choices that are not a dataset's name (core/routes/zero-shot/templates.ts). */
const TEMPLATE_KEYWORDS = ['default', 'openai-imagenet', 'dataset'] as const;

/** Zero-shot: class prototypes from prompt templates (CLIP's recipe). */
const zeroShotSpecSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /**
   * `default` (5 hand-written), `openai-imagenet` (OpenAI's 80), `dataset` (the dataset's own:
   * a WebDataset's zeroshot_classification_templates.txt), a built-in dataset's name
   * (CLIP_benchmark's templates for it: `cifar10`, `pets`, ...), or your own list with `{c}`.
   */
  templates: z
    .union(
      [
        z.enum([...TEMPLATE_KEYWORDS, ...TEMPLATE_SET_NAMES]),
        z
          .array(
            z.string().refine((t) => t.includes('{c}'), 'each template needs the {c} placeholder'),
          )
          .min(1),
      ],
      {
        error: `expected ${TEMPLATE_KEYWORDS.join(', ')}, a built-in dataset's name for its templates (${TEMPLATE_SET_NAMES.join(', ')}) or a list of templates with {c}`,
      },
    )
    .default('default'),
  /**
   * `all-classes` (the standard protocol) or `base-to-new` (CoCoOp's: each test image classified
   * among its own half of the class list, base and new accuracy and their harmonic mean reported).
   */
  protocol: z.enum(PROTOCOLS).default('all-classes'),
});

/** CoOp (Zhou et al.): defaults are the published recipe; `epochs` defaults by shot count. */
const coopSpecSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Learnable context vectors; ignored when `init` gives words (their token count is used). */
    nCtx: z.int().min(1).max(64).default(16),
    /**
     * `random` (N(0, 0.02^2)) or initialisation words such as "a photo of a": one context vector
     * per token of the words, so at most 64 words (CoOp checks the token count once the bundle's
     * tokenizer is known).
     */
    init: z
      .string()
      .min(1)
      .refine(
        (s) => s === 'random' || initWords(s) >= 1,
        'expected "random" or initialisation words such as "a photo of a"',
      )
      .refine(
        (s) => s === 'random' || initWords(s) <= MAX_COOP_CONTEXT,
        `at most ${MAX_COOP_CONTEXT} words: each word is at least one context vector, and CoOp allows at most ${MAX_COOP_CONTEXT} (as nCtx)`,
      )
      .default('random'),
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
    /**
     * `all-classes`, or `base-to-new` (CoCoOp's protocol): trained on the base half of the class
     * list only, tested on both halves with the learned context (core/routes/base-to-new.ts).
     */
    protocol: z.enum(PROTOCOLS).default('all-classes'),
  })
  // CSC learns one context per training class: a new class has none, so it cannot be tested.
  .refine((c) => !(c.classSpecific && c.protocol === 'base-to-new'), {
    path: ['classSpecific'],
    message:
      'class-specific context (CSC) learns one context per training class, so the new classes of coop.protocol base-to-new would have none: set classSpecific: false or protocol: all-classes',
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

/**
 * Tip-Adapter and Tip-Adapter-F (Zhang et al., ECCV 2022): a cache of the few-shot train features
 * added to the zero-shot logits, its residual ratio alpha and sharpness beta searched on the val
 * split (core/routes/tip-adapter/). The grids are the repo's ImageNet config, init alpha and beta
 * its other datasets' (ImageNet's init_alpha is 1.17). Off by default, so existing specs and
 * schedule baselines keep the routes they had.
 */
const gridEnd = z.number().gt(0.1, 'a grid end must be above 0.1 (the grids start there)');
const gridSteps = z.int().min(1).max(1000);
const tipAdapterSpecSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Also train the cache keys (Tip-Adapter-F), a second result beside Tip-Adapter's. */
  finetune: z.boolean().default(true),
  /** Upper ends of the beta and alpha grids (both start at 0.1, so above it). */
  searchScale: z
    .tuple([gridEnd, gridEnd], { error: 'expected [beta, alpha] grid ends, e.g. [7, 3]' })
    .default([7, 3]),
  /** Grid points of beta and alpha. */
  searchStep: z
    .tuple([gridSteps, gridSteps], { error: 'expected [beta, alpha] grid points, e.g. [200, 20]' })
    .default([200, 20]),
  /** Alpha and beta while Tip-Adapter-F trains (and where the val split has no image). */
  initAlpha: z.number().positive().default(1),
  initBeta: z.number().positive().default(1),
  epochs: z.int().min(1).max(1000).default(20),
  lr: z.number().positive().default(0.001),
  batchSize: z.int().min(1).max(65536).default(256),
  protocol: z.enum(PROTOCOLS).default('all-classes'),
});

/**
 * Zero-shot retrieval (CLIP_benchmark's zeroshot_retrieval): the test split's images against their
 * captions, recall@k both ways (core/routes/retrieval/). `auto` runs it when the dataset has
 * captions (a WebDataset's .txt members, a manifest's `captions` field, a Parquet captionColumn).
 */
const retrievalSpecSchema = z.strictObject({
  enabled: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  /** The k of recall@k, image to text and text to image. */
  k: distinct(z.int().min(1).max(1000), 'each k is one metric').min(1).max(10).default([1, 5, 10]),
  /** Captions per text-encoder call. */
  batchSize: z.int().min(1).max(4096).default(256),
});

/**
 * Few-shot protocol for CoOp, the probe and Tip-Adapter: k images per class, one fit per (shots, seed). Shot
 * counts and seeds are distinct (a repeat would write the same result keys and count twice in the
 * mean over seeds) and the grid is capped (core/config/run-limits.ts says why).
 */
const fewShotSpecSchema = z
  .strictObject({
    shots: distinct(z.int().min(1).max(10000), 'each (shots, seed) pair is one result')
      .min(1)
      .max(MAX_SHOT_COUNTS, `at most ${MAX_SHOT_COUNTS} shot counts`)
      .default([16]),
    seeds: distinct(z.int().min(0), 'each (shots, seed) pair is one result')
      .min(1)
      .max(MAX_SEEDS, `at most ${MAX_SEEDS} seeds`)
      .default([1]),
  })
  .refine((f) => f.shots.length * f.seeds.length <= MAX_FEW_SHOT_GRID, {
    message: `at most ${MAX_FEW_SHOT_GRID} (shots, seed) pairs: CoOp and the probe run one job per pair, all at once; use fewer shot counts or seeds`,
  });

/** Whitespace-separated words of CoOp's init text (each is at least one token). */
function initWords(s: string): number {
  return s.split(/\s+/).filter(Boolean).length;
}

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
      /**
       * `exact` (Pillow-identical, the default) or `fast` (libvips decode, shrink-on-load and
       * resize; cosine >= 0.999 to exact, docs/embeddings.md). Part of the embedding space.
       */
      preprocessing: z.enum(PREPROCESSING_MODES).default('exact'),
      /**
       * The bundle's image graph: fp32, fp16 or int8. Unset: the planning worker's
       * CLIPEVAL_IMAGE_GRAPH, else fp32, resolved once at planning and recorded in the plan.
       */
      imageGraph: z.enum(IMAGE_GRAPHS).optional(),
      /**
       * The pixel cache: crops decoded once per image and geometry, read back by every later run
       * or model of that geometry (docs/embeddings.md). Not part of the embedding space: cached
       * crops embed byte-identically.
       */
      pixelCache: z.enum(PIXEL_CACHE_MODES).default('readwrite'),
    })
    .default({
      batchSize: 32,
      concurrency: 8,
      parallelism: 4,
      heartbeatTimeoutSeconds: 120,
      augmentedViews: 0,
      augmentSeed: 0,
      preprocessing: 'exact',
      pixelCache: 'readwrite',
    }),
  /**
   * Display names for class labels (`n02085620: Chihuahua`; others are humanised), or a built-in
   * dataset's name (`cifar10`): its published class names, by class id (docs/configuration.md).
   */
  classNames: classNamesSchema.default(() => ({})),
  zeroShot: zeroShotSpecSchema.default(() => zeroShotSpecSchema.parse({})),
  coop: coopSpecSchema.default(() => coopSpecSchema.parse({})),
  probe: probeSpecSchema.default(() => probeSpecSchema.parse({})),
  tipAdapter: tipAdapterSpecSchema.default(() => tipAdapterSpecSchema.parse({})),
  retrieval: retrievalSpecSchema.default(() => retrievalSpecSchema.parse({})),
  fewShot: fewShotSpecSchema.default(() => fewShotSpecSchema.parse({})),
  regression: regressionSpecSchema.default(() => regressionSpecSchema.parse({})),
});

/** A spec fragment that turns every decision route off: embedding extraction alone. */
export const EXTRACTION_ONLY = {
  zeroShot: { enabled: false },
  coop: { enabled: false },
  probe: { enabled: false },
  tipAdapter: { enabled: false },
  retrieval: { enabled: false },
} as const;

export type RunSpec = z.infer<typeof runSpecSchema>;
export type RunSpecInput = z.input<typeof runSpecSchema>;
export type DatasetSpec = RunSpec['dataset'];
export type ZeroShotSpec = RunSpec['zeroShot'];
export type CoopSpec = RunSpec['coop'];
export type ProbeSpec = RunSpec['probe'];
export type TipAdapterSpec = RunSpec['tipAdapter'];
export type FewShotSpec = RunSpec['fewShot'];
export type RetrievalSpec = RunSpec['retrieval'];
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

/** Reads a run-spec file (.yaml, .yml or .json) without validating it; `what` names it in errors. */
export async function readRunSpecFile(
  path: string,
  what = 'Run spec',
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `Cannot read ${what.toLowerCase()} ${path}: ${(err as Error).message}`,
      path,
    );
  }
  let data: unknown;
  try {
    data = extname(path) === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(
      `${what} ${path} is not valid YAML/JSON: ${(err as Error).message}`,
      path,
    );
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${what} ${path} must be a mapping of fields (e.g. "dataset:")`, path);
  }
  return data as Record<string, unknown>;
}

/**
 * Spec file plus CLI overrides (`--dataset`, `--bundle`), validated as one. The dataset comes
 * from `--dataset` or the file's dataset.uri; with neither, a ConfigError says how to give one.
 */
export async function loadRunSpec(opts: {
  file?: string;
  datasetUri?: string;
  bundle?: string;
}): Promise<RunSpec> {
  const base = opts.file ? await readRunSpecFile(opts.file) : {};
  const dataset = { ...(base.dataset as object | undefined) } as Record<string, unknown>;
  if (opts.datasetUri !== undefined) dataset.uri = opts.datasetUri;
  if (dataset.uri === undefined) {
    throw new ConfigError(
      `No dataset: give --dataset s3://bucket/prefix/ (or a manifest .jsonl/.csv), or set dataset.uri in ${opts.file ? `the run spec ${opts.file}` : 'a run spec (--spec)'}.`,
      opts.file ?? 'run spec',
    );
  }
  const model = { ...(base.model as object | undefined) } as Record<string, unknown>;
  if (opts.bundle !== undefined) model.bundle = opts.bundle;
  return parseRunSpec({ ...base, dataset, model }, opts.file ?? 'run spec');
}
