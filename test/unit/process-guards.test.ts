import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorFields } from '../../workers/process-guards';

// The worker's last line of defence: errors thrown or rejected outside any awaited chain are
// logged as JSON lines and survived; a burst of uncaught exceptions shuts the process down.
function runGuarded(uncaught: number) {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join('test', 'helpers', 'guarded-process.ts'), String(uncaught)],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const lines = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { origin: string; error: { name: string; message: string } });
  return { ...r, lines };
}

describe('worker process guards', () => {
  it('logs an unhandled rejection and an uncaught exception as JSON and keeps serving', () => {
    const r = runGuarded(1);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('still serving');
    expect(r.lines.map((l) => [l.origin, l.error.name, l.error.message])).toEqual([
      ['unhandledRejection', 'Error', 'rejected with nobody awaiting \u2028 it'],
      ['uncaughtException', 'TypeError', 'thrown from a callback 0'],
    ]);
  }, 60_000);

  it('shuts down when uncaught exceptions keep coming (more than maxUncaught in the window)', () => {
    const r = runGuarded(5);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/fatal: 4 uncaught exceptions within 60 s/);
    expect(r.stdout).not.toContain('still serving');
  }, 60_000);

  it('logs errors as plain fields', () => {
    const err = new Error('outer', { cause: new Error('inner') });
    expect(errorFields(err)).toMatchObject({ name: 'Error', message: 'outer', cause: 'inner' });
    expect(errorFields('a string')).toEqual({ value: 'a string' });
  });
});
