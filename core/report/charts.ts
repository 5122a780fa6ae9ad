/**
 * @file The report's charts as Vega-Lite specs (pure, testable), and their rendering to SVG strings
 * in Node: Vega-Lite compiles to Vega, and a headless Vega view (renderer 'none') writes the SVG,
 * so no browser or canvas is involved and the HTML can inline the result.
 */
// Type imports of ES modules from CommonJS name their resolution mode.
import type * as Vega from 'vega' with { 'resolution-mode': 'import' };
import type * as VegaLite from 'vega-lite' with { 'resolution-mode': 'import' };
import type { TopLevelSpec } from 'vega-lite' with { 'resolution-mode': 'import' };
import { PermanentError } from '../util/errors';
import { shown as forMessage } from '../util/text';
import { FEW_SHOT_ROUTE_NAMES } from '../runs/summary';
import type { ReportData, RouteDetail } from './report-data';

export interface ChartSpec {
  /** Stable id: the figure's data-chart attribute. */
  name: string;
  title: string;
  caption: string;
  spec: TopLevelSpec;
}

export interface RenderedChart extends Omit<ChartSpec, 'spec'> {
  svg: string;
}

/** Beyond this many classes, per-class and confusion charts show a selection (the page stays readable). */
export const MAX_CLASSES_CHARTED = 40;

const PERCENT = { format: '.0%' } as const;
const BASE = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white' };

export function chartSpecs(data: ReportData): ChartSpec[] {
  return [
    ...fewShotChart(data),
    ...perClassChart(data),
    ...data.details.map((d) => confusionChart(d)),
    ...lossChart(data),
    ...trendChart(data),
  ];
}

/**
 * The report cannot be drawn from this run's data. Rendering is a pure function of the data, so
 * another attempt would fail the same way: permanent, with the chart and the cause named, instead
 * of ten identical attempts.
 */
export class ReportRenderError extends PermanentError {
  override readonly name = 'ReportRenderError';
}

export async function renderCharts(data: ReportData): Promise<RenderedChart[]> {
  const out: RenderedChart[] = [];
  await loadLibraries(); // a failure to load Vega is not the data's: not wrapped
  // One at a time: each view holds its scenegraph until finalised.
  for (const chart of chartSpecs(data)) out.push(await renderChart(chart));
  return out;
}

/** One chart as SVG; a chart its data breaks is a ReportRenderError (permanent). */
export async function renderChart({ spec, ...rest }: ChartSpec): Promise<RenderedChart> {
  try {
    return { ...rest, svg: await renderSvg(spec) };
  } catch (err) {
    throw new ReportRenderError(
      `report: chart "${rest.name}" cannot be rendered from this run's data: ${forMessage(err instanceof Error ? err.message : String(err))}`,
      { cause: err },
    );
  }
}

type Libraries = [typeof Vega, typeof VegaLite];
let libraries: Promise<Libraries> | undefined;

function loadLibraries(): Promise<Libraries> {
  // vega and vega-lite are ES modules only; clipeval is CommonJS, so they load with import().
  libraries ??= Promise.all([import('vega'), import('vega-lite')]);
  return libraries;
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vegaLite] = await loadLibraries();
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function fewShotChart(data: ReportData): ChartSpec[] {
  const { points, zeroShotAcc1 } = data.fewShot;
  if (points.length === 0) return [];
  const values = points.map((p) => ({
    series: FEW_SHOT_ROUTE_NAMES[p.route],
    shots: p.shots,
    mean: p.mean,
    low: p.mean - p.std,
    high: p.mean + p.std,
  }));
  const shots = [...new Set(points.map((p) => p.shots))].sort((a, b) => a - b);
  // A margin around the shot counts, so error bars clear the axes.
  const domain = [shots[0]! / 1.3, shots.at(-1)! * 1.3];
  const x = {
    field: 'shots',
    type: 'quantitative' as const,
    title: 'shots per class',
    scale: { type: 'log' as const, base: 2, nice: false, domain },
    axis: { values: shots, format: 'd' },
  };
  const color = { field: 'series', type: 'nominal', title: null } as const;
  return [
    {
      name: 'few-shot',
      title: 'Few-shot accuracy',
      caption:
        'Top-1 accuracy on the test split against shots per class: mean over seeds, bars ± one standard deviation (population std); the dashed line is zero-shot.',
      spec: {
        ...BASE,
        width: 420,
        height: 260,
        layer: [
          {
            data: { values },
            mark: { type: 'line', point: true },
            encoding: {
              x,
              y: { field: 'mean', type: 'quantitative', title: 'top-1 accuracy', axis: PERCENT },
              color,
            },
          },
          {
            data: { values },
            mark: { type: 'errorbar', ticks: true },
            encoding: {
              x,
              y: { field: 'low', type: 'quantitative', title: 'top-1 accuracy' },
              y2: { field: 'high' },
              color,
            },
          },
          ...(zeroShotAcc1 === null
            ? []
            : [
                {
                  data: { values: [{ series: 'zero-shot', acc1: zeroShotAcc1 }] },
                  mark: { type: 'rule' as const, strokeDash: [6, 4] },
                  encoding: { y: { field: 'acc1', type: 'quantitative' as const }, color },
                },
              ]),
        ],
      },
    },
  ];
}

/**
 * Sorts a nominal or ordinal axis by a numeric field of the data. Never by an array of the values
 * (`sort: [...]`): Vega-Lite turns such an array into a Vega expression, and a dataset string
 * there (a label with U+2028, which JSON allows and Vega's expression parser does not) fails
 * the whole report. Data values are only ever data, never code.
 */
const byField = (field: string) => ({ field, op: 'min' as const, order: 'ascending' as const });

/** Classes to chart: all of them, or the MAX_CLASSES_CHARTED ranked first by `score` (low first). */
function chartedClasses(classes: readonly string[], score: (c: number) => number): string[] {
  if (classes.length <= MAX_CLASSES_CHARTED) return [...classes];
  const order = classes.map((_, i) => i).sort((a, b) => score(a) - score(b) || a - b);
  return order
    .slice(0, MAX_CLASSES_CHARTED)
    .sort((a, b) => a - b)
    .map((i) => classes[i]!);
}

function perClassChart(data: ReportData): ChartSpec[] {
  if (data.details.length === 0) return [];
  const classes = data.dataset.classes;
  const meanAccuracy = (c: number) => {
    const accs = data.details.flatMap((d) => {
      const a = d.perClass[c]?.accuracy;
      return typeof a === 'number' ? [a] : [];
    });
    return accs.length === 0 ? Infinity : accs.reduce((s, a) => s + a, 0) / accs.length;
  };
  const shown = chartedClasses(classes, meanAccuracy);
  const classOrder = new Map(shown.map((c, i) => [c, i]));
  const values = data.details.flatMap((d, routeOrder) =>
    d.perClass
      .filter((c) => classOrder.has(c.name) && c.accuracy !== null)
      .map((c) => ({
        route: d.label,
        routeOrder,
        className: c.name,
        classOrder: classOrder.get(c.name)!,
        accuracy: c.accuracy,
      })),
  );
  const routes = data.details.map((d) => d.label);
  return [
    {
      name: 'per-class',
      title: 'Per-class accuracy',
      caption:
        'Share of each class’s test images predicted right, per route shown in detail' +
        (shown.length < classes.length
          ? ` (the ${shown.length} classes of ${classes.length} with the lowest mean accuracy).`
          : '.'),
      spec: {
        ...BASE,
        width: 420,
        height: shown.length * (routes.length * 9 + 6),
        data: { values },
        mark: { type: 'bar' },
        encoding: {
          y: { field: 'className', type: 'nominal', title: 'class', sort: byField('classOrder') },
          yOffset: { field: 'route', type: 'nominal', sort: byField('routeOrder') },
          x: {
            field: 'accuracy',
            type: 'quantitative',
            title: 'accuracy',
            scale: { domain: [0, 1] },
            axis: PERCENT,
          },
          color: { field: 'route', type: 'nominal', title: 'route', sort: byField('routeOrder') },
        },
      },
    },
  ];
}

function confusionChart(detail: RouteDetail): ChartSpec {
  const classes = detail.perClass.map((c) => c.name);
  // Sparse cells [true, predicted, count]: one pass, never K x K.
  const counts = new Map<string, number>();
  // Most confused first: off-diagonal counts in the class's row and column.
  const offDiagonal = new Array<number>(classes.length).fill(0);
  for (const [t, p, count] of detail.confusionCells) {
    counts.set(`${t},${p}`, count);
    if (t !== p) {
      offDiagonal[t] = (offDiagonal[t] ?? 0) + count;
      offDiagonal[p] = (offDiagonal[p] ?? 0) + count;
    }
  }
  const shown = chartedClasses(classes, (c) => -(offDiagonal[c] ?? 0));
  const index = new Map(classes.map((c, i) => [c, i]));
  const values = shown.flatMap((t, actualOrder) =>
    shown.map((p, predictedOrder) => ({
      actual: t,
      actualOrder,
      predicted: p,
      predictedOrder,
      count: counts.get(`${index.get(t)},${index.get(p)}`) ?? 0,
    })),
  );
  const cell = shown.length <= 12 ? 28 : 12;
  const axis = (field: 'actual' | 'predicted', title: string) =>
    ({ field, type: 'ordinal', title, sort: byField(`${field}Order`) }) as const;
  return {
    name: `confusion-${detail.label.replace(/ /g, '-')}`,
    title: `Confusion matrix: ${detail.label}`,
    caption:
      'Test images by true class (rows) and predicted class (columns)' +
      (shown.length < classes.length
        ? ` (the ${shown.length} classes of ${classes.length} most confused).`
        : '.'),
    spec: {
      ...BASE,
      width: shown.length * cell,
      height: shown.length * cell,
      data: { values },
      encoding: { x: axis('predicted', 'predicted'), y: axis('actual', 'true class') },
      layer: [
        {
          mark: { type: 'rect' },
          encoding: {
            color: { field: 'count', type: 'quantitative', scale: { scheme: 'blues' } },
          },
        },
        ...(shown.length <= 12
          ? [
              {
                mark: { type: 'text' as const, fontSize: 10 },
                encoding: { text: { field: 'count', type: 'quantitative' as const } },
              },
            ]
          : []),
      ],
    },
  };
}

function lossChart(data: ReportData): ChartSpec[] {
  const values = data.coopLosses.flatMap((c) =>
    c.losses.map((loss, i) => ({ variant: c.variant, epoch: i + 1, loss })),
  );
  if (values.length === 0) return [];
  return [
    {
      name: 'coop-loss',
      title: 'CoOp training loss',
      caption: 'Mean cross-entropy per epoch of every CoOp variant (shots and seed).',
      spec: lineChart(values, {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' } },
        y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
        color: { field: 'variant', type: 'nominal', title: 'variant' },
      }),
    },
  ];
}

function trendChart(data: ReportData): ChartSpec[] {
  if (!data.history) return [];
  const label = (r: { route: string; variant?: string }) =>
    r.variant === undefined ? r.route : `${r.route} ${r.variant}`;
  const values = [
    ...data.history.flatMap((h) =>
      h.routes.map((r) => ({ series: label(r), time: h.startedAt, acc1: r.acc1 })),
    ),
    ...data.summary.map((r) => ({ series: r.label, time: data.generatedAt, acc1: r.acc1 })),
  ];
  return [
    {
      name: 'trend',
      title: 'Accuracy over runs',
      caption:
        'Top-1 accuracy of each route in earlier runs of this schedule (recall@k for zero-shot retrieval); the last point is this run (dated when its report was written).',
      spec: lineChart(values, {
        x: { field: 'time', type: 'temporal', title: 'run started' },
        y: { field: 'acc1', type: 'quantitative', title: 'top-1 accuracy', axis: PERCENT },
        color: { field: 'series', type: 'nominal', title: 'route' },
      }),
    },
  ];
}

/** A 420x240 line chart with points: the loss and trend charts. */
function lineChart(values: object[], encoding: Record<string, object>): TopLevelSpec {
  return {
    ...BASE,
    width: 420,
    height: 240,
    data: { values },
    mark: { type: 'line', point: true },
    encoding,
  };
}
