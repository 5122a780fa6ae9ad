import { type Comparison, routeName } from '../core/runs/compare';
import type { RouteSummary } from '../core/routes/route-result';
import type { RetrievalSummary } from '../core/routes/retrieval/retrieval-result';
import type { RunListing, RunOutcome } from '../client/evaluations';
import type { ScheduleInfo } from '../client/schedules';
import { escapeControls } from '../core/util/text';

/**
 * Text for a terminal. Keys, labels and error messages may carry terminal escape codes, carriage
 * returns or bidi overrides (S3 keys may hold any character): those are shown as `\u{..}`
 * escapes, so what clipeval prints can neither recolour nor rewrite the terminal. Line feeds and
 * tabs stay: clipeval's own output is laid out with them.
 */
export const terminalText = (s: string): string => escapeControls(s, '\n\t');

/**
 * JSON for a terminal: JSON.stringify escapes C0 controls but leaves DEL, C1 controls (U+009B is
 * an 8-bit CSI), U+2028/U+2029 and bidi controls raw; they become `\uXXXX` here (still the same
 * JSON value).
 */
export function terminalJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    /[\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Human-readable run outcome for the terminal (`--json` prints the object itself). */
export function formatOutcome(o: RunOutcome): string {
  return terminalText(outcomeText(o));
}

function outcomeText(o: RunOutcome): string {
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
        : '') +
      (o.training ?? [])
        .map((t) => `; coop ${t.variant} epoch ${t.epoch}/${t.epochs} loss ${t.loss.toFixed(4)}`)
        .join('')
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
    `  decoded   ${decodedLine(o.summary.extraction)}`,
    `  reused    ${reusedLine(o.summary.extraction, o.summary.routes)}`,
    `  summary   ${o.summary.summaryUri}`,
    ...(o.summary.report
      ? [`  report    ${o.summary.report.htmlUri} (clipeval report ${o.runId} --out DIR)`]
      : []),
    ...(o.summary.schedule ? [`  schedule  ${o.summary.schedule.id}`] : []),
    ...routesTable(o.summary.routes),
    ...(o.summary.retrieval ? retrievalLines(o.summary.retrieval) : []),
    ...(o.summary.comparison ? comparisonLines(o.summary.comparison) : []),
  ].join('\n');
}

/** Where the pixels of the shards this run encoded came from (absent from older runs' results). */
function decodedLine(x: { imagesDecoded?: number; imagesFromPixelCache?: number }) {
  if (x.imagesDecoded === undefined) return 'not counted (a run from before the pixel cache)';
  return `${x.imagesDecoded} images decoded, ${x.imagesFromPixelCache ?? 0} read from the pixel cache`;
}

/** What this run took from earlier executions and runs instead of recomputing it. */
function reusedLine(x: { shards: number; shardsReused: number }, routes: readonly RouteSummary[]) {
  const reused = routes.filter((r) => r.reused).length;
  return `${x.shardsReused} of ${x.shards} shards, ${reused} of ${routes.length} route results`;
}

const points = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;

/** Deltas against the schedule's previous successful run, in percentage points. */
function comparisonLines(c: Comparison): string[] {
  const verdict = c.regression
    ? `REGRESSION: ${c.metric} dropped more than ${(100 * c.maxDrop).toFixed(1)} points`
    : `no regression (${c.metric}, max drop ${(100 * c.maxDrop).toFixed(1)} points)`;
  const width = Math.max(...c.deltas.map((d) => routeName(d).length), 5);
  return [
    `  compared with run ${c.previousRunId}: ${verdict}`,
    ...c.deltas.map(
      (d) =>
        `    ${routeName(d).padEnd(width)}  acc1 ${points(d.delta.acc1).padStart(6)}  mpcr ${points(d.delta.meanPerClassRecall).padStart(6)}` +
        (d.regression ? '  << regression' : ''),
    ),
    ...(c.added.length ? [`    new routes: ${c.added.join(', ')}`] : []),
    ...(c.removed.length ? [`    routes gone: ${c.removed.join(', ')}`] : []),
  ];
}

export function formatRunList(runs: readonly RunListing[]): string {
  if (runs.length === 0) return 'no evaluation runs';
  return terminalText(runListText(runs));
}

function runListText(runs: readonly RunListing[]): string {
  const width = Math.max(...runs.map((r) => r.runId.length), 6);
  return [
    `${'run id'.padEnd(width)}  ${'status'.padEnd(10)}  ${'started'.padEnd(20)}  ${'closed'.padEnd(20)}  schedule`,
    ...runs.map(
      (r) =>
        `${r.runId.padEnd(width)}  ${r.status.padEnd(10)}  ${time(r.startTime).padEnd(20)}  ${time(r.closeTime).padEnd(20)}  ${r.scheduleId ?? '-'}`,
    ),
  ].join('\n');
}

export function formatSchedule(s: ScheduleInfo): string {
  return terminalText(scheduleText(s));
}

function scheduleText(s: ScheduleInfo): string {
  return [
    `schedule ${s.scheduleId}${s.paused ? ' (paused' + (s.note ? `: ${s.note}` : '') + ')' : ''}`,
    `  cron            ${s.cron ?? '?'} (${s.timezone ?? 'UTC'})`,
    ...(s.dataset ? [`  dataset         ${s.dataset}`] : []),
    `  overlap         ${s.overlap}`,
    `  catch-up window ${Math.round(s.catchupWindowMs / 1000)} s`,
    `  next runs       ${s.nextRuns.slice(0, 3).map(time).join(', ') || '-'}`,
    `  actions taken   ${s.actionsTaken}; skipped (overlap) ${s.skippedOverlap}; missed catch-up window ${s.missedCatchupWindow}`,
    `  running         ${s.running.join(', ') || '-'}`,
    `  recent runs`,
    ...(s.recentRuns.length
      ? s.recentRuns.map((r) => `    ${r.runId}  started ${time(r.startedAt)}`)
      : ['    -']),
  ].join('\n');
}

/** ISO time without milliseconds, UTC. */
const time = (iso?: string) => (iso ? iso.replace(/\.\d+Z$/, 'Z') : '-');

const pct = (v: number | null) => (v === null ? '    -' : `${(100 * v).toFixed(1).padStart(5)}`);

/** One line per route job: top-1, top-5, mean per-class recall, macro-F1 (percent). */
function routesTable(routes: readonly RouteSummary[]): string[] {
  if (routes.length === 0) return [];
  const name = (r: RouteSummary) =>
    `${r.route}${r.variant ? ` ${r.variant}` : ''}${r.protocol === 'base-to-new' ? ' b2n' : ''}`;
  const width = Math.max(...routes.map((r) => name(r).length), 5);
  return [
    `  ${'route'.padEnd(width)}   acc1   acc5  mpcr    F1   (test images: ${routes[0]!.n})`,
    ...routes.map(
      (r) =>
        `  ${name(r).padEnd(width)}  ${pct(r.acc1)}  ${pct(r.acc5)} ${pct(r.meanPerClassRecall)} ${pct(r.macroF1)}` +
        (r.baseToNew
          ? `  base ${pct(r.baseToNew.base.acc1).trim()} new ${pct(r.baseToNew.new.acc1).trim()} H ${pct(r.baseToNew.hm).trim()}`
          : '') +
        (r.reused ? '  (reused)' : '') +
        (r.notes.length ? `  [${r.notes.length} note${r.notes.length > 1 ? 's' : ''}]` : ''),
    ),
  ];
}

/** Zero-shot retrieval's recall@k both ways (CLIP_benchmark's text_/image_retrieval_recall@k). */
function retrievalLines(r: RetrievalSummary): string[] {
  const recalls = (byK: Record<string, number>) =>
    Object.keys(byK)
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => `R@${k} ${pct(byK[k]!).trim()}`)
      .join('  ');
  return [
    `  retrieval ${r.images} images, ${r.captions} captions${r.reused ? ' (reused)' : ''}${r.notes.length ? `  [${r.notes.length} note${r.notes.length > 1 ? 's' : ''}]` : ''}`,
    `    image to text  ${recalls(r.imageToText)}`,
    `    text to image  ${recalls(r.textToImage)}`,
  ];
}

/**
 * One line for a terminal while a run goes on: the stage, a bar for its unit of work (shards,
 * route jobs) and CoOp's epoch and loss. Redrawn in place by the CLI (`\r`).
 */
export function progressLine(o: RunOutcome, width = 24): string {
  return terminalText(progressText(o, width));
}

function progressText(o: RunOutcome, width: number): string {
  if (o.status !== 'RUNNING') return '';
  const p = o.progress;
  if (!p) return 'waiting for a worker';
  const bar = (done: number, total: number) => {
    const filled = total > 0 ? Math.round((width * done) / total) : 0;
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
  };
  const parts: string[] = [p.stage];
  if (p.stage === 'extracting' && p.extraction)
    parts.push(
      `${bar(p.extraction.shardsDone, p.extraction.shards)} shards, ${p.extraction.imagesDone} images`,
    );
  if (p.stage === 'routes' && p.routes)
    parts.push(`${bar(p.routes.done, p.routes.total)} route jobs`);
  for (const t of o.training ?? [])
    parts.push(`coop ${t.variant} epoch ${t.epoch}/${t.epochs} loss ${t.loss.toFixed(3)}`);
  return parts.join('  ');
}
