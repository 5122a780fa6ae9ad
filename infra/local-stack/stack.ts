/**
 * @file The local stack: a Temporal dev server and versitygw on loopback, state under
 * $CLIPEVAL_HOME (default ./.clipeval, git-ignored). `npm run stack:up`, the demo and the test
 * harness's global setup all use stackUp(), so everyone runs the same servers the same way.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  clipevalHome,
  formatEnvFile,
  type StackEnvVariable,
  stackEnvFile,
} from '../../core/config/stack-env';
import { isRunning, stopProcess } from './processes';
import {
  ensureBucket,
  type PortPicker,
  s3Healthy,
  startTemporal,
  startVersitygw,
  temporalHealthy,
} from './servers';
import { resolveTool } from './tools';

export interface StackState {
  temporal: { pid: number; address: string; uiUrl: string; namespace: string; bin: string };
  s3: { pid: number; endpoint: string; bin: string };
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export function stackHome(): string {
  return clipevalHome();
}

const paths = (home: string) => ({
  dir: join(home, 'stack'),
  state: join(home, 'stack', 'state.json'),
  env: stackEnvFile(home),
  temporalDb: join(home, 'stack', 'temporal.db'),
  temporalLog: join(home, 'stack', 'temporal.log'),
  s3Data: join(home, 'stack', 's3', 'data'),
  s3Meta: join(home, 'stack', 's3', 'meta'),
  s3Log: join(home, 'stack', 'versitygw.log'),
});

function readState(home: string): StackState | undefined {
  const file = paths(home).state;
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as StackState;
  } catch {
    return undefined;
  }
}

/**
 * The variables clients and workers need, as written to stack.env: exactly the names the reader
 * accepts (STACK_ENV_VARIABLES in core/config/stack-env.ts), checked by the type.
 */
export function stackEnv(s: StackState): Record<StackEnvVariable, string> {
  return {
    TEMPORAL_ADDRESS: s.temporal.address,
    TEMPORAL_NAMESPACE: s.temporal.namespace,
    CLIPEVAL_S3_ENDPOINT: s.s3.endpoint,
    CLIPEVAL_BUCKET: s.bucket,
    AWS_ACCESS_KEY_ID: s.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s.secretAccessKey,
    AWS_REGION: s.region,
  };
}

async function isHealthy(s: StackState): Promise<boolean> {
  if (!isRunning(s.temporal.pid, 'temporal') || !isRunning(s.s3.pid, 'versitygw')) return false;
  try {
    await temporalHealthy(s.temporal.address, s.temporal.namespace);
    await s3Healthy(s.s3.endpoint, {
      accessKeyId: s.accessKeyId,
      secretAccessKey: s.secretAccessKey,
      region: s.region,
    });
    return true;
  } catch {
    return false;
  }
}

export interface StackUpResult {
  state: StackState;
  env: Record<StackEnvVariable, string>;
  envFile: string;
  /** False when an already running stack was reused. */
  started: boolean;
}

/**
 * Starts the stack in `home` (or reuses a healthy one there). `pickPort` chooses the servers'
 * ports (free ones by default; a test hands out a taken one to check the retry).
 */
export async function stackUp(
  home = stackHome(),
  opts: { pickPort?: PortPicker } = {},
): Promise<StackUpResult> {
  const p = paths(home);
  mkdirSync(p.dir, { recursive: true });
  const previous = readState(home);
  if (previous && (await isHealthy(previous))) {
    const env = stackEnv(previous);
    writeEnvFile(p.env, env); // rewritten, so an older file gets today's quoting and mode
    return { state: previous, env, envFile: p.env, started: false };
  }
  if (previous) await stopStack(previous); // half-running: start both afresh

  const [temporalBin, s3Bin] = [
    await resolveTool('temporal', { install: true }),
    await resolveTool('versitygw', { install: true }),
  ];
  const credentials = {
    // Credentials come from the environment when set; otherwise the stack keeps its own.
    accessKeyId:
      process.env.AWS_ACCESS_KEY_ID ??
      previous?.accessKeyId ??
      `clipeval${randomBytes(6).toString('hex')}`,
    secretAccessKey:
      process.env.AWS_SECRET_ACCESS_KEY ??
      previous?.secretAccessKey ??
      randomBytes(24).toString('hex'),
    region: process.env.AWS_REGION ?? 'us-east-1',
  };
  const bucket = process.env.CLIPEVAL_BUCKET ?? 'clipeval';
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';

  const s3 = await startVersitygw({
    bin: s3Bin.path,
    dataDir: p.s3Data,
    metaDir: p.s3Meta,
    logFile: p.s3Log,
    credentials,
    ...(opts.pickPort ? { pickPort: opts.pickPort } : {}),
  });
  let temporal;
  try {
    temporal = await startTemporal({
      bin: temporalBin.path,
      dbFile: p.temporalDb,
      logFile: p.temporalLog,
      namespace,
      ...(opts.pickPort ? { pickPort: opts.pickPort } : {}),
    });
    await ensureBucket(s3.endpoint, credentials, bucket).catch((err: Error) => {
      throw new Error(
        `versitygw at ${s3.endpoint} (log ${p.s3Log}) could not create bucket "${bucket}": ${err.name}: ${err.message}`,
      );
    });
  } catch (err) {
    await stopProcess(s3.pid, 'versitygw');
    if (temporal) await stopProcess(temporal.pid, 'temporal');
    throw err;
  }
  const state: StackState = {
    temporal: { ...temporal, namespace, bin: temporalBin.path },
    s3: { ...s3, bin: s3Bin.path },
    bucket,
    region: credentials.region,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
  };
  writeFileSync(p.state, JSON.stringify(state, null, 2), { mode: 0o600 });
  const env = stackEnv(state);
  writeEnvFile(p.env, env);
  return { state, env, envFile: p.env, started: true };
}

/**
 * Writes stack.env private to this user (mode 600 on a fresh file, then renamed over the old one:
 * the reader refuses a file that group or others may read or change) with shell-safe quoting.
 */
function writeEnvFile(file: string, env: Record<StackEnvVariable, string>): void {
  const tmp = `${file}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, formatEnvFile(env), { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
}

async function stopStack(s: StackState): Promise<void> {
  await Promise.all([stopProcess(s.temporal.pid, 'temporal'), stopProcess(s.s3.pid, 'versitygw')]);
}

/** Stops both servers; their data (SQLite file, S3 folder) stays for the next stackUp. */
export async function stackDown(home = stackHome()): Promise<boolean> {
  const state = readState(home);
  if (!state) return false;
  await stopStack(state);
  rmSync(paths(home).state, { force: true });
  rmSync(paths(home).env, { force: true });
  return true;
}

export async function stackStatus(
  home = stackHome(),
): Promise<{ state?: StackState; healthy: boolean }> {
  const state = readState(home);
  return state ? { state, healthy: await isHealthy(state) } : { healthy: false };
}
