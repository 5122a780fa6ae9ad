import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The project venv's Python (created by infra/exporter/setup.sh), for reference checks;
 * CLIPEVAL_TEST_PYTHON names another (a venv with numpy, while the project's is being built).
 */
export const VENV_PYTHON =
  process.env.CLIPEVAL_TEST_PYTHON ?? join(__dirname, '..', '..', '.venv', 'bin', 'python');

/**
 * Runs a Python script in the venv with `input` as JSON on stdin and returns what it prints as
 * JSON. Warnings are silenced (sklearn warns on classes absent from y_true, which tests make on
 * purpose); any other stderr output or a non-zero exit fails with the message.
 */
export function runPythonJson(script: string, input: unknown): unknown {
  if (!existsSync(VENV_PYTHON))
    throw new Error(`${VENV_PYTHON} is missing: run bash infra/exporter/setup.sh`);
  const r = spawnSync(VENV_PYTHON, ['-W', 'ignore', '-c', script], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0 || r.stderr) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown;
}
