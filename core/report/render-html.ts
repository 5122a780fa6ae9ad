/**
 * @file report.html: one self-contained page (inline CSS and SVG, no script, font, image or link
 * that needs the network), under a Content-Security-Policy that forbids all of those anyway. Every string that comes from the dataset, the spec or S3 goes through
 * `escapeHtml`; only the SVGs rendered by Vega (which escapes its own text) are inlined as is.
 */
import type { RenderedChart } from './charts';
import type { ReportData } from './report-data';

/** A self-contained page's head: its CSP (no scripts, no outside requests), title and style. */
export function pageHead(title: string, css: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
</head>`;
}

/** The page for one run: its report data, with the charts rendered from it. */
export function renderHtml(data: ReportData, charts: readonly RenderedChart[]): string {
  const chart = (name: string) => charts.filter((c) => c.name === name);
  const confusions = charts.filter((c) => c.name.startsWith('confusion-'));
  return `${pageHead(`clipeval report ${data.runId}`, CSS)}
<body>
<h1>clipeval report: ${escapeHtml(data.runId)}</h1>
<p class="meta">Dataset ${code(data.dataset.uri)} · model ${escapeHtml(data.model.name)} · written ${escapeHtml(data.generatedAt)}</p>
${section('Summary', summaryTable(data))}
${data.retrieval ? section('Zero-shot retrieval', retrievalTable(data.retrieval)) : ''}
${section('Few-shot curves', figures(chart('few-shot')) + fewShotTable(data))}
${data.baseToNew.length > 0 ? section('Base-to-new', baseToNewTable(data)) : ''}
${section('Per-class accuracy', figures(chart('per-class')))}
${section('Confusion matrices', figures(confusions))}
${section('CoOp loss', figures(chart('coop-loss')))}
${data.history ? section('Trend over runs', figures(chart('trend'))) : ''}
${section('Provenance', provenance(data))}
${section('Failed items', failedItems(data))}
${section('Skipped objects', skipped(data))}
</body>
</html>
`;
}

/**
 * The page's Content-Security-Policy: nothing may load or run (no script, font, image, frame,
 * form or base URL), only the inline `<style>` and the SVGs' style attributes apply. A string that
 * slipped past escaping still could not run or fetch anything.
 */
export const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'";

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

const code = (s: string) => `<code>${escapeHtml(s)}</code>`;
const pct = (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(2)}%`);

export function section(title: string, body: string): string {
  return `<section><h2>${escapeHtml(title)}</h2>\n${body || '<p class="none">Nothing to show for this run.</p>'}\n</section>`;
}

export function figures(charts: readonly RenderedChart[]): string {
  return charts
    .map(
      (c) =>
        `<figure data-chart="${escapeHtml(c.name)}">${c.svg}<figcaption><b>${escapeHtml(c.title)}.</b> ${escapeHtml(c.caption)}</figcaption></figure>`,
    )
    .join('\n');
}

/** A table: `head` is escaped here, `rows` cells are HTML the caller has escaped. */
export function table(head: readonly string[], rows: readonly string[][]): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

function summaryTable(data: ReportData): string {
  return table(
    [
      'route',
      'variant',
      'test images',
      'top-1',
      'top-5',
      'mean per-class recall',
      'macro-F1',
      'notes',
    ],
    data.summary.map((r) => [
      escapeHtml(r.route) + (r.protocol === 'base-to-new' ? ' (base-to-new, pooled)' : ''),
      escapeHtml(r.variant ?? ''),
      String(r.n),
      pct(r.acc1),
      pct(r.acc5),
      pct(r.meanPerClassRecall),
      pct(r.macroF1),
      r.notes.map(escapeHtml).join('<br>'),
    ]),
  );
}

/** Recall@k both ways, one row per k (CLIP_benchmark's text_ and image_retrieval_recall@k). */
function retrievalTable(r: NonNullable<ReportData['retrieval']>): string {
  const ks = Object.keys(r.imageToText).sort((a, b) => Number(a) - Number(b));
  const notes = r.notes.map((n) => `<p>${escapeHtml(n)}</p>`).join('\n');
  return (
    `<p>${r.images} test image(s) against their ${r.captions} caption(s), captions encoded without templates. ` +
    'Image to text: an image is a hit when one of its captions ranks in its top k among all captions; ' +
    'text to image: a caption is a hit when its image ranks in its top k among all images.</p>\n' +
    table(
      ['k', 'image → text recall@k', 'text → image recall@k'],
      ks.map((k) => [escapeHtml(k), pct(r.imageToText[k]!), pct(r.textToImage[k] ?? null)]),
    ) +
    notes
  );
}

function fewShotTable(data: ReportData): string {
  if (data.fewShot.points.length === 0) return '';
  return table(
    ['route', 'shots', 'seeds', 'top-1 mean ± std'],
    data.fewShot.points.map((p) => [
      p.route,
      String(p.shots),
      p.seeds.join(', '),
      `${pct(p.mean)} ± ${pct(p.std)}`,
    ]),
  );
}

/**
 * CoCoOp's table: each test image classified among its own half's classes (base: the first
 * ceil(K/2) of the class list, on which CoOp trained; new: the rest, unseen in training).
 */
function baseToNewTable(data: ReportData): string {
  const pm = (s: { mean: number; std: number }) => `${pct(s.mean)} ± ${pct(s.std)}`;
  return (
    `<p>Trained on the base classes only (zero-shot trains nothing); every test image classified among its own half's classes. H is the harmonic mean of base and new; "H of means" is that of the mean base and mean new accuracy, as CoCoOp reports it.</p>\n` +
    table(
      ['route', 'shots', 'seeds', 'classes (base / new)', 'base', 'new', 'H', 'H of means'],
      data.baseToNew.map((r) => [
        escapeHtml(r.route),
        r.shots === null ? '–' : String(r.shots),
        r.route === 'zero-shot' ? '–' : r.seeds.join(', '),
        `${r.baseClasses} / ${r.newClasses}`,
        pm(r.base),
        pm(r.new),
        pm(r.hm),
        pct(r.hmOfMeans),
      ]),
    )
  );
}

function provenance(data: ReportData): string {
  const { dataset, model } = data;
  const splits = dataset.counts.bySplit;
  return (
    table(
      ['', ''],
      [
        ['dataset', code(dataset.uri)],
        ['kind', escapeHtml(dataset.kind)],
        ['fingerprint (sha256)', code(dataset.fingerprint)],
        ['classes', String(dataset.classes.length)],
        [
          'images',
          `${dataset.counts.total} (train ${splits.train}, val ${splits.val}, test ${splits.test})`,
        ],
        ['model', escapeHtml(model.name)],
        ['bundle', code(model.bundle)],
        ['bundle hash (sha256 of bundle.json)', code(model.hash)],
        ['summary', code(data.summaryUri)],
      ],
    ) +
    `\n<details><summary>Validated run spec</summary><pre>${escapeHtml(JSON.stringify(data.spec, null, 2))}</pre></details>`
  );
}

/** The page lists this many failures; report.json has them all. */
const MAX_LISTED = 200;

function failedItems(data: ReportData): string {
  const { failedItems: failed } = data;
  if (failed.length === 0) return '<p>Every image was decoded.</p>';
  const more =
    failed.length > MAX_LISTED
      ? `<p>…and ${failed.length - MAX_LISTED} more (report.json lists all).</p>`
      : '';
  return (
    `<p>${failed.length} image(s) could not be decoded and were left out of every route.</p>\n` +
    table(
      ['image', 'reason'],
      failed.slice(0, MAX_LISTED).map((f) => [code(f.uri), escapeHtml(f.reason)]),
    ) +
    more
  );
}

function skipped(data: ReportData): string {
  const { skipped: s } = data.dataset;
  if (s.count === 0) return '<p>No object under the dataset prefix was skipped.</p>';
  return table(
    ['reason', 'objects'],
    Object.entries(s.byReason).map(([reason, n]) => [escapeHtml(reason), String(n)]),
  );
}

/** The report's style sheet, shared by the suite leaderboard's page. */
export const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #1b1b1b; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
.meta, .none, figcaption { color: #555; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td:nth-child(n+3) { font-variant-numeric: tabular-nums; }
code, pre { font: 12px/1.4 ui-monospace, monospace; word-break: break-all; }
pre { background: #f7f7f7; padding: .5rem; overflow: auto; max-height: 30rem; }
figure { margin: 1rem 0; overflow-x: auto; }
figure svg { max-width: none; }
`;
