import { afterEach, describe, expect, it, vi } from 'vitest';
import { workerLogger } from '../../workers/telemetry';

// Issue 27: the demo and every gpu worker printed the SDK's "[WARN] No workflows registered",
// which describes the design (gpu workers run no workflows), not a problem.
describe('the worker logger', () => {
  afterEach(() => vi.restoreAllMocks());

  function captured(format: 'json' | 'text', log: (l: ReturnType<typeof workerLogger>) => void) {
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    log(workerLogger('INFO', format));
    vi.restoreAllMocks();
    return lines;
  }

  it.each(['json', 'text'] as const)(
    'drops the gpu worker notice and keeps other warnings (%s)',
    (format) => {
      const lines = captured(format, (l) => {
        l.warn('No workflows registered, not polling for workflow tasks');
        l.warn('Activity failed', { activityType: 'zeroShot' });
        l.debug('below the level');
      });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('Activity failed');
      expect(lines[0]).toContain('zeroShot');
      if (format === 'json') expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'WARN' });
      else expect(lines[0]).toMatch(/\[WARN\] Activity failed/);
    },
  );
});
