/**
 * @file leaderboard.html: one self-contained page like the run report (inline CSS and SVG, the
 * report's Content-Security-Policy: nothing may load or run). Every string from the spec or S3
 * goes through escapeHtml; only Vega's SVGs (which escape their own text) are inlined as they are.
 */
import { type RenderedChart, renderChart } from '../report/charts';
import { CSS, escapeHtml, figures, pageHead, section, table } from '../report/render-html';
import type { Leaderboard, LeaderboardCell } from './leaderboard';
import { leaderboardChartSpecs } from './leaderboard-charts';

export async function renderLeaderboardHtml(board: Leaderboard): Promise<string> {
  const charts: RenderedChart[] = [];
  // One at a time: each Vega view holds its scenegraph until finalised.
  for (const spec of leaderboardChartSpecs(board)) charts.push(await renderChart(spec));
  const chart = (prefix: string) => charts.filter((c) => c.name.startsWith(prefix));
  return `${pageHead(`clipeval leaderboard ${board.suiteId}`, CSS + EXTRA_CSS)}
<body>
<h1>clipeval leaderboard: ${escapeHtml(board.suiteId)}</h1>
<p class="meta">${board.models.length} model(s) x ${board.datasets.length} dataset(s) · written ${escapeHtml(board.generatedAt)}</p>
${section('Leaderboard', leaderboardTable(board))}
${section('Models x datasets', figures(chart('heatmap')))}
${section('Per dataset, with 95% intervals', figures(chart('bars-')))}
${section('Few-shot curves', figures(chart('few-shot-')))}
${section('Cells that did not complete', failedCells(board))}
</body>
</html>
`;
}

const pct = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(100 * v).toFixed(2)}`;

function cellHtml(c: LeaderboardCell | null): string {
  if (!c) return '–';
  const mark = c.best ? ' class="best"' : c.tie ? ' class="tie"' : '';
  const b2n = c.baseToNew
    ? `<br><small>H ${pct(c.baseToNew.hm)} (base ${pct(c.baseToNew.base)}, new ${pct(c.baseToNew.new)})</small>`
    : '';
  return `<span${mark}>${pct(c.acc1)}</span><br><small>[${pct(c.low)}, ${pct(c.high)}]</small>${b2n}`;
}

function leaderboardTable(board: Leaderboard): string {
  const note =
    `<p>Top-1 accuracy (%) with its 95% bootstrap interval over test images (${board.statistics.resamples} resamples, seed ${board.statistics.seed}). ` +
    '<b>Bold</b>: the column’s best; <i>italic</i>: a tie with the best (not significantly different at 5%: McNemar’s exact test on per-image predictions, or for few-shot means the paired bootstrap interval of the difference contains 0). ' +
    'A mean is left out (–) when the model lacks one of its cells. ' +
    '<code>-b2n</code> columns are base-to-new (CoCoOp): the figure is the pooled accuracy with every image classified among its own half’s classes, H the harmonic mean of the base and new accuracies (means over seeds), which has no interval.</p>';
  return (
    note +
    table(
      ['model', ...board.columns.map((c) => c.id), ...board.means],
      board.rows.map((r) => [
        escapeHtml(r.model),
        ...board.columns.map((c) => cellHtml(r.cells[c.id] ?? null)),
        ...board.means.map((m) => pct(r.means[m])),
      ]),
    )
  );
}

function failedCells(board: Leaderboard): string {
  const failed = board.cells.filter((c) => c.status !== 'completed');
  if (failed.length === 0) return '<p>Every cell completed.</p>';
  return (
    '<p>These cells are left out of the table; <code>clipeval suite resume</code> runs them again, reusing all finished work.</p>' +
    table(
      ['model', 'dataset', 'run', 'error'],
      failed.map((c) => [
        escapeHtml(c.model),
        escapeHtml(c.dataset),
        `<code>${escapeHtml(c.runId)}</code>`,
        escapeHtml(c.error ?? ''),
      ]),
    )
  );
}

const EXTRA_CSS = `
.best { font-weight: 700; } .tie { font-style: italic; }
small { color: #666; }
`;
