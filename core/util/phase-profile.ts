/**
 * @file Where one process's extraction time goes, for bench/extract.ts's split table: each phase
 * (S3 reads, decode, resample, inference, ...) records the intervals it was busy, and `phaseTotals`
 * gives per phase the summed busy time and the wall time during which at least one interval of it
 * was open. Off unless a bench turns it on (`enablePhaseProfile`, from a module preloaded into the
 * worker): then `timed` is one `performance.now()` pair per call; off, it is one property read.
 *
 * The profile lives on `globalThis` under a registered symbol, not in this module's scope, so the
 * preloaded bench module and the worker's own code see one profile even if a loader gives them
 * two instances of this file.
 */

export const PHASES = [
  's3-read',
  'decode',
  'resample',
  'inference',
  'pixel-cache-read',
  'pixel-cache-write',
  'shard-write',
] as const;
export type Phase = (typeof PHASES)[number];

type Profile = Map<Phase, number[]>; // flat [start, end, start, end, ...] per phase

const KEY = Symbol.for('clipeval.phaseProfile');
const holder = globalThis as { [KEY]?: Profile };

/** Starts recording (or starts over): the bench calls this before each timed run. */
export function enablePhaseProfile(): void {
  holder[KEY] = new Map();
}

/** Runs `fn`, recording its interval under `phase` when profiling is on. */
export async function timed<T>(phase: Phase, fn: () => Promise<T>): Promise<T> {
  if (!holder[KEY]) return fn();
  const start = performance.now();
  try {
    return await fn();
  } finally {
    record(phase, start);
  }
}

/** timed() for work that does not await (the main thread's resample). */
export function timedSync<T>(phase: Phase, fn: () => T): T {
  if (!holder[KEY]) return fn();
  const start = performance.now();
  try {
    return fn();
  } finally {
    record(phase, start);
  }
}

function record(phase: Phase, start: number): void {
  const profile = holder[KEY];
  if (!profile) return;
  let spans = profile.get(phase);
  if (!spans) profile.set(phase, (spans = []));
  spans.push(start, performance.now());
}

export interface PhaseTotal {
  /** Summed duration of every interval (concurrent ones counted each). */
  busyMs: number;
  /** Time during which at least one interval was open (the union). */
  wallMs: number;
  count: number;
}

/** Per phase recorded since enablePhaseProfile (empty when profiling is off). */
export function phaseTotals(): Partial<Record<Phase, PhaseTotal>> {
  const out: Partial<Record<Phase, PhaseTotal>> = {};
  for (const [phase, flat] of holder[KEY] ?? []) {
    const spans: [number, number][] = [];
    for (let i = 0; i < flat.length; i += 2) spans.push([flat[i]!, flat[i + 1]!]);
    spans.sort((a, b) => a[0] - b[0]);
    let busyMs = 0;
    let wallMs = 0;
    let open = -Infinity;
    for (const [s, e] of spans) {
      busyMs += e - s;
      if (e > open) {
        wallMs += e - Math.max(s, open);
        open = e;
      }
    }
    out[phase] = { busyMs, wallMs, count: spans.length };
  }
  return out;
}
