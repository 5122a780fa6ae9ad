/**
 * @file The leaderboard page's charts as Vega-Lite specs (pure), rendered to SVG by the run
 * report's machinery (core/report/charts.ts): a model x column heatmap, per-dataset bars with
 * their 95% intervals, and few-shot curves per model. Axes are ordered by numeric order fields,
 * never by arrays of names (charts.ts's byField says why: names are data, never code).
 */
import type { ChartSpec } from '../report/charts';
import type { Leaderboard } from './leaderboard';
import { FEW_SHOT_ROUTE_NAMES } from '../runs/summary';

const BASE = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white' };
const PERCENT = { format: '.0%' } as const;
const byField = (field: string) => ({ field, op: 'min' as const, order: 'ascending' as const });

export function leaderboardChartSpecs(board: Leaderboard): ChartSpec[] {
  return [
    ...heatmap(board),
    ...board.datasets.flatMap((d) => datasetBars(board, d)),
    ...board.datasets.flatMap((d) => fewShotCurves(board, d)),
  ];
}

function heatmap(board: Leaderboard): ChartSpec[] {
  const values = board.rows.flatMap((r, modelOrder) =>
    board.columns.flatMap((c, columnOrder) => {
      const cell = r.cells[c.id];
      return cell
        ? [{ model: r.model, modelOrder, column: c.id, columnOrder, acc1: cell.acc1 }]
        : [];
    }),
  );
  if (values.length === 0) return [];
  const cell = 34;
  return [
    {
      name: 'heatmap',
      title: 'Models x datasets',
      caption: 'Top-1 accuracy of every model (rows) on every dataset and route (columns).',
      spec: {
        ...BASE,
        width: board.columns.length * cell * 1.6,
        height: board.rows.length * cell,
        data: { values },
        encoding: {
          x: { field: 'column', type: 'ordinal', title: null, sort: byField('columnOrder') },
          y: { field: 'model', type: 'ordinal', title: null, sort: byField('modelOrder') },
        },
        layer: [
          {
            mark: { type: 'rect' },
            encoding: {
              color: {
                field: 'acc1',
                type: 'quantitative',
                title: 'top-1',
                scale: { scheme: 'viridis' },
                legend: PERCENT,
              },
            },
          },
          {
            mark: { type: 'text', fontSize: 10 },
            encoding: {
              text: { field: 'acc1', type: 'quantitative', format: '.1%' },
              // Dark text on viridis's light (high) end, white on its dark end. The test reads
              // only the numeric field: no name ever reaches an expression.
              color: { condition: { test: 'datum.acc1 > 0.6', value: 'black' }, value: 'white' },
            },
          },
        ],
      },
    },
  ];
}

function datasetBars(board: Leaderboard, dataset: string): ChartSpec[] {
  const columns = board.columns.filter((c) => c.dataset === dataset);
  const values = board.rows.flatMap((r, modelOrder) =>
    columns.flatMap((c, routeOrder) => {
      const cell = r.cells[c.id];
      return cell
        ? [{ model: r.model, modelOrder, route: c.route, routeOrder, ...pick(cell) }]
        : [];
    }),
  );
  if (values.length === 0) return [];
  const y = { field: 'model', type: 'nominal', title: null, sort: byField('modelOrder') } as const;
  const yOffset = { field: 'route', type: 'nominal', sort: byField('routeOrder') } as const;
  const x = {
    field: 'acc1',
    type: 'quantitative' as const,
    title: 'top-1 accuracy',
    scale: { domain: [0, 1] },
    axis: PERCENT,
  };
  return [
    {
      name: `bars-${dataset}`,
      title: `${dataset}: accuracy with 95% intervals`,
      caption:
        'Top-1 accuracy per model and route; the black lines are 95% bootstrap intervals over test images (seeded).',
      spec: {
        ...BASE,
        width: 420,
        height: board.rows.length * (columns.length * 10 + 8),
        data: { values },
        encoding: { y, yOffset },
        layer: [
          {
            mark: { type: 'bar' },
            encoding: {
              x,
              color: {
                field: 'route',
                type: 'nominal',
                title: 'route',
                sort: byField('routeOrder'),
              },
            },
          },
          {
            mark: { type: 'rule', color: 'black' },
            encoding: { x: { field: 'low', type: 'quantitative' }, x2: { field: 'high' } },
          },
        ],
      },
    },
  ];
}

const pick = (c: { acc1: number; low: number; high: number }) => ({
  acc1: c.acc1,
  low: c.low,
  high: c.high,
});

function fewShotCurves(board: Leaderboard, dataset: string): ChartSpec[] {
  const points = board.fewShot.filter((f) => f.dataset === dataset);
  if (points.length === 0) return [];
  const order = new Map(board.models.map((m, i) => [m, i]));
  const values = points.map((p) => ({
    model: p.model,
    modelOrder: order.get(p.model) ?? 0,
    route: FEW_SHOT_ROUTE_NAMES[p.route],
    shots: p.shots,
    mean: p.mean,
  }));
  const shots = [...new Set(points.map((p) => p.shots))].sort((a, b) => a - b);
  return [
    {
      name: `few-shot-${dataset}`,
      title: `${dataset}: few-shot curves`,
      caption:
        'Top-1 accuracy against shots per class, mean over seeds, per model (colour) and route (dash).',
      spec: {
        ...BASE,
        width: 420,
        height: 260,
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
          x: {
            field: 'shots',
            type: 'quantitative',
            title: 'shots per class',
            scale: {
              type: 'log',
              base: 2,
              nice: false,
              domain: [shots[0]! / 1.3, shots.at(-1)! * 1.3],
            },
            axis: { values: shots, format: 'd' },
          },
          y: { field: 'mean', type: 'quantitative', title: 'top-1 accuracy', axis: PERCENT },
          color: { field: 'model', type: 'nominal', title: 'model', sort: byField('modelOrder') },
          strokeDash: { field: 'route', type: 'nominal', title: 'route' },
          detail: { field: 'route', type: 'nominal' },
        },
      },
    },
  ];
}
