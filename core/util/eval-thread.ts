/**
 * @file Worker threads started from plain JavaScript source (`eval: true`), the one way clipeval
 * starts threads: no TypeScript loader is needed to start them, so they start the same from tsx
 * (`npm run worker`, benches), from vitest and from the compiled dist/.
 *
 * A thread that runs clipeval's own code (not only a package) loads it in its source with
 * `loadModule(path)`, `path` from `modulePath()`: the compiled `.js` file when clipeval runs
 * from dist/, the `.ts` source when it runs from source, compiled by tsx's CommonJS hook
 * registered in that thread (unless the thread already has one, inherited from a tsx parent).
 * So a thread runs the very functions the main thread runs, never a second copy of them.
 */
import { dirname, extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';

// Prepended to every thread's source: defines loadModule() and nothing else.
const PRELUDE = `
const loadModule = ((tsx) => (path) => {
  if (path.endsWith('.ts') && !require.extensions['.ts']) {
    if (!tsx) throw new Error('cannot load ' + path + ' in a thread: tsx is not installed');
    require(tsx).register();
  }
  return require(path);
})(require('node:worker_threads').workerData.tsxCjsApi);
`;

/** The path of module `name` in `dir`, with the extension this code runs from (`.ts` or `.js`). */
export function modulePath(callerFile: string, name: string): string {
  return join(dirname(callerFile), name + extname(callerFile));
}

/** Starts a thread running `source` (CommonJS: `require`, `loadModule`, `workerData`). */
export function startEvalThread(source: string, workerData: Record<string, unknown>): Worker {
  return new Worker(PRELUDE + source, {
    eval: true,
    workerData: { ...workerData, tsxCjsApi: tsxCjsApi() },
  });
}

let tsxPath: string | null | undefined;

/** tsx's CommonJS API when installed (a dev dependency: absent where only dist/ runs). */
function tsxCjsApi(): string | null {
  if (tsxPath === undefined) {
    try {
      tsxPath = require.resolve('tsx/cjs/api');
    } catch {
      tsxPath = null;
    }
  }
  return tsxPath;
}
