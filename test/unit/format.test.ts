import { describe, expect, it } from 'vitest';
import type { RunOutcome } from '../../client/evaluations';
import { formatOutcome, progressLine } from '../../cli/format';

// The terminal views of a running run: the status line and the progress line --wait redraws.
const running = (over: Partial<Extract<RunOutcome, { status: 'RUNNING' }>> = {}): RunOutcome => ({
  runId: 'r1',
  status: 'RUNNING',
  progress: {
    runId: 'r1',
    stage: 'routes',
    routes: { done: 1, total: 4, failed: [] },
  },
  training: [{ variant: '16shot-seed1', epoch: 12, epochs: 200, loss: 0.83125 }],
  ...over,
});

describe('progress views', () => {
  it('draws a bar for the stage and CoOp epoch and loss', () => {
    expect(progressLine(running(), 8)).toBe(
      'routes  [##......] 1/4 route jobs  coop 16shot-seed1 epoch 12/200 loss 0.831',
    );
    const extracting = running({
      progress: {
        runId: 'r1',
        stage: 'extracting',
        extraction: {
          shards: 10,
          shardsDone: 5,
          shardsReused: 0,
          imagesDone: 512,
          rows: 512,
          imagesFailed: 0,
          imagesDecoded: 512,
          imagesFromPixelCache: 0,
        },
      },
      training: [],
    });
    expect(progressLine(extracting, 10)).toBe('extracting  [#####.....] 5/10 shards, 512 images');
    expect(progressLine({ runId: 'r', status: 'RUNNING' })).toBe('waiting for a worker');
  });

  it('status of a running run names CoOp epoch and loss', () => {
    expect(formatOutcome(running())).toMatch(
      /routes 1\/4 done; coop 16shot-seed1 epoch 12\/200 loss 0\.8313/,
    );
  });
});
