import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A free loopback TCP port (bound and released; the server binds it right after). */
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

/** Polls `check` until it resolves, or fails with the last error after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<unknown>,
  opts: { timeoutMs: number; alive?: () => boolean; logFile?: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (opts.alive && !opts.alive()) break;
    try {
      await check();
      return;
    } catch (err) {
      last = err;
    }
    await sleep(250);
  }
  const tail =
    opts.logFile && existsSync(opts.logFile)
      ? readFileSync(opts.logFile, 'utf8').split('\n').slice(-15).join('\n')
      : '';
  const why =
    opts.alive && !opts.alive()
      ? 'the process exited'
      : `not healthy after ${opts.timeoutMs / 1000}s`;
  throw new Error(
    `${what}: ${why}${last ? ` (last error: ${(last as Error).message})` : ''}` +
      (tail ? `\n--- ${opts.logFile} (last lines) ---\n${tail}` : ''),
  );
}
