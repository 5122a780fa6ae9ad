import { describe, expect, it } from 'vitest';
import {
  HISTORY_LIMIT,
  type RunRecord,
  appendRun,
  compareRuns,
  previousRun,
  runRecord,
} from '../../core/runs/compare';

const record = (runId: string, zs: number, probe: number, extra = false): RunRecord => ({
  runId,
  startedAt: '2026-01-01T02:00:00.000Z',
  routes: [
    { route: 'zero-shot', acc1: zs, meanPerClassRecall: zs },
    { route: 'probe', variant: 'all', acc1: probe, meanPerClassRecall: probe - 0.1 },
    ...(extra
      ? [{ route: 'coop' as const, variant: '2shot-seed1', acc1: 0.5, meanPerClassRecall: 0.5 }]
      : []),
  ],
});
const rule = { maxDrop: 0.02, metric: 'acc1' as const };

describe('comparing a scheduled run with the previous success', () => {
  it('computes per route deltas and flags a drop beyond maxDrop', () => {
    const c = compareRuns(record('a', 0.5, 0.9), record('b', 0.52, 0.85), rule);
    expect(c.previousRunId).toBe('a');
    expect(c.deltas.map((d) => [d.route, d.variant, d.delta.acc1])).toEqual([
      ['zero-shot', undefined, expect.closeTo(0.02, 12)],
      ['probe', 'all', expect.closeTo(-0.05, 12)],
    ]);
    expect(c.deltas.map((d) => d.regression)).toEqual([false, true]);
    expect(c.regression).toBe(true);
  });

  it('tolerates a drop of exactly maxDrop and equal runs with maxDrop 0', () => {
    expect(compareRuns(record('a', 0.5, 0.9), record('b', 0.48, 0.9), rule).regression).toBe(false);
    const same = compareRuns(record('a', 0.1 + 0.2, 0.9), record('b', 0.3, 0.9), {
      ...rule,
      maxDrop: 0,
    });
    expect(same.regression).toBe(false);
  });

  it('judges on the metric the spec names', () => {
    const prev = record('a', 0.5, 0.9);
    const cur: RunRecord = {
      ...record('b', 0.5, 0.9),
      routes: [{ route: 'zero-shot', acc1: 0.5, meanPerClassRecall: 0.4 }],
    };
    expect(compareRuns(prev, cur, rule).regression).toBe(false);
    expect(compareRuns(prev, cur, { ...rule, metric: 'meanPerClassRecall' }).regression).toBe(true);
  });

  it('lists routes only one run has, without judging them', () => {
    const c = compareRuns(record('a', 0.5, 0.9, true), record('b', 0.5, 0.9), rule);
    expect(c.removed).toEqual(['coop 2shot-seed1']);
    expect(compareRuns(record('a', 0.5, 0.9), record('b', 0.5, 0.9, true), rule).added).toEqual([
      'coop 2shot-seed1',
    ]);
  });
});

describe('zero-shot retrieval in the comparison', () => {
  const retrieval = (i2t1: number) => ({
    imageToText: { '1': i2t1, '5': 0.9 },
    textToImage: { '1': 0.4, '5': 0.8 },
  });
  it('records every recall@k per direction and flags a recall drop like a route drop', () => {
    const prev = runRecord('a', '2026-01-01T02:00:00.000Z', [], retrieval(0.6));
    expect(prev.routes.map((r) => `${r.variant}=${r.acc1}`)).toEqual([
      'i2t@1=0.6',
      'i2t@5=0.9',
      't2i@1=0.4',
      't2i@5=0.8',
    ]);
    const same = compareRuns(prev, runRecord('b', prev.startedAt, [], retrieval(0.6)), rule);
    expect(same.regression).toBe(false);
    expect(same.deltas).toHaveLength(4);
    const dropped = compareRuns(prev, runRecord('c', prev.startedAt, [], retrieval(0.5)), rule);
    expect(dropped.deltas.filter((d) => d.regression).map((d) => d.variant)).toEqual(['i2t@1']);
    expect(dropped.regression).toBe(true);
    // A run without captions after one with them: listed as removed, not judged.
    const without = compareRuns(prev, runRecord('d', prev.startedAt, []), rule);
    expect(without.removed).toContain('retrieval i2t@1');
    expect(without.regression).toBe(false);
  });
});

describe('the schedule history', () => {
  it('compares with the newest other run, so a retried comparison sees the same baseline', () => {
    const h = appendRun(appendRun([], record('a', 0.5, 0.9)), record('b', 0.5, 0.9));
    expect(previousRun(h, 'c')?.runId).toBe('b');
    expect(previousRun(h, 'b')?.runId).toBe('a');
    expect(previousRun([], 'a')).toBeUndefined();
  });

  it('keeps the last 30 runs, oldest first, each once', () => {
    let h: RunRecord[] = [];
    for (let i = 0; i < 40; i++) h = appendRun(h, record(`r${i}`, 0.5, 0.9));
    h = appendRun(h, record('r39', 0.6, 0.9));
    expect(h).toHaveLength(HISTORY_LIMIT);
    expect(h[0]!.runId).toBe('r10');
    expect(h.at(-1)).toMatchObject({ runId: 'r39', routes: [{ acc1: 0.6 }, expect.anything()] });
  });
});
