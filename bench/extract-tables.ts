// bench/extract.ts's tables (markdown, ready to paste into docs/benchmarks.md): the feed rows
// per size, the split of the first-pass run beside the bare loop and the PIL pool, ViT-B/32's
// whole run vs its bare loop, and the dataset formats.
import { PHASES, type PhaseTotal } from '../core/util/phase-profile';
import type { Runs } from './extract-runs';
import { benchHeader, markdownTable, num, ratio, spread, summarize } from './stats';

export interface Measured {
  n: number;
  exact: Runs;
  fast: Runs;
  cached: Runs;
  bare: { ips: number[]; phases: Partial<Record<string, PhaseTotal>> };
  pil: { ips: number[]; busy_s: Record<string, number> };
}

interface Header {
  threads: number;
  batch: { batchSize: number; concurrency: number; parallelism: number };
  shardSizeFor: (n: number) => number;
}

const reads = (r: Record<string, number>) =>
  `${r.GetObject ?? 0} GET + ${r['GetObject (ranged)'] ?? 0} ranged GET`;

function common(h: Header): string[] {
  return [
    `gpu worker process: ORT ${h.threads} intra-op threads, decode pool ${h.threads} threads; the bare loop the same in this process; the PIL pool ${h.threads} processes pinned to ${h.threads} cores`,
    `batch ${h.batch.batchSize}, ${h.batch.concurrency} images in flight per shard, ${h.batch.parallelism} shards at once`,
    'whole run = start to result: planning (S3 listing), extraction activities, Arrow shards and manifests written, summary; the embedding space emptied before every run, none reused',
    'nothing pinned but the PIL pool: the stack (Temporal, versitygw), this process and the worker share the machine',
  ];
}

/** Per size: the feed rows, then the split table. */
export function printFeedTable(h: Header, measured: Measured[]): void {
  console.log(
    benchHeader('Feed rate (`npm run bench:extract`)', [
      'photo-like JPEG 640x480 in the local stack S3 (versitygw); tiny test bundle (fp32): inference costs next to nothing, so the rate is how fast images reach the model',
      ...common(h),
      'first pass: the geometry pixel cache emptied before each run (every image decoded, its 8-bit crop written to the cache); cached: a second model (same geometry, another bundle hash) with the cache filled',
    ]),
  );
  const rows: string[][] = [];
  for (const m of measured) {
    const pil = summarize(m.pil.ips);
    const row = (name: string, ips: number[], stall = '-') => {
      const s = summarize(ips);
      return [String(m.n), name, spread(s), ratio(s.median, pil.median), stall];
    };
    rows.push(
      row('whole run, first pass, exact', m.exact.ips, `${num(m.exact.stallMs)} ms`),
      row('whole run, first pass, fast', m.fast.ips, `${num(m.fast.stallMs)} ms`),
      row('whole run, second model, pixels cached', m.cached.ips, `${num(m.cached.stallMs)} ms`),
      row('bare loop (S3 reads + embedImages, nothing written)', m.bare.ips),
      row('boto3 + PIL + CLIPImageProcessorPil pool, no inference', m.pil.ips),
    );
  }
  console.log(
    markdownTable(
      ['images', 'row', 'img/s median (min-max)', 'vs PIL pool', 'gpu worker longest stall'],
      rows,
    ),
  );
  for (const m of measured) printSplit(m);
}

/** Where the first-pass run's time went, beside the bare loop and the PIL pool. */
function printSplit(m: Measured): void {
  const s = m.exact.split;
  const perImage = (ms: number) => num(ms / m.n, 2);
  const phase = (p: Partial<Record<string, PhaseTotal>>, name: string) =>
    p[name] ? perImage(p[name].busyMs) : '-';
  const pil = (name: string) =>
    m.pil.busy_s[name] === undefined ? '-' : perImage(m.pil.busy_s[name] * 1000);
  const wall = (ips: number[]) => num(1000 / summarize(ips).median, 2);
  console.log(`\n#### Split of one first-pass run, ${m.n} images (${s.shards} shards)\n`);
  console.log(
    'Wall figures are the run median repeat, from its Temporal history; busy figures sum every concurrent interval (threads, in-flight reads), per image, in the gpu worker (the bare loop: this process; the PIL pool: its processes), so they can exceed the wall time.\n',
  );
  const rows: string[][] = [
    [
      'wall ms per image (1000 / median img/s)',
      wall(m.exact.ips),
      wall(m.bare.ips),
      wall(m.pil.ips),
    ],
    ['whole run, start to result (s)', num(s.wallS, 2), '-', '-'],
    ['  planning activity (s)', num(s.planningS, 2), '-', '-'],
    ['  shard activities, union of their spans (s)', num(s.extractionS, 2), '-', '-'],
    ['  mean wait of a shard for a worker (ms)', num(s.shardQueueMs, 1), '-', '-'],
    ['  summary + report activities (s)', num(s.summaryS, 2), '-', '-'],
    ['  in no activity: workflow tasks, hand-offs (s)', num(s.orchestrationS, 2), '-', '-'],
    ['  before the first / after the last event (s)', num(s.wallS - s.historyS, 2), '-', '-'],
  ];
  for (const name of PHASES)
    rows.push([
      `busy ms per image: ${name}`,
      phase(s.phases, name),
      phase(m.bare.phases, name),
      pil(name),
    ]);
  console.log(markdownTable(['', 'whole run (first pass, exact)', 'bare loop', 'PIL pool'], rows));
}

/** ViT-B/32 fp32: the whole run's overhead over the bare loop. */
export function printVitRows(h: Header, n: number, bare: number[], whole: Runs): void {
  const [b, w] = [summarize(bare), summarize(whole.ips)];
  console.log(
    '\n' +
      benchHeader('Extraction, ViT-B/32 (`npm run bench:extract`)', [
        `${n} photo-like JPEG 640x480; ViT-B/32 random-init bundle (fp32 graph, float input), exact preprocessing, first pass, shards of ~${h.shardSizeFor(n)}`,
        ...common(h),
      ]),
  );
  console.log(
    markdownTable(
      ['row', 'img/s median (min-max)', 'ratio', 'gpu worker longest stall'],
      [
        [
          'bare loop (S3 reads, embedImages, no Temporal, nothing written)',
          spread(b),
          '1.00x',
          '-',
        ],
        [
          'whole run through Temporal + S3 + Arrow',
          spread(w),
          `${ratio(w.median, b.median)} of bare`,
          `${num(whole.stallMs)} ms`,
        ],
      ],
    ),
  );
}

/** ImageFolder vs WebDataset: the same images, whole runs, img/s and the worker's image reads. */
export function printFormatRows(h: Header, n: number, folder: Runs, wds: Runs): void {
  const [f, w] = [summarize(folder.ips), summarize(wds.ips)];
  console.log(
    benchHeader('Dataset formats (`npm run bench:extract`)', [
      `the same ${n} photo-like JPEG 640x480, as an ImageFolder (one object each) and as WebDataset tars of 250 (written by export-wds's code); tiny test bundle (fp32), exact preprocessing, first pass, shards of ~${h.shardSizeFor(n)}`,
      ...common(h),
      'requests counted in the worker (S3Client.send), per run',
    ]),
  );
  console.log(
    markdownTable(
      ['dataset format', 'img/s median (min-max)', 'ratio', 'worker GetObject per run', 'shards'],
      [
        ['ImageFolder', spread(f), '1.00x', reads(folder.requests), String(folder.shards)],
        [
          'WebDataset (tars)',
          spread(w),
          ratio(w.median, f.median),
          reads(wds.requests),
          String(wds.shards),
        ],
      ],
    ),
  );
}
