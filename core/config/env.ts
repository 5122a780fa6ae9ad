/**
 * @file Everything clipeval reads from the environment, validated in one place. Values come from
 * process.env; when $CLIPEVAL_HOME/stack.env exists (written by `npm run stack:up`), it fills
 * what the environment leaves unset, so the local stack works without exporting anything (only
 * the variables stack:up writes, under the rules in ./stack-env.ts).
 */
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { type SourcePolicy, sourcePolicy } from './allowed-sources';
import { type TemporalSettings, loadTemporalSettings } from './temporal-env';
import { ConfigError, formatIssues } from './errors';
import { IMAGE_GRAPHS, type ImageGraph } from './run-spec';
import { DEFAULT_PLANNING_LIMITS, type PlanningLimits } from './run-limits';
import { stackEnvFile, stackEnvNote } from './stack-env';

/** The defaults of CLIPEVAL_MAX_IMAGE_BYTES, _MAX_IMAGE_PIXELS, _IMAGE_MEMORY_BUDGET, _MAX_BUNDLE_FILE_BYTES. */
export const DEFAULT_RESOURCE_LIMITS: ResourceLimits = {
  maxImageBytes: 64 * 1024 ** 2,
  maxImagePixels: 100_000_000,
  imageMemoryBudget: 1024 ** 3,
  maxBundleFileBytes: 2 * 1024 ** 3, // ViT-L/14's image graph is ~1.2 GB
};

/** A size in bytes: `1048576`, `512KiB`, `64MiB`, `1GiB`. */
function byteSize(fallback: number) {
  const units: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
  return z
    .string()
    .regex(/^\d+(B|KiB|MiB|GiB)?$/, 'expected a size in bytes, e.g. 67108864, 64MiB or 1GiB')
    .default(String(fallback))
    .transform((v) => Number(/^\d+/.exec(v)![0]) * units[v.replace(/^\d+/, '')]!)
    .refine((n) => n > 0 && Number.isSafeInteger(n), 'expected a positive size');
}

const envSchema = z.object({
  // Checked here so that their errors come with the others; read by core/config/temporal-env.ts.
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:/]+:\d{1,5}$/, 'expected host:port, e.g. localhost:7233')
    .optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).optional(),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: z.enum(['true', 'false'], 'expected true or false').optional(),
  CLIPEVAL_S3_ENDPOINT: z
    .url({ protocol: /^https?$/, error: 'expected an http(s) URL, e.g. http://127.0.0.1:7070' })
    .optional(),
  CLIPEVAL_BUCKET: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'expected an S3 bucket name (3-63 chars: a-z 0-9 . -)',
    ),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  CLIPEVAL_CPU_QUEUE: z.string().min(1).default('clipeval-cpu'),
  CLIPEVAL_GPU_QUEUE: z.string().min(1).default('clipeval-gpu'),
  CLIPEVAL_EXECUTION_PROVIDERS: z
    .string()
    .regex(
      /^(cuda|webgpu|cpu)(,(cuda|webgpu|cpu))*$/,
      'expected a comma-separated list of cuda, webgpu, cpu, e.g. cuda,webgpu,cpu',
    )
    .default('cpu'),
  CLIPEVAL_ORT_THREADS: z.coerce
    .number()
    .int()
    .min(0, 'expected 0 (all cores) or a thread count')
    .default(0),
  CLIPEVAL_DECODE_THREADS: z.coerce
    .number()
    .int()
    .min(0, 'expected 0 (no decode pool) or a thread count')
    .optional(),
  CLIPEVAL_GPU_ACTIVITY_SLOTS: z.coerce
    .number()
    .int()
    .min(1, 'expected at least 1 activity at a time')
    .max(16, 'expected at most 16 activities at a time')
    .default(2),
  /** Read where sessions start (core/model/onnx/session-thread.ts); validated here with the rest. */
  CLIPEVAL_ORT_SPINNING: z
    .enum(['0', '1'], 'expected 0 (threads wait without spinning) or 1')
    .optional(),
  /** Read by the planning worker only: see ClipevalEnv.imageGraph. */
  CLIPEVAL_IMAGE_GRAPH: z.enum(IMAGE_GRAPHS, 'expected fp32, fp16 or int8').optional(),
  CLIPEVAL_DEFAULT_BUNDLE: z.string().min(1).optional(),
  /** Where runs may read datasets and bundles from (core/config/allowed-sources.ts). */
  CLIPEVAL_ALLOWED_SOURCES: z.string().min(1).optional(),
  CLIPEVAL_ALLOWED_BUNDLE_DIRS: z.string().min(1).optional(),
  CLIPEVAL_BUNDLE_CACHE: z
    .string()
    .min(1)
    .default(join(homedir(), '.cache', 'clipeval', 'bundles')),
  CLIPEVAL_SHUTDOWN_GRACE: z
    .string()
    .regex(/^\d+(ms|s|m)$/, 'expected a duration such as 30s or 2m')
    .default('30s'),
  CLIPEVAL_METRICS_ADDRESS: z
    .string()
    .regex(/^[^\s:/]+:\d{1,5}$/, 'expected host:port to serve /metrics on, e.g. 0.0.0.0:9464')
    .optional(),
  CLIPEVAL_LOG_FORMAT: z.enum(['json', 'text'], 'expected json or text').default('json'),
  CLIPEVAL_LOG_LEVEL: z
    .enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'], 'expected TRACE, DEBUG, INFO, WARN or ERROR')
    .default('INFO'),
  // Resource limits of the workers (docs/security-and-limits.md#limits): sizes are bytes, or a
  // number with KiB, MiB or GiB.
  CLIPEVAL_MAX_IMAGE_BYTES: byteSize(DEFAULT_RESOURCE_LIMITS.maxImageBytes),
  CLIPEVAL_MAX_IMAGE_PIXELS: z.coerce
    .number()
    .int()
    .positive()
    .default(DEFAULT_RESOURCE_LIMITS.maxImagePixels),
  CLIPEVAL_IMAGE_MEMORY_BUDGET: byteSize(DEFAULT_RESOURCE_LIMITS.imageMemoryBudget),
  CLIPEVAL_MAX_BUNDLE_FILE_BYTES: byteSize(DEFAULT_RESOURCE_LIMITS.maxBundleFileBytes),
  // Planning limits (core/config/run-limits.ts).
  CLIPEVAL_MAX_DATASET_OBJECTS: z.coerce
    .number()
    .int()
    .positive('expected a positive number of objects')
    .default(DEFAULT_PLANNING_LIMITS.maxDatasetObjects),
  CLIPEVAL_MAX_CLASSES: z.coerce
    .number()
    .int()
    .positive('expected a positive number of classes')
    .default(DEFAULT_PLANNING_LIMITS.maxClasses),
});

export interface ClipevalEnv {
  /** Temporal's own variables and config-file profiles (core/config/temporal-env.ts). */
  temporal: TemporalSettings;
  s3: { endpoint?: string; region: string; bucket: string };
  queues: { cpu: string; gpu: string };
  shutdownGrace: string;
  /** Where workers keep model bundles fetched from S3, one folder per bundle hash. */
  bundleCache: string;
  /** The bundle a run uses when its spec names none. */
  defaultBundle: string;
  /** Where runs may read datasets, manifest rows and bundles from (CLIPEVAL_ALLOWED_*). */
  sources: SourcePolicy;
  /** ONNX Runtime: execution providers tried in order, and intra-op threads per session (0: all cores). */
  onnx: { providers: ('cuda' | 'webgpu' | 'cpu')[]; threads: number };
  /**
   * The worker's decode pool: threads that resize, crop and normalise images
   * (CLIPEVAL_DECODE_THREADS; 0: none, on the main thread; default defaultDecodeThreads()).
   */
  decode: { threads: number };
  /**
   * Activities a gpu worker runs at once (CLIPEVAL_GPU_ACTIVITY_SLOTS, default 2). Two
   * extraction shards share the worker's encoder session and decode pool, so the second costs no
   * model memory and one shard's ramp-up and drain overlap the other's work; two CoOp trainings
   * would each hold a training session (1 keeps one per worker).
   */
  gpuActivitySlots: number;
  /**
   * The image graph of runs whose spec names none (CLIPEVAL_IMAGE_GRAPH). Resolved when the run
   * is planned, from the planning (cpu) worker's environment, and recorded in the plan: every
   * shard of a run then uses one graph, one embedding space. Resolved per gpu worker instead, a
   * run's shards would split across spaces whenever workers' settings differ.
   */
  imageGraph?: ImageGraph;
  /** Worker telemetry: Prometheus endpoint (off when unset) and log lines (JSON by default). */
  telemetry: {
    metricsAddress?: string;
    logFormat: 'json' | 'text';
    logLevel: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  };
  /** What one image or bundle file may cost a worker (docs/security-and-limits.md#limits). */
  limits: ResourceLimits;
  /** What one run may plan: objects listed or manifest rows, classes (CLIPEVAL_MAX_DATASET_OBJECTS, CLIPEVAL_MAX_CLASSES). */
  planning: PlanningLimits;
}

export interface ResourceLimits {
  /** Largest image object read, in bytes (CLIPEVAL_MAX_IMAGE_BYTES). */
  maxImageBytes: number;
  /** Largest image decoded, in pixels (CLIPEVAL_MAX_IMAGE_PIXELS). */
  maxImagePixels: number;
  /** Bytes a worker lets images in flight (fetched + decoding) hold (CLIPEVAL_IMAGE_MEMORY_BUDGET). */
  imageMemoryBudget: number;
  /** Largest model bundle file, in bytes (CLIPEVAL_MAX_BUNDLE_FILE_BYTES). */
  maxBundleFileBytes: number;
}

/**
 * CLIPEVAL_DECODE_THREADS' default: the cores this process may use (os.availableParallelism()).
 * Not those minus ONNX Runtime's threads: by default ORT's intra-op pool also takes every core,
 * and on a gpu worker its work is on the accelerator; the pool's threads only compete while
 * images wait for them (the resize and normalisation, ~1.5 ms at 640x480 with the resampler's
 * WebAssembly SIMD kernels, against ~3.5 ms for sharp's decode), and then the batch they fill is
 * what inference waits for.
 */
export function defaultDecodeThreads(): number {
  return Math.max(1, availableParallelism());
}

export { type TemporalTls, temporalTls } from './temporal-env';

// stack.env (what `stack:up` writes, and the narrow rules for reading it back) is its own module.
export {
  clipevalHome,
  envSource,
  loadStackEnvDefaults,
  parseEnvFile,
  stackEnvFile,
} from './stack-env';

export function loadEnv(env: NodeJS.ProcessEnv = process.env): ClipevalEnv {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid environment configuration:\n${formatIssues(parsed.error.issues, (p) => p)}\n` +
        `Set these variables (or run \`npm run stack:up\`, which writes ${stackEnvFile()}).${stackEnvNote()}`,
      'environment',
    );
  }
  const e = parsed.data;
  const defaultBundle =
    e.CLIPEVAL_DEFAULT_BUNDLE ?? `s3://${e.CLIPEVAL_BUCKET}/models/clip-vit-base-patch32/`;
  return {
    temporal: loadTemporalSettings(env),
    s3: {
      ...(e.CLIPEVAL_S3_ENDPOINT ? { endpoint: e.CLIPEVAL_S3_ENDPOINT } : {}),
      region: e.AWS_REGION,
      bucket: e.CLIPEVAL_BUCKET,
    },
    queues: { cpu: e.CLIPEVAL_CPU_QUEUE, gpu: e.CLIPEVAL_GPU_QUEUE },
    shutdownGrace: e.CLIPEVAL_SHUTDOWN_GRACE,
    bundleCache: e.CLIPEVAL_BUNDLE_CACHE,
    defaultBundle,
    sources: sourcePolicy({
      outputBucket: e.CLIPEVAL_BUCKET,
      defaultBundle,
      allowedSources: e.CLIPEVAL_ALLOWED_SOURCES,
      allowedBundleDirs: e.CLIPEVAL_ALLOWED_BUNDLE_DIRS,
    }),
    onnx: {
      providers: e.CLIPEVAL_EXECUTION_PROVIDERS.split(',') as ClipevalEnv['onnx']['providers'],
      threads: e.CLIPEVAL_ORT_THREADS,
    },
    decode: { threads: e.CLIPEVAL_DECODE_THREADS ?? defaultDecodeThreads() },
    gpuActivitySlots: e.CLIPEVAL_GPU_ACTIVITY_SLOTS,
    ...(e.CLIPEVAL_IMAGE_GRAPH ? { imageGraph: e.CLIPEVAL_IMAGE_GRAPH } : {}),
    telemetry: {
      ...(e.CLIPEVAL_METRICS_ADDRESS ? { metricsAddress: e.CLIPEVAL_METRICS_ADDRESS } : {}),
      logFormat: e.CLIPEVAL_LOG_FORMAT,
      logLevel: e.CLIPEVAL_LOG_LEVEL,
    },
    limits: {
      maxImageBytes: e.CLIPEVAL_MAX_IMAGE_BYTES,
      maxImagePixels: e.CLIPEVAL_MAX_IMAGE_PIXELS,
      imageMemoryBudget: e.CLIPEVAL_IMAGE_MEMORY_BUDGET,
      maxBundleFileBytes: e.CLIPEVAL_MAX_BUNDLE_FILE_BYTES,
    },
    planning: {
      maxDatasetObjects: e.CLIPEVAL_MAX_DATASET_OBJECTS,
      maxClasses: e.CLIPEVAL_MAX_CLASSES,
    },
  };
}
