import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCpuActivities, createGpuActivities } from '../../activities';
import type { ClipevalEnv } from '../../core/config/env';
import { parseRunSpec, type RunSpecInput } from '../../core/config/run-spec';
import type { Plan } from '../../core/dataset/plan';
import { syntheticDataset } from '../../core/dataset/synthetic';
import { type EmbeddingMatrix, readMatrix } from '../../core/embeddings/reader';
import { planShardKeys } from '../../core/embeddings/shard-key';
import { loadBundle } from '../../core/model/bundle';
import { CoopGraph } from '../../core/model/onnx/coop-graph';
import { tokenizerForBundle } from '../../core/model/text/tokenizer';
import { floatsFromBase64 } from '../../core/routes/coop/checkpoint';
import { buildPrompts } from '../../core/routes/coop/prompts';
import { scatterContext } from '../../core/routes/coop/trainer';
import { decodePredictions } from '../../core/routes/predictions';
import type { RouteResultFile, RouteSummary } from '../../core/routes/route-result';
import { scaledCosineScores } from '../../core/routes/scores';
import { type BaseToNewTable, type FewShotTable, baseToNewTable } from '../../core/runs/summary';
import { DEFAULT_TEMPLATES } from '../../core/routes/zero-shot/templates';
import { contentHash } from '../../core/storage/content-hash';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { parseS3Uri } from '../../core/storage/s3-uri';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import type { EvaluationSummary } from '../../contract/progress';
import { TINY_BUNDLE } from '../helpers/fixtures';
import { directZeroShotScores } from '../helpers/zero-shot-reference';
import {
  asWorkflow,
  putObjects,
  startPipeline,
  type TestPipeline,
  uniqueId,
} from '../helpers/stack';

// CoCoOp's base-to-new protocol through Temporal on the real stack: 5 classes (base: the first 3
// of the sorted list, new: the last 2), zero-shot and CoOp under base-to-new, base / new / hm
// recomputed from the stored embeddings and from the predictions, CoOp trained on the base
// classes only, results reused under the same protocol and never across protocols.
let env: ClipevalEnv;
let client: Client;
let bundle: string;
let pipeline: TestPipeline;

beforeAll(async () => {
  pipeline = await startPipeline();
  ({ env, client, bundle } = pipeline);
});
afterAll(() => pipeline.close());

const storeIn = (bucket = env.s3.bucket) => ObjectStore.connect({ ...env.s3, bucket });
const readResult = (uri: string) => {
  const { bucket, key } = parseS3Uri(uri);
  return storeIn(bucket).requireJson<RouteResultFile>(key);
};

/**
 * Five classes: the three synthetic shapes, and two more ("zz_" + shape) drawn with another seed,
 * so sorted the base half is the three originals and the new half the two zz_ classes.
 */
async function fiveClasses(): Promise<string> {
  const prefix = `${uniqueId('b2n')}/`;
  const perSplit = { train: 3, val: 0, test: 3 };
  const first = await syntheticDataset({ perSplit, size: 32 });
  const second = (await syntheticDataset({ perSplit, size: 32, seed: 7 })).filter(
    (i) => i.className !== 'blue-triangle',
  );
  const objects = Object.fromEntries([
    ...first.map((i) => [i.path, i.body] as const),
    ...second.map(
      (i) => [i.path.replace(`/${i.className}/`, `/zz_${i.className}/`), i.body] as const,
    ),
  ]);
  await putObjects(env, env.s3.bucket, prefix, objects);
  return `s3://${env.s3.bucket}/${prefix}`;
}

const B2N: Partial<RunSpecInput> = {
  zeroShot: { protocol: 'base-to-new' },
  coop: { protocol: 'base-to-new', epochs: 2, nCtx: 4 },
  probe: { enabled: false },
  fewShot: { shots: [2], seeds: [1, 2] },
};

/** base / new / hm of a score matrix by a plain loop: argmax over the image's own half only. */
function ownHalfAccuracy(scores: Float32Array, labels: number[], k: number) {
  const m = Math.ceil(k / 2);
  const hit = { base: 0, new: 0 };
  const n = { base: 0, new: 0 };
  labels.forEach((y, i) => {
    const [lo, hi] = y < m ? [0, m] : [m, k];
    let best = lo;
    for (let c = lo + 1; c < hi; c++) if (scores[i * k + c]! > scores[i * k + best]!) best = c;
    const half = y < m ? 'base' : 'new';
    n[half]++;
    if (best === y) hit[half]++;
  });
  const base = hit.base / n.base;
  const nw = hit.new / n.new;
  return { base, new: nw, hm: base + nw === 0 ? 0 : (2 * base * nw) / (base + nw) };
}

describe('base-to-new evaluation (CoCoOp protocol)', () => {
  let summary: EvaluationSummary;
  let runId: string;
  let plan: Plan;
  let test: EmbeddingMatrix;
  let labels: number[];

  beforeAll(async () => {
    const uri = await fiveClasses();
    runId = uniqueId('b2n-run');
    const spec = parseRunSpec({ dataset: { uri }, model: { bundle }, shardSize: 16, ...B2N });
    await startEvaluation(client, env, spec, runId);
    const outcome = await waitForRun(client, runId);
    if (outcome.status !== 'COMPLETED')
      expect.fail(`run ${outcome.status}: ${'error' in outcome ? outcome.error : ''}`);
    summary = outcome.summary;
    plan = await storeIn().requireJson<Plan>(keys.plan(runId));
    const local = await loadBundle(TINY_BUNDLE);
    test = await readMatrix(storeIn(), planShardKeys(plan, local), {
      bundleHash: local.hash,
      split: 'test',
      view: 0,
    });
    labels = test.rows.map((r) => r.label);
  }, 300_000);

  it('splits the sorted class list into 3 base and 2 new classes, every route under base-to-new', () => {
    expect(plan.classes).toEqual([
      'blue-triangle',
      'greenSquare',
      'red_circle',
      'zz_greenSquare',
      'zz_red_circle',
    ]);
    const names = summary.routes.map((r) => `${r.route}/${r.variant ?? ''}`).sort();
    expect(names).toEqual(['coop/2shot-seed1', 'coop/2shot-seed2', 'zero-shot/']);
    for (const r of summary.routes) {
      expect(r.protocol).toBe('base-to-new');
      expect(r.n).toBe(15);
      expect(r.acc5).toBeNull();
      expect(r.baseToNew).toMatchObject({
        baseClasses: 3,
        newClasses: 2,
        base: { n: 9 },
        new: { n: 6 },
      });
    }
  });

  it('base, new and hm follow from the predictions, whose top classes stay in the own half', async () => {
    for (const r of summary.routes) {
      const { bucket, key } = parseS3Uri(r.metricsUri);
      const p = decodePredictions(
        await storeIn(bucket).requireBytes(key.replace('metrics.json', 'predictions.arrow')),
      );
      expect(p.k).toBe(2); // floor(5 / 2) classes compete at least
      const hit = { base: 0, new: 0 };
      p.rows.forEach((row, i) => {
        const top = [p.top.indices[2 * i]!, p.top.indices[2 * i + 1]!];
        for (const c of top) expect(c < 3).toBe(row.label < 3);
        if (top[0] === row.label) hit[row.label < 3 ? 'base' : 'new']++;
      });
      const b2n = r.baseToNew!;
      expect(b2n.base.acc1).toBe(hit.base / 9);
      expect(b2n.new.acc1).toBe(hit.new / 6);
      expect(r.acc1).toBeCloseTo((hit.base + hit.new) / 15, 12);
      const hm =
        b2n.base.acc1 + b2n.new.acc1 === 0
          ? 0
          : (2 * b2n.base.acc1 * b2n.new.acc1) / (b2n.base.acc1 + b2n.new.acc1);
      expect(b2n.hm).toBeCloseTo(hm, 12);
    }
  });

  it('zero-shot equals a direct computation: all prototypes, each image among its own half', async () => {
    const local = await loadBundle(TINY_BUNDLE);
    const scores = await directZeroShotScores(
      local,
      test.embeddings,
      plan.classNames,
      DEFAULT_TEMPLATES,
    );
    const direct = ownHalfAccuracy(scores, labels, 5);
    const zs = summary.routes.find((r) => r.route === 'zero-shot')!;
    expect(zs.baseToNew!.base.acc1).toBe(direct.base);
    expect(zs.baseToNew!.new.acc1).toBe(direct.new);
    expect(zs.baseToNew!.hm).toBeCloseTo(direct.hm, 12);
  });

  it('CoOp trains on the 3 base classes only and tests the learned context on all 5 names', async () => {
    const local = await loadBundle(TINY_BUNDLE);
    const tokenizer = await tokenizerForBundle(local);
    const graph = await CoopGraph.create(local, { threads: 1 });
    try {
      for (const r of summary.routes.filter((x) => x.route === 'coop')) {
        const file = await readResult(r.metricsUri);
        expect(file.details).toMatchObject({ trainClasses: 3, trainImages: 6 });
        expect((file.details.config as { protocol?: string }).protocol).toBe('base-to-new');
        const ctx = await storeIn().requireJson<{
          trainClasses: string[];
          classes: string[];
          ctx: string;
          dims: number[];
        }>(keys.coopContext(runId, r.variant!));
        expect(ctx.trainClasses).toEqual(plan.classes.slice(0, 3));
        expect(ctx.dims).toEqual([1, 4, graph.width]);
        // The stored context in every class's prompt, scored directly.
        const layout = buildPrompts(tokenizer, plan.classNames, {
          nCtx: 4,
          position: 'end',
          maxLength: graph.maxLength,
        });
        const features = await graph.textFeatures(
          layout.batch,
          scatterContext(floatsFromBase64(ctx.ctx), layout, graph.width, false),
        );
        const scores = await scaledCosineScores(
          test.embeddings,
          features,
          graph.embedDim,
          local.manifest.logitScale,
        );
        const direct = ownHalfAccuracy(scores, labels, 5);
        expect(r.baseToNew!.base.acc1).toBe(direct.base);
        expect(r.baseToNew!.new.acc1).toBe(direct.new);
      }
    } finally {
      await graph.close();
    }
  });

  it('summary.json and the report hold the base-to-new table; few-shot rows say their protocol', async () => {
    const stored = await storeIn().requireJson<{
      baseToNew: BaseToNewTable;
      fewShot: FewShotTable;
    }>(keys.runSummary(runId));
    expect(stored.baseToNew).toEqual(baseToNewTable(summary.routes));
    const [zs, coop] = stored.baseToNew;
    expect(zs).toMatchObject({ route: 'zero-shot', shots: null, baseClasses: 3, newClasses: 2 });
    const seeds = summary.routes.filter((r) => r.route === 'coop').map((r) => r.baseToNew!);
    const mean = (f: (b: (typeof seeds)[number]) => number) => (f(seeds[0]!) + f(seeds[1]!)) / 2;
    expect(coop).toMatchObject({ route: 'coop', shots: 2, seeds: [1, 2] });
    expect(coop!.base.mean).toBeCloseTo(
      mean((b) => b.base.acc1),
      12,
    );
    expect(coop!.new.mean).toBeCloseTo(
      mean((b) => b.new.acc1),
      12,
    );
    expect(coop!.hm.mean).toBeCloseTo(
      mean((b) => b.hm),
      12,
    );
    const [bm, nm] = [mean((b) => b.base.acc1), mean((b) => b.new.acc1)];
    expect(coop!.hmOfMeans).toBeCloseTo(bm + nm === 0 ? 0 : (2 * bm * nm) / (bm + nm), 12);
    expect(stored.fewShot).toEqual([
      expect.objectContaining({ route: 'coop', protocol: 'base-to-new' }),
    ]);

    const report = await storeIn().requireJson<{ baseToNew: BaseToNewTable }>(
      keys.report(runId, 'report.json'),
    );
    expect(report.baseToNew).toEqual(stored.baseToNew);
    const html = new TextDecoder().decode(
      await storeIn().requireBytes(keys.report(runId, 'report.html')),
    );
    expect(html).toContain('<h2>Base-to-new</h2>');
    expect(html).toContain('H of means');
    expect(html).toContain('coop (base-to-new, pooled)');
  });

  describe('reuse', () => {
    const ref = () => ({
      runId,
      planUri: `s3://${env.s3.bucket}/${keys.plan(runId)}`,
      bundle,
      augment: { views: 0, seed: 0 },
    });
    /** Both routes' activities on fresh workers (no cached plan), as a resumed run calls them. */
    async function rerun(): Promise<{ zs: RouteSummary; coop: RouteSummary }> {
      const cpu = createCpuActivities(env);
      const gpu = createGpuActivities(env);
      try {
        const mock = () => new MockActivityEnvironment(asWorkflow(runId));
        const zs = await mock().run(cpu.activities.zeroShot, ref());
        const coop = await mock().run(gpu.activities.trainCoopPrompts, {
          ...ref(),
          shots: 2,
          seed: 1,
        });
        return { zs: zs as RouteSummary, coop: coop as RouteSummary };
      } finally {
        await Promise.all([cpu.resources.close(), gpu.resources.close()]);
      }
    }
    /** Rewrites the run's plan with both protocols set to `protocol` (as a changed spec would). */
    async function switchPlan(protocol: 'all-classes' | 'base-to-new') {
      const spec = {
        ...plan.spec,
        zeroShot: { ...plan.spec.zeroShot, protocol },
        coop: { ...plan.spec.coop, protocol },
      };
      await storeIn().putJson(keys.plan(runId), { ...plan, spec });
    }

    it('the same protocol reuses both results; another protocol reuses neither result nor checkpoint', async () => {
      const same = await rerun();
      expect(same.zs).toMatchObject({ reused: true, protocol: 'base-to-new' });
      expect(same.coop).toMatchObject({ reused: true, protocol: 'base-to-new' });
      const before = summary.routes.find((r) => r.variant === '2shot-seed1')!;
      expect(same.coop.baseToNew).toEqual(before.baseToNew);

      await switchPlan('all-classes');
      const all = await rerun();
      for (const r of [all.zs, all.coop]) {
        expect(r.reused).toBeUndefined();
        expect(r.protocol).toBeUndefined();
        expect(r.baseToNew).toBeUndefined();
        expect(r.acc5).not.toBeNull(); // 5 classes compete again
      }
      const coopFile = await readResult(all.coop.metricsUri);
      // The base-to-new checkpoint (epoch 2 of 2) is not resumed: training starts over on 5 classes.
      expect(coopFile.details).toMatchObject({ resumedFromEpoch: 0, trainClasses: 5 });
      expect(coopFile.details.config).not.toHaveProperty('protocol');
      // All-classes hashes are those of the formulas from before protocols existed.
      const local = await loadBundle(TINY_BUNDLE);
      const common = {
        bundle: local.hash,
        dataset: plan.dataset.fingerprint,
        augment: { views: 0, seed: 0 },
        names: plan.classNames,
      };
      expect(coopFile.inputsHash).toBe(contentHash({ ...common, config: coopFile.details.config }));
      expect((await readResult(all.zs.metricsUri)).inputsHash).toBe(
        contentHash({ ...common, templates: DEFAULT_TEMPLATES }),
      );

      await switchPlan('base-to-new');
      const back = await rerun();
      expect(back.zs.reused).toBeUndefined();
      expect(back.coop.reused).toBeUndefined();
      expect(back.zs.baseToNew).toEqual(
        summary.routes.find((r) => r.route === 'zero-shot')!.baseToNew,
      );
      expect((await readResult(back.coop.metricsUri)).details).toMatchObject({
        resumedFromEpoch: 0,
        trainClasses: 3,
      });
      // Retrained from the same seed: the same result.
      expect(back.coop.baseToNew).toEqual(before.baseToNew);
    }, 300_000);
  });
});
