import type { RouteSummary } from '../activities/heads/route-result';
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
        : '') +
      (p.routes
        ? `; routes ${p.routes.done}/${p.routes.total} done${p.routes.failed.length ? `, ${p.routes.failed.length} failed` : ''}`
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
    `  summary   ${o.summary.summaryUri}`,
    ...routesTable(o.summary.routes),
  ].join('\n');
}

const pct = (v: number | null) => (v === null ? '    -' : `${(100 * v).toFixed(1).padStart(5)}`);

/** One line per route job: top-1, top-5, mean per-class recall, macro-F1 (percent). */
function routesTable(routes: readonly RouteSummary[]): string[] {
  if (routes.length === 0) return [];
  const name = (r: RouteSummary) => `${r.route}${r.variant ? ` ${r.variant}` : ''}`;
  const width = Math.max(...routes.map((r) => name(r).length), 5);
  return [
    `  ${'route'.padEnd(width)}   acc1   acc5  mpcr    F1   (test images: ${routes[0]!.n})`,
    ...routes.map(
      (r) =>
        `  ${name(r).padEnd(width)}  ${pct(r.acc1)}  ${pct(r.acc5)} ${pct(r.meanPerClassRecall)} ${pct(r.macroF1)}` +
        (r.reused ? '  (reused)' : '') +
        (r.notes.length ? `  [${r.notes.length} note${r.notes.length > 1 ? 's' : ''}]` : ''),
    ),
  ];
}
