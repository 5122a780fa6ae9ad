import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The two servers of the local stack, built from source with pinned versions. */
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
  const r = spawnSync('go', ['install', pkgAtVersion], {
    env: { ...process.env, GOBIN: gobin, CGO_ENABLED: '0' },
    stdio: ['ignore', 'inherit', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status === 0) return undefined;
  process.stderr.write(r.stderr);
  return (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-3).join(' | ');
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
export function toolVersion(path: string): string {
  try {
    return execFileSync(path, ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return existsSync(path) ? 'unknown version' : 'missing';
  }
}
