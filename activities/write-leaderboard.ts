import { Context } from '@temporalio/activity';
import type { ObjectStore } from '../core/storage/object-store';
import {
  type WriteLeaderboardInput,
  type WriteLeaderboardResult,
  writeSuiteLeaderboard,
} from '../core/suites/write-leaderboard';

/**
 * Activity `writeLeaderboard` (cpu queue): writes suites/<suiteId>/leaderboard.json, .csv and
 * .html (core/suites/write-leaderboard.ts), heartbeating per cell read and dataset scored;
 * stops between datasets when cancelled.
 */
export function writeLeaderboardActivity(deps: { store: ObjectStore }) {
  return function writeLeaderboard(input: WriteLeaderboardInput): Promise<WriteLeaderboardResult> {
    const context = Context.current();
    return writeSuiteLeaderboard(deps, input, {
      heartbeat: (details) => context.heartbeat(details),
      signal: context.cancellationSignal,
    });
  };
}
