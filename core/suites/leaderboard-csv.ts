/**
 * @file leaderboard.csv: CLIP_benchmark's combined table. One row per model (as named in the
 * suite spec), one column per `<dataset>/<route>` with top-1 accuracy as a fraction (as
 * CLIP_benchmark writes acc1), then one `mean/<route>` per route; an empty field is a cell that
 * failed or is missing. Names are letters, digits and . _ - (suite-spec.ts), so no field needs
 * quoting and none can start a spreadsheet formula.
 */
import type { Leaderboard } from './leaderboard';

export function leaderboardCsv(board: Leaderboard): string {
  const head = ['model', ...board.columns.map((c) => c.id), ...board.means];
  const fmt = (v: number | null | undefined) =>
    v === null || v === undefined || !Number.isFinite(v) ? '' : v.toFixed(4);
  const lines = board.rows.map((r) =>
    [
      r.model,
      ...board.columns.map((c) => fmt(r.cells[c.id]?.acc1)),
      ...board.means.map((m) => fmt(r.means[m])),
    ].join(','),
  );
  return `${[head.join(','), ...lines].join('\n')}\n`;
}
