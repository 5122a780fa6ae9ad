/**
 * @file The chaos phase's workers: separate cpu and gpu worker processes (workers/cpu.ts and
 * workers/gpu.ts, as deployed), SIGKILLed and restarted by the chaos driver, their S3 endpoint
 * the fault proxy. Their resident memory is sampled from /proc while they run.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ClipevalEnv } from '../../core/config/env';
import { spawnWorkerProcess } from '../../test/helpers/stack';

export type Kind = 'cpu' | 'gpu';

export interface PoolWorker {
  kind: Kind;
  slot: number;
  child: ChildProcess & { logPath: string };
  /** Set when the driver killed it (an exit it did not cause is a crash). */
  killed: boolean;
}

/** VmRSS of a process in bytes (0 when it is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export class WorkerPool {
  readonly workers: PoolWorker[] = [];
  /** Exits the driver did not cause, with the worker's log. */
  readonly crashes: { kind: Kind; code: number | null; log: string }[] = [];
  peakRss: Record<Kind, number> = { cpu: 0, gpu: 0 };
  private sampler?: NodeJS.Timeout;

  constructor(
    private readonly env: ClipevalEnv,
    private readonly workerEnv: Record<string, string>,
  ) {}

  start(perKind: number): void {
    for (const kind of ['cpu', 'gpu'] as const)
      for (let slot = 0; slot < perKind; slot++) this.spawn(kind, slot);
    this.sampler = setInterval(() => this.sample(), 250);
  }

  private spawn(kind: Kind, slot: number): PoolWorker {
    const child = spawnWorkerProcess(this.env, kind, this.workerEnv);
    const w: PoolWorker = { kind, slot, child, killed: false };
    child.on('exit', (code) => {
      if (w.killed) return;
      let log = '';
      try {
        log = readFileSync(child.logPath, 'utf8').slice(-2000);
      } catch {
        // no log
      }
      this.crashes.push({ kind, code, log });
      // A crashed worker is replaced too, so a crash is reported instead of stalling the soak.
      if (!this.stopped) this.replace(w);
    });
    this.workers.push(w);
    return w;
  }

  private stopped = false;

  live(kind: Kind): PoolWorker[] {
    return this.workers.filter((w) => w.kind === kind && w.child.exitCode === null && !w.killed);
  }

  /** SIGKILLs a worker (a machine dies: no shutdown, no goodbye to Temporal). */
  kill(w: PoolWorker): void {
    w.killed = true;
    w.child.kill('SIGKILL');
  }

  /** Starts a new worker in the dead one's slot. */
  replace(dead: PoolWorker): PoolWorker {
    return this.spawn(dead.kind, dead.slot);
  }

  private sample(): void {
    for (const w of this.workers) {
      if (w.child.exitCode !== null || w.child.pid === undefined) continue;
      this.peakRss[w.kind] = Math.max(this.peakRss[w.kind], rssBytes(w.child.pid));
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.sampler) clearInterval(this.sampler);
    for (const w of this.workers) if (w.child.exitCode === null) this.kill(w);
  }
}
