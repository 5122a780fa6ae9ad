import { describe, expect, it } from 'vitest';
import { parseSuiteSpec } from '../../core/config/suite-spec';
import { keys } from '../../core/storage/keys';
import type { SuiteRecord } from '../../core/suites/suite-record';
import { writeSuiteLeaderboard } from '../../core/suites/write-leaderboard';
import { MemoryS3 } from '../helpers/memory-s3';
import type { RetrievalResultFile } from '../../core/routes/retrieval/retrieval-result';
import { recallAt } from '../../core/routes/retrieval/recall';
import { cellColumns, retrievalCorrectness } from '../../core/suites/columns';
import { ImageKeyTable } from '../../core/suites/image-keys';
import { type CellResult, assembleLeaderboard, scoreDataset } from '../../core/suites/leaderboard';

/** A retrieval result of 3 images with 2, 1 and 2 captions, given its ranks. */
function result(
  imageRanks: number[],
  captionRanks: number[],
): Pick<RetrievalResultFile, 'details'> {
  return {
    details: {
      images: ['s3://b/x#a.jpg', 's3://b/x#b.jpg', 's3://b/x#c.jpg'],
      imageRanks,
      captionImage: [0, 0, 1, 2, 2],
      captionRanks,
      captionBlocks: [],
      captionBlocksReused: 0,
      imagesLeftOut: 0,
    },
  };
}

function cell(model: string, ranks: [number[], number[]], keys: ImageKeyTable): CellResult {
  const file = result(...ranks);
  const imageToText = recallAt(Int32Array.from(ranks[0]), [1, 5]);
  const textToImage = recallAt(Int32Array.from(ranks[1]), [1, 5]);
  const retrieval = {
    imageToText,
    textToImage,
    images: 3,
    captions: 5,
    notes: [],
    metricsUri: `s3://b/runs/${model}/results/retrieval/metrics.json`,
  };
  return {
    model,
    dataset: 'flickr',
    runId: `s--${model}--flickr`,
    status: 'completed',
    routes: [],
    fewShot: [],
    retrieval,
    correctness: new Map(
      cellColumns([], [], retrieval).flatMap((c) =>
        c.jobs.map((j) => [
          `${j.route}/${j.variant}`,
          retrievalCorrectness(file, j.variant!, keys),
        ]),
      ),
    ),
  };
}

describe('retrieval leaderboard columns', () => {
  it('adds recall@<smallest k> both ways, valued by the run and resampled per image and per caption', () => {
    expect(cellColumns([], [], { imageToText: { '5': 1, '10': 1 } }).map((c) => c.route)).toEqual([
      'retrieval-i2t@5',
      'retrieval-t2i@5',
    ]);
    const keys = new ImageKeyTable();
    const cells = [
      cell(
        'm1',
        [
          [0, 0, 3],
          [0, 2, 0, 0, 7],
        ],
        keys,
      ),
      cell(
        'm2',
        [
          [1, 0, 0],
          [1, 1, 0, 4, 0],
        ],
        keys,
      ),
    ];
    const scored = scoreDataset({ dataset: 'flickr', models: ['m1', 'm2'], cells, keys });
    const board = assembleLeaderboard({
      suiteId: 's',
      generatedAt: '2026-12-01T00:00:00Z',
      models: ['m1', 'm2'],
      datasets: ['flickr'],
      scored: [scored],
    });
    expect(board.columns.map((c) => c.id)).toEqual([
      'flickr/retrieval-i2t@1',
      'flickr/retrieval-t2i@1',
    ]);
    const m1 = board.rows[0]!.cells;
    expect(m1['flickr/retrieval-i2t@1']!.acc1).toBeCloseTo(2 / 3, 12);
    expect(m1['flickr/retrieval-i2t@1']!.n).toBe(3); // images
    expect(m1['flickr/retrieval-t2i@1']!.acc1).toBeCloseTo(3 / 5, 12);
    expect(m1['flickr/retrieval-t2i@1']!.n).toBe(5); // captions
    expect(board.rows[1]!.cells['flickr/retrieval-t2i@1']!.acc1).toBeCloseTo(2 / 5, 12);
    expect(board.means).toEqual(['mean/retrieval-i2t@1', 'mean/retrieval-t2i@1']);
  });

  it('keys each caption by its image and its place among that image’s captions', () => {
    const keys = new ImageKeyTable();
    const c = retrievalCorrectness(result([0, 0, 0], [0, 1, 0, 0, 2]), 't2i@2', keys);
    expect(Array.from(c.correct)).toEqual([1, 1, 1, 1, 0]);
    const again = retrievalCorrectness(result([0, 0, 0], [0, 0, 0, 0, 0]), 't2i@1', keys);
    expect(Array.from(again.ids)).toEqual(Array.from(c.ids)); // same captions, same ids
    expect(() => retrievalCorrectness(result([], []), 'x@1', keys)).toThrow(/not a retrieval/);
  });
});

describe('retrieval columns in the written leaderboard', () => {
  it('reads each cell’s retrieval ranks from its metrics.json', async () => {
    const s3 = new MemoryS3(['bkt']);
    const spec = parseSuiteSpec({
      models: ['m1', 'm2'].map((name) => ({ name, bundle: `s3://bkt/models/${name}/` })),
      datasets: [{ name: 'flickr', uri: 's3://bkt/datasets/flickr/' }],
    });
    const cells = ['m1', 'm2'].map((model) => ({
      model,
      dataset: 'flickr',
      runId: `s--${model}--flickr`,
    }));
    const record: SuiteRecord = { format: 'clipeval-suite/1', suiteId: 's', spec, cells };
    s3.put('bkt', keys.suiteSpec('s'), JSON.stringify(record));
    const ranks: Record<string, [number[], number[]]> = {
      m1: [
        [0, 0, 3],
        [0, 2, 0, 0, 7],
      ],
      m2: [
        [1, 0, 0],
        [1, 1, 0, 4, 0],
      ],
    };
    for (const c of cells) {
      const file = result(...ranks[c.model]!);
      const summary = {
        imageToText: recallAt(Int32Array.from(ranks[c.model]![0]), [1, 5]),
        textToImage: recallAt(Int32Array.from(ranks[c.model]![1]), [1, 5]),
        images: 3,
        captions: 5,
        notes: [],
        metricsUri: `s3://bkt/${keys.retrievalResult(c.runId, 'metrics.json')}`,
      };
      s3.put(
        'bkt',
        keys.runSummary(c.runId),
        JSON.stringify({ routes: [], fewShot: [], retrieval: summary }),
      );
      s3.put(
        'bkt',
        keys.retrievalResult(c.runId, 'metrics.json'),
        JSON.stringify({ summary, ...file }),
      );
      s3.put('bkt', keys.report(c.runId, 'report.json'), '{}');
    }
    await writeSuiteLeaderboard(
      { store: s3.store('bkt') },
      { suiteId: 's', failed: [] },
      { heartbeat: () => {} },
    );
    const board = JSON.parse(
      Buffer.from(s3.get('bkt', keys.leaderboard('s', 'leaderboard.json'))!).toString('utf8'),
    ) as {
      columns: { id: string }[];
      rows: { model: string; cells: Record<string, { acc1: number; n: number }> }[];
    };
    expect(board.columns.map((c) => c.id)).toEqual([
      'flickr/retrieval-i2t@1',
      'flickr/retrieval-t2i@1',
    ]);
    expect(board.rows[0]!.cells['flickr/retrieval-t2i@1']).toMatchObject({ acc1: 3 / 5, n: 5 });
    expect(board.rows[1]!.cells['flickr/retrieval-i2t@1']).toMatchObject({ acc1: 2 / 3, n: 3 });
  });
});
