#!/usr/bin/env node
// clipeval command-line client. Exit codes: 0 success, 1 run failed, 2 bad input or unreachable
// service, 3 a scheduled run regressed (client/exit-codes.ts).
import { positiveInteger } from './options';
import type { Client } from '@temporalio/client';
import { Command } from 'commander';
import { loadEnv, loadStackEnvDefaults } from '../core/config/env';
import { loadRunSpec } from '../core/config/run-spec';
import { PermanentError } from '../core/util/errors';
import { UsageError } from '../client/errors';
import { EXIT, exitCodeOf } from '../client/exit-codes';
import { withExitCode } from './exit-code';
import {
  cancelEvaluation,
  connectClient,
  listEvaluations,
  resumeEvaluation,
  runStatus,
  startEvaluation,
  waitForRun,
  watchRun,
  type RunOutcome,
} from '../client/evaluations';
import { formatOutcome, formatRunList, progressLine, terminalJson, terminalText } from './format';
import { addDatasetCommands } from './dataset-commands';
import { addEmbeddingsCommands } from './embeddings-commands';
import { addModelCommands } from './model-commands';
import { addReportCommand } from './report-command';
import { checkRunBuckets, checkRunBundle, hasPollers } from '../client/preflight';
import { addScheduleCommands } from './schedule-commands';
import { addSuiteCommands } from './suite-commands';

const print = (json: boolean, outcome: RunOutcome) =>
  console.log(json ? terminalJson(outcome, 2) : formatOutcome(outcome));

/**
 * Waits for a run; on a terminal (and without --json) a progress line is redrawn in place on
 * stderr every second. Piped output gets no progress noise, only the final result.
 */
async function waitWithProgress(client: Client, runId: string, json: boolean): Promise<RunOutcome> {
  if (json || !process.stderr.isTTY) return waitForRun(client, runId);
  const outcome = await watchRun(client, runId, (o) =>
    process.stderr.write(`\r\x1b[2K${progressLine(o, 24)}`),
  );
  process.stderr.write('\r\x1b[2K');
  return outcome;
}

/** `run --wait` and `resume --wait`: says what it waits for, waits, prints the outcome. */
async function waitAndPrint(
  client: Client,
  runId: string,
  what: 'started' | 'resumed',
  json: boolean,
): Promise<number> {
  if (!json) console.error(`clipeval: ${what} run ${runId}; waiting...`);
  const outcome = await waitWithProgress(client, runId, json);
  print(json, outcome);
  return exitCodeOf(outcome);
}
const connect = async () => {
  loadStackEnvDefaults();
  const env = loadEnv();
  return { env, client: await connectClient(env) };
};

const program = new Command('clipeval')
  .description(
    'Evaluate a frozen CLIP model on a labelled image dataset, orchestrated by Temporal.',
  )
  .showHelpAfterError()
  // Usage errors (unknown option, missing --dataset) exit 2; --help and --version exit 0.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .addHelpText(
    'after',
    '\nExit codes: 0 success (or still running), 1 the run failed or was cancelled, 2 bad input,\n' +
      'an unknown run or schedule, or an unreachable service, 3 a completed scheduled run whose\n' +
      "metrics dropped below the schedule's previous successful run (a regression).\n\n" +
      'Examples:\n' +
      '  clipeval run --dataset s3://bkt/datasets/pets/ --spec run.yaml --wait\n' +
      '  clipeval status pets-20261127-020000 --json\n' +
      '  clipeval resume pets-20261127-020000 --wait\n' +
      '  clipeval report pets-20261127-020000 --out ./report\n' +
      '  clipeval schedule create pets-nightly --cron "0 2 * * *" --spec run.yaml --timezone Europe/Paris\n' +
      '  clipeval list --limit 10\n' +
      '  clipeval dataset inspect s3://bkt/datasets/pets/ --json\n' +
      '  clipeval dataset export-wds --dataset s3://bkt/datasets/pets/ --out s3://bkt/wds/pets/\n' +
      '  clipeval suite run --spec suite.yaml --wait\n' +
      '  clipeval suite report suite-20261127-020000 --out ./leaderboard',
  );

program
  .command('run')
  .description('start an evaluation run and print its id')
  .option(
    '--dataset <uri>',
    "ImageFolder, WebDataset or Parquet prefix, or a manifest (.jsonl/.csv): s3://bucket/path (default: the spec's dataset.uri)",
  )
  .option('--spec <file>', 'run spec file (YAML or JSON)')
  .option(
    '--bundle <dir|s3://>',
    "model bundle (default: the spec's model.bundle, then CLIPEVAL_DEFAULT_BUNDLE)",
  )
  .option(
    '--run-id <id>',
    'run id (default: <dataset>-<UTC time>); reuse a failed run id to resume it',
  )
  .option('--wait', 'wait for the run to finish and print its summary')
  .option('--json', 'machine-readable output')
  .action(
    withExitCode(
      async (opts: {
        dataset?: string;
        spec?: string;
        bundle?: string;
        runId?: string;
        wait?: boolean;
        json?: boolean;
      }) => {
        loadStackEnvDefaults();
        const env = loadEnv();
        const spec = await loadRunSpec({
          ...(opts.spec ? { file: opts.spec } : {}),
          ...(opts.bundle ? { bundle: opts.bundle } : {}),
          ...(opts.dataset !== undefined ? { datasetUri: opts.dataset } : {}),
        });
        await checkRunBuckets(env, spec);
        await checkRunBundle(env, spec);
        const client = await connectClient(env);
        if (!(await hasPollers(client, env.temporal.namespace, env.queues.cpu))) {
          console.error(
            `clipeval: no worker polls ${env.queues.cpu} yet; the run waits until one starts (npm run worker).`,
          );
        }
        const { runId } = await startEvaluation(client, env, spec, opts.runId);
        if (!opts.wait) {
          console.log(opts.json ? JSON.stringify({ runId }) : runId);
          return 0;
        }
        return waitAndPrint(client, runId, 'started', !!opts.json);
      },
    ),
  );

program
  .command('status')
  .description("show a run's progress, or its summary once finished")
  .argument('<runId>')
  .option('--json', 'machine-readable output')
  .action(
    withExitCode(async (runId: string, opts: { json?: boolean }) => {
      loadStackEnvDefaults();
      const client = await connectClient(loadEnv());
      const outcome = await runStatus(client, runId);
      print(!!opts.json, outcome);
      return exitCodeOf(outcome);
    }),
  );

program
  .command('resume')
  .description(
    'continue a failed, cancelled, terminated or timed-out run (same id and input), reusing its finished work',
  )
  .argument('<runId>')
  .option('--wait', 'wait for the run to finish and print its summary')
  .option('--json', 'machine-readable output')
  .action(
    withExitCode(async (runId: string, opts: { wait?: boolean; json?: boolean }) => {
      const { client } = await connect();
      const r = await resumeEvaluation(client, runId);
      if (!r.resumed) {
        console.log(opts.json ? JSON.stringify(r) : `run ${runId}: still running`);
        return EXIT.ok;
      }
      if (!opts.wait) {
        console.log(
          opts.json
            ? JSON.stringify(r)
            : `run ${runId}: resumed (was ${r.previousStatus.toLowerCase()})`,
        );
        return EXIT.ok;
      }
      return waitAndPrint(client, runId, 'resumed', !!opts.json);
    }),
  );

program
  .command('cancel')
  .description('request cancellation of a running run (resume continues it later)')
  .argument('<runId>')
  .option('--wait', 'wait until the run has closed')
  .option('--json', 'machine-readable output')
  .action(
    withExitCode(async (runId: string, opts: { wait?: boolean; json?: boolean }) => {
      const { client } = await connect();
      await cancelEvaluation(client, runId);
      if (!opts.wait) {
        console.log(
          opts.json
            ? JSON.stringify({ runId, cancelRequested: true })
            : `run ${runId}: cancellation requested`,
        );
        return EXIT.ok;
      }
      const outcome = await waitForRun(client, runId);
      print(!!opts.json, outcome);
      return outcome.status === 'CANCELLED' ? EXIT.ok : exitCodeOf(outcome);
    }),
  );

program
  .command('list')
  .description('recent evaluation runs, newest first: status, start and close time, schedule')
  .option('--limit <n>', 'how many runs', '20')
  .option('--json', 'machine-readable output')
  .action(
    withExitCode(async (opts: { limit: string; json?: boolean }) => {
      const limit = positiveInteger('--limit', opts.limit);
      const { client } = await connect();
      const runs = await listEvaluations(client, { limit });
      console.log(opts.json ? terminalJson(runs, 2) : formatRunList(runs));
      return EXIT.ok;
    }),
  );

addScheduleCommands(program, connect);
addSuiteCommands(program, connect);
addModelCommands(program);
addEmbeddingsCommands(program);
addDatasetCommands(program);
addReportCommand(program);

program
  .parseAsync(process.argv)
  // Exit explicitly: open gRPC and HTTP connections would otherwise keep the process alive.
  .then(() => process.exit(process.exitCode ?? 0))
  .catch((err: unknown) => {
    // Bad input found before anything started: a usage error, or any deterministic failure
    // (PermanentError: a bad spec or bundle, an invalid run id...) exits 2.
    const known = err instanceof UsageError || err instanceof PermanentError;
    // Red "error:" on a terminal (and not under NO_COLOR); plain text when piped.
    const tag =
      process.stderr.isTTY && process.env.NO_COLOR === undefined
        ? '\x1b[31merror:\x1b[0m'
        : 'error:';
    // The message may quote keys and labels: escape codes in them are shown, not obeyed.
    console.error(
      `clipeval: ${tag} ${terminalText(err instanceof Error ? err.message : String(err))}`,
    );
    process.exit(known ? 2 : 1);
  });
