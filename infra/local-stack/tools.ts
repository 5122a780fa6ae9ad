import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';

/**
 * The two servers of the local stack and kustomize (for the KEDA scaler check's rendered
 * manifests), built from source with pinned versions.
 */
export const TOOLS = {
  temporal: {
    envVar: 'TEMPORAL_CLI_PATH',
    binary: 'temporal',
    goPackage: 'github.com/temporalio/cli/cmd/temporal',
    // v1.6.0 and later carry `replace` directives in go.mod, which `go install pkg@version` refuses.
    version: 'v1.5.1',
  },
  versitygw: {
    envVar: 'VERSITYGW_PATH',
    binary: 'versitygw',
    goPackage: 'github.com/versity/versitygw/cmd/versitygw',
    version: 'v1.7.0',
  },
  kustomize: {
    envVar: 'KUSTOMIZE_PATH',
    binary: 'kustomize',
    goPackage: 'sigs.k8s.io/kustomize/kustomize/v5',
    // Same version and cache folder as infra/validate.sh (KUSTOMIZE_VERSION), so one build serves both.
    version: 'v5.8.2',
    versionArgs: ['version'], // kustomize has no --version flag
  },
} as const;

export type ToolName = keyof typeof TOOLS;

export interface ResolvedTool {
  path: string;
  /** Where it came from, for messages: env var, PATH, cache, go install, sdk download. */
  source: string;
}

/** Built tools live outside the clone, so CI runs and fresh clones on one machine share them. */
export function toolCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return process.env.CLIPEVAL_TOOL_CACHE ?? join(base, 'clipeval', 'tools');
}

const isExecutable = (p: string) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

function onPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, binary))) return join(dir, binary);
  }
  return undefined;
}

/**
 * Finds a tool in this order: its env var, PATH, the tool cache, `go install` into the cache,
 * and (temporal only) the Temporal SDK's own download, which needs internet access.
 * Every step that was tried is named in the error when all fail.
 */
export async function resolveTool(
  name: ToolName,
  opts: { install: boolean },
): Promise<ResolvedTool> {
  const tool = TOOLS[name];
  const fromEnv = process.env[tool.envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv))
      throw new Error(`${tool.envVar}=${fromEnv} is not an executable file`);
    return { path: fromEnv, source: tool.envVar };
  }
  const pathHit = onPath(tool.binary);
  if (pathHit) return { path: pathHit, source: 'PATH' };

  const dir = join(toolCacheDir(), `${name}-${tool.version}`);
  const cached = join(dir, tool.binary);
  if (isExecutable(cached)) return { path: cached, source: 'cache' };

  const tried = [
    `$${tool.envVar} (unset)`,
    `${tool.binary} on PATH (not found)`,
    `${cached} (not built)`,
  ];
  if (!opts.install) {
    throw new Error(
      `${name} not found; tried ${tried.join(', ')}. Run \`npm run stack:install\` to build it.`,
    );
  }
  if (onPath('go')) {
    const goError = goInstall(`${tool.goPackage}@${tool.version}`, dir);
    if (goError === undefined && isExecutable(cached))
      return { path: cached, source: 'go install' };
    tried.push(`go install ${tool.goPackage}@${tool.version} (failed: ${goError})`);
  } else {
    tried.push('go install (no go on PATH)');
  }
  if (name === 'temporal') {
    try {
      return {
        path: await sdkDownload(join(toolCacheDir(), 'temporal-sdk-download')),
        source: 'sdk download',
      };
    } catch (err) {
      tried.push(`Temporal SDK download (failed: ${(err as Error).message.split('\n')[0]})`);
    }
  }
  throw new Error(`Cannot provide ${name}. Tried:\n  - ${tried.join('\n  - ')}`);
}

function goInstall(pkgAtVersion: string, gobin: string): string | undefined {
  mkdirSync(gobin, { recursive: true });
  console.error(
    `clipeval: building ${pkgAtVersion} with go install (once per machine; can take minutes)...`,
  );
  return goRun(['install', pkgAtVersion], { GOBIN: gobin });
}

/** Runs `go args...` (no cgo); undefined on success, else the last lines of its stderr. */
function goRun(args: string[], env: Record<string, string>, cwd?: string): string | undefined {
  const r = spawnSync('go', args, {
    cwd,
    env: { ...process.env, ...env, CGO_ENABLED: '0' },
    stdio: ['ignore', 'inherit', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status === 0) return undefined;
  process.stderr.write(r.stderr ?? '');
  return (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-3).join(' | ');
}

/**
 * infra/keda-check: a Go program around KEDA's own Temporal scaler. Found from this file in the
 * source tree (infra/local-stack) and in the build output (dist/infra/local-stack) alike.
 */
export const KEDA_CHECK_DIR =
  [
    resolve(__dirname, '..', 'keda-check'),
    resolve(__dirname, '..', '..', '..', 'infra', 'keda-check'),
  ].find((d) => existsSync(join(d, 'go.mod'))) ?? resolve(__dirname, '..', 'keda-check');

/**
 * The cache key of keda-check: its go.mod, go.sum and sources. go.mod/go.sum pin KEDA and every
 * dependency; the sources are in the key too, so an edit to the program is never run stale.
 */
export function kedaCheckKey(dir = KEDA_CHECK_DIR): string {
  const hash = createHash('sha256');
  const files = readdirSync(dir)
    .filter((f) => f === 'go.mod' || f === 'go.sum' || f.endsWith('.go'))
    .sort();
  for (const f of files)
    hash
      .update(`${f}\0`)
      .update(readFileSync(join(dir, f)))
      .update('\0');
  return hash.digest('hex').slice(0, 16);
}

/**
 * keda-check from $KEDA_CHECK_PATH, else the tool cache (keda-check-<key>), else (install) built
 * there with `go build` once per machine. KEDA's scaler package compiles every scaler's cloud SDK,
 * so the first build takes minutes (figures in docs/deployment.md); Go's caches make rebuilds fast.
 */
export function resolveKedaCheck(opts: { install: boolean }): ResolvedTool {
  const fromEnv = process.env.KEDA_CHECK_PATH;
  if (fromEnv) {
    if (!isExecutable(fromEnv))
      throw new Error(`KEDA_CHECK_PATH=${fromEnv} is not an executable file`);
    return { path: fromEnv, source: 'KEDA_CHECK_PATH' };
  }
  const dir = join(toolCacheDir(), `keda-check-${kedaCheckKey()}`);
  const binary = join(dir, 'keda-check');
  if (isExecutable(binary)) return { path: binary, source: 'cache' };
  if (!opts.install) {
    throw new Error(
      `keda-check is not built for this version of ${KEDA_CHECK_DIR} (no ${binary}). ` +
        'Run `npm run stack:install` to build it.',
    );
  }
  if (!onPath('go')) throw new Error(`go is needed to build keda-check (${KEDA_CHECK_DIR})`);
  mkdirSync(dir, { recursive: true });
  console.error(
    `clipeval: building ${KEDA_CHECK_DIR} (KEDA's scaler; once per machine, minutes)...`,
  );
  // Built under a temporary name and renamed, so an interrupted build never looks cached.
  const partial = `${binary}.partial-${process.pid}`;
  const goError = goRun(
    ['build', '-trimpath', '-mod=readonly', '-o', partial, '.'],
    {},
    KEDA_CHECK_DIR,
  );
  if (goError !== undefined) throw new Error(`go build of ${KEDA_CHECK_DIR} failed: ${goError}`);
  renameSync(partial, binary);
  return { path: binary, source: 'go build' };
}

/**
 * Last resort: let @temporalio/testing download the CLI (it caches by version), stop the
 * server it starts, and run the cached binary ourselves. Works only with internet access.
 */
async function sdkDownload(downloadDir: string): Promise<string> {
  mkdirSync(downloadDir, { recursive: true });
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'cached-download', downloadDir } },
  });
  await env.teardown();
  const found = readdirSync(downloadDir)
    .map((f) => join(downloadDir, f))
    .find((p) => /temporal/.test(p) && isExecutable(p));
  if (!found) throw new Error(`the SDK download left no executable in ${downloadDir}`);
  return found;
}

/** The tool's own version line, for `stack:status` and logs. */
export function toolVersion(path: string, args = ['--version']): string {
  try {
    return execFileSync(path, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')[0]!
      .trim();
  } catch {
    return existsSync(path) ? 'unknown version' : 'missing';
  }
}

/**
 * Builds (once per machine; cached) every tool the tests use: the two servers, kustomize and
 * keda-check. `npm run stack:install` and the test setup both call it, so `npm test` on a bare
 * machine needs no step before it.
 */
export async function installTools(): Promise<{ name: string; tool: ResolvedTool }[]> {
  const out: { name: string; tool: ResolvedTool }[] = [];
  for (const name of ['temporal', 'versitygw', 'kustomize'] as const)
    out.push({ name, tool: await resolveTool(name, { install: true }) });
  out.push({ name: 'keda-check', tool: resolveKedaCheck({ install: true }) });
  return out;
}
