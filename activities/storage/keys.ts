/**
 * The one place that names S3 keys in clipeval's output bucket. Every other module asks here,
 * so the layout can be read (and changed) in one file:
 *
 *   runs/<runId>/plan.json                      the run plan (classes, counts, shards, fingerprint, spec)
 *   embeddings/<space>/<content>.arrow          an embedding shard (Arrow IPC file)
 *   embeddings/<space>/<content>.json           its manifest, written after the shard: rows, sha256, failures
 *
 * <space> names the embedding space (model bundle + preprocessing), <content> the exact images
 * and labels a shard covers: runs over the same data and model share shards.
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
  embeddingShard: (space: string, content: string) =>
    `embeddings/${hex(space)}/${hex(content)}.arrow`,
  embeddingManifest: (space: string, content: string) =>
    `embeddings/${hex(space)}/${hex(content)}.json`,
};

function hex(id: string): string {
  if (!/^[0-9a-f]{8,64}$/.test(id)) throw new Error(`"${id}" is not a content hash`);
  return id;
}
