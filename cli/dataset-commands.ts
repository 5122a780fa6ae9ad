/**
 * @file `clipeval dataset inspect|export-wds`: a dataset as planning sees it, and the dataset
 * rewritten as CLIP_benchmark-style WebDataset. S3 only: no Temporal server or worker is needed.
 */
import type { Command } from 'commander';
import { loadEnv, loadStackEnvDefaults } from '../core/config/env';
import type { DatasetSpec } from '../core/config/run-spec';
import { UsageError } from '../client/errors';
import { exportDatasetAsWebDataset, inspectDataset } from '../client/datasets';
import { withExitCode } from './exit-code';
import { formatDatasetSummary, formatExportResult } from './dataset-format';
import { terminalJson } from './format';

const FORMATS = ['auto', 'imagefolder', 'manifest', 'webdataset', 'parquet'] as const;

/** S3 settings and planning limits from the environment; these commands need no output bucket. */
function datasetEnv() {
  loadStackEnvDefaults();
  return loadEnv({ CLIPEVAL_BUCKET: 'unused', ...process.env });
}

function formatOption(format: string | undefined): DatasetSpec['format'] | undefined {
  if (format === undefined) return undefined;
  if (!(FORMATS as readonly string[]).includes(format))
    throw new UsageError(`--format ${format}: expected one of ${FORMATS.join(', ')}`);
  return format as DatasetSpec['format'];
}

/** A positive whole count, or a size in bytes with an optional KiB/MiB/GiB unit. */
function positive(flag: string, value: string, units = false): number {
  const m = /^(\d+)(B|KiB|MiB|GiB)?$/.exec(value);
  const scale = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
  const n =
    m && (units || !m[2]) ? Number(m[1]) * (m[2] ? scale[m[2] as keyof typeof scale] : 1) : NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(
      `${flag} ${value}: expected a positive ${units ? 'size in bytes, e.g. 268435456, 256MiB or 1GiB' : 'integer'}`,
    );
  return n;
}

export function addDatasetCommands(program: Command): void {
  const dataset = program
    .command('dataset')
    .description('look at a dataset as planning sees it, or convert it (S3 only; runs nothing)');
  dataset
    .command('inspect')
    .description(
      'load a dataset as a run would plan it and print its format, classes, splits, counts, skipped objects, templates and sample keys',
    )
    .argument(
      '[uri]',
      "dataset prefix or manifest, s3://bucket/path (default: the spec's dataset.uri)",
    )
    .option('--spec <file>', 'run spec file (YAML or JSON): its dataset section applies')
    .option(
      '--format <format>',
      `dataset format: ${FORMATS.join(', ')} (default: the spec's, auto)`,
    )
    .option('--json', 'machine-readable output')
    .action(
      withExitCode(
        async (
          uri: string | undefined,
          opts: { spec?: string; format?: string; json?: boolean },
        ) => {
          const format = formatOption(opts.format);
          if (uri === undefined && opts.spec === undefined)
            throw new UsageError(
              'No dataset: give its URI (clipeval dataset inspect s3://bucket/prefix/) or --spec with dataset.uri.',
            );
          const summary = await inspectDataset(datasetEnv(), {
            ...(uri !== undefined ? { uri } : {}),
            ...(opts.spec ? { specFile: opts.spec } : {}),
            ...(format ? { format } : {}),
          });
          console.log(opts.json ? terminalJson(summary, 2) : formatDatasetSummary(summary));
          return 0;
        },
      ),
    );
  dataset
    .command('export-wds')
    .description(
      'plan a dataset and write it as CLIP_benchmark-style WebDataset (classnames.txt, templates, <split>/N.tar) under an s3:// prefix',
    )
    .option('--dataset <uri>', "dataset prefix or manifest (default: the spec's dataset.uri)")
    .option('--spec <file>', 'run spec file: dataset, classNames and zeroShot.templates apply')
    .option('--format <format>', `dataset format: ${FORMATS.join(', ')}`)
    .requiredOption('--out <s3://bucket/prefix/>', 'where to write the WebDataset')
    .option('--max-samples-per-tar <n>', 'samples per tar at most', '10000')
    .option(
      '--max-tar-bytes <size>',
      'bytes per tar at most (a larger single image gets its own tar)',
      '256MiB',
    )
    .option('--concurrency <n>', 'images read at once', '16')
    .option(
      '--overwrite',
      'write into a prefix that holds something else (stale shards of this layout are deleted)',
    )
    .option('--json', 'machine-readable output')
    .action(
      withExitCode(
        async (opts: {
          dataset?: string;
          spec?: string;
          format?: string;
          out: string;
          maxSamplesPerTar: string;
          maxTarBytes: string;
          concurrency: string;
          overwrite?: boolean;
          json?: boolean;
        }) => {
          const format = formatOption(opts.format);
          const maxSamplesPerTar = positive('--max-samples-per-tar', opts.maxSamplesPerTar);
          const maxTarBytes = positive('--max-tar-bytes', opts.maxTarBytes, true);
          const concurrency = positive('--concurrency', opts.concurrency);
          const progress = !opts.json && process.stderr.isTTY;
          const result = await exportDatasetAsWebDataset(
            datasetEnv(),
            {
              out: opts.out,
              ...(opts.dataset !== undefined ? { uri: opts.dataset } : {}),
              ...(opts.spec ? { specFile: opts.spec } : {}),
              ...(format ? { format } : {}),
            },
            {
              maxSamplesPerTar,
              maxTarBytes,
              concurrency,
              overwrite: !!opts.overwrite,
              ...(progress
                ? {
                    onTar: (t) =>
                      process.stderr.write(
                        `\r\x1b[2Kclipeval: wrote ${t.split}/${t.index}.tar (${t.samples} samples)`,
                      ),
                  }
                : {}),
            },
          );
          if (progress) process.stderr.write('\r\x1b[2K');
          console.log(opts.json ? terminalJson(result, 2) : formatExportResult(result));
          return 0;
        },
      ),
    );
}
