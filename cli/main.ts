#!/usr/bin/env node
// clipeval command-line client. Exit codes: 0 success, 1 run failed, 2 bad input or unreachable
// service, 3 a scheduled run regressed (client/exit-codes.ts).
import { Command } from 'commander';
import { PermanentError } from '../core/util/errors';
import { UsageError } from '../client/errors';
import { connect } from './connect';
import { terminalText } from './format';
import { addDatasetCommands } from './dataset-commands';
import { addEmbeddingsCommands } from './embeddings-commands';
import { addModelCommands } from './model-commands';
import { addReportCommand } from './report-command';
import { addRunCommands } from './run-commands';
import { addScheduleCommands } from './schedule-commands';
import { addSuiteCommands } from './suite-commands';

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

addRunCommands(program, connect);
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
