/** @file Terminal text for suites: outcome and list (`--json` prints the objects themselves). */
import type { SuiteListing, SuiteOutcome } from '../client/suites';
import { terminalText } from './format';

const time = (iso?: string) => (iso ? iso.replace(/\.\d+Z$/, 'Z') : '-');

export function formatSuiteOutcome(o: SuiteOutcome): string {
  return terminalText(outcomeText(o));
}

function outcomeText(o: SuiteOutcome): string {
  if (o.status === 'RUNNING') {
    const p = o.progress;
    if (!p) return `suite ${o.suiteId}: running (no worker has picked it up yet)`;
    return [
      `suite ${o.suiteId}: ${p.stage}, ${p.settled}/${p.cells} cells settled (${p.reused} reused, ${p.failed.length} failed)`,
      ...p.running.map((r) => `  running ${r}`),
      ...p.failed.map((f) => `  failed ${f.model} x ${f.dataset}: ${f.error}`),
    ].join('\n');
  }
  if (o.status !== 'COMPLETED') return `suite ${o.suiteId}: ${o.status.toLowerCase()}: ${o.error}`;
  const s = o.summary;
  return [
    `suite ${s.suiteId}: completed, ${s.completed}/${s.cells} cells (${s.reused} reused from earlier runs, ${s.failed.length} failed)`,
    ...s.failed.map((f) => `  failed ${f.model} x ${f.dataset} (${f.runId}): ${f.error}`),
    ...(s.failed.length > 0
      ? [`resume the failed cells with: clipeval suite resume ${s.suiteId}`]
      : []),
    `leaderboard: ${s.leaderboard.htmlUri}`,
    `            ${s.leaderboard.csvUri}`,
  ].join('\n');
}

export function formatSuiteList(suites: readonly SuiteListing[]): string {
  if (suites.length === 0) return 'no suites';
  const width = Math.max(...suites.map((s) => s.suiteId.length), 8);
  return terminalText(
    [
      `${'suite id'.padEnd(width)}  ${'status'.padEnd(10)}  ${'started'.padEnd(20)}  closed`,
      ...suites.map(
        (s) =>
          `${s.suiteId.padEnd(width)}  ${s.status.padEnd(10)}  ${time(s.startTime).padEnd(20)}  ${time(s.closeTime)}`,
      ),
    ].join('\n'),
  );
}
