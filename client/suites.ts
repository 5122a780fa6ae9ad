/**
 * @file Suites from the package API: start, wait, status, resume, cancel and list `evaluateSuite`
 * workflows. The suite id is the workflow id; its child runs are `<suiteId>--<model>--<dataset>`.
 */
import {
  type Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow';
import type { ClipevalEnv } from '../core/config/env';
import { type SuiteSpec, suiteCellSpecs } from '../core/config/suite-spec';
import { assertSuiteId } from '../core/storage/keys';
import { evaluateSuite } from '../workflows';
import type { EvaluateSuiteInput } from '../workflows/evaluate-suite';
import { type SuiteProgress, type SuiteSummary, suiteProgressQuery } from '../contract/progress';
import { failureMessage } from '../core/util/failure-message';
import { UsageError } from './errors';
import { EXIT } from './exit-codes';
import { checkRunBuckets, checkRunBundle } from './preflight';

/** A readable default suite id: `suite-<UTC timestamp>`. */
export function defaultSuiteId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `suite-${stamp}`;
}

/**
 * Checks the output bucket, every dataset's bucket and every model's bundle once (not once per
 * cell), so a typo fails in seconds with exit code 2 before anything starts.
 */
export async function checkSuiteInputs(env: ClipevalEnv, spec: SuiteSpec): Promise<void> {
  const cells = suiteCellSpecs(spec);
  for (const c of cells.filter((c) => c.modelIndex === 0)) await checkRunBuckets(env, c.spec);
  for (const c of cells.filter((c) => c.datasetIndex === 0)) await checkRunBundle(env, c.spec);
}

/**
 * Starts a suite (validated spec: parseSuiteSpec / loadSuiteSpec). A suite id can be reused only
 * after that suite failed; `resumeSuite` continues a closed one.
 */
export async function startSuite(
  client: Client,
  env: ClipevalEnv,
  spec: SuiteSpec,
  suiteId = defaultSuiteId(),
  opts: Pick<EvaluateSuiteInput, 'childrenPerExecution' | 'resultBytesPerExecution'> = {},
): Promise<{ suiteId: string }> {
  usage(() => assertSuiteId(suiteId));
  const input: EvaluateSuiteInput = {
    suiteId,
    spec,
    queues: { gpu: env.queues.gpu },
    ...opts,
  };
  try {
    await client.workflow.start(evaluateSuite, {
      taskQueue: env.queues.cpu,
      workflowId: suiteId,
      args: [input],
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new UsageError(
        `Suite "${suiteId}" already exists and has not failed; choose another --suite-id, or resume it with: clipeval suite resume ${suiteId}`,
      );
    throw err;
  }
  return { suiteId };
}

export type SuiteOutcome =
  | { suiteId: string; status: 'COMPLETED'; summary: SuiteSummary }
  | { suiteId: string; status: 'FAILED' | 'TERMINATED' | 'CANCELLED' | 'TIMED_OUT'; error: string }
  | { suiteId: string; status: 'RUNNING'; progress?: SuiteProgress };

/** Exit code: 0 every cell completed (or still running), 1 a cell or the suite failed. */
export function suiteExitCode(o: SuiteOutcome): number {
  if (o.status === 'RUNNING') return EXIT.ok;
  if (o.status !== 'COMPLETED') return EXIT.runFailed;
  return o.summary.failed.length > 0 ? EXIT.runFailed : EXIT.ok;
}

/** Waits for the suite (across its continue-as-new executions); never throws for a failed suite. */
export async function waitForSuite(client: Client, suiteId: string): Promise<SuiteOutcome> {
  const handle = client.workflow.getHandle(suiteId);
  try {
    const summary = (await handle.result()) as SuiteSummary;
    return { suiteId, status: 'COMPLETED', summary };
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const status = (await handle.describe()).status.name;
      return {
        suiteId,
        status: status === 'RUNNING' ? 'FAILED' : (status as 'FAILED'),
        error: failureMessage(err),
      };
    }
    throw err;
  }
}

/** Progress while running (cells settled, reused, failed, running), the outcome once closed. */
export async function suiteStatus(client: Client, suiteId: string): Promise<SuiteOutcome> {
  const handle = client.workflow.getHandle(suiteId);
  const status = await describeSuite(handle, suiteId);
  if (status !== 'RUNNING' && status !== 'CONTINUED_AS_NEW') return waitForSuite(client, suiteId);
  const progress = await handle.query(suiteProgressQuery).catch(() => undefined);
  return { suiteId, status: 'RUNNING', ...(progress ? { progress } : {}) };
}

async function describeSuite(handle: WorkflowHandle, suiteId: string): Promise<string> {
  try {
    const d = await handle.describe();
    if (d.type !== 'evaluateSuite') throw new UsageError(`"${suiteId}" is a run, not a suite.`);
    return d.status.name;
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError')
      throw new UsageError(`No suite with id "${suiteId}".`);
    throw err;
  }
}

export type SuiteResumeResult =
  | { suiteId: string; resumed: true; previousStatus: string }
  | { suiteId: string; resumed: false; status: 'RUNNING' };

/**
 * Starts the suite again under its id with its spec, from its first cell: children that completed
 * are skipped (their report.json is in S3), the others run again and reuse every finished shard
 * and route result. Allowed for a failed, cancelled, terminated or timed-out suite, and for a
 * completed one with failed cells; a running suite is left alone.
 */
export async function resumeSuite(client: Client, suiteId: string): Promise<SuiteResumeResult> {
  const handle = client.workflow.getHandle(suiteId);
  const status = await describeSuite(handle, suiteId);
  if (status === 'RUNNING') return { suiteId, resumed: false, status: 'RUNNING' };
  if (status === 'COMPLETED') {
    const outcome = await waitForSuite(client, suiteId);
    if (outcome.status === 'COMPLETED' && outcome.summary.failed.length === 0)
      throw new UsageError(`Suite "${suiteId}" completed every cell, nothing to resume.`);
  }
  await refuseWhileCellsClose(client, suiteId);
  const started = (await handle.fetchHistory()).events?.[0]
    ?.workflowExecutionStartedEventAttributes;
  const taskQueue = started?.taskQueue?.name;
  if (!started || !taskQueue) throw new Error(`Suite "${suiteId}" has no start event.`);
  const [latest] = (await decodeArrayFromPayloads(
    client.options.loadedDataConverter,
    started.input?.payloads,
  )) as [EvaluateSuiteInput];
  // From the first cell again: the latest execution may be a continuation that starts midway.
  const input: EvaluateSuiteInput = { ...latest };
  delete input.carried;
  try {
    await client.workflow.start(evaluateSuite, {
      taskQueue,
      workflowId: suiteId,
      args: [{ ...input, suiteId }],
      // A completed suite with failed cells may run again; findFinishedRuns keeps its finished
      // children, so nothing completed is redone.
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError)
      throw new UsageError(`Suite "${suiteId}" was resumed or restarted meanwhile.`);
    throw err;
  }
  return { suiteId, resumed: true, previousStatus: status };
}

/**
 * A terminated suite's children were asked to cancel (their parent-close policy) and close once a
 * worker runs their cancellation; one still running would make the resumed suite's child of the
 * same id fail to start, so resuming waits for them to close.
 */
async function refuseWhileCellsClose(client: Client, suiteId: string): Promise<void> {
  const open: string[] = [];
  const query = `ParentWorkflowId = "${suiteId}" AND ExecutionStatus = "Running"`;
  for await (const w of client.workflow.list({ query })) open.push(w.workflowId);
  if (open.length === 0) return;
  throw new UsageError(
    `Suite "${suiteId}" stopped, but ${open.length} of its cells still run${open.length > 1 ? '' : 's'} (asked to cancel when the suite stopped; they close once a worker handles it): ${open.slice(0, 5).join(', ')}${open.length > 5 ? ', ...' : ''}. ` +
      `Start a worker if none runs, wait for them to close (clipeval status <run id>), then resume again.`,
  );
}

/** Requests cancellation: the suite closes CANCELLED and its running children are cancelled. */
export async function cancelSuite(client: Client, suiteId: string): Promise<{ suiteId: string }> {
  const handle = client.workflow.getHandle(suiteId);
  const status = await describeSuite(handle, suiteId);
  if (status !== 'RUNNING')
    throw new UsageError(`Suite "${suiteId}" is ${status.toLowerCase()}, not running.`);
  await handle.cancel();
  return { suiteId };
}

export interface SuiteListing {
  suiteId: string;
  status: string;
  startTime: string;
  closeTime?: string;
}

/**
 * Recent suites, newest first (one row per suite: the continue-as-new executions of one suite
 * share its id, and only the latest is listed).
 */
export async function listSuites(
  client: Client,
  opts: { limit?: number } = {},
): Promise<SuiteListing[]> {
  const limit = opts.limit ?? 20;
  const out: SuiteListing[] = [];
  const seen = new Set<string>();
  if (limit <= 0) return out;
  for await (const info of client.workflow.list({ query: 'WorkflowType = "evaluateSuite"' })) {
    if (seen.has(info.workflowId)) continue;
    seen.add(info.workflowId);
    out.push({
      suiteId: info.workflowId,
      status: info.status.name,
      startTime: info.startTime.toISOString(),
      ...(info.closeTime ? { closeTime: info.closeTime.toISOString() } : {}),
    });
    if (out.length >= limit) break;
  }
  return out;
}

function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
