/**
 * @file Can this process load ONNX Runtime's CUDA execution provider? onnxruntime-node ships only
 * cpu and webgpu; the CUDA provider is two libraries put next to its binding by
 * infra/cuda/install-ort-cuda.sh, and they need the CUDA 13 and cuDNN 9 libraries and the NVIDIA
 * driver. When any of that is missing, ONNX Runtime's only message is "Failed to load shared
 * library" (the reason goes to stderr), so this check names the missing piece and the fix first.
 *
 * Resolution is asked of the system's own dynamic loader (`ldd`, i.e. ld.so --list), not
 * re-implemented: it applies exactly the rules that ORT's dlopen will (LD_LIBRARY_PATH, RUNPATH
 * and $ORIGIN, the ld.so cache, glibc-hwcaps and default folders) and follows the libraries'
 * own dependencies (libcublas.so.13 needs libcublasLt.so.13). cuDNN is dlopened by name when a
 * session first needs it, so it is not among the NEEDED entries; it is looked for where dlopen
 * looks (LD_LIBRARY_PATH, the ld.so cache, the default folders), then checked with ldd as well.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The provider's two libraries, looked for beside libonnxruntime.so.1. */
export const CUDA_PROVIDER_LIBRARIES = [
  'libonnxruntime_providers_shared.so',
  'libonnxruntime_providers_cuda.so',
] as const;
const PROVIDER = 'libonnxruntime_providers_cuda.so';
const DRIVER = 'libcuda.so.1';
const CUDNN = 'libcudnn.so.9';
/** The first driver branch with CUDA 13, the CUDA of onnxruntime-gpu 1.30's wheel. */
export const MIN_DRIVER_MAJOR = 580;

const FIX_DOC = 'docs/deployment.md, "CUDA execution provider"';
const RECIPE =
  'run `bash infra/cuda/install-ort-cuda.sh` (onnxruntime-gpu and the CUDA 13 libraries from ' +
  'PyPI) and source the env.sh it writes';

/** Thrown where cuda is the only execution provider asked for and it cannot load. */
export class CudaProviderError extends Error {
  override readonly name = 'CudaProviderError';
}

/** onnxruntime-node's binding folder: where ORT looks for the provider libraries. */
export function ortBindingDir(): string {
  const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
  return join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

interface Ldd {
  found: Map<string, string>;
  missing: string[];
  error?: string;
}

function ldd(file: string, env: NodeJS.ProcessEnv): Ldd {
  const r = spawnSync('ldd', [file], { env, encoding: 'utf8' });
  const found = new Map<string, string>();
  const missing: string[] = [];
  if (r.error) return { found, missing, error: `cannot run ldd (${r.error.message})` };
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*(\S+) => (?:not found|(\S+) \(0x[0-9a-f]+\))\s*$/.exec(line);
    if (!m) continue;
    if (m[2] === undefined) missing.push(m[1]!);
    else found.set(m[1]!, m[2]);
  }
  if (r.status !== 0 && found.size === 0 && missing.length === 0)
    return {
      found,
      missing,
      error: `ldd cannot read ${file}: ${r.stderr.trim() || r.stdout.trim()}`,
    };
  return { found, missing };
}

/** Where dlopen would find a library named without a slash, or undefined. */
function dlopenPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean))
    if (existsSync(join(dir, name))) return join(dir, name);
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    const r = spawnSync(ldconfig, ['-p'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) continue;
    const line = r.stdout
      .split('\n')
      .find((l) => l.trim().startsWith(`${name} (`) && /x86-64|64bit/.test(l));
    if (line) return line.split(' => ')[1]?.trim();
    break;
  }
  for (const dir of ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64'])
    if (existsSync(join(dir, name))) return join(dir, name);
  return undefined;
}

/** The driver's version from the file libcuda.so.1 points at (libcuda.so.580.159.04), if named so. */
function driverVersion(path: string): string | undefined {
  try {
    return /^libcuda\.so\.(\d+\.\d+(?:\.\d+)?)$/.exec(basename(realpathSync(path)))?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Why the CUDA provider cannot load in this process, naming the missing library and the fix;
 * undefined when everything it needs resolves. The driver comes last, so that where only the
 * driver is missing (an image build, a host without GPU) everything else has been checked. Checks
 * files only: a GPU the driver cannot open still fails later, in ONNX Runtime ("CUDA failure 100:
 * no CUDA-capable device is detected").
 */
export function cudaProviderProblem(
  opts: { bindingDir?: string; env?: NodeJS.ProcessEnv } = {},
): string | undefined {
  const dir = opts.bindingDir ?? ortBindingDir();
  const env = opts.env ?? process.env;
  const absent = CUDA_PROVIDER_LIBRARIES.filter((f) => !existsSync(join(dir, f)));
  if (absent.length > 0)
    return `the CUDA execution provider is not installed: ${absent.join(' and ')} missing from ${dir} (onnxruntime-node ships only cpu and webgpu): ${RECIPE} (${FIX_DOC})`;
  const deps = ldd(join(dir, PROVIDER), env);
  if (deps.error) return `cannot check the CUDA execution provider: ${deps.error}`;
  const ldPath = `LD_LIBRARY_PATH=${env.LD_LIBRARY_PATH ?? '(unset)'}`;
  const libraries = deps.missing.filter((n) => n !== DRIVER);
  if (libraries.length > 0)
    return `${PROVIDER} cannot load: ${libraries.join(', ')} not found (${ldPath}), CUDA 13 libraries the provider needs: ${RECIPE}, or put their folders on LD_LIBRARY_PATH (${FIX_DOC})`;
  const cudnn = dlopenPath(CUDNN, env);
  if (cudnn === undefined)
    return `${CUDNN} (cuDNN 9, which the CUDA provider opens for convolutions) not found (${ldPath}): ${RECIPE} (${FIX_DOC})`;
  const cudnnDeps = ldd(cudnn, env);
  if (cudnnDeps.error || cudnnDeps.missing.length > 0)
    return `${cudnn} cannot load: ${cudnnDeps.error ?? `${cudnnDeps.missing.join(', ')} not found`} (${ldPath}): ${RECIPE} (${FIX_DOC})`;
  if (deps.missing.includes(DRIVER))
    return `${PROVIDER} cannot load: ${DRIVER} (the NVIDIA driver's library) not found, so no NVIDIA driver is visible to this process. Install driver >= ${MIN_DRIVER_MAJOR} (CUDA 13) on the host; in a container, run with the NVIDIA container runtime (docker --gpus, or a nvidia.com/gpu resource) and NVIDIA_DRIVER_CAPABILITIES including compute (${FIX_DOC})`;
  const version = driverVersion(deps.found.get(DRIVER) ?? '');
  if (version !== undefined && Number(version.split('.')[0]) < MIN_DRIVER_MAJOR)
    return `the NVIDIA driver is ${version}, but the CUDA execution provider is built for CUDA 13, which needs driver >= ${MIN_DRIVER_MAJOR} (${FIX_DOC})`;
  return undefined;
}

const checked = new Map<string, string | undefined>();

/**
 * The execution providers to try, in the order given, without cuda when cuda cannot load (the
 * reason goes to `warn`). Throws CudaProviderError when cuda was the only provider asked for:
 * the caller then fails before any work starts instead of running somewhere it was not asked to.
 * The file check runs once per process (per binding folder and LD_LIBRARY_PATH).
 */
export function usableProviders<P extends string>(
  providers: readonly P[],
  warn: (message: string) => void,
  opts: { bindingDir?: string; env?: NodeJS.ProcessEnv } = {},
): P[] {
  if (!providers.includes('cuda' as P)) return [...providers];
  const key = `${opts.bindingDir ?? ''}\0${(opts.env ?? process.env).LD_LIBRARY_PATH ?? ''}`;
  if (!checked.has(key)) checked.set(key, cudaProviderProblem(opts));
  const problem = checked.get(key);
  if (problem === undefined) return [...providers];
  const rest = providers.filter((p) => p !== 'cuda');
  if (rest.length === 0)
    throw new CudaProviderError(
      `Execution provider cuda was asked for and cannot load: ${problem}`,
    );
  warn(`execution provider cuda unavailable, falling back to ${rest.join(', ')}: ${problem}`);
  return rest;
}
