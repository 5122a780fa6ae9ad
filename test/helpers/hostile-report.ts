import { parseRunSpec } from '../../core/config/run-spec';
import { buildPlan } from '../../core/dataset/plan';
import type { Split } from '../../core/dataset/types';
import { buildReportData, type ReportData } from '../../core/report/report-data';
import { computeMetrics } from '../../core/routes/metrics';
import type { RouteResultFile, RouteSummary } from '../../core/routes/route-result';
import { fewShotTable } from '../../core/runs/summary';

/** Labels that broke or could break the report: separators, quotes, backslashes, markup. */
export const HOSTILE_LABELS = [
  'line\u2028separator',
  'para\u2029graph',
  'quote"double',
  "quote'single",
  'back\\slash\\',
  '</script><script>alert(1)</script>',
  '<b onmouseover="x()">html</b>',
  'constructor',
];

/** A zero-shot run's report data over HOSTILE_LABELS (built from hand-made predictions). */
export function hostileReportData(): ReportData {
  const LABELS = HOSTILE_LABELS;
  const spec = parseRunSpec({
    dataset: { uri: 's3://data/pets/', classes: LABELS },
    model: { bundle: 's3://models/tiny/' },
    coop: { enabled: false },
    probe: { enabled: false },
    fewShot: { shots: [1], seeds: [1] },
    classNames: Object.fromEntries(LABELS.map((l, i) => [l, `class ${i}`])),
  });
  const items = LABELS.flatMap((className, ci) =>
    (['train', 'test'] as Split[]).map((split, i) => ({
      uri: `s3://data/pets/${split}/${ci}/${i}.jpg`,
      size: 1,
      etag: `e${ci}${i}`,
      className,
      split,
    })),
  );
  const plan = buildPlan({ runId: 'r', spec, kind: 'manifest', items, skipped: [] });
  const labels = LABELS.map((_, i) => i);
  const scores = new Float32Array(labels.length * LABELS.length);
  labels.forEach((l, i) => (scores[i * LABELS.length + ((l + (i % 2)) % LABELS.length)] = 1));
  const metrics = computeMetrics(scores, labels, LABELS);
  const summary: RouteSummary = {
    route: 'zero-shot',
    n: metrics.n,
    acc1: metrics.acc1,
    acc5: metrics.acc5,
    meanPerClassRecall: metrics.meanPerClassRecall,
    macroF1: metrics.macroF1,
    notes: [],
    metricsUri: 's3://out/runs/r/results/zero-shot/metrics.json',
  };
  const file: RouteResultFile = { summary, inputsHash: 'h', metrics, details: {} };
  return buildReportData({
    runId: 'r',
    summaryUri: 's3://out/runs/r/summary.json',
    generatedAt: '2026-11-28T10:00:00.000Z',
    plan,
    bundle: { ref: 's3://models/tiny/', name: 'tiny', hash: 'ab'.repeat(32) },
    routes: [summary],
    fewShot: fewShotTable([summary]),
    results: new Map([[summary.metricsUri, file]]),
    failedItems: [{ uri: `s3://data/pets/test/${LABELS[5]}\u2028.png`, reason: LABELS[0]! }],
  });
}
