import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createCpuActivities, createGpuActivities } from '../../activities';
import { withRunIdentity } from '../../activities/run-identity';
import { loadEnv } from '../../core/config/env';
import { runIdentityProblem, scheduleOfWorkflowId } from '../../core/util/run-identity';

// Issue 12, item 11: any Temporal client could start a workflow (or schedule an activity) whose
// runId or schedule id names another run's results or another schedule's baseline.

const execution = (workflowId: string) => ({
  workflowExecution: { workflowId, runId: '00000000-0000-0000-0000-000000000000' },
});

/** How `fn` failed (or undefined), run as an activity of workflow `workflowId`. */
async function failureOf(
  workflowId: string,
  fn: (input: unknown) => Promise<unknown>,
  input: unknown,
): Promise<unknown> {
  return new MockActivityEnvironment(execution(workflowId)).run(fn, input).then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe('run identity', () => {
  it("names a schedule's runs as Temporal does: <schedule id>-<RFC 3339 time>", () => {
    expect(scheduleOfWorkflowId('nightly-2026-01-01T02:00:00Z')).toBe('nightly');
    expect(scheduleOfWorkflowId('a-b-2026-01-01T02:00:00Z')).toBe('a-b');
    expect(scheduleOfWorkflowId('nightly')).toBeUndefined();
    expect(scheduleOfWorkflowId('-2026-01-01T02:00:00Z')).toBeUndefined();
  });

  it('lets a workflow claim only its own run id and only the schedule that named it', () => {
    expect(runIdentityProblem('r1', {})).toBeUndefined();
    expect(runIdentityProblem('r1', { runId: 'r1' })).toBeUndefined();
    expect(runIdentityProblem('r1', { runId: 'r2' })).toMatch(
      /run id "r2" is not this workflow's id "r1"/,
    );
    const scheduled = 'nightly-2026-01-01T02:00:00Z';
    expect(runIdentityProblem(scheduled, { runId: scheduled, scheduleId: 'nightly' })).toBe(
      undefined,
    );
    expect(runIdentityProblem(scheduled, { scheduleId: 'nightly-2026' })).toMatch(
      /is not a run of schedule "nightly-2026"/,
    );
    // "a" may not claim the runs of schedule "a-b".
    expect(runIdentityProblem('a-b-2026-01-01T02:00:00Z', { scheduleId: 'a' })).toBeDefined();
    expect(runIdentityProblem('plain-run', { scheduleId: 'nightly' })).toBeDefined();
  });
});

describe('the activity guard', () => {
  const echo = withRunIdentity({
    echo: (input: { runId?: string; scheduleId?: string; other?: string }) =>
      Promise.resolve(input),
  }).echo as (input: unknown) => Promise<unknown>;

  it('refuses a foreign runId or scheduleId without retries, before the activity runs', async () => {
    const err = await failureOf('wf-1', echo, { runId: 'someone-else' });
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('RunIdentity');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as Error).message).toBe(
      `Refusing to run echo: run id "someone-else" is not this workflow's id "wf-1" (a run writes only under runs/<its own workflow id>/).`,
    );
    const sched = await failureOf('wf-1', echo, { runId: 'wf-1', scheduleId: 'nightly' });
    expect((sched as ApplicationFailure).type).toBe('RunIdentity');
    // A suite's activities write under suites/<suiteId>/: only that suite's workflow may.
    const suite = await failureOf('wf-1', echo, { suiteId: 'other-suite' });
    expect((suite as ApplicationFailure).type).toBe('RunIdentity');
    expect(await failureOf('wf-1', echo, { suiteId: 'wf-1' })).toBeUndefined();
  });

  it('passes its own run, a run of its schedule, and inputs without a run', async () => {
    expect(await failureOf('wf-1', echo, { runId: 'wf-1' })).toBeUndefined();
    const scheduled = 'nightly-2026-01-01T02:00:00Z';
    expect(
      await failureOf(scheduled, echo, { runId: scheduled, scheduleId: 'nightly' }),
    ).toBeUndefined();
    expect(await failureOf('wf-1', echo, { other: 'x' })).toBeUndefined();
    expect(await failureOf('wf-1', echo, 'not an object')).toBeUndefined();
  });

  it('guards every registered activity whose input carries a run (cpu and gpu sets)', async () => {
    // An unreachable S3: a guarded activity fails before any request, with RunIdentity.
    const env = loadEnv({ CLIPEVAL_BUCKET: 'out', CLIPEVAL_S3_ENDPOINT: 'http://127.0.0.1:9' });
    const sets = [createCpuActivities(env), createGpuActivities(env)];
    const names: string[] = [];
    for (const { activities, resources } of sets) {
      for (const [name, fn] of Object.entries(activities)) {
        names.push(name);
        const input = {
          runId: 'victim',
          scheduleId: 'nightly',
          suiteId: 'victim',
          planUri: 's3://out/x',
        };
        const err = await failureOf('attacker', fn as (i: unknown) => Promise<unknown>, input);
        expect((err as ApplicationFailure).type, name).toBe('RunIdentity');
        expect((err as Error).message).toContain(`Refusing to run ${name}:`);
      }
      await resources.close();
    }
    expect(names.sort()).toEqual([
      'compareWithPrevious',
      'extractShardImages',
      'findFinishedRuns',
      'fitLinearProbe',
      'fitTipAdapter',
      'planDataset',
      'recordSuite',
      'retrieveZeroShot',
      'summarizeRun',
      'trainCoopPrompts',
      'writeLeaderboard',
      'writeReport',
      'zeroShot',
    ]);
  });
});
