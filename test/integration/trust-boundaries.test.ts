import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { type Client, WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sourcePolicy } from '../../core/config/allowed-sources';
import type { ClipevalEnv } from '../../core/config/env';
import { EXTRACTION_ONLY, parseRunSpec } from '../../core/config/run-spec';
import { planDataset } from '../../core/dataset/plan-dataset';
import { DatasetError } from '../../core/dataset/types';
import { keys } from '../../core/storage/keys';
import { ObjectStore } from '../../core/storage/object-store';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import { evaluateDataset } from '../../workflows';
import type { EvaluateDatasetInput } from '../../workflows/evaluate-dataset';
import {
  putObjects,
  startPipeline,
  type TestPipeline,
  tinyPng,
  uniqueId,
  uploadShapes,
} from '../helpers/stack';

// Issue 12: item 9 (manifest rows may name any bucket) and item 11 (a run id not tied to its
// workflow id), against the real Temporal dev server and versitygw.
let env: ClipevalEnv;
let client: Client;
let bundle: string;
let pipeline: TestPipeline;
let store: ObjectStore;

beforeAll(async () => {
  pipeline = await startPipeline();
  ({ env, client, bundle } = pipeline);
  store = ObjectStore.connect(env.s3);
});
afterAll(async () => {
  store?.client.destroy();
  await pipeline?.close();
});

/** Everything under runs/<runId>/ of the output bucket. */
const runKeys = async (runId: string) =>
  (await store.list(keys.runPrefix(runId))).map((o) => o.key);

describe('allowed sources at planning (item 9)', () => {
  /** A manifest in the output bucket whose rows are full s3:// URIs in a second bucket. */
  async function crossBucketManifest() {
    const other = `clipeval-other-${randomBytes(4).toString('hex')}`;
    await store.inBucket(other).ensureBucket();
    const rows: string[] = [];
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 4; i++) {
      files[`img/${i}.png`] = await tinyPng(i);
      rows.push(
        JSON.stringify({
          key: `s3://${other}/img/${i}.png`,
          label: i % 2 ? 'cat' : 'dog',
          split: i < 2 ? 'train' : 'test',
        }),
      );
    }
    await putObjects(env, other, '', files);
    const prefix = `${uniqueId('xbucket')}/`;
    await putObjects(env, env.s3.bucket, prefix, { 'list.jsonl': rows.join('\n') });
    return { other, uri: `s3://${env.s3.bucket}/${prefix}list.jsonl` };
  }

  it('refuses manifest rows in another bucket by default, and plans them once it is allowed', async () => {
    const { other, uri } = await crossBucketManifest();
    const input = { runId: uniqueId('xb'), spec: { dataset: { uri }, ...EXTRACTION_ONLY } };
    const refused = await planDataset(store, input, { sources: env.sources }).catch(
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(DatasetError);
    expect((refused as Error).message).toMatch(
      new RegExp(
        `refers to objects outside the allowed sources: 4 problem\\(s\\)\\n {2}- row 1: s3://${other}/img/0\\.png is in bucket "${other}", neither the dataset's bucket nor the output bucket`,
      ),
    );
    expect(await runKeys(input.runId)).toEqual([]);

    const allowed = sourcePolicy({
      outputBucket: env.s3.bucket,
      defaultBundle: env.defaultBundle,
      allowedSources: `${other}/img/`,
    });
    const plan = await planDataset(store, input, { sources: allowed });
    expect(plan.images).toBe(4);
  });

  it("a run's workers apply the deployment's sources: the run fails at planning, not retried", async () => {
    const { other, uri } = await crossBucketManifest();
    const spec = parseRunSpec({ dataset: { uri }, model: { bundle }, ...EXTRACTION_ONLY });
    const { runId } = await startEvaluation(client, env, spec, uniqueId('xb-run'));
    const outcome = await waitForRun(client, runId);
    expect(outcome.status).toBe('FAILED');
    if (outcome.status !== 'FAILED') return;
    expect(outcome.error).toContain(`s3://${other}/img/0.png is in bucket "${other}"`);
    const history = await client.workflow.getHandle(runId).fetchHistory();
    const attempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
    expect(attempts.map((e) => e.activityTaskStartedEventAttributes?.attempt)).toEqual([1]);
  });
});

describe('a run is its workflow (item 11)', () => {
  const inputFor = (uri: string, extra: Partial<EvaluateDatasetInput>): EvaluateDatasetInput => ({
    spec: parseRunSpec({ dataset: { uri }, model: { bundle }, ...EXTRACTION_ONLY }),
    bundle,
    queues: { gpu: env.queues.gpu },
    ...extra,
  });

  /** Starts evaluateDataset as any Temporal client could, and returns how it failed. */
  async function failureOf(workflowId: string, input: EvaluateDatasetInput) {
    const started = Date.now();
    const handle = await client.workflow.start(evaluateDataset, {
      workflowId,
      taskQueue: env.queues.cpu,
      args: [input],
    });
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    return { cause: (err as WorkflowFailedError).cause, ms: Date.now() - started };
  }

  it('refuses an input runId other than the workflow id, writing nothing under either', async () => {
    const { uri } = await uploadShapes(env, { train: 2, val: 0, test: 2 }, { label: 'victim' });
    const victim = uniqueId('victim');
    const workflowId = uniqueId('attacker');
    const { cause, ms } = await failureOf(workflowId, inputFor(uri, { runId: victim }));
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('RunIdentity');
    expect((cause as ApplicationFailure).nonRetryable).toBe(true);
    expect(cause!.message).toContain(
      `run id "${victim}" is not this workflow's id "${workflowId}"`,
    );
    expect(ms).toBeLessThan(15_000);
    expect(await runKeys(victim)).toEqual([]);
    expect(await runKeys(workflowId)).toEqual([]);
  });

  it("refuses a schedule id the workflow id does not carry (another schedule's baseline)", async () => {
    const { uri } = await uploadShapes(env, { train: 2, val: 0, test: 2 }, { label: 'sched' });
    for (const workflowId of [uniqueId('plain'), `${uniqueId('other')}-2026-01-01T02:00:00Z`]) {
      const { cause } = await failureOf(workflowId, inputFor(uri, { schedule: { id: 'nightly' } }));
      expect((cause as ApplicationFailure).type).toBe('RunIdentity');
      expect(cause!.message).toContain(`is not a run of schedule "nightly"`);
      expect(await store.exists(keys.scheduleLastSuccess('nightly'))).toBe(false);
    }
  });

  it('does not plan over a completed run when a client reuses its workflow id', async () => {
    const { uri } = await uploadShapes(env, { train: 2, val: 0, test: 2 }, { label: 'done' });
    const spec = parseRunSpec({ dataset: { uri }, model: { bundle }, ...EXTRACTION_ONLY });
    const { runId } = await startEvaluation(client, env, spec, uniqueId('done'));
    expect((await waitForRun(client, runId)).status).toBe('COMPLETED');
    const before = await store.requireBytes(keys.plan(runId));
    // Temporal's default reuse policy lets any client start a closed workflow id again.
    const { cause } = await failureOf(runId, inputFor(uri, {}));
    expect(cause?.message).toMatch(/Activity task failed|already completed/);
    const root = (cause as { cause?: Error }).cause ?? cause;
    expect(root!.message).toContain(`Run "${runId}" already completed`);
    expect(Buffer.from(await store.requireBytes(keys.plan(runId)))).toEqual(Buffer.from(before));
  });
});
