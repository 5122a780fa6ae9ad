import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { loadRunSpec } from '../core/config/run-spec';
import { loadSuiteSpec } from '../core/config/suite-spec';
import { checkSuiteInputs } from '../client/suites';
import { UsageError } from '../client/errors';
import { EXIT } from '../client/exit-codes';
import type { Connect } from './connect';
import { withExitCode } from './exit-code';
import { formatSchedule } from './format';
import { checkRunBuckets, checkRunBundle } from '../client/preflight';
import {
  OVERLAP_POLICIES,
  type OverlapOption,
  createSchedule,
  createSuiteSchedule,
  deleteSchedule,
  describeSchedule,
  listSchedules,
  pauseSchedule,
  triggerSchedule,
  unpauseSchedule,
} from '../client/schedules';

/** `clipeval schedule ...`: thin wrappers over client/schedules.ts. */
export function addScheduleCommands(program: Command, connect: Connect): void {
  const schedule = program
    .command('schedule')
    .description(
      're-evaluate on a cron schedule (Temporal Schedules); runs compare with the last success',
    );

  schedule
    .command('create')
    .description('create a schedule; the spec is validated before anything is created')
    .argument('<id>')
    .requiredOption('--cron <expr>', 'cron expression, e.g. "0 2 * * *"')
    .option('--spec <file>', 'run spec file (YAML or JSON): each action is one run')
    .option(
      '--suite <file>',
      'suite spec file (YAML or JSON): each action is a suite (id at most 39 characters)',
    )
    .option('--dataset <uri>', "override the spec's dataset.uri")
    .option(
      '--bundle <s3://>',
      "model bundle (default: the spec's model.bundle, then CLIPEVAL_DEFAULT_BUNDLE)",
    )
    .option('--timezone <tz>', 'IANA time zone of the cron expression (default UTC)')
    .option('--catchup-window <duration>', 'how late a missed run may still start, e.g. 1h', '1h')
    .option(
      '--overlap <policy>',
      'skip | buffer-one | allow-all, when a run is still going',
      'skip',
    )
    .option('--paused', 'create it paused')
    .action(
      withExitCode(
        async (
          id: string,
          opts: {
            cron: string;
            spec?: string;
            suite?: string;
            dataset?: string;
            bundle?: string;
            timezone?: string;
            catchupWindow: string;
            overlap: string;
            paused?: boolean;
          },
        ) => {
          if (!(opts.overlap in OVERLAP_POLICIES))
            throw new UsageError(
              `--overlap must be one of ${Object.keys(OVERLAP_POLICIES).join(', ')}, got "${opts.overlap}"`,
            );
          if ((opts.spec === undefined) === (opts.suite === undefined))
            throw new UsageError('give exactly one of --spec (a run) or --suite (a suite)');
          const schedule = {
            scheduleId: id,
            cron: opts.cron,
            catchupWindow: opts.catchupWindow,
            overlap: opts.overlap as OverlapOption,
            ...(opts.timezone ? { timezone: opts.timezone } : {}),
            ...(opts.paused ? { paused: true } : {}),
          };
          if (opts.suite !== undefined) {
            if (opts.dataset || opts.bundle)
              throw new UsageError('--dataset and --bundle apply to --spec; a suite names its own');
            const spec = await loadSuiteSpec(opts.suite);
            const { env, client } = await connect();
            await checkSuiteInputs(env, spec);
            await createSuiteSchedule(client, env, spec, schedule);
            console.log(id);
            return EXIT.ok;
          }
          const spec = await loadRunSpec({
            file: opts.spec,
            ...(opts.dataset ? { datasetUri: opts.dataset } : {}),
            ...(opts.bundle ? { bundle: opts.bundle } : {}),
          });
          const { env, client } = await connect();
          await checkRunBuckets(env, spec);
          await checkRunBundle(env, spec);
          await createSchedule(client, env, spec, schedule);
          console.log(id);
          return EXIT.ok;
        },
      ),
    );

  schedule
    .command('list')
    .description('evaluation schedules')
    .option('--json', 'machine-readable output')
    .action(
      withExitCode(async (opts: { json?: boolean }) => {
        const { client } = await connect();
        const all = await listSchedules(client);
        if (opts.json) console.log(JSON.stringify(all, null, 2));
        else if (all.length === 0) console.log('no schedules');
        else
          for (const s of all)
            console.log(
              `${s.scheduleId}  ${s.paused ? 'paused' : 'active'}  next ${s.nextRun ?? '-'}`,
            );
        return EXIT.ok;
      }),
    );

  schedule
    .command('describe')
    .description('overlap policy, next runs, recent runs and skipped runs of a schedule')
    .argument('<id>')
    .option('--json', 'machine-readable output')
    .action(
      withExitCode(async (id: string, opts: { json?: boolean }) => {
        const { client } = await connect();
        const info = await describeSchedule(client, id);
        console.log(opts.json ? JSON.stringify(info, null, 2) : formatSchedule(info));
        return EXIT.ok;
      }),
    );

  const simple: [string, string, (c: Client, id: string) => Promise<void>, string][] = [
    ['pause', 'stop taking actions until unpaused', (c, id) => pauseSchedule(c, id), 'paused'],
    ['unpause', 'take actions again', (c, id) => unpauseSchedule(c, id), 'unpaused'],
    [
      'trigger',
      "start a run now (the schedule's overlap policy applies)",
      triggerSchedule,
      'triggered',
    ],
    ['delete', 'delete the schedule (its runs and results stay)', deleteSchedule, 'deleted'],
  ];
  for (const [name, description, fn, done] of simple) {
    schedule
      .command(name)
      .description(description)
      .argument('<id>')
      .action(
        withExitCode(async (id: string) => {
          const { client } = await connect();
          await fn(client, id);
          console.log(`schedule ${id}: ${done}`);
          return EXIT.ok;
        }),
      );
  }
}
