import { describe, expect, it } from 'vitest';
import type { RunOutcome } from '../../client/evaluations';
import { formatOutcome, progressLine } from '../../cli/format';
import type { RouteSummary } from '../../core/routes/route-result';
import type { EvaluationSummary } from '../../contract/progress';

// The terminal views of a running run: the status line and the progress line --wait redraws.
const running = (over: Partial<Extract<RunOutcome, { status: 'RUNNING' }>> = {}): RunOutcome => ({
  runId: 'r1',
  status: 'RUNNING',
  progress: {
    runId: 'r1',
    stage: 'routes',
    routes: { done: 1, total: 4, failed: [] },
  },
  training: [{ variant: '16shot-seed1', epoch: 12, epochs: 200, loss: 0.83125 }],
  ...over,
});

describe('progress views', () => {
  it('draws a bar for the stage and CoOp epoch and loss', () => {
    expect(progressLine(running(), 8)).toBe(
      'routes  [##......] 1/4 route jobs  coop 16shot-seed1 epoch 12/200 loss 0.831',
    );
    const extracting = running({
      progress: {
        runId: 'r1',
        stage: 'extracting',
        extraction: {
          shards: 10,
          shardsDone: 5,
          shardsReused: 0,
          imagesDone: 512,
          rows: 512,
          imagesFailed: 0,
          imagesDecoded: 512,
          imagesFromPixelCache: 0,
        },
      },
      training: [],
    });
    expect(progressLine(extracting, 10)).toBe('extracting  [#####.....] 5/10 shards, 512 images');
    expect(progressLine({ runId: 'r', status: 'RUNNING' })).toBe('waiting for a worker');
  });

  it('status of a running run names CoOp epoch and loss', () => {
    expect(formatOutcome(running())).toMatch(
      /routes 1\/4 done; coop 16shot-seed1 epoch 12\/200 loss 0\.8313/,
    );
  });
});

describe('the summary of a completed run', () => {
  const route = (over: Partial<RouteSummary>): RouteSummary => ({
    route: 'zero-shot',
    n: 24,
    acc1: 0.5,
    acc5: null,
    meanPerClassRecall: 0.5,
    macroF1: 0.5,
    notes: [],
    metricsUri: 's3://b/runs/r1/results/zero-shot/metrics.json',
    ...over,
  });
  const completed = (summary: Partial<EvaluationSummary>): RunOutcome =>
    ({
      runId: 'r1',
      status: 'COMPLETED',
      summary: {
        runId: 'r1',
        bundle: 's3://b/models/m/',
        plan: {
          planUri: 's3://b/runs/r1/plan.json',
          fingerprint: 'f'.repeat(64),
          images: 40,
          classes: 5,
          shards: 1,
          bySplit: { train: 16, val: 0, test: 24 },
          skipped: 0,
        },
        extraction: { shards: 1, shardsDone: 1, shardsReused: 0, imagesDone: 40, imagesFailed: 0 },
        routes: [],
        summaryUri: 's3://b/runs/r1/summary.json',
        fewShot: [],
        ...summary,
      },
    }) as unknown as RunOutcome;

  it('marks base-to-new rows and gives their base, new and harmonic mean', () => {
    const b2n = route({
      protocol: 'base-to-new',
      baseToNew: {
        baseClasses: 3,
        newClasses: 2,
        base: { n: 14, acc1: 0.75 },
        new: { n: 10, acc1: 0.25 },
        hm: 0.375,
      },
    });
    const text = formatOutcome(completed({ routes: [route({}), b2n] }));
    expect(text).toMatch(/^ {2}zero-shot {7}50\.0 {6}- {2}50\.0 {2}50\.0$/m);
    expect(text).toMatch(/^ {2}zero-shot b2n {3}50\.0 .* base 75\.0 new 25\.0 H 37\.5$/m);
  });

  it("lists zero-shot retrieval's recall@k both ways", () => {
    const text = formatOutcome(
      completed({
        retrieval: {
          imageToText: { '1': 0.5, '10': 1, '5': 0.75 },
          textToImage: { '1': 0.25, '5': 0.5, '10': 0.875 },
          images: 6,
          captions: 12,
          notes: [],
          metricsUri: 's3://b/runs/r1/results/retrieval/metrics.json',
        },
      }),
    );
    expect(text).toContain('  retrieval 6 images, 12 captions\n');
    expect(text).toContain('    image to text  R@1 50.0  R@5 75.0  R@10 100.0\n');
    expect(text).toContain('    text to image  R@1 25.0  R@5 50.0  R@10 87.5');
  });
});
