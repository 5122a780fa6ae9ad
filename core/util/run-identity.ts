/**
 * @file Which run and which schedule a workflow execution may act as: the one rule that the
 * workflow (workflows/evaluate-dataset.ts) and the activity guard (activities/run-identity.ts)
 * both apply. A run writes under runs/<runId>/ and a scheduled run updates
 * schedules/<scheduleId>/last-success.json, so an execution may only claim the run id that is its
 * own workflow id, and only the schedule that named it: Temporal names a schedule's runs
 * `<schedule id>-<RFC 3339 time>` (client/schedules.ts gives the schedule's id as the action's
 * workflow id). Pure and deterministic, so workflow code may import it.
 */

/** What Temporal appends to a schedule's workflow id for each run, e.g. `-2026-01-01T02:00:00Z`. */
const SCHEDULED_RUN_SUFFIX = /-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/;

/** The schedule a workflow id names as its starter (`<schedule id>-<time>`), if any. */
export function scheduleOfWorkflowId(workflowId: string): string | undefined {
  const m = SCHEDULED_RUN_SUFFIX.exec(workflowId);
  return m && m.index > 0 ? workflowId.slice(0, m.index) : undefined;
}

/**
 * Why an execution with this workflow id may not claim this run id or schedule id (undefined when
 * it may). Absent claims are not checked.
 */
export function runIdentityProblem(
  workflowId: string,
  claims: { runId?: unknown; scheduleId?: unknown; suiteId?: unknown },
): string | undefined {
  // A suite writes only under suites/<its own workflow id>/, as a run does under runs/.
  if (claims.suiteId !== undefined && claims.suiteId !== workflowId) {
    return (
      `suite id ${JSON.stringify(claims.suiteId)} is not this workflow's id "${workflowId}" ` +
      '(a suite writes only under suites/<its own workflow id>/)'
    );
  }
  if (claims.runId !== undefined && claims.runId !== workflowId) {
    return (
      `run id ${JSON.stringify(claims.runId)} is not this workflow's id "${workflowId}" ` +
      '(a run writes only under runs/<its own workflow id>/)'
    );
  }
  if (claims.scheduleId !== undefined && scheduleOfWorkflowId(workflowId) !== claims.scheduleId) {
    return (
      `workflow "${workflowId}" is not a run of schedule ${JSON.stringify(claims.scheduleId)} ` +
      `(Temporal names a schedule's runs "<schedule id>-<time>"; only they may update its baseline)`
    );
  }
  return undefined;
}
