import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCpuActivities } from '../../activities';
import type { ClipevalEnv } from '../../core/config/env';
import { parseRunSpec, type RunSpecInput } from '../../core/config/run-spec';
import type { Plan } from '../../core/dataset/plan';
import type { RouteResultFile, RouteSummary } from '../../core/routes/route-result';
import { hpGrid } from '../../core/routes/tip-adapter/search';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { parseS3Uri } from '../../core/storage/s3-uri';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import type { EvaluationSummary } from '../../contract/progress';
import {
  asWorkflow,
  startPipeline,
  type TestPipeline,
  uniqueId,
  uploadShapes,
} from '../helpers/stack';

// Tip-Adapter and Tip-Adapter-F through Temporal on the real stack: results beside zero-shot in
// summary.json and the report, the searched alpha and beta on the grid, and content addressing
// (the same inputs reuse a result, a changed hyper-parameter does not).
let env: ClipevalEnv;
let client: Client;
let bundle: string;
let pipeline: TestPipeline;

beforeAll(async () => {
  pipeline = await startPipeline();
  ({ env, client, bundle } = pipeline);
});
afterAll(() => pipeline.close());

const store = () => ObjectStore.connect(env.s3);
const readResult = (uri: string) => {
  const { bucket, key } = parseS3Uri(uri);
  return ObjectStore.connect({ ...env.s3, bucket }).requireJson<RouteResultFile>(key);
};

async function run(uri: string, extra: Partial<RunSpecInput>) {
  const runId = uniqueId('tip');
  const spec = parseRunSpec({
    dataset: { uri },
    model: { bundle },
    shardSize: 16,
    coop: { enabled: false },
    probe: { enabled: false },
    ...extra,
  });
  await startEvaluation(client, env, spec, runId);
  const outcome = await waitForRun(client, runId);
  if (outcome.status !== 'COMPLETED')
    expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
  return { runId, summary: outcome.summary };
}

/** The route's `fitTipAdapter` activity run again on the run's plan (as a resumed run would). */
async function fitAgain(runId: string, shots: number, seed: number): Promise<RouteSummary[]> {
  const { activities, resources } = createCpuActivities(env);
  try {
    return await new MockActivityEnvironment(asWorkflow(runId)).run(activities.fitTipAdapter, {
      runId,
      planUri: store().uri(keys.plan(runId)),
      bundle,
      augment: { views: 2, seed: 0 },
      shots,
      seed,
    });
  } finally {
    await resources.close();
  }
}

/** Rewrites the run's plan with other Tip-Adapter settings (what a changed spec plans). */
async function changeSpec(runId: string, tipAdapter: Partial<Plan['spec']['tipAdapter']>) {
  const plan = await store().requireJson<Plan>(keys.plan(runId));
  const spec = { ...plan.spec, tipAdapter: { ...plan.spec.tipAdapter, ...tipAdapter } };
  await store().putJson(keys.plan(runId), { ...plan, spec });
}

const TIP = { enabled: true, epochs: 3, searchStep: [20, 5] as [number, number] };

describe('Tip-Adapter and Tip-Adapter-F', () => {
  let summary: EvaluationSummary;
  let runId: string;

  beforeAll(async () => {
    const uri = (await uploadShapes(env, { train: 6, val: 2, test: 4 })).uri;
    ({ runId, summary } = await run(uri, {
      extraction: { augmentedViews: 2 },
      tipAdapter: TIP,
      fewShot: { shots: [2, 4], seeds: [1, 2] },
    }));
  }, 300_000);

  it('runs both per (shots, seed) beside zero-shot, with few-shot rows in summary.json', async () => {
    const names = summary.routes.map((r) => `${r.route}/${r.variant ?? ''}`).sort();
    const variants = ['2shot-seed1', '2shot-seed2', '4shot-seed1', '4shot-seed2'];
    expect(names).toEqual(
      [
        'zero-shot/',
        ...['tip-adapter', 'tip-adapter-f'].flatMap((r) => variants.map((v) => `${r}/${v}`)),
      ].sort(),
    );
    for (const r of summary.routes) expect(r.n).toBe(12); // 3 classes x 4 test images
    const file = await store().requireJson<{ fewShot: EvaluationSummary['fewShot'] }>(
      keys.runSummary(runId),
    );
    expect(file.fewShot.map((f) => `${f.route} ${f.shots} ${f.seeds.join(',')}`).sort()).toEqual([
      'tip-adapter 2 1,2',
      'tip-adapter 4 1,2',
      'tip-adapter-f 2 1,2',
      'tip-adapter-f 4 1,2',
    ]);
  });

  it('searches alpha and beta on the grid, keeps a val-chosen epoch, uses the zero-shot prototypes', async () => {
    const zs = await readResult(summary.routes.find((r) => r.route === 'zero-shot')!.metricsUri);
    for (const r of summary.routes.filter((x) => x.route !== 'zero-shot')) {
      const { details } = await readResult(r.metricsUri);
      expect(details['searched']).toBe(true);
      expect(hpGrid(3, 5)).toContain(details['alpha']);
      expect(hpGrid(7, 20)).toContain(details['beta']);
      expect(details['prototypes']).toBe(zs.details['prototypes']);
      expect(details['viewsPerKey']).toBe(2);
      expect(details['cacheSize']).toBe(3 * (r.shots as number));
      expect(details['valImages']).toBe(3 * 2); // min(k, 4) of the 2 val images per class
      if (r.route === 'tip-adapter-f') {
        expect(details['bestEpoch']).toBeGreaterThanOrEqual(1);
        expect(details['bestEpoch']).toBeLessThanOrEqual(3);
        expect(details['losses']).toHaveLength(3);
      }
    }
  });

  it('shows both in the report: summary rows and few-shot points', async () => {
    const report = await store().requireJson<{
      summary: { route: string }[];
      fewShot: { points: { route: string }[] };
    }>(keys.report(runId, 'report.json'));
    const routes = new Set(report.fewShot.points.map((p) => p.route));
    expect([...routes].sort()).toEqual(['tip-adapter', 'tip-adapter-f']);
    expect(report.summary.filter((s) => s.route === 'tip-adapter-f')).toHaveLength(4);
    const html = await store().requireBytes(keys.report(runId, 'report.html'));
    expect(Buffer.from(html).toString('utf8')).toContain('Tip-Adapter-F');
  });

  it('a rerun reuses both results; a changed hyper-parameter recomputes what it changes', async () => {
    const first = summary.routes.filter(
      (r) => r.variant === '2shot-seed1' && r.route !== 'zero-shot',
    );
    const again = await fitAgain(runId, 2, 1);
    expect(again.map((r) => [r.route, r.reused, r.acc1])).toEqual(
      first.sort((a, b) => a.route.localeCompare(b.route)).map((r) => [r.route, true, r.acc1]),
    );
    // Training's epochs: Tip-Adapter (training-free) is reused, Tip-Adapter-F retrains.
    await changeSpec(runId, { epochs: 2 });
    const epochs = await fitAgain(runId, 2, 1);
    expect(epochs.map((r) => [r.route, r.reused ?? false])).toEqual([
      ['tip-adapter', true],
      ['tip-adapter-f', false],
    ]);
    const retrained = await readResult(epochs[1]!.metricsUri);
    expect(retrained.details['losses']).toHaveLength(2);
    // The search grid: both recompute, on the new grid.
    await changeSpec(runId, { searchStep: [10, 4] });
    const grid = await fitAgain(runId, 2, 1);
    expect(grid.map((r) => r.reused ?? false)).toEqual([false, false]);
    for (const r of grid) {
      const { details } = await readResult(r.metricsUri);
      expect(hpGrid(3, 4)).toContain(details['alpha']);
      expect(hpGrid(7, 10)).toContain(details['beta']);
    }
    // The same settings once more: both reused.
    await changeSpec(runId, { epochs: 2, searchStep: [10, 4] });
    expect((await fitAgain(runId, 2, 1)).map((r) => r.reused)).toEqual([true, true]);
  });
});

describe('Tip-Adapter under base-to-new', () => {
  it('caches base-class images only and reports base, new and their harmonic mean', async () => {
    const uri = (await uploadShapes(env, { train: 4, val: 2, test: 4 })).uri;
    const { summary } = await run(uri, {
      zeroShot: { enabled: false },
      tipAdapter: { ...TIP, protocol: 'base-to-new' },
      fewShot: { shots: [2], seeds: [1] },
    });
    expect(summary.routes.map((r) => r.route).sort()).toEqual(['tip-adapter', 'tip-adapter-f']);
    for (const r of summary.routes) {
      expect(r.protocol).toBe('base-to-new');
      // 3 classes: base = the first 2, new = the last one.
      expect(r.baseToNew).toMatchObject({ baseClasses: 2, newClasses: 1 });
      expect(r.baseToNew!.base.n + r.baseToNew!.new.n).toBe(12);
      // The new class competes with no other class: right every time.
      expect(r.baseToNew!.new.acc1).toBe(1);
      const { details } = await readResult(r.metricsUri);
      expect(details['cacheSize']).toBe(2 * 2);
      expect(details['valImages']).toBe(2 * 2);
    }
  });
});
