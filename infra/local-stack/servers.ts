import { Connection } from '@temporalio/client';
import { mkdirSync } from 'node:fs';
import { ObjectStore } from '../../core/storage/object-store';
import { createS3Client } from '../../core/storage/s3-client';
import { freePort, isRunning, spawnDetached, waitFor } from './processes';

export interface TemporalServer {
  pid: number;
  address: string;
  uiUrl: string;
}

/**
 * `temporal server start-dev` on loopback with a SQLite file, so workflows and schedules
 * survive a restart. Every port is chosen free, so several stacks (a developer's and a test
 * run's) can share one machine.
 */
export async function startTemporal(opts: {
  bin: string;
  dbFile: string;
  logFile: string;
  namespace: string;
  /** Frontend port; a free one by default. A restart on the same port lets workers reconnect. */
  port?: number;
}): Promise<TemporalServer> {
  const [port, uiPort, httpPort, metricsPort] = [
    opts.port ?? (await freePort()),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
  ];
  args.push('--http-port', String(httpPort), '--metrics-port', String(metricsPort));
  args.push('--db-filename', opts.dbFile, '--namespace', opts.namespace, '--log-level', 'warn');
  const pid = spawnDetached(opts.bin, args, opts.logFile, process.env);
  const server = { pid, address: `127.0.0.1:${port}`, uiUrl: `http://127.0.0.1:${uiPort}` };
  await waitFor(
    `Temporal dev server (${opts.bin}, log ${opts.logFile})`,
    () => temporalHealthy(server.address, opts.namespace),
    {
      timeoutMs: 90_000,
      alive: () => isRunning(pid, 'temporal'),
      logFile: opts.logFile,
    },
  );
  return server;
}

/** Healthy means: the frontend answers and the namespace exists. */
export async function temporalHealthy(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 2000 });
  try {
    await connection.workflowService.describeNamespace({ namespace });
  } finally {
    await connection.close();
  }
}

export interface S3Server {
  pid: number;
  endpoint: string;
}

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** versitygw with its POSIX backend on a local folder (metadata in a sidecar folder, no xattrs needed). */
export async function startVersitygw(opts: {
  bin: string;
  dataDir: string;
  metaDir: string;
  logFile: string;
  credentials: S3Credentials;
}): Promise<S3Server> {
  mkdirSync(opts.dataDir, { recursive: true });
  mkdirSync(opts.metaDir, { recursive: true });
  const port = await freePort();
  const env = {
    ...process.env,
    ROOT_ACCESS_KEY: opts.credentials.accessKeyId,
    ROOT_SECRET_KEY: opts.credentials.secretAccessKey,
    VGW_REGION: opts.credentials.region,
  };
  const pid = spawnDetached(
    opts.bin,
    ['--port', `127.0.0.1:${port}`, 'posix', '--sidecar', opts.metaDir, opts.dataDir],
    opts.logFile,
    env,
  );
  const server = { pid, endpoint: `http://127.0.0.1:${port}` };
  await waitFor(
    `versitygw (${opts.bin}, log ${opts.logFile})`,
    () => s3Healthy(server.endpoint, opts.credentials),
    {
      timeoutMs: 30_000,
      alive: () => isRunning(pid, 'versitygw'),
      logFile: opts.logFile,
    },
  );
  return server;
}

/** A store on the stack's server with its own credentials (the bucket may not exist yet). */
function stackStore(endpoint: string, c: S3Credentials, bucket: string): ObjectStore {
  const client = createS3Client(
    { endpoint, region: c.region },
    { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
  );
  return new ObjectStore(client, bucket);
}

/**
 * Healthy means: the server answers a signed request (HeadBucket) with these credentials; no
 * answer or a refused signature throws. The probed bucket need not exist (false is an answer).
 */
export async function s3Healthy(endpoint: string, c: S3Credentials): Promise<void> {
  const store = stackStore(endpoint, c, 'clipeval-health-probe');
  try {
    await store.bucketExists();
  } finally {
    store.client.destroy();
  }
}

export async function ensureBucket(
  endpoint: string,
  c: S3Credentials,
  bucket: string,
): Promise<void> {
  const store = stackStore(endpoint, c, bucket);
  try {
    await store.ensureBucket();
  } finally {
    store.client.destroy();
  }
}
