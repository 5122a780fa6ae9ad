/**
 * @file The chaos driver: at seeded times it SIGKILLs cpu and gpu workers (and starts new ones a
 * seeded moment later) and restarts the Temporal dev server once; the fault proxy meanwhile
 * answers 503s, resets connections and slows responses on its own seeded schedule.
 *
 * A kill picks a worker that holds no activity whose loss Temporal only notices after minutes
 * (planning, zero-shot, the probe, summary and report heartbeat every minute or more, or not at
 * all): killing one of those is a valid test of a different promise (the run completes, late),
 * not one a 10-minute soak can wait out. Extraction and CoOp heartbeat on the run spec's short
 * timeout, so a worker mid-shard or mid-training is the preferred victim.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { setTimeout as sleep } from 'node:timers/promises';
import { seededRandom } from '../../test/helpers/fault-proxy';
import type { Kind, PoolWorker, WorkerPool } from './workers';

/** Activities whose dead worker is noticed within seconds (heartbeat timeout from the run spec). */
const SHORT_HEARTBEAT = new Set(['extractShardImages', 'trainCoopPrompts']);

export interface ChaosPlan {
  seed: number;
  kills: Record<Kind, number>;
  /** Events fall in [from, to] ms after the first activity started. */
  windowMs: [number, number];
}

export interface ChaosCounts {
  kills: Record<Kind, number>;
  /** Kills given up because every worker of the kind held a long-heartbeat activity. */
  killsSkipped: number;
  temporalRestarts: number;
  /** Kills that caught their worker inside an extraction or CoOp activity. */
  killsMidActivity: number;
  log: string[];
}

type Event = { at: number; what: 'kill'; kind: Kind } | { at: number; what: 'restart-temporal' };

export function chaosEvents(plan: ChaosPlan): Event[] {
  const r = seededRandom(plan.seed);
  const [from, to] = plan.windowMs;
  const at = () => Math.round(from + r() * (to - from));
  const events: Event[] = [];
  for (const kind of ['gpu', 'cpu'] as const)
    for (let i = 0; i < plan.kills[kind]; i++) events.push({ at: at(), what: 'kill', kind });
  // The restart in the middle half of the window, so work is in flight on both sides of it.
  events.push({
    at: Math.round(from + (0.25 + 0.5 * r()) * (to - from)),
    what: 'restart-temporal',
  });
  return events.sort((a, b) => a.at - b.at);
}

/** Which worker identities (`pid@host`) hold which started activities, over `workflowIds`. */
async function heldActivities(client: Client, workflowIds: string[]) {
  const held = new Map<string, string[]>();
  for (const id of workflowIds) {
    const d = await client.workflow
      .getHandle(id)
      .describe()
      .catch(() => undefined);
    if (!d || d.status.name !== 'RUNNING') continue;
    for (const a of d.raw.pendingActivities ?? []) {
      if (
        a.state !== temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED ||
        !a.lastWorkerIdentity
      )
        continue;
      const pid = a.lastWorkerIdentity.split('@')[0]!;
      held.set(pid, [...(held.get(pid) ?? []), a.activityType?.name ?? '?']);
    }
  }
  return held;
}

export async function runChaos(opts: {
  plan: ChaosPlan;
  pool: WorkerPool;
  client: Client;
  /** Open workflow ids to inspect before a kill (runs, suite cells). */
  workflowIds: () => string[];
  restartTemporal: () => Promise<void>;
  /** True once every run and the suite have closed: remaining events are dropped. */
  done: () => boolean;
}): Promise<ChaosCounts> {
  const { plan, pool } = opts;
  const r = seededRandom(plan.seed ^ 0x5eed);
  const counts: ChaosCounts = {
    kills: { cpu: 0, gpu: 0 },
    killsSkipped: 0,
    temporalRestarts: 0,
    killsMidActivity: 0,
    log: [],
  };
  // The clock starts when the first activity runs (worker start-up takes seconds on a loaded
  // machine): the seeded times are then relative to progress, not to process start-up.
  for (let i = 0; i < 300 && !opts.done(); i++) {
    if ((await heldActivities(opts.client, opts.workflowIds())).size > 0) break;
    await sleep(200);
  }
  const t0 = Date.now();
  const note = (s: string) => counts.log.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${s}`);
  const restarts: Promise<void>[] = [];
  for (const event of chaosEvents(plan)) {
    while (Date.now() - t0 < event.at && !opts.done()) await sleep(100);
    if (opts.done()) break;
    if (event.what === 'restart-temporal') {
      note('restarting the Temporal dev server');
      await opts.restartTemporal();
      counts.temporalRestarts++;
      note('Temporal dev server back');
      continue;
    }
    const victim = await pickVictim(opts, event.kind, r);
    if (!victim) {
      counts.killsSkipped++;
      note(`no ${event.kind} worker safe to kill; skipped`);
      continue;
    }
    const { worker, holding } = victim;
    pool.kill(worker);
    counts.kills[event.kind]++;
    if (holding.some((a) => SHORT_HEARTBEAT.has(a))) counts.killsMidActivity++;
    note(`SIGKILL ${event.kind} worker ${worker.child.pid} holding [${holding.join(', ')}]`);
    const delay = 500 + Math.round(r() * 2000);
    restarts.push(
      sleep(delay).then(() => {
        const w = pool.replace(worker);
        note(`started ${event.kind} worker ${w.child.pid}`);
      }),
    );
  }
  await Promise.all(restarts);
  return counts;
}

async function pickVictim(
  opts: Parameters<typeof runChaos>[0],
  kind: Kind,
  r: () => number,
): Promise<{ worker: PoolWorker; holding: string[] } | undefined> {
  const end = Date.now() + 30_000;
  while (Date.now() < end && !opts.done()) {
    const held = await heldActivities(opts.client, opts.workflowIds());
    const candidates = opts.pool.live(kind).flatMap((worker) => {
      const holding = held.get(String(worker.child.pid)) ?? [];
      return holding.every((a) => SHORT_HEARTBEAT.has(a)) ? [{ worker, holding }] : [];
    });
    // Mid-activity victims first: that is the kill worth testing.
    const busy = candidates.filter((c) => c.holding.length > 0);
    const pool = busy.length > 0 ? busy : candidates;
    if (pool.length > 0) return pool[Math.floor(r() * pool.length)];
    await sleep(300);
  }
  return undefined;
}
