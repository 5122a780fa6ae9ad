/** @file `clipeval report <runId> --out DIR`: saves the run's report.json and report.html locally. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadEnv, loadStackEnvDefaults } from '../core/config/env';
import { assertRunId, keys, type ReportFile } from '../core/storage/keys';
import { ObjectStore } from '../core/storage/object-store';
import { UsageError } from '../client/errors';
import { withExitCode } from './exit-code';

export function addReportCommand(program: Command): void {
  program
    .command('report')
    .description("save a run's report (report.html, report.json) to a folder")
    .argument('<runId>')
    .requiredOption('--out <dir>', 'folder to write report.html and report.json to (created)')
    .option('--json', 'machine-readable output')
    .action(
      withExitCode(async (runId: string, opts: { out: string; json?: boolean }) => {
        try {
          assertRunId(runId);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        loadStackEnvDefaults();
        const env = loadEnv();
        const store = ObjectStore.connect(env.s3);
        const paths = await saveReport(store, runId, opts.out);
        console.log(opts.json ? JSON.stringify(paths) : `${paths.html}\n${paths.json}`);
        return 0;
      }),
    );
}

/** Copies a run's report.json and report.html from S3 into `out` (created). */
export async function saveReport(
  store: ObjectStore,
  runId: string,
  out: string,
): Promise<{ html: string; json: string }> {
  const read = async (file: ReportFile) => {
    const key = keys.report(runId, file);
    const text = await store.getText(key);
    if (text === undefined)
      throw new UsageError(
        `Run ${runId} has no report yet (${store.uri(key)} not found): a report is written when the run completes. Check the run with: clipeval status ${runId}`,
      );
    return text;
  };
  // report.json is written last: once it exists, report.html is there too.
  const json = await read('report.json');
  const html = await read('report.html');
  await mkdir(out, { recursive: true });
  const paths = { html: join(out, 'report.html'), json: join(out, 'report.json') };
  await writeFile(paths.html, html);
  await writeFile(paths.json, json);
  return paths;
}
