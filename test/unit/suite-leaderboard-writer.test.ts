import { describe, expect, it } from 'vitest';
import { parseSuiteSpec } from '../../core/config/suite-spec';
import { keys } from '../../core/storage/keys';
import { correctnessOf } from '../../core/suites/columns';
import { ImageKeyTable } from '../../core/suites/image-keys';
import {
  type Leaderboard,
  type CellResult,
  assembleLeaderboard,
  scoreDataset,
} from '../../core/suites/leaderboard';
import type { SuiteRecord } from '../../core/suites/suite-record';
import {
  type LeaderboardProgress,
  writeSuiteLeaderboard,
} from '../../core/suites/write-leaderboard';
import { fewShotTable } from '../../core/runs/summary';
import { MemoryS3 } from '../helpers/memory-s3';
import { cellRun } from '../helpers/suite-cells';

// writeLeaderboard's core on an in-memory S3: 2 models x 2 datasets, one cell failed.
const MODELS = ['m1', 'm2'];
const DATASETS = ['pets', 'cars'];
const SKILL: Record<string, number> = { 'm1/pets': 8, 'm2/pets': 6, 'm1/cars': 5 }; // m2/cars failed

function suite(): { s3: MemoryS3; record: SuiteRecord } {
  const s3 = new MemoryS3(['bkt']);
  const spec = parseSuiteSpec({
    models: MODELS.map((name) => ({ name, bundle: `s3://bkt/models/${name}/` })),
    datasets: DATASETS.map((name) => ({ name, uri: `s3://bkt/datasets/${name}/` })),
  });
  const cells = DATASETS.flatMap((dataset) =>
    MODELS.map((model) => ({ model, dataset, runId: `s--${model}--${dataset}` })),
  );
  const record: SuiteRecord = { format: 'clipeval-suite/1', suiteId: 's', spec, cells };
  s3.put('bkt', keys.suiteSpec('s'), JSON.stringify(record));
  for (const c of cells) {
    const skill = SKILL[`${c.model}/${c.dataset}`];
    if (skill === undefined) continue;
    const run = cellRun(c.model, c.dataset, skill);
    s3.put(
      'bkt',
      keys.runSummary(c.runId),
      JSON.stringify({ routes: run.routes, fewShot: fewShotTable(run.routes) }),
    );
    for (const r of run.routes)
      s3.put(
        'bkt',
        keys.routeResult(c.runId, r.route, r.variant, 'predictions.arrow'),
        run.predictions.get(r.variant ? `${r.route}/${r.variant}` : r.route)!,
      );
    s3.put('bkt', keys.report(c.runId, 'report.json'), '{}');
  }
  return { s3, record };
}

/** What the leaderboard should be: the same cells scored in memory, dataset by dataset. */
function expected(record: SuiteRecord): Leaderboard {
  const scored = DATASETS.map((dataset) => {
    const table = new ImageKeyTable();
    const cells: CellResult[] = record.cells
      .filter((c) => c.dataset === dataset)
      .map((c) => {
        const skill = SKILL[`${c.model}/${c.dataset}`];
        if (skill === undefined)
          return {
            ...c,
            status: 'failed',
            error: 'child failed: boom',
            routes: [],
            fewShot: [],
            correctness: new Map(),
          };
        const run = cellRun(c.model, c.dataset, skill);
        return {
          ...c,
          status: 'completed',
          routes: run.routes,
          fewShot: fewShotTable(run.routes),
          correctness: new Map(
            [...run.predictions].map(([job, b]) => [job, correctnessOf(b, table)]),
          ),
        };
      });
    return scoreDataset({ dataset, models: MODELS, cells, keys: table });
  });
  return assembleLeaderboard({
    suiteId: 's',
    generatedAt: 'x',
    models: MODELS,
    datasets: DATASETS,
    scored,
  });
}

const failed = [{ runId: 's--m2--cars', error: 'child failed: boom' }];

describe('writeSuiteLeaderboard', () => {
  it('reads and scores one dataset at a time and writes the three files, JSON last', async () => {
    const { s3, record } = suite();
    const beats: LeaderboardProgress[] = [];
    const result = await writeSuiteLeaderboard(
      { store: s3.store('bkt') },
      { suiteId: 's', failed },
      { heartbeat: (p) => beats.push(p) },
    );
    expect(result).toMatchObject({ completed: 3, failed: 1 });
    const board = JSON.parse(
      new TextDecoder().decode(s3.get('bkt', keys.leaderboard('s', 'leaderboard.json'))),
    ) as Leaderboard;
    expect({ ...board, generatedAt: 'x' }).toEqual(JSON.parse(JSON.stringify(expected(record))));
    expect(board.cells.find((c) => c.runId === 's--m2--cars')).toMatchObject({
      status: 'failed',
      error: 'child failed: boom',
    });

    // Every pets file is read before any cars file: one dataset's results in memory at a time.
    const reads = s3.reads.map((r) => r.key).filter((k) => k.includes('predictions.arrow'));
    const lastPets = reads.map((k) => k.includes('--pets/')).lastIndexOf(true);
    const firstCars = reads.findIndex((k) => k.includes('--cars/'));
    expect(lastPets).toBeGreaterThan(0);
    expect(firstCars).toBeGreaterThan(lastPets);
    expect(beats.at(-1)).toEqual({ cellsRead: 4, datasetsScored: 2 });
    expect(beats.filter((b) => b.datasetsScored === 1).length).toBeGreaterThan(0);
    const puts = s3.puts.map((p) => p.key.split('/').at(-1));
    expect(puts).toEqual(['leaderboard.csv', 'leaderboard.html', 'leaderboard.json']);
  }, 60_000);

  it('stops between datasets when cancelled, writing nothing', async () => {
    const { s3 } = suite();
    const abort = new AbortController();
    const run = writeSuiteLeaderboard(
      { store: s3.store('bkt') },
      { suiteId: 's', failed },
      {
        heartbeat: (p) => {
          if (p.datasetsScored === 1) abort.abort(new Error('cancelled'));
        },
        signal: abort.signal,
      },
    );
    await expect(run).rejects.toThrow('cancelled');
    expect(s3.puts).toEqual([]);
    expect(s3.reads.some((r) => r.key.includes('--cars/'))).toBe(false);
  });
});
