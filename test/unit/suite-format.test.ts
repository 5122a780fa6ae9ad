import { describe, expect, it } from 'vitest';
import { suiteExitCode } from '../../client/suites';
import { formatSuiteList, formatSuiteOutcome } from '../../cli/suite-format';

const leaderboard = {
  jsonUri: 's3://bkt/suites/s/leaderboard.json',
  csvUri: 's3://bkt/suites/s/leaderboard.csv',
  htmlUri: 's3://bkt/suites/s/leaderboard.html',
};

describe('suite output', () => {
  it('lists failed cells with the resume command, and exits 1 for them', () => {
    const o = {
      suiteId: 's',
      status: 'COMPLETED' as const,
      summary: {
        suiteId: 's',
        cells: 4,
        completed: 3,
        reused: 1,
        failed: [{ model: 'm', dataset: 'd', runId: 's--m--d', error: 'no images\u001b[2J' }],
        leaderboard,
      },
    };
    const text = formatSuiteOutcome(o);
    expect(text).toContain('completed, 3/4 cells (1 reused from earlier runs, 1 failed)');
    expect(text).toContain('failed m x d (s--m--d): no images');
    expect(text).not.toContain('\u001b'); // escape codes in an error are shown, not obeyed
    expect(text).toContain('clipeval suite resume s');
    expect(suiteExitCode(o)).toBe(1);
    expect(suiteExitCode({ ...o, summary: { ...o.summary, failed: [] } })).toBe(0);
  });

  it('shows progress while running and lists suites', () => {
    const running = {
      suiteId: 's',
      status: 'RUNNING' as const,
      progress: {
        suiteId: 's',
        stage: 'evaluating' as const,
        cells: 8,
        settled: 3,
        reused: 2,
        failed: [],
        running: ['s--m--d'],
      },
    };
    expect(formatSuiteOutcome(running)).toBe(
      'suite s: evaluating, 3/8 cells settled (2 reused, 0 failed)\n  running s--m--d',
    );
    expect(suiteExitCode(running)).toBe(0);
    expect(formatSuiteList([])).toBe('no suites');
    expect(
      formatSuiteList([{ suiteId: 's', status: 'RUNNING', startTime: '2026-12-01T00:00:00.123Z' }]),
    ).toMatch(
      /^suite id {2}status {6}started\s+closed\ns {9}RUNNING {5}2026-12-01T00:00:00Z {2}-$/,
    );
  });
});
