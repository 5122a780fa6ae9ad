import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CudaProviderError,
  cudaProviderProblem,
  ortBindingDir,
  usableProviders,
} from '../../core/model/onnx/cuda-provider';
import { SessionThread } from '../../core/model/onnx/session-thread';
import { writeSharedObject } from '../helpers/elf';
import { TINY_BUNDLE } from '../helpers/fixtures';

// Real ELF shared objects (test/helpers/elf.ts): a fake provider library whose NEEDED entries name
// the CUDA libraries, and stand-ins for those in their own folder, so the check runs the system's
// loader (ldd) on the same kind of file it meets in production.
let root: string;
let cudaLibs: string;
let n = 0;

function so(dir: string, file: string, soname: string, needed: string[] = []): void {
  writeSharedObject(join(dir, file), soname, needed);
}

/** A fresh binding folder: libonnxruntime_providers_cuda.so NEEDs `needed` (from cudaLibs). */
function binding(needed: string[], files = ['shared', 'cuda']): string {
  const dir = join(root, `binding-${n++}`);
  mkdirSync(dir);
  if (files.includes('shared'))
    so(dir, 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_shared.so');
  if (files.includes('cuda'))
    so(dir, 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_cuda.so', needed);
  return dir;
}

/** Whether the host itself has `lib` where dlopen looks (a GPU host has the driver's libcuda). */
const hostHas = (lib: string) =>
  (spawnSync('ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '').includes(`${lib} (`);

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'clipeval-cuda-'));
  cudaLibs = join(root, 'cuda');
  mkdirSync(cudaLibs);
  so(cudaLibs, 'libcublasLt.so.13', 'libcublasLt.so.13');
  so(cudaLibs, 'libcudart.so.13', 'libcudart.so.13');
  so(cudaLibs, 'libcudnn.so.9', 'libcudnn.so.9');
  // As the driver installs it: libcuda.so.1 -> libcuda.so.<driver version>.
  so(cudaLibs, 'libcuda.so.580.159.04', 'libcuda.so.1');
  symlinkSync('libcuda.so.580.159.04', join(cudaLibs, 'libcuda.so.1'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const NEEDED = ['libcublasLt.so.13', 'libcudart.so.13', 'libcuda.so.1'];

describe('cudaProviderProblem', () => {
  it('passes when every library resolves (LD_LIBRARY_PATH)', () => {
    const dir = binding(NEEDED);
    expect(cudaProviderProblem({ bindingDir: dir, env: { LD_LIBRARY_PATH: cudaLibs } })).toBe(
      undefined,
    );
  });

  it('names the provider libraries that are not installed, and the recipe', () => {
    const dir = binding(NEEDED, ['shared']);
    const p = cudaProviderProblem({ bindingDir: dir, env: { LD_LIBRARY_PATH: cudaLibs } });
    expect(p).toMatch(/not installed: libonnxruntime_providers_cuda\.so missing from .*binding-/);
    expect(p).toContain('infra/cuda/install-ort-cuda.sh');
    expect(p).toContain('docs/deployment.md, "CUDA execution provider"');
    const noShared = binding(NEEDED, ['cuda']);
    expect(cudaProviderProblem({ bindingDir: noShared, env: {} })).toMatch(
      /libonnxruntime_providers_shared\.so missing/,
    );
  });

  it('names the CUDA libraries the loader cannot find', () => {
    // A NEEDED library whose folder is not on LD_LIBRARY_PATH: copied elsewhere and unlisted.
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere);
    so(elsewhere, 'libcurand.so.10', 'libcurand.so.10');
    const dir = join(root, `binding-${n++}`);
    mkdirSync(dir);
    so(dir, 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_shared.so');
    so(dir, 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_cuda.so', [
      ...NEEDED,
      'libcurand.so.10',
    ]);
    const p = cudaProviderProblem({ bindingDir: dir, env: { LD_LIBRARY_PATH: cudaLibs } });
    expect(p).toMatch(
      /^libonnxruntime_providers_cuda\.so cannot load: libcurand\.so\.10 not found/,
    );
    expect(p).toContain(`LD_LIBRARY_PATH=${cudaLibs}`);
    expect(p).toContain('install-ort-cuda.sh');
    // Nothing on the path: every CUDA library is named (the driver's own message comes after).
    const all = cudaProviderProblem({ bindingDir: dir, env: {} });
    expect(all).toMatch(/libcublasLt\.so\.13, libcudart\.so\.13, libcurand\.so\.10 not found/);
    expect(all).toContain('LD_LIBRARY_PATH=(unset)');
  });

  it.skipIf(hostHas('libcuda.so.1'))('says when the NVIDIA driver is not visible', () => {
    const noDriver = join(root, 'no-driver');
    mkdirSync(noDriver);
    for (const l of ['libcublasLt.so.13', 'libcudart.so.13', 'libcudnn.so.9'])
      symlinkSync(join(cudaLibs, l), join(noDriver, l));
    const dir = binding(NEEDED);
    const p = cudaProviderProblem({ bindingDir: dir, env: { LD_LIBRARY_PATH: noDriver } });
    expect(p).toMatch(/libcuda\.so\.1 \(the NVIDIA driver's library\) not found/);
    expect(p).toContain('driver >= 580');
    expect(p).toContain('NVIDIA container runtime');
  });

  it('refuses a driver older than CUDA 13 needs', () => {
    const old = join(root, 'old-driver');
    mkdirSync(old);
    so(old, 'libcuda.so.550.54.14', 'libcuda.so.1');
    symlinkSync('libcuda.so.550.54.14', join(old, 'libcuda.so.1'));
    const dir = binding(NEEDED);
    const p = cudaProviderProblem({
      bindingDir: dir,
      env: { LD_LIBRARY_PATH: `${old}:${cudaLibs}` },
    });
    expect(p).toMatch(/the NVIDIA driver is 550\.54\.14, .* needs driver >= 580/);
  });

  it.skipIf(hostHas('libcudnn.so.9'))('says when cuDNN (dlopened, not NEEDED) is missing', () => {
    const noCudnn = join(root, 'no-cudnn');
    mkdirSync(noCudnn);
    for (const l of ['libcublasLt.so.13', 'libcudart.so.13', 'libcuda.so.1'])
      symlinkSync(join(cudaLibs, l), join(noCudnn, l));
    const dir = binding(NEEDED);
    const p = cudaProviderProblem({ bindingDir: dir, env: { LD_LIBRARY_PATH: noCudnn } });
    expect(p).toMatch(/^libcudnn\.so\.9 \(cuDNN 9, .*\) not found/);
  });

  it('reports a provider file the loader cannot read', () => {
    const dir = join(root, `binding-${n++}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'libonnxruntime_providers_shared.so'), 'not an ELF file');
    writeFileSync(join(dir, 'libonnxruntime_providers_cuda.so'), 'not an ELF file');
    expect(cudaProviderProblem({ bindingDir: dir, env: {} })).toMatch(
      /^cannot check the CUDA execution provider: ldd cannot read .*libonnxruntime_providers_cuda\.so/,
    );
  });
});

describe('usableProviders', () => {
  it('leaves lists without cuda alone, without looking at any file', () => {
    const warn = vi.fn();
    expect(usableProviders(['webgpu', 'cpu'], warn, { bindingDir: '/nonexistent' })).toEqual([
      'webgpu',
      'cpu',
    ]);
    expect(warn).not.toHaveBeenCalled();
  });

  it('drops cuda with the precise reason when a fallback was listed', () => {
    const warn = vi.fn();
    const dir = binding(NEEDED, ['shared']);
    expect(usableProviders(['cuda', 'webgpu', 'cpu'], warn, { bindingDir: dir })).toEqual([
      'webgpu',
      'cpu',
    ]);
    expect(warn).toHaveBeenCalledWith(
      expect.stringMatching(
        /^execution provider cuda unavailable, falling back to webgpu, cpu: the CUDA execution provider is not installed: libonnxruntime_providers_cuda\.so missing/,
      ),
    );
  });

  it('throws CudaProviderError when cuda is the only provider', () => {
    const dir = binding(NEEDED, ['shared']);
    expect(() => usableProviders(['cuda'], vi.fn(), { bindingDir: dir })).toThrow(
      CudaProviderError,
    );
    expect(() => usableProviders(['cuda'], vi.fn(), { bindingDir: dir })).toThrow(
      /cuda was asked for and cannot load: .*install-ort-cuda\.sh/,
    );
  });

  it('keeps cuda when it can load', () => {
    const dir = binding(NEEDED);
    const env = { LD_LIBRARY_PATH: cudaLibs };
    expect(usableProviders(['cuda', 'cpu'], vi.fn(), { bindingDir: dir, env })).toEqual([
      'cuda',
      'cpu',
    ]);
  });
});

// The real onnxruntime-node of this checkout: npm never installs the CUDA provider, so this is
// the state of every CPU machine (and of a GPU image built without infra/cuda/install-ort-cuda.sh).
describe.skipIf(cudaProviderProblem() === undefined)(
  'SessionThread without the CUDA provider',
  () => {
    const model = join(TINY_BUNDLE, 'text.onnx');

    it('fails a cuda-only session before starting a thread, naming the fix', async () => {
      await expect(SessionThread.start(model, { providers: ['cuda'], threads: 1 })).rejects.toThrow(
        new RegExp(
          `cannot load: .*libonnxruntime_providers_cuda\\.so missing from ${ortBindingDir()}`,
        ),
      );
    });

    it('falls back to the listed provider with the reason in the warning', async () => {
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      try {
        const thread = await SessionThread.start(model, { providers: ['cuda', 'cpu'], threads: 1 });
        expect(thread.provider).toBe('cpu');
        await thread.close();
        expect(warn).toHaveBeenCalledWith(
          expect.stringMatching(/cuda unavailable, falling back to cpu: .*install-ort-cuda\.sh/),
        );
      } finally {
        warn.mockRestore();
      }
    });
  },
);
