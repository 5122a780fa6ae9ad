// Each side of a comparison runs in its own process pinned to the same k cores (taskset), so
// "k threads" means k cores for both, whatever helper threads a side starts (libuv's pool for
// sharp, ONNX Runtime's pool, a DataLoader's parent process). The child prints one JSON line last.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { PYTHON, ROOT } from './fixtures';

const TASKSET = ['/usr/bin/taskset', '/bin/taskset'].find((p) => existsSync(p));

/** Whether sides are pinned (taskset present); the tables say so either way. */
export const PINNED = TASKSET !== undefined;

/** How a row names its cores: "cores 0-3" when pinned, "unpinned" otherwise. */
export function coresLabel(k: number): string {
  return PINNED ? `${k} (cpus 0-${k - 1})` : `${k} (unpinned)`;
}

export interface ChildOptions {
  /** Pin to cpus 0..cores-1 (when taskset exists). */
  cores: number;
  env?: NodeJS.ProcessEnv;
}

function run(cmd: string, args: string[], opts: ChildOptions): unknown {
  if (opts.cores > availableParallelism())
    throw new Error(
      `cannot pin to ${opts.cores} cores: this process may use ${availableParallelism()} (lower BENCH_THREADS)`,
    );
  const [file, argv] = TASKSET
    ? [TASKSET, ['-c', `0-${opts.cores - 1}`, cmd, ...args]]
    : [cmd, args];
  const child = spawnSync(file, argv, {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    env: { ...process.env, ...opts.env },
    cwd: ROOT,
  });
  if (child.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${child.status}):\n${child.stderr}`);
  const last = child.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last);
  } catch {
    throw new Error(`${cmd} printed no JSON result:\n${child.stdout}\n${child.stderr}`);
  }
}

/** A TypeScript child (`bench/<script>`), its one argument the JSON of `args`. */
export function runNode<T>(script: string, args: unknown, opts: ChildOptions): T {
  return run(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench', script), JSON.stringify(args)],
    opts,
  ) as T;
}

/** A Python child (`bench/<script>` in the project venv), its one argument the JSON of `args`. */
export function runPython<T>(script: string, args: unknown, opts: ChildOptions): T {
  if (!existsSync(PYTHON))
    throw new Error('No project venv: run bash infra/exporter/setup.sh first');
  return run(PYTHON, [join(ROOT, 'bench', script), JSON.stringify(args)], opts) as T;
}
