import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SuiteSpecInput, parseSuiteSpec } from '../../core/config/suite-spec';
import type { RouteResultFile, RouteSummary } from '../../core/routes/route-result';
import { parseS3Uri } from '../../core/storage/s3-uri';
import type { FewShotTable } from '../../core/runs/summary';
import { keys } from '../../core/storage/keys';
import type { Leaderboard } from '../../core/suites/leaderboard';
import { suiteCellRunId } from '../../core/util/suite-cells';
import {
  cancelSuite,
  resumeSuite,
  startSuite,
  suiteStatus,
  waitForSuite,
} from '../../client/suites';
import type { EvaluationSummary, SuiteSummary } from '../../contract/progress';
import { syntheticDataset } from '../../core/dataset/synthetic';
import {
  type TestPipeline,
  putObjects,
  runCli,
  startPipeline,
  testStore,
  uniqueId,
  uploadRenamedTinyBundle,
  uploadShapes,
} from '../helpers/stack';

// A suite on the real stack: 2 tiny models x 3 small datasets plus one dataset that is empty at
// first (its cells fail at planning), two children per execution (continue-as-new twice), a
// resume that skips the finished children and completes the failed ones, a leaderboard whose
// cells are the children's own metrics, and a second suite that encodes no image.
let pipeline: TestPipeline;
const models: { name: string; bundle: string }[] = [];
const datasets: { name: string; uri: string }[] = [];
let emptyPrefix: string;

beforeAll(async () => {
  pipeline = await startPipeline();
  const { env } = pipeline;
  const second = await uploadRenamedTinyBundle(env, 'random-tiny-b');
  models.push({ name: 'tiny-a', bundle: pipeline.bundle }, { name: 'tiny-b', bundle: second });
  for (const name of ['shapes1', 'shapes2', 'shapes3']) {
    const { uri } = await uploadShapes(env, { train: 4, val: 1, test: 3 }, { label: name });
    datasets.push({ name, uri });
  }
  emptyPrefix = `${uniqueId('empty')}/`;
  datasets.push({ name: 'late', uri: `s3://${env.s3.bucket}/${emptyPrefix}` });
}, 300_000);
afterAll(() => pipeline.close());

const suiteSpec = (ds = datasets) =>
  parseSuiteSpec({
    models,
    datasets: ds,
    concurrency: 2,
    run: {
      shardSize: 8,
      coop: { epochs: 1, nCtx: 2 },
      fewShot: { shots: [1, 2], seeds: [1] },
    },
  } satisfies SuiteSpecInput);

async function childSummary(runId: string): Promise<EvaluationSummary> {
  return (await pipeline.client.workflow.getHandle(runId).result()) as EvaluationSummary;
}

describe('evaluateSuite', () => {
  const suiteId = uniqueId('suite');
  let first: SuiteSummary;

  beforeAll(async () => {
    const { client, env } = pipeline;
    await startSuite(client, env, suiteSpec(), suiteId, { childrenPerExecution: 2 });
    const outcome = await waitForSuite(client, suiteId);
    if (outcome.status !== 'COMPLETED')
      expect.fail(`suite ${outcome.status}: ${JSON.stringify(outcome)}`);
    first = outcome.summary;
  }, 900_000);

  it('completes with the failed cells marked, and continues as new every 2 children', async () => {
    expect(first.cells).toBe(8);
    expect(first.completed).toBe(6);
    expect(first.failed.map((f) => `${f.model}/${f.dataset}`).sort()).toEqual([
      'tiny-a/late',
      'tiny-b/late',
    ]);
    expect(first.failed[0]!.runId).toBe(suiteCellRunId(suiteId, first.failed[0]!.model, 'late'));
    // The planning activity's own message, not Temporal's wrappers.
    expect(first.failed[0]!.error).toMatch(
      /^Dataset s3:\/\/.* is empty: no objects under this prefix/,
    );
    const executions: string[] = [];
    const histories: { events: number; children: number; resultBytes: number }[] = [];
    for await (const w of pipeline.client.workflow.list({ query: `WorkflowId = "${suiteId}"` })) {
      executions.push(w.status.name);
      const h = await pipeline.client.workflow.getHandle(suiteId, w.runId).fetchHistory();
      const events = h.events ?? [];
      histories.push({
        events: events.length,
        children: events.filter((e) => e.childWorkflowExecutionStartedEventAttributes).length,
        resultBytes: events.reduce(
          (sum, e) =>
            sum +
            (e.childWorkflowExecutionCompletedEventAttributes?.result?.payloads ?? []).reduce(
              (t, p) => t + (p.data?.length ?? 0),
              0,
            ),
          0,
        ),
      });
    }
    expect(executions.sort()).toEqual([
      'COMPLETED',
      'CONTINUED_AS_NEW',
      'CONTINUED_AS_NEW',
      'CONTINUED_AS_NEW',
    ]);
    // What the 100-children bound rests on (docs/operations.md, History limits): an execution's
    // history grows by a bounded number of events per child, so 100 children stay far inside
    // Temporal's 50,000 events; the bytes are the children's results (EvaluationSummary).
    console.info(`suite history per execution: ${JSON.stringify(histories)}`);
    for (const h of histories) expect(h.events).toBeLessThanOrEqual(40 + 12 * h.children);
  });

  it("writes a leaderboard whose cells are the children's own metrics", async () => {
    const store = testStore(pipeline.env);
    const board = await store.requireJson<Leaderboard>(
      keys.leaderboard(suiteId, 'leaderboard.json'),
    );
    expect(board.rows.map((r) => r.model)).toEqual(['tiny-a', 'tiny-b']);
    expect(board.columns.map((c) => c.id)).toEqual(
      ['shapes1', 'shapes2', 'shapes3'].flatMap((d) =>
        ['zero-shot', 'probe', 'coop-2shot', 'probe-2shot'].map((r) => `${d}/${r}`),
      ),
    );
    for (const row of board.rows) {
      for (const d of datasets.slice(0, 3)) {
        const runId = suiteCellRunId(suiteId, row.model, d.name);
        const child = await store.requireJson<{ routes: RouteSummary[]; fewShot: FewShotTable }>(
          keys.runSummary(runId),
        );
        const cell = (route: string) => row.cells[`${d.name}/${route}`]!;
        expect(cell('zero-shot').acc1).toBe(
          child.routes.find((r) => r.route === 'zero-shot')!.acc1,
        );
        expect(cell('zero-shot').runId).toBe(runId);
        expect(cell('zero-shot').n).toBe(9); // 3 classes x 3 test images
        expect(cell('probe').acc1).toBe(child.routes.find((r) => r.variant === 'all')!.acc1);
        const coop2 = child.fewShot.find((f) => f.route === 'coop' && f.shots === 2)!;
        expect(cell('coop-2shot').acc1).toBe(coop2.acc1.mean);
        expect(cell('zero-shot').low).toBeLessThanOrEqual(cell('zero-shot').acc1);
        expect(cell('zero-shot').high).toBeGreaterThanOrEqual(cell('zero-shot').acc1);
      }
    }
    const csv = await store.requireText(keys.leaderboard(suiteId, 'leaderboard.csv'));
    expect(csv.split('\n')[0]).toMatch(/^model,shapes1\/zero-shot,/);
    expect(board.cells.filter((c) => c.status === 'failed')).toHaveLength(2);
    store.client.destroy();
  });

  it('saves the leaderboard with `clipeval suite report`', async () => {
    const out = mkdtempSync(join(tmpdir(), 'suite-report-'));
    const r = await runCli(['suite', 'report', suiteId, '--out', out, '--json'], {
      env: pipeline.env,
    });
    expect(r.code, r.stderr).toBe(0);
    const html = readFileSync(join(out, 'leaderboard.html'), 'utf8');
    expect(html).toContain('data-chart="heatmap"');
    expect(html).toContain('data-chart="bars-shapes1"');
  }, 120_000);

  it('resumes: finished children are skipped, the failed cells run again and complete', async () => {
    const { client, env } = pipeline;
    const images = await syntheticDataset({ perSplit: { train: 4, val: 1, test: 3 }, size: 64 });
    await putObjects(
      env,
      env.s3.bucket,
      emptyPrefix,
      Object.fromEntries(images.map((i) => [i.path, i.body])),
    );
    const r = await resumeSuite(client, suiteId);
    expect(r.resumed).toBe(true);
    const outcome = await waitForSuite(client, suiteId);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));
    expect(outcome.summary.failed).toEqual([]);
    expect(outcome.summary.completed).toBe(8);
    expect(outcome.summary.reused).toBe(6);
  }, 600_000);

  it('a second suite over the same models and datasets encodes no image', async () => {
    const { client, env } = pipeline;
    const again = uniqueId('suite2');
    await startSuite(client, env, suiteSpec(datasets.slice(0, 3)), again);
    const outcome = await waitForSuite(client, again);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));
    expect(outcome.summary.reused).toBe(0); // new child runs...
    for (const m of models) {
      for (const d of datasets.slice(0, 3)) {
        const { extraction, routes } = await childSummary(suiteCellRunId(again, m.name, d.name));
        // ...whose every shard was already encoded by the first suite.
        expect(extraction.shardsReused).toBe(extraction.shards);
        expect(extraction.shards).toBeGreaterThan(0);
        // Zero-shot's text prototypes (model, class names, templates) were not encoded again.
        const zs = routes.find((r) => r.route === 'zero-shot')!;
        const { bucket, key } = parseS3Uri(zs.metricsUri);
        const file = await testStore(env, bucket).requireJson<RouteResultFile>(key);
        expect(file.details.prototypesReused).toBe(true);
      }
    }
  }, 600_000);
});

describe('evaluateSuite cancelled mid-way', () => {
  it('cancels its running cell, and a resume reruns no finished child', async () => {
    const { client, env } = pipeline;
    const fresh: { name: string; uri: string }[] = [];
    for (const name of ['fresh1', 'fresh2']) {
      const { uri } = await uploadShapes(env, { train: 4, val: 1, test: 3 }, { label: name });
      fresh.push({ name, uri });
    }
    const spec = parseSuiteSpec({
      models,
      datasets: fresh,
      concurrency: 1,
      run: { shardSize: 4, coop: { enabled: false }, fewShot: { shots: [1], seeds: [1] } },
    } satisfies SuiteSpecInput);
    const suiteId = uniqueId('suite-cancel');
    await startSuite(client, env, spec, suiteId);
    let running: string | undefined;
    for (let i = 0; i < 600 && !running; i++) {
      const s = await suiteStatus(client, suiteId);
      if (s.status !== 'RUNNING')
        expect.fail(`suite closed before it could be cancelled: ${s.status}`);
      if ((s.progress?.settled ?? 0) >= 1 && s.progress?.running.length)
        running = s.progress.running[0];
      else await new Promise((r) => setTimeout(r, 250));
    }
    expect(running).toBeDefined();
    await cancelSuite(client, suiteId);
    expect((await waitForSuite(client, suiteId)).status).toBe('CANCELLED');
    // REQUEST_CANCEL: the running cell closes as cancelled, not terminated mid-write.
    const child = client.workflow.getHandle(running!);
    await child.result().catch(() => undefined);
    expect((await child.describe()).status.name).toBe('CANCELLED');

    const finishedBefore: string[] = [];
    for (const d of fresh)
      for (const m of models) {
        const id = suiteCellRunId(suiteId, m.name, d.name);
        const st = await client.workflow
          .getHandle(id)
          .describe()
          .then(
            (x) => x.status.name,
            () => 'NONE',
          );
        if (st === 'COMPLETED') finishedBefore.push(id);
      }
    expect(finishedBefore.length).toBeGreaterThanOrEqual(1);

    await resumeSuite(client, suiteId);
    const outcome = await waitForSuite(client, suiteId);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));
    expect(outcome.summary.completed).toBe(4);
    expect(outcome.summary.reused).toBe(finishedBefore.length);
    for (const id of finishedBefore) {
      const executions: string[] = [];
      for await (const w of client.workflow.list({ query: `WorkflowId = "${id}"` }))
        executions.push(w.status.name);
      expect(executions, id).toEqual(['COMPLETED']); // never rerun
    }
    // The cancelled cell ran again under its own id and completed.
    expect((await client.workflow.getHandle(running!).describe()).status.name).toBe('COMPLETED');
  }, 900_000);
});

describe('suites from the CLI', () => {
  const write = (text: string) => {
    const file = join(mkdtempSync(join(tmpdir(), 'suite-cli-')), 'suite.yaml');
    writeFileSync(file, text);
    return file;
  };
  const yaml = (ds: { name: string; uri: string }[]) =>
    [
      'models:',
      ...models.map((m) => `  - { name: ${m.name}, bundle: "${m.bundle}" }`),
      'datasets:',
      ...ds.map((d) => `  - { name: ${d.name}, uri: "${d.uri}" }`),
    ].join('\n');

  it('refuses an invalid cell with exit code 2 before starting anything', async () => {
    const file = write(`${yaml(datasets.slice(0, 1))}\nrun: { fewShot: { shots: [0] } }\n`);
    const id = uniqueId('suite-bad');
    const r = await runCli(['suite', 'run', '--spec', file, '--suite-id', id], {
      env: pipeline.env,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cell tiny-a x shapes1: Invalid run spec:[\s\S]*fewShot\.shots\.0/);
    expect((await runCli(['suite', 'status', id], { env: pipeline.env })).code).toBe(2);
  }, 120_000);

  it('creates a suite schedule whose action starts evaluateSuite, and a trigger runs it', async () => {
    // The first suite's run settings, so the same shards are asked for.
    const run =
      'run: { shardSize: 8, coop: { epochs: 1, nCtx: 2 }, fewShot: { shots: [1, 2], seeds: [1] } }';
    const file = write(`${yaml(datasets.slice(0, 1))}\n${run}\n`);
    const id = uniqueId('zoo');
    const r = await runCli(
      ['schedule', 'create', id, '--cron', '0 2 * * *', '--suite', file, '--paused'],
      { env: pipeline.env },
    );
    expect(r.code, r.stderr).toBe(0);
    const d = await pipeline.client.schedule.getHandle(id).describe();
    expect(d.action.workflowType).toBe('evaluateSuite');
    expect(d.memo?.dataset).toBe('suite: 2 models x 1 datasets');
    // Triggered (as the nightly cron would fire it), the suite runs under the schedule's own id
    // and time, writes its leaderboard, and encodes no image the earlier suites encoded.
    const t = await runCli(['schedule', 'trigger', id], { env: pipeline.env });
    expect(t.code, t.stderr).toBe(0);
    let suiteId: string | undefined;
    for (let i = 0; i < 300 && !suiteId; i++) {
      const recent = (await pipeline.client.schedule.getHandle(id).describe()).info.recentActions;
      suiteId = recent[0]?.action.workflow.workflowId;
      if (!suiteId) await new Promise((r) => setTimeout(r, 100));
    }
    expect(suiteId).toMatch(new RegExp(`^${id}-`));
    const outcome = await waitForSuite(pipeline.client, suiteId!);
    if (outcome.status !== 'COMPLETED') expect.fail(JSON.stringify(outcome));
    expect(outcome.summary).toMatchObject({ cells: 2, completed: 2, failed: [] });
    for (const m of models) {
      const child = await childSummary(suiteCellRunId(suiteId!, m.name, 'shapes1'));
      expect(child.extraction.shardsReused).toBe(child.extraction.shards);
    }
    const board = await testStore(pipeline.env).requireJson<Leaderboard>(
      keys.leaderboard(suiteId!, 'leaderboard.json'),
    );
    expect(board.rows.map((r) => r.model)).toEqual(['tiny-a', 'tiny-b']);
    await pipeline.client.schedule.getHandle(id).delete();
    const long = await runCli(
      ['schedule', 'create', 'x'.repeat(40), '--cron', '0 2 * * *', '--suite', file],
      { env: pipeline.env },
    );
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/at most 39 characters/);
  }, 600_000);
});
