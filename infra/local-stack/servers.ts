import { Connection } from '@temporalio/client';
import { mkdirSync } from 'node:fs';
import { ObjectStore } from '../../core/storage/object-store';
import { createS3Client } from '../../core/storage/s3-client';
import { freePort, spawnDetached, startServer } from './processes';

export interface TemporalServer {
  pid: number;
  address: string;
  uiUrl: string;
}

/** Picks a port; freePort by default (tests pass one that hands out a taken port first). */
export type PortPicker = () => Promise<number>;

/** `n` different ports from `pick`, starting with `fixed` when given. */
async function pickPorts(n: number, pick: PortPicker, fixed?: number): Promise<number[]> {
  const ports = fixed === undefined ? [] : [fixed];
  for (let i = 0; ports.length < n; i++) {
    const port = await pick();
    if (!ports.includes(port) || i >= 4 * n) ports.push(port);
  }
  return ports;
}

/**
 * `temporal server start-dev` on loopback with a SQLite file, so workflows and schedules
 * survive a restart. Every port is chosen free, so several stacks (a developer's and a test
 * run's) can share one machine; if one is taken before the server binds it, the server is
 * started again on new ones (startServer).
 */
export async function startTemporal(opts: {
  bin: string;
  dbFile: string;
  logFile: string;
  namespace: string;
  /** Frontend port; a free one by default. A restart on the same port lets workers reconnect. */
  port?: number;
  pickPort?: PortPicker;
  /** Starts tried when a port turns out to be taken (default 5). */
  tries?: number;
}): Promise<TemporalServer> {
  const started = await startServer({
    server: `Temporal dev server (${opts.bin})`,
    binaryName: 'temporal',
    logFile: opts.logFile,
    timeoutMs: 90_000,
    ...(opts.tries ? { tries: opts.tries } : {}),
    launch: async () => {
      const [port, uiPort, httpPort, metricsPort] = (await pickPorts(
        4,
        opts.pickPort ?? freePort,
        opts.port,
      )) as [number, number, number, number];
      const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port)];
      args.push('--ui-port', String(uiPort), '--http-port', String(httpPort));
      args.push('--metrics-port', String(metricsPort), '--db-filename', opts.dbFile);
      args.push('--namespace', opts.namespace, '--log-level', 'warn');
      const pid = spawnDetached(opts.bin, args, opts.logFile, process.env);
      return { pid, port, address: `127.0.0.1:${port}`, uiUrl: `http://127.0.0.1:${uiPort}` };
    },
    healthy: (server) => temporalHealthy(server.address, opts.namespace),
  });
  return { pid: started.pid, address: started.address, uiUrl: started.uiUrl };
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
  pickPort?: PortPicker;
  /** Starts tried when the port turns out to be taken (default 5). */
  tries?: number;
}): Promise<S3Server> {
  mkdirSync(opts.dataDir, { recursive: true });
  mkdirSync(opts.metaDir, { recursive: true });
  const env = {
    ...process.env,
    ROOT_ACCESS_KEY: opts.credentials.accessKeyId,
    ROOT_SECRET_KEY: opts.credentials.secretAccessKey,
    VGW_REGION: opts.credentials.region,
  };
  const started = await startServer({
    server: `versitygw (${opts.bin})`,
    binaryName: 'versitygw',
    logFile: opts.logFile,
    timeoutMs: 30_000,
    ...(opts.tries ? { tries: opts.tries } : {}),
    launch: async () => {
      const port = await (opts.pickPort ?? freePort)();
      const pid = spawnDetached(
        opts.bin,
        ['--port', `127.0.0.1:${port}`, 'posix', '--sidecar', opts.metaDir, opts.dataDir],
        opts.logFile,
        env,
      );
      return { pid, port, endpoint: `http://127.0.0.1:${port}` };
    },
    healthy: (server) => s3Healthy(server.endpoint, opts.credentials),
  });
  return { pid: started.pid, endpoint: started.endpoint };
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
