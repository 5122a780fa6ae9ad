import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser';
import { createCpuActivities } from '../../activities';
import { parseRunSpec } from '../../core/config/run-spec';
import type { ReportData } from '../../core/report/report-data';
import type { WriteReportInput, WriteReportResult } from '../../core/report/write-report';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import type { EvaluationSummary } from '../../contract/progress';
import {
  asWorkflow,
  startPipeline,
  type TestPipeline,
  uniqueId,
  runCli,
  uploadShapes,
} from '../helpers/stack';

// A real run's report: written by the writeReport activity, saved by `clipeval report`, and
// opened in headless Chromium without any network, every chart visible.
const EXPECTED_CHARTS = [
  'few-shot',
  'per-class',
  'confusion-zero-shot',
  'confusion-probe-all',
  'confusion-coop-4shot-seed1',
  'confusion-probe-4shot-seed1',
  'coop-loss',
  'trend',
];

let pipeline: TestPipeline;
let summary: EvaluationSummary;
let runId: string;
let corruptUri: string;
let written: WriteReportResult;

beforeAll(async () => {
  pipeline = await startPipeline();
  const { env, client, bundle } = pipeline;
  const corrupt = 'test/red_circle/corrupt.png';
  const { prefix } = await uploadShapes(
    env,
    { train: 4, val: 2, test: 3 },
    { label: 'report', extra: { [corrupt]: 'not a png' } },
  );
  corruptUri = `s3://${env.s3.bucket}/${prefix}${corrupt}`;
  runId = uniqueId('report-run');
  const spec = parseRunSpec({
    dataset: { uri: `s3://${env.s3.bucket}/${prefix}` },
    model: { bundle },
    shardSize: 16,
    coop: { epochs: 3, nCtx: 4 },
    fewShot: { shots: [2, 4], seeds: [1, 2] },
  });
  await startEvaluation(client, env, spec, runId);
  const outcome = await waitForRun(client, runId);
  if (outcome.status !== 'COMPLETED')
    expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
  summary = outcome.summary;

  const { activities, resources } = createCpuActivities(env);
  const input: WriteReportInput = {
    runId,
    planUri: summary.plan.planUri,
    bundle: summary.bundle,
    routes: summary.routes,
    fewShot: summary.fewShot,
    summaryUri: summary.summaryUri,
    history: [
      {
        runId: 'earlier',
        startedAt: '2026-11-01T00:00:00Z',
        routes: [{ route: 'zero-shot', acc1: 0.5 }],
      },
    ],
  };
  written = await new MockActivityEnvironment(asWorkflow(runId)).run(activities.writeReport, input);
  await resources.close();
}, 400_000);
afterAll(() => pipeline?.close());

const clipeval = (args: string[]) => runCli(args, { timeoutMs: 60_000 });

describe('run report', () => {
  let dir: string;

  it('writes report.json and report.html next to the run', () => {
    const bucket = pipeline.env.s3.bucket;
    expect(written).toEqual({
      reportUri: `s3://${bucket}/runs/${runId}/report.json`,
      htmlUri: `s3://${bucket}/runs/${runId}/report.html`,
    });
  });

  it('is saved locally by `clipeval report`', async () => {
    dir = mkdtempSync(join(tmpdir(), 'clipeval-report-'));
    const r = await clipeval(['report', runId, '--out', dir, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      html: join(dir, 'report.html'),
      json: join(dir, 'report.json'),
    });
    const data = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as ReportData;
    expect(data.runId).toBe(runId);
    expect(data.summary).toHaveLength(summary.routes.length);
    expect(data.failedItems.map((f) => f.uri)).toEqual([corruptUri]);
    expect(data.coopLosses.map((c) => c.losses.length)).toEqual([3, 3, 3, 3]);
    expect(data.dataset.fingerprint).toBe(summary.plan.fingerprint);
  });

  it('says a run has no report yet with exit code 2', async () => {
    const r = await clipeval(['report', uniqueId('no-such-run'), '--out', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has no report yet/);
  });

  it('opens in headless Chromium with no network, no errors and every chart visible', async () => {
    const url = pathToFileURL(join(dir, 'report.html')).href;
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const requests: string[] = [];
      const errors: string[] = [];
      page.on('request', (req) => requests.push(req.url()));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      // Anything but the page itself is refused (and recorded above).
      await page.route('**/*', (route) =>
        route.request().url() === url ? route.continue() : route.abort(),
      );
      await page.goto(url, { waitUntil: 'load' });
      const figures = page.locator('figure[data-chart]');
      const names = await Promise.all(
        (await figures.all()).map((f) => f.getAttribute('data-chart')),
      );
      expect(names).toEqual(EXPECTED_CHARTS);
      for (const name of EXPECTED_CHARTS) {
        await expect
          .poll(() => page.locator(`figure[data-chart="${name}"] > svg`).isVisible())
          .toBe(true);
      }
      expect(errors).toEqual([]);
      expect(requests).toEqual([url]);
    } finally {
      await browser.close();
    }
  });
});
