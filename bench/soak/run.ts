/**
 * @file One chaos soak: the same four runs and 2x2 suite twice, each in its own bucket on one
 * Temporal dev server of the soak's own (SQLite file, so it keeps its state across the restart).
 * First undisturbed (in-process workers, S3 direct): the baseline. Then under chaos: two cpu and
 * two gpu worker processes whose S3 is the fault proxy, SIGKILLed and restarted at seeded times,
 * and the Temporal server restarted once. Then the checks (verify.ts) and a table.
 */
import { Client, Connection } from '@temporalio/client';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClipevalEnv } from '../../core/config/env';
import { ObjectStore } from '../../core/storage/object-store';
import { suiteCellRunId } from '../../core/util/suite-cells';
import { startEvaluation, waitForRun } from '../../client/evaluations';
import { startSuite, waitForSuite } from '../../client/suites';
import { stopProcess } from '../../infra/local-stack/processes';
import { startTemporal } from '../../infra/local-stack/servers';
import { resolveTool } from '../../infra/local-stack/tools';
import type { EvaluationSummary } from '../../contract/progress';
import { startInProcessWorkers } from '../../workers/in-process';
import { startFaultProxy } from '../../test/helpers/fault-proxy';
import { type ChaosCounts, runChaos } from './chaos';
import { type SoakInputs, type SoakSize, soakDatasetFiles, uploadSoakInputs } from './inputs';
import { activityAttempts, type AttemptStats, metricMismatches, orphanProblems } from './verify';
import { WorkerPool } from './workers';

/**
 * Peak resident memory allowed per worker process. A worker with the tiny test model peaks at
 * 400-650 MiB in the soak (Node, V8, onnxruntime, sharp, the workflow bundle on cpu workers); 1.5 GiB leaves room for a real CLIP ViT-B/32 session
 * (~600 MiB) and decode buffers, so a leak across kills and retries shows well before an OOM.
 */
export const RSS_BUDGET = 1.5 * 1024 ** 3;
/** More attempts than this on any one activity is a retry storm. */
export const MAX_ATTEMPTS = 10;

const CHAOS = {
  small: { kills: { cpu: 1, gpu: 2 }, timeoutMs: 150_000 },
  full: { kills: { cpu: 3, gpu: 5 }, timeoutMs: 420_000 },
};

export interface SoakResult {
  size: SoakSize;
  seed: number;
  runs: { total: number; completed: number };
  cells: { total: number; completed: number };
  chaos: ChaosCounts;
  faults: { slowDown: number; reset: number; slow: number };
  crashes: number;
  attempts: AttemptStats;
  wallMs: { baseline: number; chaos: number; total: number };
  mismatches: string[];
  orphans: string[];
  objectsChecked: number;
  peakRss: { cpu: number; gpu: number };
  failures: string[];
}

interface Phase {
  runIds: string[];
  suiteId: string;
  cellIds: string[];
}

function phaseIds(prefix: string, inputs: SoakInputs): Phase {
  const suiteId = `${prefix}-suite`;
  return {
    runIds: inputs.runs.map((r) => `${prefix}-${r.name}`),
    suiteId,
    cellIds: inputs.suite.models.flatMap((m) =>
      inputs.suite.datasets.map((d) => suiteCellRunId(suiteId, m.name, d.name)),
    ),
  };
}

async function startPhase(client: Client, env: ClipevalEnv, inputs: SoakInputs, ids: Phase) {
  await Promise.all(inputs.runs.map((r, i) => startEvaluation(client, env, r.spec, ids.runIds[i])));
  await startSuite(client, env, inputs.suite, ids.suiteId);
}

/** Waits for a workflow's outcome across server restarts (a dropped long poll is retried). */
async function settled<T>(wait: () => Promise<T>, deadline: number): Promise<T | 'TIMEOUT'> {
  for (;;) {
    if (Date.now() > deadline) return 'TIMEOUT';
    try {
      return await wait();
    } catch {
      await sleep(1000);
    }
  }
}

/** Every run's and cell's summary (undefined where it did not complete). */
async function awaitPhase(client: Client, ids: Phase, deadline: number) {
  const summaries = new Map<string, EvaluationSummary | undefined>();
  const failures: string[] = [];
  await Promise.all([
    ...ids.runIds.map(async (id) => {
      const o = await settled(() => waitForRun(client, id), deadline);
      if (o !== 'TIMEOUT' && o.status === 'COMPLETED') summaries.set(id, o.summary);
      else failures.push(`run ${id}: ${o === 'TIMEOUT' ? 'timed out' : JSON.stringify(o)}`);
    }),
    (async () => {
      const o = await settled(() => waitForSuite(client, ids.suiteId), deadline);
      if (o === 'TIMEOUT' || o.status !== 'COMPLETED' || o.summary.failed.length > 0)
        failures.push(`suite ${ids.suiteId}: ${o === 'TIMEOUT' ? 'timed out' : JSON.stringify(o)}`);
      for (const id of ids.cellIds) {
        const c = await settled(() => waitForRun(client, id), deadline);
        if (c !== 'TIMEOUT' && c.status === 'COMPLETED') summaries.set(id, c.summary);
        else failures.push(`cell ${id}: ${c === 'TIMEOUT' ? 'timed out' : JSON.stringify(c)}`);
      }
    })(),
  ]);
  return { summaries, failures };
}

export async function runSoak(opts: {
  /** The S3 server, credentials and queues' base (buckets and Temporal are the soak's own). */
  env: ClipevalEnv;
  size: SoakSize;
  seed: number;
  log?: (line: string) => void;
}): Promise<SoakResult> {
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  const tag = `${opts.seed}-${Date.now().toString(36)}`;
  const direct = opts.env;
  // One bucket for both phases: clipeval keys images by URI (few-shot draws, probe validation
  // carving), so the baseline must see the very URIs the chaos phase sees.
  const bucket = `soak-${tag}`;
  const s3Store = ObjectStore.connect(direct.s3);
  const store = s3Store.inBucket(bucket);
  await store.ensureBucket();

  const dir = mkdtempSync(join(tmpdir(), 'clipeval-soak-temporal-'));
  const serverOpts = {
    bin: (await resolveTool('temporal', { install: true })).path,
    dbFile: join(dir, 'temporal.db'),
    logFile: join(dir, 'temporal.log'),
    namespace: 'default',
  };
  let server = await startTemporal(serverOpts);
  const port = Number(server.address.split(':')[1]);
  const temporal = { address: server.address, namespace: 'default', tls: false };
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const envFor = (bucket: string, phase: string): ClipevalEnv => ({
    ...direct,
    temporal,
    s3: { ...direct.s3, bucket },
    sources: { ...direct.sources, outputBucket: bucket },
    queues: { cpu: `soak-${tag}-${phase}-cpu`, gpu: `soak-${tag}-${phase}-gpu` },
  });
  const baseEnv = envFor(bucket, 'base');
  const chaosEnv = envFor(bucket, 'chaos');
  let pool: WorkerPool | undefined;
  try {
    log(`soak ${opts.size}, seed ${opts.seed}: generating datasets`);
    const files = await soakDatasetFiles(opts.size);
    const inputs = await uploadSoakInputs(baseEnv, opts.size, files);

    // 1. The baseline: undisturbed.
    log('baseline: 4 runs + a 2x2 suite, undisturbed');
    const tb = Date.now();
    const baseIds = phaseIds(`base-${tag}`, inputs);
    const inProcess = await startInProcessWorkers(baseEnv);
    await startPhase(client, baseEnv, inputs, baseIds);
    const base = await awaitPhase(client, baseIds, Date.now() + CHAOS[opts.size].timeoutMs);
    await inProcess.stop();
    const baselineMs = Date.now() - tb;
    if (base.failures.length > 0) throw new Error(`baseline failed: ${base.failures.join('; ')}`);
    // Nothing the baseline shared may be reused: the chaos phase extracts every image again.
    for (const prefix of ['embeddings/', 'pixels/', 'prototypes/'])
      for (const o of await store.list(prefix)) await store.delete(o.key);

    // 2. The same under chaos.
    log(`chaos: same specs; baseline took ${(baselineMs / 1000).toFixed(1)} s`);
    const proxy = await startFaultProxy(direct.s3.endpoint!, {
      seed: opts.seed,
      rate503: 0.04,
      rateReset: 0.03,
      rateSlow: 0.05,
      slowMs: 700,
      writes: true,
    });
    pool = new WorkerPool(chaosEnv, {
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      CLIPEVAL_S3_ENDPOINT: proxy.endpoint,
      CLIPEVAL_BUCKET: bucket,
      CLIPEVAL_ORT_THREADS: '1',
      CLIPEVAL_DECODE_THREADS: '1',
    });
    pool.start(2);
    const tc = Date.now();
    const chaosIds = phaseIds(`chaos-${tag}`, inputs);
    await startPhase(client, chaosEnv, inputs, chaosIds);
    let closed = false;
    const chaosRun = runChaos({
      plan: {
        seed: opts.seed,
        kills: CHAOS[opts.size].kills,
        // Within 60% of the undisturbed time after work began: work is still in flight.
        windowMs: [1000, 1000 + Math.max(8000, 0.6 * baselineMs)],
      },
      pool,
      client,
      workflowIds: () => [...chaosIds.runIds, ...chaosIds.cellIds],
      restartTemporal: async () => {
        await stopProcess(server.pid, 'temporal');
        await sleep(1500);
        server = await startTemporal({ ...serverOpts, port });
      },
      done: () => closed,
    });
    const chaos = await awaitPhase(client, chaosIds, Date.now() + CHAOS[opts.size].timeoutMs);
    closed = true;
    const counts = await chaosRun;
    proxy.active = false;
    const chaosMs = Date.now() - tc;
    pool.stop();
    await proxy.close();
    for (const line of counts.log) log(`  ${line}`);

    // 3. The checks.
    const mismatches: string[] = [];
    const pairs = [
      ...baseIds.runIds.map((id, i) => [id, chaosIds.runIds[i]!]),
      ...baseIds.cellIds.map((id, i) => [id, chaosIds.cellIds[i]!]),
    ];
    for (const [b, c] of pairs) {
      const [sb, sc] = [base.summaries.get(b!), chaos.summaries.get(c!)];
      if (sb && sc) mismatches.push(...metricMismatches(sb, sc).map((m) => `${c}: ${m}`));
    }
    const orphans = await orphanProblems(
      store,
      [...base.summaries.values(), ...chaos.summaries.values()].filter((s) => s !== undefined),
      [baseIds.suiteId, chaosIds.suiteId],
    );
    const attempts = await activityAttempts(client, [
      ...chaosIds.runIds,
      ...chaosIds.cellIds,
      chaosIds.suiteId,
    ]);
    const done = (ids: string[]) => ids.filter((id) => chaos.summaries.has(id)).length;
    const result: SoakResult = {
      size: opts.size,
      seed: opts.seed,
      runs: { total: chaosIds.runIds.length, completed: done(chaosIds.runIds) },
      cells: { total: chaosIds.cellIds.length, completed: done(chaosIds.cellIds) },
      chaos: counts,
      faults: { ...proxy.injected },
      crashes: pool.crashes.length,
      attempts,
      wallMs: { baseline: baselineMs, chaos: chaosMs, total: Date.now() - t0 },
      mismatches,
      orphans: orphans.problems,
      objectsChecked: orphans.objects,
      peakRss: pool.peakRss,
      failures: [...chaos.failures],
    };
    result.failures.push(...soakFailures(result));
    for (const c of pool.crashes) log(`worker crash (${c.kind}, exit ${c.code}):\n${c.log}`);
    // A failed soak's bucket stays for a look; a passed one's objects go.
    if (result.failures.length === 0)
      for (const o of await store.list('')) await store.delete(o.key);
    else log(`the soak's objects stay in s3://${bucket}/ and Temporal's log in ${dir}`);
    return result;
  } finally {
    pool?.stop();
    await connection.close().catch(() => {});
    await stopProcess(server.pid, 'temporal');
    s3Store.client.destroy();
  }
}

/** The invariants the soak promises, as failure lines (none: it passed). */
export function soakFailures(r: SoakResult): string[] {
  const f: string[] = [];
  if (r.runs.completed !== r.runs.total) f.push(`${r.runs.total - r.runs.completed} runs failed`);
  if (r.cells.completed !== r.cells.total)
    f.push(`${r.cells.total - r.cells.completed} suite cells failed`);
  if (r.mismatches.length > 0) f.push(`metric mismatches: ${r.mismatches.join('; ')}`);
  if (r.orphans.length > 0) f.push(`orphaned or partial objects: ${r.orphans.join('; ')}`);
  if (r.attempts.maxAttempt > MAX_ATTEMPTS)
    f.push(`retry storm: an activity took ${r.attempts.maxAttempt} attempts (> ${MAX_ATTEMPTS})`);
  for (const kind of ['cpu', 'gpu'] as const) {
    if (r.peakRss[kind] > RSS_BUDGET)
      f.push(`${kind} worker RSS peaked at ${mib(r.peakRss[kind])} MiB (> ${mib(RSS_BUDGET)})`);
    if (r.chaos.kills[kind] === 0) f.push(`no ${kind} worker was killed: the soak tested nothing`);
  }
  if (r.chaos.temporalRestarts !== 1) f.push('the Temporal server was not restarted');
  if (r.crashes > 0) f.push(`${r.crashes} worker processes exited on their own`);
  if (r.faults.slowDown + r.faults.reset === 0) f.push('no S3 fault was injected');
  return f;
}

const mib = (b: number) => Math.round(b / 1024 ** 2);

/** The soak's table (markdown). */
export function soakTable(r: SoakResult): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const byType = Object.entries(r.attempts.byType)
    .filter(([, t]) => t.retries > 0)
    .map(([type, t]) => `${type} ${t.retries} (max attempt ${t.maxAttempt})`)
    .join(', ');
  const rows: [string, string][] = [
    [
      'runs completed',
      `${r.runs.completed}/${r.runs.total} + suite cells ${r.cells.completed}/${r.cells.total}`,
    ],
    [
      'worker kills (SIGKILL)',
      `gpu ${r.chaos.kills.gpu}, cpu ${r.chaos.kills.cpu} (${r.chaos.killsMidActivity} mid-extraction/CoOp; ${r.chaos.killsSkipped} skipped)`,
    ],
    [
      'S3 faults injected',
      `${r.faults.slowDown} x 503, ${r.faults.reset} resets, ${r.faults.slow} slow`,
    ],
    ['Temporal restarts', String(r.chaos.temporalRestarts)],
    [
      'activity retries',
      `${r.attempts.retries} (max attempt ${r.attempts.maxAttempt}, bound ${MAX_ATTEMPTS})${byType ? `: ${byType}` : ''}`,
    ],
    ['worker crashes', String(r.crashes)],
    [
      'peak worker RSS',
      `cpu ${mib(r.peakRss.cpu)} MiB, gpu ${mib(r.peakRss.gpu)} MiB (budget ${mib(RSS_BUDGET)} MiB)`,
    ],
    ['orphaned/partial objects', `${r.orphans.length} (of ${r.objectsChecked} objects)`],
    [
      'wall time',
      `baseline ${s(r.wallMs.baseline)}, chaos ${s(r.wallMs.chaos)}, total ${s(r.wallMs.total)}`,
    ],
    ['metric mismatches', String(r.mismatches.length)],
  ];
  return [
    `| soak (${r.size}, seed ${r.seed}) | |`,
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
  ].join('\n');
}
