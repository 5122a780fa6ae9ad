/**
 * @file The activities' half of tying a run to its workflow (the workflow checks the same rule,
 * core/util/run-identity.ts): any client can schedule an activity task itself, so every
 * registered activity whose input carries a `runId`, `scheduleId` or `suiteId` refuses to run unless the
 * workflow that scheduled it is that run (its workflow id) or a run of that schedule
 * (`<schedule id>-<time>`). A refusal is a non-retryable failure of type `RunIdentity`, before the
 * activity reads or writes anything.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { runIdentityProblem } from '../core/util/run-identity';

/** Throws a non-retryable failure if the input claims a run or schedule this workflow is not. */
export function checkRunIdentity(activityName: string, input: unknown): void {
  if (typeof input !== 'object' || input === null) return;
  const { runId, scheduleId, suiteId } = input as {
    runId?: unknown;
    scheduleId?: unknown;
    suiteId?: unknown;
  };
  if (runId === undefined && scheduleId === undefined && suiteId === undefined) return;
  const workflowId = Context.current().info.workflowExecution?.workflowId;
  const problem =
    workflowId === undefined
      ? 'it was not scheduled by a workflow, so its run cannot be checked'
      : runIdentityProblem(workflowId, { runId, scheduleId, suiteId });
  if (problem) {
    throw ApplicationFailure.nonRetryable(
      `Refusing to run ${activityName}: ${problem}.`,
      'RunIdentity',
    );
  }
}

/** Wraps every activity of a worker's set with checkRunIdentity (names kept for registration). */
export function withRunIdentity<T extends Record<string, (...args: never[]) => Promise<unknown>>>(
  activities: T,
): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => {
      const activity = fn as (...args: unknown[]) => Promise<unknown>;
      const wrapped = async (...args: unknown[]) => {
        checkRunIdentity(name, args[0]);
        return activity(...args);
      };
      Object.defineProperty(wrapped, 'name', { value: activity.name });
      return [name, wrapped];
    }),
  ) as unknown as T;
}
