import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { planDatasetActivity } from '../../activities/plan-dataset';
import { loadEnv } from '../../core/config/env';
import { ConfigError } from '../../core/config/errors';
import { EXTRACTION_ONLY, type ImageGraph } from '../../core/config/run-spec';
import type { Plan } from '../../core/dataset/plan';
import { planDataset } from '../../core/dataset/plan-dataset';
import { planSpaceChoice } from '../../core/embeddings/shard-key';
import { keys } from '../../core/storage/keys';
import { MemoryS3 } from '../helpers/memory-s3';

// The image graph of a run is resolved once, when it is planned: the spec's extraction.imageGraph,
// else the planning worker's CLIPEVAL_IMAGE_GRAPH, else fp32; and it is written into plan.json,
// where every gpu worker reads it (planSpaceChoice). Planned against an in-memory S3.

function dataset(): MemoryS3 {
  const s3 = new MemoryS3(['out', 'bkt']);
  for (const [i, cls] of ['cat', 'dog', 'cat', 'dog'].entries())
    s3.put('bkt', `ds/test/${cls}/${i}.png`, `image ${i}`);
  return s3;
}

const spec = (imageGraph?: ImageGraph) => ({
  dataset: { uri: 's3://bkt/ds/' },
  ...EXTRACTION_ONLY,
  ...(imageGraph ? { extraction: { imageGraph } } : {}),
});

/** Plans a run with the spec's graph (if any) and the worker's (if any); the plan's graph. */
async function planned(specGraph?: ImageGraph, workerGraph?: ImageGraph) {
  const s3 = dataset();
  const store = s3.store('out');
  const runId = `run-${specGraph ?? 'none'}-${workerGraph ?? 'none'}`;
  await planDataset(
    store,
    { runId, spec: spec(specGraph) },
    workerGraph ? { imageGraph: workerGraph } : {},
  );
  const plan = await store.requireJson<Plan>(keys.plan(runId));
  expect(plan.spec.extraction.imageGraph).toBe(planSpaceChoice(plan).imageGraph);
  return plan.spec.extraction.imageGraph;
}

describe('planning resolves the image graph: spec ?? CLIPEVAL_IMAGE_GRAPH ?? fp32', () => {
  it('fp32 when neither names one', async () => {
    expect(await planned()).toBe('fp32');
  });

  it("the worker's graph when the spec names none", async () => {
    expect(await planned(undefined, 'fp16')).toBe('fp16');
    expect(await planned(undefined, 'int8')).toBe('int8');
  });

  it("the spec's graph over the worker's", async () => {
    expect(await planned('fp32', 'fp16')).toBe('fp32');
    expect(await planned('int8', 'fp16')).toBe('int8');
    expect(await planned('fp16')).toBe('fp16');
  });

  it('CLIPEVAL_IMAGE_GRAPH reaches planning through the activity; an invalid value is refused', async () => {
    const env = loadEnv({ CLIPEVAL_BUCKET: 'out', CLIPEVAL_IMAGE_GRAPH: 'int8' });
    expect(env.imageGraph).toBe('int8');
    const s3 = dataset();
    const store = s3.store('out');
    const activity = planDatasetActivity({
      store,
      ...(env.imageGraph ? { imageGraph: env.imageGraph } : {}),
    });
    await new MockActivityEnvironment().run(activity, { runId: 'via-env', spec: spec() });
    const plan = await store.requireJson<Plan>(keys.plan('via-env'));
    expect(planSpaceChoice(plan)).toEqual({ preprocessing: 'exact', imageGraph: 'int8' });

    for (const bad of ['fp64', 'FP16', '']) {
      const parse = () => loadEnv({ CLIPEVAL_BUCKET: 'out', CLIPEVAL_IMAGE_GRAPH: bad });
      expect(parse).toThrow(ConfigError);
      expect(parse).toThrow(/CLIPEVAL_IMAGE_GRAPH.*expected fp32, fp16 or int8/s);
    }
  });
});
