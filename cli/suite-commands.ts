/** @file `clipeval suite ...`: thin wrappers over client/suites.ts, and `suite report`. */
import { positiveInteger } from './options';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { loadSuiteSpec } from '../core/config/suite-spec';
import { type LeaderboardFile, assertSuiteId, keys } from '../core/storage/keys';
import { ObjectStore } from '../core/storage/object-store';
import { UsageError } from '../client/errors';
import { EXIT } from '../client/exit-codes';
import { hasPollers } from '../client/preflight';
import {
  type SuiteOutcome,
  cancelSuite,
  checkSuiteInputs,
  listSuites,
  resumeSuite,
  startSuite,
  suiteExitCode,
  suiteStatus,
  waitForSuite,
} from '../client/suites';
import type { Connect } from './connect';
import { withExitCode } from './exit-code';
import { formatSuiteList, formatSuiteOutcome } from './suite-format';
import { terminalJson } from './format';

const print = (json: boolean, o: SuiteOutcome) =>
  console.log(json ? terminalJson(o, 2) : formatSuiteOutcome(o));

async function waitAndPrint(client: Client, suiteId: string, json: boolean): Promise<number> {
  if (!json) console.error(`clipeval: suite ${suiteId}; waiting...`);
  const outcome = await waitForSuite(client, suiteId);
  print(json, outcome);
  return suiteExitCode(outcome);
}

export function addSuiteCommands(program: Command, connect: Connect): void {
  const suite = program
    .command('suite')
    .description(
      'evaluate many models on many datasets (one run per cell) and build a leaderboard',
    );

  suite
    .command('run')
    .description('start a suite; the spec and every cell are validated before anything starts')
    .requiredOption('--spec <file>', 'suite spec file (YAML or JSON)')
    .option('--suite-id <id>', 'suite id (default: suite-<UTC time>)')
    .option('--wait', 'wait for the suite to finish and print its summary')
    .option('--json', 'machine-readable output')
    .action(
      withExitCode(
        async (opts: { spec: string; suiteId?: string; wait?: boolean; json?: boolean }) => {
          const spec = await loadSuiteSpec(opts.spec);
          const { env, client } = await connect();
          await checkSuiteInputs(env, spec);
          if (!(await hasPollers(client, env.temporal.namespace, env.queues.cpu)))
            console.error(
              `clipeval: no worker polls ${env.queues.cpu} yet; the suite waits until one starts (npm run worker).`,
            );
          const { suiteId } = await startSuite(client, env, spec, opts.suiteId);
          if (!opts.wait) {
            console.log(opts.json ? JSON.stringify({ suiteId }) : suiteId);
            return EXIT.ok;
          }
          return waitAndPrint(client, suiteId, !!opts.json);
        },
      ),
    );

  suite
    .command('status')
    .description("a suite's progress (cells settled, reused, failed, running), or its summary")
    .argument('<suiteId>')
    .option('--json', 'machine-readable output')
    .action(
      withExitCode(async (suiteId: string, opts: { json?: boolean }) => {
        const { client } = await connect();
        const outcome = await suiteStatus(client, suiteId);
        print(!!opts.json, outcome);
        return suiteExitCode(outcome);
      }),
    );

  suite
    .command('resume')
    .description(
      'run a suite again under its id: finished cells are kept, failed or missing ones rerun',
    )
    .argument('<suiteId>')
    .option('--wait', 'wait for the suite to finish and print its summary')
    .option('--json', 'machine-readable output')
    .action(
      withExitCode(async (suiteId: string, opts: { wait?: boolean; json?: boolean }) => {
        const { client } = await connect();
        const r = await resumeSuite(client, suiteId);
        if (!r.resumed || !opts.wait) {
          const text = r.resumed
            ? `suite ${suiteId}: resumed (was ${r.previousStatus.toLowerCase()})`
            : `suite ${suiteId}: still running`;
          console.log(opts.json ? JSON.stringify(r) : text);
          return EXIT.ok;
        }
        return waitAndPrint(client, suiteId, !!opts.json);
      }),
    );

  suite
    .command('cancel')
    .description('cancel a running suite and its running cells (resume continues it later)')
    .argument('<suiteId>')
    .option('--json', 'machine-readable output')
    .action(
      withExitCode(async (suiteId: string, opts: { json?: boolean }) => {
        const { client } = await connect();
        await cancelSuite(client, suiteId);
        console.log(
          opts.json
            ? JSON.stringify({ suiteId, cancelRequested: true })
            : `suite ${suiteId}: cancellation requested`,
        );
        return EXIT.ok;
      }),
    );

  suite
    .command('list')
    .description('recent suites, newest first')
    .option('--limit <n>', 'how many suites', '20')
    .option('--json', 'machine-readable output')
    .action(
      withExitCode(async (opts: { limit: string; json?: boolean }) => {
        const limit = positiveInteger('--limit', opts.limit);
        const { client } = await connect();
        const suites = await listSuites(client, { limit });
        console.log(opts.json ? terminalJson(suites, 2) : formatSuiteList(suites));
        return EXIT.ok;
      }),
    );

  suite
    .command('report')
    .description("save a suite's leaderboard (leaderboard.html, .csv, .json) to a folder")
    .argument('<suiteId>')
    .requiredOption('--out <dir>', 'folder to write the leaderboard files to (created)')
    .option('--json', 'machine-readable output')
    .action(
      withExitCode(async (suiteId: string, opts: { out: string; json?: boolean }) => {
        try {
          assertSuiteId(suiteId);
        } catch (err) {
          throw new UsageError((err as Error).message);
        }
        const { env } = await connect();
        const paths = await saveLeaderboard(ObjectStore.connect(env.s3), suiteId, opts.out);
        console.log(opts.json ? JSON.stringify(paths) : Object.values(paths).join('\n'));
        return EXIT.ok;
      }),
    );
}

/** Copies a suite's leaderboard files from S3 into `out` (created). */
export async function saveLeaderboard(
  store: ObjectStore,
  suiteId: string,
  out: string,
): Promise<{ html: string; csv: string; json: string }> {
  const read = async (file: LeaderboardFile) => {
    const key = keys.leaderboard(suiteId, file);
    const text = await store.getText(key);
    if (text === undefined)
      throw new UsageError(
        `Suite ${suiteId} has no leaderboard yet (${store.uri(key)} not found): it is written when the suite completes. Check it with: clipeval suite status ${suiteId}`,
      );
    return text;
  };
  // leaderboard.json is written last: once it exists, the other two are there too.
  const json = await read('leaderboard.json');
  const [html, csv] = [await read('leaderboard.html'), await read('leaderboard.csv')];
  await mkdir(out, { recursive: true });
  const paths = {
    html: join(out, 'leaderboard.html'),
    csv: join(out, 'leaderboard.csv'),
    json: join(out, 'leaderboard.json'),
  };
  await writeFile(paths.html, html);
  await writeFile(paths.csv, csv);
  await writeFile(paths.json, json);
  return paths;
}
