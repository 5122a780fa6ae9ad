/**
 * @file leaderboard.csv: CLIP_benchmark's combined table. One row per model (as named in the
 * suite spec), one column per `<dataset>/<route>` with top-1 accuracy as a fraction (as
 * CLIP_benchmark writes acc1), then one `mean/<route>` per route; an empty field is a cell that
 * failed or is missing. Names are letters, digits and . _ - (suite-spec.ts), so no field needs
 * quoting and none can start a spreadsheet formula. A base-to-new column (`-b2n`) is followed by
 * `<column>/base`, `<column>/new` and `<column>/hm` (core/suites/columns.ts).
 */
import type { Leaderboard } from './leaderboard';

const B2N_PARTS = ['base', 'new', 'hm'] as const;

export function leaderboardCsv(board: Leaderboard): string {
  const head = [
    'model',
    ...board.columns.flatMap((c) =>
      c.protocol ? [c.id, ...B2N_PARTS.map((p) => `${c.id}/${p}`)] : [c.id],
    ),
    ...board.means,
  ];
  const fmt = (v: number | null | undefined) =>
    v === null || v === undefined || !Number.isFinite(v) ? '' : v.toFixed(4);
  const lines = board.rows.map((r) =>
    [
      r.model,
      ...board.columns.flatMap((c) => {
        const cell = r.cells[c.id];
        const b2n = cell?.baseToNew;
        return c.protocol
          ? [fmt(cell?.acc1), ...B2N_PARTS.map((p) => fmt(b2n?.[p]))]
          : [fmt(cell?.acc1)];
      }),
      ...board.means.map((m) => fmt(r.means[m])),
    ].join(','),
  );
  return `${[head.join(','), ...lines].join('\n')}\n`;
}
