/**
 * @file Everything clipeval reads from the environment, validated in one place. Values come from
 * process.env; when $CLIPEVAL_HOME/stack.env exists (written by `npm run stack:up`), it fills
 * whatever the environment leaves unset, so the local stack works without exporting anything.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, formatIssues } from './errors';

const envSchema = z.object({
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:/]+:\d{1,5}$/, 'expected host:port, e.g. localhost:7233')
    .default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: z.enum(['true', 'false'], 'expected true or false').default('false'),
  /** mTLS: client certificate and key (PEM files, both or neither), optional server CA and SNI. */
  TEMPORAL_TLS_CERT: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS_CA: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
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
  CLIPEVAL_DEFAULT_BUNDLE: z.string().min(1).optional(),
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
});

export interface ClipevalEnv {
  temporal: {
    address: string;
    namespace: string;
    apiKey?: string;
    tls: boolean;
    /** PEM file paths for mTLS / a private CA (implies tls); read when connecting. */
    tlsFiles?: { cert?: string; key?: string; ca?: string; serverName?: string };
  };
  s3: { endpoint?: string; region: string; bucket: string };
  queues: { cpu: string; gpu: string };
  shutdownGrace: string;
  /** Where workers keep model bundles fetched from S3, one folder per bundle hash. */
  bundleCache: string;
  /** The bundle a run uses when its spec names none. */
  defaultBundle: string;
  /** ONNX Runtime: execution providers tried in order, and intra-op threads per session (0: all cores). */
  onnx: { providers: ('cuda' | 'webgpu' | 'cpu')[]; threads: number };
  /** Worker telemetry: Prometheus endpoint (off when unset) and log lines (JSON by default). */
  telemetry: {
    metricsAddress?: string;
    logFormat: 'json' | 'text';
    logLevel: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  };
}

/** Where the local stack keeps its state: $CLIPEVAL_HOME, default ./.clipeval. */
export function clipevalHome(cwd = process.cwd()): string {
  return resolve(cwd, process.env.CLIPEVAL_HOME ?? '.clipeval');
}

/** The env file `npm run stack:up` writes into a stack home: the one place its path is built. */
export function stackEnvFile(home = clipevalHome()): string {
  return join(home, 'stack.env');
}

const filledFromStackEnv = new Set<string>();

/** Where a variable's value came from, for error messages that say where clipeval looked. */
export function envSource(name: string): string {
  if (filledFromStackEnv.has(name)) return `${name} from ${stackEnvFile()}`;
  return process.env[name] !== undefined
    ? `${name} from the environment`
    : `${name} unset, default`;
}

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim().replace(/^'(.*)'$/, '$1');
  }
  return out;
}

/** Reads $CLIPEVAL_HOME/stack.env (if any) and lets it fill variables process.env leaves unset. */
export function loadStackEnvDefaults(cwd = process.cwd()): void {
  const file = stackEnvFile(clipevalHome(cwd));
  if (!existsSync(file)) return;
  for (const [k, v] of Object.entries(parseEnvFile(readFileSync(file, 'utf8')))) {
    if (process.env[k] === undefined) {
      process.env[k] = v;
      filledFromStackEnv.add(k);
    }
  }
}

export function loadEnv(env: NodeJS.ProcessEnv = process.env): ClipevalEnv {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid environment configuration:\n${formatIssues(parsed.error.issues, (p) => p)}\n` +
        `Set these variables (or run \`npm run stack:up\`, which writes ${stackEnvFile()}).`,
      'environment',
    );
  }
  const e = parsed.data;
  if ((e.TEMPORAL_TLS_CERT === undefined) !== (e.TEMPORAL_TLS_KEY === undefined)) {
    throw new ConfigError(
      'Invalid environment configuration: TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (the client certificate and its private key, PEM files).',
      'environment',
    );
  }
  const files = {
    ...(e.TEMPORAL_TLS_CERT ? { cert: e.TEMPORAL_TLS_CERT } : {}),
    ...(e.TEMPORAL_TLS_KEY ? { key: e.TEMPORAL_TLS_KEY } : {}),
    ...(e.TEMPORAL_TLS_CA ? { ca: e.TEMPORAL_TLS_CA } : {}),
    ...(e.TEMPORAL_TLS_SERVER_NAME ? { serverName: e.TEMPORAL_TLS_SERVER_NAME } : {}),
  };
  const tlsFiles = Object.keys(files).length > 0 ? files : undefined;
  return {
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      ...(e.TEMPORAL_API_KEY ? { apiKey: e.TEMPORAL_API_KEY } : {}),
      tls: e.TEMPORAL_TLS === 'true' || e.TEMPORAL_API_KEY !== undefined || tlsFiles !== undefined,
      ...(tlsFiles ? { tlsFiles } : {}),
    },
    s3: {
      ...(e.CLIPEVAL_S3_ENDPOINT ? { endpoint: e.CLIPEVAL_S3_ENDPOINT } : {}),
      region: e.AWS_REGION,
      bucket: e.CLIPEVAL_BUCKET,
    },
    queues: { cpu: e.CLIPEVAL_CPU_QUEUE, gpu: e.CLIPEVAL_GPU_QUEUE },
    shutdownGrace: e.CLIPEVAL_SHUTDOWN_GRACE,
    bundleCache: e.CLIPEVAL_BUNDLE_CACHE,
    defaultBundle:
      e.CLIPEVAL_DEFAULT_BUNDLE ?? `s3://${e.CLIPEVAL_BUCKET}/models/clip-vit-base-patch32/`,
    onnx: {
      providers: e.CLIPEVAL_EXECUTION_PROVIDERS.split(',') as ClipevalEnv['onnx']['providers'],
      threads: e.CLIPEVAL_ORT_THREADS,
    },
    telemetry: {
      ...(e.CLIPEVAL_METRICS_ADDRESS ? { metricsAddress: e.CLIPEVAL_METRICS_ADDRESS } : {}),
      logFormat: e.CLIPEVAL_LOG_FORMAT,
      logLevel: e.CLIPEVAL_LOG_LEVEL,
    },
  };
}

/**
 * The TLS option of a Temporal connection (client and workers alike): false, true (system
 * roots; Temporal Cloud with an API key), or mTLS / a private CA from the PEM files named by
 * TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY and TEMPORAL_TLS_CA.
 */
export function temporalTls(t: ClipevalEnv['temporal']):
  | boolean
  | {
      serverNameOverride?: string;
      serverRootCACertificate?: Uint8Array;
      clientCertPair?: { crt: Uint8Array; key: Uint8Array };
    } {
  if (!t.tlsFiles) return t.tls;
  const read = (path: string, variable: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(
        `Cannot read ${variable}=${path}: ${(err as Error).message}. Point it at a PEM file.`,
        'environment',
      );
    }
  };
  const f = t.tlsFiles;
  return {
    ...(f.serverName ? { serverNameOverride: f.serverName } : {}),
    ...(f.ca ? { serverRootCACertificate: read(f.ca, 'TEMPORAL_TLS_CA') } : {}),
    ...(f.cert && f.key
      ? {
          clientCertPair: {
            crt: read(f.cert, 'TEMPORAL_TLS_CERT'),
            key: read(f.key, 'TEMPORAL_TLS_KEY'),
          },
        }
      : {}),
  };
}
