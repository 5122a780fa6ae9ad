import type { RunOutcome } from './evaluations';

/** Human-readable run outcome for the terminal (`--json` prints the object itself). */
export function formatOutcome(o: RunOutcome): string {
  if (o.status === 'RUNNING') {
    const p = o.progress;
    if (!p) return `run ${o.runId}: running (waiting for a worker)`;
    const x = p.extraction;
    return (
      `run ${o.runId}: running, stage ${p.stage}` +
      (p.plan ? `, ${p.plan.images} images in ${p.plan.shards} shards` : '') +
      (x
        ? `; extracted ${x.shardsDone}/${x.shards} shards (${x.shardsReused} reused), ${x.imagesDone} images, ${x.imagesFailed} failed`
        : '')
    );
  }
  if (o.status !== 'COMPLETED')
    return `run ${o.runId}: ${o.status.toLowerCase()}\n  ${o.error.replace(/\n/g, '\n  ')}`;
  const p = o.summary.plan;
  return [
    `run ${o.runId}: completed`,
    `  plan      ${p.planUri}`,
    `  images    ${p.images} (train ${p.bySplit.train}, val ${p.bySplit.val}, test ${p.bySplit.test}); skipped ${p.skipped}`,
    `  classes   ${p.classes}`,
    `  shards    ${p.shards}`,
    `  dataset   fingerprint ${p.fingerprint.slice(0, 16)}`,
    `  model     ${o.summary.bundle}`,
    `  embedded  ${o.summary.extraction.imagesDone} images in ${o.summary.extraction.shards} shards (${o.summary.extraction.shardsReused} reused from earlier runs); ${o.summary.extraction.imagesFailed} could not be decoded`,
  ].join('\n');
}
