/** @file The one unwrapper of Temporal failures (pure: workflow code imports it too). */

/**
 * Temporal's wrappers of a failure: each says where it happened (an activity, a child workflow,
 * the workflow a client waited for), its cause says what went wrong. Matched by name, which the SDK
 * sets on each class, so that workflows, client and core share this without importing the SDK.
 */
const TEMPORAL_WRAPPERS = new Set([
  'WorkflowFailedError',
  'WorkflowUpdateFailedError',
  'ActivityFailure',
  'ChildWorkflowFailure',
  'NexusOperationFailure',
]);

/**
 * The message of a failure with Temporal's wrappers taken off: the error an activity or workflow
 * threw (clipeval's own errors already carry their causes' messages). The one unwrapper of the
 * project: workflows put it in their route and cell failures, the client in its run outcomes.
 */
export function failureMessage(err: unknown): string {
  let e = err;
  while (e instanceof Error && TEMPORAL_WRAPPERS.has(e.name) && e.cause instanceof Error)
    e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
