import { describe, expect, it } from 'vitest';
import { parseRunSpec } from '../../core/config/run-spec';
import { buildPlan } from '../../core/dataset/plan';
import type { Split } from '../../core/dataset/types';
import { computeMetrics } from '../../core/routes/metrics';
import type { RouteResultFile, RouteSummary } from '../../core/routes/route-result';
import { chartSpecs, MAX_CLASSES_CHARTED, renderCharts } from '../../core/report/charts';
import { escapeHtml, renderHtml } from '../../core/report/render-html';
import {
  buildReportData,
  type ReportData,
  type ReportHistory,
  routesToRead,
} from '../../core/report/report-data';
import { keys } from '../../core/storage/keys';
import { fewShotTable } from '../../core/runs/summary';

// The report from hand-made inputs: what report.json holds, the escaped HTML and every chart.
const EVIL = '<script>alert(1)</script>';
const CLASSES = ['cat', 'dog', EVIL]; // a closed list keeps its order
const spec = parseRunSpec({
  dataset: { uri: 's3://data/pets/', classes: CLASSES },
  model: { bundle: 's3://models/tiny/' },
  fewShot: { shots: [2, 4], seeds: [1, 2] },
});
const items = CLASSES.flatMap((c, ci) =>
  (['train', 'test'] as Split[]).flatMap((split) =>
    [0, 1].map((n) => ({
      uri: `s3://data/pets/${split}/${ci}/${n}.png`,
      size: 10,
      etag: `e${ci}${n}`,
      className: c,
      split,
    })),
  ),
);
const plan = buildPlan({
  runId: 'r1',
  spec,
  kind: 'image-folder',
  layout: 'split-folders',
  items,
  skipped: [{ uri: 's3://data/pets/readme.txt', reason: 'not an image extension' }],
});

/** A route's summary and metrics.json from its top-1 predictions of the labels [0,0,1,1,2,2]. */
const LABELS = [0, 0, 1, 1, 2, 2];
function route(
  r: Pick<RouteSummary, 'route' | 'variant' | 'shots' | 'seed'>,
  predicted: number[],
  losses?: number[],
): { summary: RouteSummary; file: RouteResultFile } {
  const scores = new Float32Array(LABELS.length * 3);
  predicted.forEach((p, i) => (scores[i * 3 + p] = 1));
  const metrics = computeMetrics(scores, LABELS, CLASSES);
  const summary: RouteSummary = {
    ...r,
    n: metrics.n,
    acc1: metrics.acc1,
    acc5: metrics.acc5,
    meanPerClassRecall: metrics.meanPerClassRecall,
    macroF1: metrics.macroF1,
    notes: r.route === 'zero-shot' ? [] : [`note for ${EVIL}`],
    metricsUri: `s3://out/${keys.routeResult('r1', r.route, r.variant, 'metrics.json')}`,
  };
  return {
    summary,
    file: { summary, inputsHash: 'h', metrics, details: losses ? { losses } : {} },
  };
}

const all = [
  route({ route: 'zero-shot' }, [0, 1, 1, 1, 2, 0]), // 4/6
  route({ route: 'probe', variant: 'all', shots: 'all', seed: 0 }, [0, 0, 1, 1, 2, 2]), // 6/6
  route({ route: 'coop', variant: '2shot-seed1', shots: 2, seed: 1 }, [0, 0, 0, 0, 0, 0], [2, 1.5]), // 2/6
  route({ route: 'coop', variant: '2shot-seed2', shots: 2, seed: 2 }, [0, 0, 1, 1, 0, 0], [2, 1]), // 4/6
  route({ route: 'coop', variant: '4shot-seed1', shots: 4, seed: 1 }, [0, 0, 1, 1, 2, 0], [2, 0.5]), // 5/6
  route({ route: 'coop', variant: '4shot-seed2', shots: 4, seed: 2 }, [0, 0, 1, 1, 2, 0], [2, 0.4]), // 5/6
  route({ route: 'probe', variant: '2shot-seed1', shots: 2, seed: 1 }, [0, 1, 1, 1, 2, 2]), // 5/6
  route({ route: 'probe', variant: '2shot-seed2', shots: 2, seed: 2 }, [0, 0, 1, 1, 2, 2]), // 6/6
  route({ route: 'probe', variant: '4shot-seed1', shots: 4, seed: 1 }, [0, 0, 1, 1, 2, 2]), // 6/6
  route({ route: 'probe', variant: '4shot-seed2', shots: 4, seed: 2 }, [0, 0, 1, 1, 2, 2]), // 6/6
];
const routes = all.map((r) => r.summary);
const history: ReportHistory = [
  { runId: 'r0', startedAt: '2026-11-01T00:00:00Z', routes: [{ route: 'zero-shot', acc1: 0.5 }] },
];

function reportData(extra: { history?: ReportHistory } = {}): ReportData {
  return buildReportData({ ...inputs(), ...extra });
}

function inputs(): Parameters<typeof buildReportData>[0] {
  return {
    runId: 'r1',
    summaryUri: 's3://out/runs/r1/summary.json',
    generatedAt: '2026-11-28T10:00:00.000Z',
    plan,
    bundle: { ref: 's3://models/tiny/', name: 'tiny', hash: 'ab'.repeat(32) },
    routes,
    fewShot: fewShotTable(routes),
    results: new Map(all.map((r) => [r.summary.metricsUri, r.file])),
    failedItems: [{ uri: `s3://data/pets/test/${EVIL}.png`, reason: 'corrupt PNG' }],
  };
}

describe('report data', () => {
  const data = reportData();

  it('has a summary row per route, zero-shot then CoOp then the probe', () => {
    expect(data.summary.map((r) => r.label)).toEqual([
      'zero-shot',
      'coop 2shot-seed1',
      'coop 2shot-seed2',
      'coop 4shot-seed1',
      'coop 4shot-seed2',
      'probe 2shot-seed1',
      'probe 2shot-seed2',
      'probe 4shot-seed1',
      'probe 4shot-seed2',
      'probe all',
    ]);
    const zs = data.summary[0]!;
    expect(zs.acc1).toBeCloseTo(4 / 6, 12);
    expect(zs.acc5).toBeNull(); // 3 classes
    expect(zs.meanPerClassRecall).toBeCloseTo((0.5 + 1 + 0.5) / 3, 12);
    expect(data.summary.at(-1)!.acc1).toBe(1);
    expect(data.summary.at(-1)!.macroF1).toBe(1);
  });

  it('has few-shot points with mean and population std over seeds, and the zero-shot line', () => {
    expect(data.fewShot.zeroShotAcc1).toBeCloseTo(4 / 6, 12);
    const coop2 = data.fewShot.points.find((p) => p.route === 'coop' && p.shots === 2)!;
    expect(coop2.seeds).toEqual([1, 2]);
    expect(coop2.mean).toBeCloseTo(0.5, 12); // (2/6 + 4/6) / 2
    expect(coop2.std).toBeCloseTo(1 / 6, 12);
    const probe4 = data.fewShot.points.find((p) => p.route === 'probe' && p.shots === 4)!;
    expect(probe4.std).toBe(0);
    expect(data.fewShot.points.some((p) => (p.shots as unknown) === 'all')).toBe(false);
  });

  it('details zero-shot, the full-data probe and the largest shots of the first seed', () => {
    expect(data.details.map((d) => d.label)).toEqual([
      'zero-shot',
      'probe all',
      'coop 4shot-seed1',
      'probe 4shot-seed1',
    ]);
    const zs = data.details[0]!;
    expect(zs.perClass).toEqual([
      { name: 'cat', support: 2, accuracy: 0.5 },
      { name: 'dog', support: 2, accuracy: 1 },
      { name: EVIL, support: 2, accuracy: 0.5 },
    ]);
    // Sparse cells [true, predicted, count] of the matrix [[1, 1, 0], [0, 2, 0], [1, 0, 1]].
    expect(zs.confusionCells).toEqual([
      [0, 0, 1],
      [0, 1, 1],
      [1, 1, 2],
      [2, 0, 1],
      [2, 2, 1],
    ]);
  });

  it('reads the dense confusion matrix of a metrics.json written before the sparse form', () => {
    const [zeroShot, ...rest] = all;
    const metrics: Record<string, unknown> = { ...zeroShot!.file.metrics };
    delete metrics.confusionCells;
    metrics.confusion = [
      [1, 1, 0],
      [0, 2, 0],
      [1, 0, 1],
    ];
    const legacy = { ...zeroShot!.file, metrics } as unknown as RouteResultFile;
    const old = buildReportData({
      ...inputs(),
      results: new Map([
        [zeroShot!.summary.metricsUri, legacy],
        ...rest.map((r) => [r.summary.metricsUri, r.file] as const),
      ]),
    });
    expect(old.details[0]!.confusionCells).toEqual(data.details[0]!.confusionCells);
  });

  it('reads only the metrics files it needs: detailed routes and every CoOp variant', () => {
    const labels = routesToRead(routes, [1, 2]).map((r) => `${r.route} ${r.variant ?? ''}`);
    expect(labels.sort()).toEqual(
      [
        'zero-shot ',
        'probe all',
        'probe 4shot-seed1',
        'coop 2shot-seed1',
        'coop 2shot-seed2',
        'coop 4shot-seed1',
        'coop 4shot-seed2',
      ].sort(),
    );
  });

  it('has the CoOp loss curves, provenance, failed and skipped items', () => {
    expect(data.coopLosses).toEqual([
      { variant: '2shot-seed1', losses: [2, 1.5] },
      { variant: '2shot-seed2', losses: [2, 1] },
      { variant: '4shot-seed1', losses: [2, 0.5] },
      { variant: '4shot-seed2', losses: [2, 0.4] },
    ]);
    expect(data.dataset.fingerprint).toBe(plan.dataset.fingerprint);
    expect(data.dataset.counts.bySplit).toEqual({ train: 6, val: 0, test: 6 });
    expect(data.dataset.skipped.byReason).toEqual({ 'not an image extension': 1 });
    expect(data.model.hash).toBe('ab'.repeat(32));
    expect(data.spec.fewShot.shots).toEqual([2, 4]);
    expect(data.failedItems).toEqual([
      { uri: `s3://data/pets/test/${EVIL}.png`, reason: 'corrupt PNG' },
    ]);
    expect(data.history).toBeUndefined();
  });
});

describe('report charts and HTML', () => {
  it('specs a chart per section, the trend only with a history', () => {
    const names = (d: ReportData) => chartSpecs(d).map((c) => c.name);
    expect(names(reportData())).toEqual([
      'few-shot',
      'per-class',
      'confusion-zero-shot',
      'confusion-probe-all',
      'confusion-coop-4shot-seed1',
      'confusion-probe-4shot-seed1',
      'coop-loss',
    ]);
    expect(names(reportData({ history }))).toContain('trend');
  });

  it('renders every chart to an SVG string, escaping class names', async () => {
    const charts = await renderCharts(reportData({ history }));
    expect(charts).toHaveLength(8);
    for (const c of charts) {
      expect(c.svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      expect(c.svg).toMatch(/<\/svg>$/);
      expect(c.svg).not.toContain('<script');
    }
    expect(charts.find((c) => c.name === 'per-class')!.svg).toContain(escapeHtml(EVIL));
  }, 30_000);

  it('escapes every dataset string in the HTML and needs nothing from the network', async () => {
    const data = reportData({ history });
    const html = renderHtml(data, await renderCharts(data));
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toMatch(/<(link|img|iframe|object|embed)\b/);
    expect(html).not.toMatch(/\b(src|href)=/);
    expect(html.match(/<figure data-chart="/g)).toHaveLength(8);
  }, 30_000);

  it('charts at most MAX_CLASSES_CHARTED classes: the least accurate, the most confused', () => {
    const K = MAX_CLASSES_CHARTED + 10;
    const names = Array.from({ length: K }, (_, i) => `c${i}`);
    // Class i is right with accuracy i / K; only the last class is ever confused (with c0).
    const confusionCells: [number, number, number][] = names.map((_, i) => [i, i, 1]);
    confusionCells.splice(K - 1, 0, [K - 1, 0, 5]);
    const detail = {
      label: 'zero-shot',
      route: 'zero-shot' as const,
      perClass: names.map((name, i) => ({ name, support: 1, accuracy: i / K })),
      confusionCells,
    };
    const data = { ...reportData(), details: [detail] };
    data.dataset = { ...data.dataset, classes: names };
    const [perClass, matrix] = chartSpecs(data).filter((c) => c.name !== 'few-shot');
    expect(perClass!.caption).toMatch(/the 40 classes of 50 with the lowest mean accuracy/);
    const shown = (spec: unknown) =>
      new Set(
        (spec as { data: { values: { className?: string; actual?: string }[] } }).data.values.map(
          (v) => v.className ?? v.actual,
        ),
      );
    expect([...shown(perClass!.spec)]).toEqual(names.slice(0, MAX_CLASSES_CHARTED));
    const confused = shown(matrix!.spec);
    expect(confused.size).toBe(MAX_CLASSES_CHARTED);
    expect(confused.has('c0') && confused.has(`c${K - 1}`)).toBe(true);
  });

  it('escapes the five HTML-significant characters', () => {
    expect(escapeHtml(`a&b<c>"d"'e'`)).toBe('a&amp;b&lt;c&gt;&quot;d&quot;&#39;e&#39;');
  });
});
