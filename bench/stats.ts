// Shared by every bench: repeats and their summary (median, min-max), the markdown tables the
// benches print (ready to paste into docs/benchmarks.md), the header naming date, machine and
// versions, and the thread lists. One copy, so every figure is summarised the same way.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { PYTHON, ROOT } from './fixtures';

/** Timed repeats per measurement (BENCH_REPEATS, at least 3), each after one untimed warm-up. */
export const REPEATS = Math.max(3, Number(process.env.BENCH_REPEATS ?? 5));

/** The most threads/processes a side gets (BENCH_THREADS, default every core this process may use). */
export const MAX_THREADS = Number(process.env.BENCH_THREADS ?? availableParallelism());

/**
 * The thread counts a scaling table measures: BENCH_THREAD_LIST when set, else 1, 2, 4, ...
 * below MAX_THREADS, and MAX_THREADS itself.
 */
export function threadList(max = MAX_THREADS): number[] {
  const list = process.env.BENCH_THREAD_LIST;
  if (list) return list.split(',').map(Number);
  const out: number[] = [];
  for (let k = 1; k < max; k *= 2) out.push(k);
  return [...out, max];
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many repeats. */
  n: number;
}

export function summarize(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new Error('no repeats to summarise');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

/**
 * One warm-up call, then `repeats` timed calls; each returns its own figure (e.g. images/s).
 * `afterWarmUp` runs between them (e.g. to start an event-loop monitor).
 */
export async function repeat(
  fn: () => Promise<number>,
  repeats = REPEATS,
  afterWarmUp?: () => void,
): Promise<number[]> {
  await fn();
  afterWarmUp?.();
  const out: number[] = [];
  for (let r = 0; r < repeats; r++) out.push(await fn());
  return out;
}

/** A figure with `digits` decimals and thousands separators. */
export function num(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return '-';
  return x.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** "median (min-max)". */
export function spread(s: Spread, digits = 1): string {
  return `${num(s.median, digits)} (${num(s.min, digits)}-${num(s.max, digits)})`;
}

/** `a / b` as "1.23x" (medians over medians). */
export function ratio(a: number, b: number): string {
  return Number.isFinite(a / b) ? `${(a / b).toFixed(2)}x` : '-';
}

/** A GitHub markdown table, columns padded so the source reads as a table too. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]) {
  const widths = headers.map((h, i) => Math.max(3, h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Versions of the Python side (one interpreter start), `?` for what is not installed. */
function pythonVersions(): string {
  const script = `
import importlib, platform
out = ["python " + platform.python_version()]
for name in ("torch", "torchvision", "onnxruntime", "transformers", "PIL", "sklearn", "numpy"):
    try:
        out.append(name + " " + importlib.import_module(name).__version__)
    except Exception:
        out.append(name + " ?")
print(", ".join(out))`;
  const py = spawnSync(PYTHON, ['-c', script], { encoding: 'utf8' });
  return py.status === 0 ? py.stdout.trim() : 'python: not available';
}

/** The lines every bench prints above its tables: what, when, on what, with which versions. */
export function benchHeader(
  title: string,
  details: readonly string[] = [],
  /** The line saying how timings repeat, for a bench whose repeats are not REPEATS'. */
  repeats = `median of ${REPEATS} timed repeats after one warm-up; spread = (min-max) of the repeats`,
): string {
  const ort = (
    JSON.parse(
      readFileSync(join(ROOT, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8'),
    ) as { version: string }
  ).version;
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return [
    `### ${title}`,
    '',
    `- date: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    `- machine: ${availableParallelism()} cores available (${cpus().length} online), ${cpu}`,
    `- node ${process.version}, onnxruntime-node ${ort}; ${pythonVersions()}`,
    `- ${repeats}`,
    ...details.map((d) => `- ${d}`),
    '',
  ].join('\n');
}
