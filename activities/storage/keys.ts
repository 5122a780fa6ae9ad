/**
 * The one place that names S3 keys in clipeval's output bucket. Every other module asks here,
 * so the layout can be read (and changed) in one file:
 *
 *   runs/<runId>/plan.json     the run plan (classes, counts, shards, fingerprint, spec)
 */
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function assertRunId(runId: string): string {
  if (!RUN_ID.test(runId)) {
    throw new Error(
      `run id "${runId}" is not valid: use 1-128 characters from A-Z a-z 0-9 . _ - (starting with a letter or digit)`,
    );
  }
  return runId;
}

export const keys = {
  runPrefix: (runId: string) => `runs/${assertRunId(runId)}/`,
  plan: (runId: string) => `runs/${assertRunId(runId)}/plan.json`,
};
