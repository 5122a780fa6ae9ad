/** @file `clipeval run`, `status`, `resume`, `cancel` and `list`: one evaluation run at a time. */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { loadEnv, loadStackEnvDefaults } from '../core/config/env';
import { loadRunSpec } from '../core/config/run-spec';
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
import { EXIT, exitCodeOf } from '../client/exit-codes';
import { checkRunBuckets, checkRunBundle, hasPollers } from '../client/preflight';
import type { Connect } from './connect';
import { withExitCode } from './exit-code';
import { formatOutcome, formatRunList, progressLine, terminalJson } from './format';
import { positiveInteger } from './options';

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

export function addRunCommands(program: Command, connect: Connect): void {
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
}
