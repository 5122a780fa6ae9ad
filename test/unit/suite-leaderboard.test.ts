import { describe, expect, it } from 'vitest';
import { fewShotTable } from '../../core/runs/summary';
import { correctnessOf, type ImageCorrectness } from '../../core/suites/columns';
import { ImageKeyTable } from '../../core/suites/image-keys';
import {
  type CellResult,
  type StatisticsOptions,
  assembleLeaderboard,
  scoreDataset,
} from '../../core/suites/leaderboard';
import { leaderboardCsv } from '../../core/suites/leaderboard-csv';
import { renderLeaderboardHtml } from '../../core/suites/leaderboard-html';
import {
  accuracyInterval,
  mcnemarExact,
  pairedDifferenceInterval,
} from '../../core/suites/statistics';
import { cellRun } from '../helpers/suite-cells';

/** One key table per dataset, as the leaderboard writer keeps while it scores that dataset. */
const tables = new Map(['pets', 'cars'].map((d) => [d, new ImageKeyTable()]));

/** A job's correctness in key order: the image order every interval resamples in. */
function inKeyOrder(dataset: string, c: ImageCorrectness): Float64Array {
  const rank = tables.get(dataset)!.keyOrder();
  const out = new Float64Array(c.ids.length);
  c.ids.forEach((id, i) => (out[rank[id]!] = c.correct[i]!));
  return out;
}

/** What the writer does: score each dataset's cells, then assemble the leaderboard. */
function buildLeaderboard(input: {
  models: string[];
  datasets: string[];
  cells: CellResult[];
  statistics?: StatisticsOptions;
}) {
  const stats = input.statistics ? { statistics: input.statistics } : {};
  return assembleLeaderboard({
    suiteId: 's',
    generatedAt: '2026-12-01T00:00:00Z',
    models: input.models,
    datasets: input.datasets,
    ...stats,
    scored: input.datasets.map((dataset) =>
      scoreDataset({
        dataset,
        models: input.models,
        cells: input.cells.filter((c) => c.dataset === dataset),
        keys: tables.get(dataset)!,
        ...stats,
      }),
    ),
  });
}

/** A completed cell (test/helpers/suite-cells.ts), its correctness read as the writer reads it. */
function cell(model: string, dataset: string, skill: number): CellResult {
  const run = cellRun(model, dataset, skill);
  const correctness = new Map(
    [...run.predictions].map(([job, bytes]) => [job, correctnessOf(bytes, tables.get(dataset)!)]),
  );
  return {
    model,
    dataset,
    runId: `s--${model}--${dataset}`,
    status: 'completed',
    routes: run.routes,
    fewShot: fewShotTable(run.routes),
    correctness,
  };
}

describe('suite leaderboard', () => {
  const cells: CellResult[] = [
    cell('m1', 'pets', 8),
    cell('m2', 'pets', 8),
    cell('m3', 'pets', 3),
    cell('m1', 'cars', 6),
    cell('m2', 'cars', 5),
    {
      ...cell('m3', 'cars', 5),
      status: 'failed' as const,
      error: 'boom',
      routes: [],
      fewShot: [],
      correctness: new Map<string, ImageCorrectness>(),
    },
  ];
  const board = buildLeaderboard({
    models: ['m1', 'm2', 'm3'],
    datasets: ['pets', 'cars'],
    cells,
  });

  it('has one column per dataset and route: zero-shot, full-data probe, few-shot at the largest shots', () => {
    expect(board.columns.map((c) => c.id)).toEqual([
      'pets/zero-shot',
      'pets/probe',
      'pets/coop-4shot',
      'cars/zero-shot',
      'cars/probe',
      'cars/coop-4shot',
    ]);
    expect(board.means).toEqual(['mean/zero-shot', 'mean/probe', 'mean/coop-4shot']);
  });

  it("fills each cell with the child's own metric and its seeded bootstrap interval", () => {
    for (const c of cells.filter((c) => c.status === 'completed')) {
      const row = board.rows.find((r) => r.model === c.model)!;
      const zs = row.cells[`${c.dataset}/zero-shot`]!;
      expect(zs.acc1).toBe(c.routes.find((r) => r.route === 'zero-shot')!.acc1);
      expect(zs.runId).toBe(c.runId);
      const ci = accuracyInterval(inKeyOrder(c.dataset, c.correctness.get('zero-shot')!), {
        seed: 0,
      });
      expect([zs.low, zs.high]).toEqual([ci.low, ci.high]);
      expect(row.cells[`${c.dataset}/probe`]!.acc1).toBe(
        c.routes.find((r) => r.variant === 'all')!.acc1,
      );
      const coop = c.fewShot.find((f) => f.route === 'coop' && f.shots === 4)!;
      expect(row.cells[`${c.dataset}/coop-4shot`]!.acc1).toBe(coop.acc1.mean);
    }
  });

  it('leaves failed cells empty and their means out, and lists the failure', () => {
    const m3 = board.rows.find((r) => r.model === 'm3')!;
    expect(m3.cells['cars/zero-shot']).toBeNull();
    expect(m3.means['mean/zero-shot']).toBeNull();
    const m1 = board.rows.find((r) => r.model === 'm1')!;
    expect(m1.means['mean/zero-shot']).toBeCloseTo(
      (m1.cells['pets/zero-shot']!.acc1 + m1.cells['cars/zero-shot']!.acc1) / 2,
      12,
    );
    expect(board.cells.find((c) => c.status === 'failed')).toMatchObject({
      model: 'm3',
      dataset: 'cars',
      error: 'boom',
    });
  });

  it('tests pairs with McNemar and a paired bootstrap on images matched by key, and marks ties', () => {
    const pets = board.comparisons.filter((c) => c.column === 'pets/zero-shot');
    expect(pets.map((c) => `${c.a}-${c.b}`)).toEqual(['m1-m2', 'm1-m3', 'm2-m3']);
    // m1 and m2 have the same skill: identical per-image results (m2's rows are reversed).
    expect(pets[0]!.mcnemar).toEqual({ onlyA: 0, onlyB: 0, pValue: 1 });
    const a = inKeyOrder('pets', cells[0]!.correctness.get('zero-shot')!);
    const c3 = inKeyOrder('pets', cells[2]!.correctness.get('zero-shot')!);
    expect(pets[1]!.mcnemar).toEqual(mcnemarExact(a, c3));
    expect(pets[1]!.difference).toEqual(
      pairedDifferenceInterval(a, c3, { resamples: 1000, seed: 0 }),
    );
    const row = (m: string) => board.rows.find((r) => r.model === m)!.cells['pets/zero-shot']!;
    expect(row('m1').best).toBe(true);
    expect(row('m2').tie).toBe(true); // p = 1 against the best
    expect(row('m3').tie).toBe(false);
    expect(pets[1]!.mcnemar!.pValue).toBeLessThan(0.05);
    // Few-shot means are not 0/1 per image: no McNemar, the interval decides.
    expect(board.comparisons.find((c) => c.column === 'pets/coop-4shot')!.mcnemar).toBeUndefined();
  });

  it("resamples in key order: a cell's interval does not depend on its predictions' row order", () => {
    // m2's predictions list the same results as m1's in reverse order.
    const row = (m: string) => board.rows.find((r) => r.model === m)!.cells['pets/zero-shot']!;
    expect([row('m2').low, row('m2').high]).toEqual([row('m1').low, row('m1').high]);
  });

  it('compares only against the best beyond allPairsUpTo models', () => {
    const b = buildLeaderboard({
      models: ['m1', 'm2', 'm3'],
      datasets: ['pets'],
      cells: cells.slice(0, 3),
      statistics: { resamples: 200, seed: 1, allPairsUpTo: 2 },
    });
    expect(
      b.comparisons.filter((c) => c.column === 'pets/zero-shot').map((c) => `${c.a}-${c.b}`),
    ).toEqual(['m1-m2', 'm1-m3']);
  });

  it('writes the CLIP_benchmark-shaped CSV', () => {
    const lines = leaderboardCsv(board).trimEnd().split('\n');
    expect(lines[0]).toBe(
      'model,pets/zero-shot,pets/probe,pets/coop-4shot,cars/zero-shot,cars/probe,cars/coop-4shot,mean/zero-shot,mean/probe,mean/coop-4shot',
    );
    expect(lines[3]!.split(',').slice(4, 7)).toEqual(['', '', '']);
    expect(Number(lines[1]!.split(',')[1])).toBeCloseTo(
      board.rows[0]!.cells['pets/zero-shot']!.acc1,
      4,
    );
  });

  it('renders a self-contained page with the heatmap, the bars and the few-shot curves', async () => {
    const html = await renderLeaderboardHtml({ ...board, suiteId: 's<script>' });
    expect(html).toContain("default-src 'none'");
    expect(html).not.toContain('<script>');
    for (const name of ['heatmap', 'bars-pets', 'bars-cars', 'few-shot-pets'])
      expect(html).toContain(`data-chart="${name}"`);
    expect(html).toMatch(/<svg/);
  }, 60_000);
});

describe('suite leaderboard with Tip-Adapter', () => {
  /** A cell whose run also has Tip-Adapter and Tip-Adapter-F at 2 and 4 shots (CoOp's files). */
  function withTip(model: string, dataset: string, skill: number): CellResult {
    const base = cell(model, dataset, skill);
    const coop = base.routes.filter((r) => r.route === 'coop');
    const tip = (['tip-adapter', 'tip-adapter-f'] as const).flatMap((route, k) =>
      coop.map((r) => ({ ...r, route, acc1: r.acc1 / (k + 2) })),
    );
    const routes = [...base.routes, ...tip];
    const correctness = new Map(base.correctness);
    for (const r of tip)
      correctness.set(`${r.route}/${r.variant}`, base.correctness.get(`coop/${r.variant}`)!);
    return { ...base, routes, fewShot: fewShotTable(routes), correctness };
  }

  it('adds <dataset>/tip-adapter-<k>shot and tip-adapter-f columns with their own seed means', () => {
    const cells = [withTip('m1', 'pets', 8), withTip('m2', 'pets', 5)];
    const board = buildLeaderboard({ models: ['m1', 'm2'], datasets: ['pets'], cells });
    expect(board.columns.map((c) => c.id)).toEqual([
      'pets/zero-shot',
      'pets/probe',
      'pets/coop-4shot',
      'pets/tip-adapter-4shot',
      'pets/tip-adapter-f-4shot',
    ]);
    for (const c of cells) {
      const row = board.rows.find((r) => r.model === c.model)!;
      for (const route of ['tip-adapter', 'tip-adapter-f'] as const) {
        const mean = c.fewShot.find((f) => f.route === route && f.shots === 4)!.acc1.mean;
        expect(row.cells[`pets/${route}-4shot`]!.acc1).toBe(mean);
      }
    }
    expect(board.fewShot.filter((f) => f.route === 'tip-adapter-f')).toHaveLength(4);
  });
});
