/**
 * @file Writes suites/<suiteId>/leaderboard.json, .csv and .html from the suite's record and each
 * cell's run: its summary.json (the child's own metrics) and the predictions.arrow of the routes
 * that make columns. One dataset at a time: its cells are read, scored and dropped before the
 * next, so memory holds one dataset's per-image results (100 models x 10,000 images x ~8 route
 * jobs: ~40 MB as interned ids), not the suite's. Idempotent: a retry rewrites the three files,
 * the JSON last.
 */
import type { RunHooks } from '../routes/route-hooks';
import type { RouteSummary } from '../routes/route-result';
import type { FewShotTable } from '../runs/summary';
import { keys } from '../storage/keys';
import type { ObjectStore } from '../storage/object-store';
import { mapLimited } from '../util/concurrency';
import { type ImageCorrectness, cellColumns, correctnessOf, retrievalCorrectness } from './columns';
import type { RetrievalResultFile, RetrievalSummary } from '../routes/retrieval/retrieval-result';
import { ImageKeyTable } from './image-keys';
import {
  type CellResult,
  type DatasetScores,
  assembleLeaderboard,
  jobKey,
  scoreDataset,
} from './leaderboard';
import { leaderboardCsv } from './leaderboard-csv';
import { renderLeaderboardHtml } from './leaderboard-html';
import type { SuiteRecord } from './suite-record';

export interface WriteLeaderboardInput {
  suiteId: string;
  /** Cells whose child run failed, with the error (the workflow knows them; S3 does not). */
  failed: { runId: string; error: string }[];
}

export interface WriteLeaderboardResult {
  jsonUri: string;
  csvUri: string;
  htmlUri: string;
  completed: number;
  failed: number;
}

export interface LeaderboardProgress {
  cellsRead: number;
  datasetsScored: number;
}

/** Cells read at once (each: summary.json and a few predictions files). */
const PARALLEL_CELLS = 8;

export async function writeSuiteLeaderboard(
  deps: { store: ObjectStore },
  input: WriteLeaderboardInput,
  hooks: RunHooks<LeaderboardProgress>,
): Promise<WriteLeaderboardResult> {
  const { store } = deps;
  const record = await store.requireJson<SuiteRecord>(keys.suiteSpec(input.suiteId));
  const errors = new Map(input.failed.map((f) => [f.runId, f.error]));
  const models = record.spec.models.map((m) => m.name);
  const progress: LeaderboardProgress = { cellsRead: 0, datasetsScored: 0 };
  const scored: DatasetScores[] = [];
  for (const { name: dataset } of record.spec.datasets) {
    hooks.signal?.throwIfAborted();
    const table = new ImageKeyTable();
    const cells = await mapLimited(
      record.cells.filter((c) => c.dataset === dataset),
      PARALLEL_CELLS,
      async (c) => {
        const result = await readCell(store, c, errors.get(c.runId), table);
        progress.cellsRead++;
        hooks.heartbeat({ ...progress });
        return result;
      },
    );
    scored.push(scoreDataset({ dataset, models, cells, keys: table }));
    progress.datasetsScored++;
    hooks.heartbeat({ ...progress });
    // Let the heartbeat go out between datasets: scoring is synchronous (seconds per dataset).
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const board = assembleLeaderboard({
    suiteId: input.suiteId,
    generatedAt: new Date().toISOString(),
    models,
    datasets: record.spec.datasets.map((d) => d.name),
    scored,
  });
  const key = (f: 'leaderboard.json' | 'leaderboard.csv' | 'leaderboard.html') =>
    keys.leaderboard(input.suiteId, f);
  await store.putBytes(key('leaderboard.csv'), leaderboardCsv(board), 'text/csv; charset=utf-8');
  await store.putBytes(
    key('leaderboard.html'),
    await renderLeaderboardHtml(board),
    'text/html; charset=utf-8',
  );
  // leaderboard.json last: its presence means the leaderboard is complete.
  await store.putJson(key('leaderboard.json'), board);
  const completed = board.cells.filter((c) => c.status === 'completed').length;
  return {
    jsonUri: store.uri(key('leaderboard.json')),
    csvUri: store.uri(key('leaderboard.csv')),
    htmlUri: store.uri(key('leaderboard.html')),
    completed,
    failed: board.cells.length - completed,
  };
}

/** A cell's run: completed when its report.json exists (runs write it last). */
async function readCell(
  store: ObjectStore,
  c: SuiteRecord['cells'][number],
  error: string | undefined,
  table: ImageKeyTable,
): Promise<CellResult> {
  const base = { model: c.model, dataset: c.dataset, runId: c.runId };
  const done = await store.exists(keys.report(c.runId, 'report.json'));
  if (!done)
    return {
      ...base,
      status: 'failed',
      error: error ?? 'the cell’s run has not completed',
      routes: [],
      fewShot: [],
      correctness: new Map(),
    };
  const summary = await store.requireJson<{
    routes: RouteSummary[];
    fewShot: FewShotTable;
    retrieval?: RetrievalSummary;
  }>(keys.runSummary(c.runId));
  const jobs = cellColumns(summary.routes, summary.fewShot, summary.retrieval).flatMap(
    (col) => col.jobs,
  );
  const correctness = new Map<string, ImageCorrectness>();
  let retrievalFile: RetrievalResultFile | undefined;
  for (const j of jobs) {
    if (j.route === 'retrieval') {
      retrievalFile ??= await store.requireJson<RetrievalResultFile>(
        keys.retrievalResult(c.runId, 'metrics.json'),
      );
      correctness.set(jobKey(j), retrievalCorrectness(retrievalFile, j.variant!, table));
      continue;
    }
    const bytes = await store.requireBytes(
      keys.routeResult(c.runId, j.route, j.variant, 'predictions.arrow'),
    );
    correctness.set(jobKey(j), correctnessOf(bytes, table));
  }
  return {
    ...base,
    status: 'completed',
    routes: summary.routes,
    fewShot: summary.fewShot,
    ...(summary.retrieval ? { retrieval: summary.retrieval } : {}),
    correctness,
  };
}
