import { describe, expect, it } from 'vitest';
import { encodePredictions } from '../../core/routes/predictions';
import type { RouteSummary } from '../../core/routes/route-result';
import { fewShotTable } from '../../core/runs/summary';
import { correctnessOf, type ImageCorrectness } from '../../core/suites/columns';
import { type CellResult, buildLeaderboard, jobKey } from '../../core/suites/leaderboard';
import { leaderboardCsv } from '../../core/suites/leaderboard-csv';
import { renderLeaderboardHtml } from '../../core/suites/leaderboard-html';
import {
  accuracyInterval,
  mcnemarExact,
  pairedDifferenceInterval,
} from '../../core/suites/statistics';

// Fixtures: per-image predictions.arrow files as the routes write them, for 3 models on 2
// datasets (60 test images, 3 classes). Each model gets a fixed pattern of right/wrong images.
const N = 60;
const CLASSES = ['a', 'b', 'c'];
const keyOf = (d: string, i: number) => `s3://bkt/${d}/test/${CLASSES[i % 3]}/${i}.png`;

/** predictions.arrow where image i is right iff right(i); rows in `order`. */
function predictions(d: string, right: (i: number) => boolean, order = [...Array(N).keys()]) {
  const rows = order.map((i) => ({ key: keyOf(d, i), imageId: String(i), label: i % 3 }));
  const indices = Int32Array.from(
    order.flatMap((i) => [right(i) ? i % 3 : (i + 1) % 3, 0, 1].slice(0, 3)),
  );
  return encodePredictions(rows, { indices, scores: new Float32Array(N * 3) }, 3, CLASSES, {});
}

const summary = (
  route: RouteSummary['route'],
  acc1: number,
  variant?: string,
  shots?: number,
  seed?: number,
): RouteSummary => ({
  route,
  ...(variant ? { variant } : {}),
  ...(shots !== undefined ? { shots, seed: seed ?? 0 } : {}),
  n: N,
  acc1,
  acc5: null,
  meanPerClassRecall: acc1,
  macroF1: acc1,
  notes: [],
  metricsUri: 's3://bkt/x',
});

const count = (c: ImageCorrectness) => c.correct.reduce((s, v) => s + v, 0);

/** A completed cell: zero-shot, the full-data probe, and CoOp 2-shot and 4-shot over 2 seeds. */
function cell(model: string, dataset: string, skill: number): CellResult {
  const correctness = new Map<string, ImageCorrectness>();
  const routes: RouteSummary[] = [];
  const add = (
    route: RouteSummary['route'],
    variant: string | undefined,
    right: (i: number) => boolean,
    shots?: number,
    seed?: number,
  ) => {
    // Reversed row order for one model: the leaderboard must match images by key, not position.
    const order = model === 'm2' ? [...Array(N).keys()].reverse() : undefined;
    const c = correctnessOf(predictions(dataset, right, order));
    correctness.set(jobKey({ route, ...(variant ? { variant } : {}) }), c);
    routes.push(summary(route, count(c) / N, variant, shots, seed));
  };
  add('zero-shot', undefined, (i) => (i * 7 + skill) % 10 < skill);
  add('probe', 'all', (i) => (i * 3 + skill) % 10 < skill + 1);
  for (const shots of [2, 4])
    for (const seed of [1, 2])
      add('coop', `${shots}shot-seed${seed}`, (i) => (i * seed + shots) % 10 < skill, shots, seed);
  return {
    model,
    dataset,
    runId: `s--${model}--${dataset}`,
    status: 'completed',
    routes,
    fewShot: fewShotTable(routes),
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
    suiteId: 's',
    generatedAt: '2026-12-01T00:00:00Z',
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
      const ci = accuracyInterval(c.correctness.get('zero-shot')!.correct, { seed: 0 });
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
    const a = cells[0]!.correctness.get('zero-shot')!.correct;
    const c3 = cells[2]!.correctness.get('zero-shot')!.correct;
    expect(pets[1]!.mcnemar).toEqual(mcnemarExact(a, c3));
    expect(pets[1]!.difference).toEqual(
      pairedDifferenceInterval(Float64Array.from(a), Float64Array.from(c3), {
        resamples: 1000,
        seed: 0,
      }),
    );
    const row = (m: string) => board.rows.find((r) => r.model === m)!.cells['pets/zero-shot']!;
    expect(row('m1').best).toBe(true);
    expect(row('m2').tie).toBe(true); // p = 1 against the best
    expect(row('m3').tie).toBe(false);
    expect(pets[1]!.mcnemar!.pValue).toBeLessThan(0.05);
    // Few-shot means are not 0/1 per image: no McNemar, the interval decides.
    expect(board.comparisons.find((c) => c.column === 'pets/coop-4shot')!.mcnemar).toBeUndefined();
  });

  it('compares only against the best beyond allPairsUpTo models', () => {
    const b = buildLeaderboard({
      suiteId: 's',
      generatedAt: 'now',
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
