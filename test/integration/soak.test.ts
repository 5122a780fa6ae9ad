import { describe, expect, it } from 'vitest';
import { loadEnv } from '../../core/config/env';
import { MAX_ATTEMPTS, RSS_BUDGET, runSoak, soakTable } from '../../bench/soak/run';

// The chaos soak at its small size (bench/soak/run.ts; `npm run soak` runs the full one): four
// runs over four datasets in three formats and a 2x2 suite, first undisturbed, then again while
// cpu and gpu worker processes are SIGKILLed and restarted, S3 answers 503s, resets and slow
// responses through the fault proxy, and the Temporal server restarts once.
describe('chaos soak (small)', () => {
  it('completes every run and cell with the baseline metrics and no orphaned object', async () => {
    const r = await runSoak({ env: loadEnv(), size: 'small', seed: 26 });
    console.log(soakTable(r));
    expect(r.failures).toEqual([]);
    expect(r.runs).toEqual({ total: 4, completed: 4 });
    expect(r.cells).toEqual({ total: 4, completed: 4 });
    expect(r.mismatches).toEqual([]);
    expect(r.orphans).toEqual([]);
    expect(r.chaos.kills.gpu).toBeGreaterThanOrEqual(1);
    expect(r.chaos.kills.cpu).toBeGreaterThanOrEqual(1);
    expect(r.chaos.temporalRestarts).toBe(1);
    expect(r.faults.slowDown + r.faults.reset + r.faults.slow).toBeGreaterThan(0);
    expect(r.attempts.maxAttempt).toBeLessThanOrEqual(MAX_ATTEMPTS);
    expect(Math.max(r.peakRss.cpu, r.peakRss.gpu)).toBeLessThanOrEqual(RSS_BUDGET);
    expect(r.crashes).toBe(0);
  }, 420_000);
});
