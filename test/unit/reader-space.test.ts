import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EXTRACTION_ONLY,
  type ImageGraph,
  type PreprocessingMode,
} from '../../core/config/run-spec';
import { planDataset } from '../../core/dataset/plan-dataset';
import { EmbeddingSpaceError } from '../../core/embeddings/reader';
import { encodeShard, type ShardMetadata } from '../../core/embeddings/shard-format';
import { planShardKeys, preprocessFingerprint } from '../../core/embeddings/shard-key';
import { loadBundle } from '../../core/model/bundle';
import { loadRouteInputs } from '../../core/routes/route-inputs';
import { keys } from '../../core/storage/keys';
import { WorkerResources } from '../../core/worker-resources';
import { TINY_BUNDLE } from '../helpers/fixtures';
import { MemoryS3 } from '../helpers/memory-s3';

// A route reads a run's shards through loadRouteInputs -> readMatrix, which checks each shard's
// metadata against the run's plan (reader.ts checkSpace): a shard made in another preprocessing
// mode or with another image graph is refused, naming the shard, even when it sits at the key the
// plan derives (a hand-copied or mis-keyed object). Shards are written with the real shard writer.

const NO_AUGMENT = { views: 0, seed: 0 };

/** Plans a 2-image run in the given mode and graph; the route's inputs and the shard's key. */
async function plannedRun(preprocessing: PreprocessingMode, imageGraph: ImageGraph) {
  const s3 = new MemoryS3(['out', 'bkt']);
  s3.put('bkt', 'ds/test/cat/1.png', 'a');
  s3.put('bkt', 'ds/test/dog/2.png', 'b');
  const store = s3.store('out');
  const runId = `run-${preprocessing}-${imageGraph}`;
  await planDataset(store, {
    runId,
    spec: {
      dataset: { uri: 's3://bkt/ds/' },
      extraction: { preprocessing, imageGraph },
      ...EXTRACTION_ONLY,
    },
  });
  const resources = new WorkerResources(store, mkdtempSync(join(tmpdir(), 'bundles-')), {});
  const input = { runId, planUri: store.uri(keys.plan(runId)), bundle: TINY_BUNDLE };
  const inputs = await loadRouteInputs({ store, resources }, { ...input, augment: NO_AUGMENT });
  const [shardKey] = planShardKeys(inputs.plan, inputs.bundle, NO_AUGMENT);
  expect(planShardKeys(inputs.plan, inputs.bundle, NO_AUGMENT)).toHaveLength(1);
  return { store, inputs, shardKey: shardKey! };
}

/** Writes the plan's shard (its two test rows) with the given metadata at the plan's key. */
async function writeShard(
  run: Awaited<ReturnType<typeof plannedRun>>,
  meta: Pick<ShardMetadata, 'preprocessFingerprint' | 'preprocessing' | 'imageGraph'>,
) {
  const items = run.inputs.plan.shards[0]!.items;
  const rows = items.map((i, n) => ({
    key: i.uri,
    imageId: String(n),
    label: i.label,
    split: i.split,
    view: 0,
  }));
  const bytes = encodeShard(rows, new Float32Array(rows.length * 2).fill(0.5), 2, {
    bundleHash: run.inputs.bundle.hash,
    datasetFingerprint: 'd',
    clipevalVersion: '0.0.0',
    ...meta,
  });
  await run.store.putBytes(run.shardKey, bytes);
}

describe('route inputs refuse shards of another preprocessing mode or image graph', async () => {
  const p = (await loadBundle(TINY_BUNDLE)).manifest.preprocessing;
  const fp = { exact: preprocessFingerprint(p, 'exact'), fast: preprocessFingerprint(p, 'fast') };

  it('reads a shard whose metadata is the plan’s choice', async () => {
    const run = await plannedRun('fast', 'fp16');
    await writeShard(run, {
      preprocessFingerprint: fp.fast,
      preprocessing: 'fast',
      imageGraph: 'fp16',
    });
    const m = await run.inputs.read('test');
    expect(m.rows).toHaveLength(2);
  });

  const refusals: {
    name: string;
    meta: Pick<ShardMetadata, 'preprocessFingerprint' | 'preprocessing' | 'imageGraph'>;
    field: RegExp;
  }[] = [
    {
      name: 'an exact shard in a fast run',
      meta: { preprocessFingerprint: fp.exact, preprocessing: 'exact', imageGraph: 'fp16' },
      field: /preprocessFingerprint \w+, not \w+/,
    },
    {
      name: "a shard saying exact under fast's fingerprint",
      meta: { preprocessFingerprint: fp.fast, preprocessing: 'exact', imageGraph: 'fp16' },
      field: /preprocessing exact, not fast/,
    },
    {
      name: 'an fp32 shard in an fp16 run',
      meta: { preprocessFingerprint: fp.fast, preprocessing: 'fast', imageGraph: 'fp32' },
      field: /imageGraph fp32, not fp16/,
    },
    {
      name: 'an int8 shard in an fp16 run',
      meta: { preprocessFingerprint: fp.fast, preprocessing: 'fast', imageGraph: 'int8' },
      field: /imageGraph int8, not fp16/,
    },
    {
      name: 'a shard from before modes and graphs (no metadata: exact / fp32)',
      meta: { preprocessFingerprint: fp.fast, preprocessing: '', imageGraph: '' },
      field: /preprocessing exact, not fast/,
    },
  ];
  for (const { name, meta, field } of refusals) {
    it(`refuses ${name}, naming the shard`, async () => {
      const run = await plannedRun('fast', 'fp16');
      await writeShard(run, meta);
      const read = run.inputs.read('test');
      await expect(read).rejects.toThrow(EmbeddingSpaceError);
      const err = (await read.catch((e: unknown) => e)) as Error;
      expect(err.message).toContain(`Shard ${run.store.uri(run.shardKey)} was encoded with`);
      expect(err.message).toMatch(field);
      expect(err.message).toContain('cannot be mixed');
    });
  }

  it('reads a shard from before modes and graphs in an exact / fp32 run', async () => {
    const run = await plannedRun('exact', 'fp32');
    await writeShard(run, { preprocessFingerprint: fp.exact, preprocessing: '', imageGraph: '' });
    expect((await run.inputs.read('test')).rows).toHaveLength(2);
    await writeShard(run, {
      preprocessFingerprint: fp.exact,
      preprocessing: 'exact',
      imageGraph: 'fp16',
    });
    await expect(run.inputs.read('test')).rejects.toThrow(/imageGraph fp16, not fp32/);
  });
});
