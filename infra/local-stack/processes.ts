import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  readlinkSync,
  statSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A free loopback TCP port (bound and released; the server binds it a moment later, so another
 * process may take it meanwhile: startServer retries with new ports when that happens).
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Starts a server in the background (its own process group), logging to a file; returns its pid. */
export function spawnDetached(
  bin: string,
  args: string[],
  logFile: string,
  env: NodeJS.ProcessEnv,
): number {
  const log = openSync(logFile, 'a');
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', log, log], env });
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${bin}`);
  return child.pid;
}

/** True if `pid` is alive and is running `binaryName` (guards against recycled pids). */
export function isRunning(pid: number, binaryName: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const cmdline = `/proc/${pid}/cmdline`;
  if (!existsSync(cmdline)) return true;
  const text = readFileSync(cmdline, 'utf8');
  return text.includes(binaryName) && !/\(zombie\)|<defunct>/.test(text);
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL. */
export async function stopProcess(pid: number, binaryName: string, graceMs = 15000): Promise<void> {
  if (!isRunning(pid, binaryName)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isRunning(pid, binaryName) || isZombie(pid)) return;
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

function isZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/**
 * Polls `check` until it resolves; throws the reason (and the last error) when it gives up. Each
 * check may take `checkTimeoutMs` (default 5 s): a port held by something that accepts
 * connections but never answers must not stall the wait.
 */
export async function waitFor(
  check: () => Promise<unknown>,
  opts: { timeoutMs: number; alive?: () => boolean; checkTimeoutMs?: number },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const checkTimeoutMs = opts.checkTimeoutMs ?? 5000;
  let last: unknown;
  while (Date.now() < deadline) {
    if (opts.alive && !opts.alive()) break;
    try {
      const timeout = new AbortController();
      await Promise.race([
        check(),
        sleep(checkTimeoutMs, undefined, { signal: timeout.signal }).then(() => {
          throw new Error(`no answer within ${checkTimeoutMs / 1000}s`);
        }),
      ]).finally(() => timeout.abort());
      return;
    } catch (err) {
      last = err;
    }
    await sleep(250);
  }
  const why =
    opts.alive && !opts.alive()
      ? 'the process exited'
      : `not healthy after ${opts.timeoutMs / 1000}s`;
  throw new Error(`${why}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

/**
 * A server that did not start: which one, its log file and the log's last lines, all in the
 * message, so a CI log shows what failed without anyone opening the file.
 */
export class ServerStartError extends Error {
  override readonly name = 'ServerStartError';
  constructor(
    readonly server: string,
    readonly logFile: string,
    readonly logTail: string,
    why: string,
    /** It could not bind a port on any try (each chosen free, then taken by another process). */
    readonly portInUse: boolean,
  ) {
    super(`${server}: ${why}\n--- ${logFile} (last lines) ---\n${logTail || '(empty)'}`);
  }
}

/** What a server's own log says when a port it was given is taken. */
const PORT_IN_USE = /address already in use|EADDRINUSE/i;

/** A started server process and the port its health check talks to. */
export interface Launched {
  pid: number;
  port: number;
}

/**
 * Starts a server and waits until it is healthy, race-free with respect to ports: `launch` picks
 * fresh ports each time, and a try whose server fails to bind one (its log says "address already
 * in use": another process took the port after it was chosen) is stopped and retried, up to
 * `tries` times. A healthy answer counts only if the port belongs to the process started (on
 * Linux, from /proc), so a server that lost the port race is never mistaken for the winner.
 * Any other failure throws a ServerStartError naming the server, its log file and the log's end.
 */
export async function startServer<T extends Launched>(opts: {
  server: string;
  binaryName: string;
  logFile: string;
  timeoutMs: number;
  tries?: number;
  launch: () => Promise<T>;
  healthy: (server: T) => Promise<unknown>;
}): Promise<T> {
  const tries = opts.tries ?? 5;
  for (let attempt = 1; ; attempt++) {
    const offset = fileSize(opts.logFile);
    const server = await opts.launch();
    try {
      await waitFor(
        async () => {
          await opts.healthy(server);
          if (listensOn(server.pid, server.port) === false)
            throw new Error(`port ${server.port} answers, but not from pid ${server.pid}`);
        },
        { timeoutMs: opts.timeoutMs, alive: () => isRunning(server.pid, opts.binaryName) },
      );
      return server;
    } catch (err) {
      await stopProcess(server.pid, opts.binaryName, 5000);
      const log = readFrom(opts.logFile, offset);
      const portInUse = PORT_IN_USE.test(log);
      if (portInUse && attempt < tries) {
        console.error(
          `clipeval stack: ${opts.server} could not bind a port (taken after it was chosen); ` +
            `retrying with new ports (try ${attempt + 1} of ${tries})`,
        );
        continue;
      }
      const why = portInUse
        ? `a port it was given was already in use on each of ${tries} tries`
        : (err as Error).message;
      throw new ServerStartError(opts.server, opts.logFile, lastLines(log, 20), why, portInUse);
    }
  }
}

/**
 * Whether `pid` holds a listening TCP socket on `port`: true or false from /proc (Linux),
 * undefined where that cannot be told (another OS, no access).
 */
export function listensOn(pid: number, port: number): boolean | undefined {
  try {
    const inodes = new Set<string>();
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      if (!existsSync(table)) continue;
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        const local = cols[1]?.split(':').pop();
        // st 0A is LISTEN; column 9 is the socket's inode.
        if (cols[3] === '0A' && local && parseInt(local, 16) === port && cols[9])
          inodes.add(cols[9]);
      }
    }
    if (inodes.size === 0) return undefined;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1]!)) return true;
    }
    return false;
  } catch {
    return undefined;
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The file's text from byte `offset` on (what this try's server wrote), at most the last 64 KiB. */
function readFrom(file: string, offset: number): string {
  const size = fileSize(file);
  const start = Math.max(offset, size - 65536);
  if (size <= start) return '';
  const buf = Buffer.alloc(size - start);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, buf.length, start);
  } finally {
    closeSync(fd);
  }
  return buf.toString('utf8');
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}
