import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/config/errors';
import { parseRunSpec } from '../../core/config/run-spec';
import { buildPlan, summarisePlan } from '../../core/dataset/plan';
import type { EmbeddingMatrix } from '../../core/embeddings/reader';
import {
  baseToNewResult,
  classHalves,
  harmonicMean,
  isBaseClass,
  maskToOwnHalf,
  protocolHashPart,
} from '../../core/routes/base-to-new';
import { decodePredictions } from '../../core/routes/predictions';
import { baseToNewTable, fewShotTable } from '../../core/runs/summary';
import { type ImageCorrectness, cellColumns } from '../../core/suites/columns';
import { ImageKeyTable } from '../../core/suites/image-keys';
import { type CellResult, assembleLeaderboard, scoreDataset } from '../../core/suites/leaderboard';
import { leaderboardCsv } from '../../core/suites/leaderboard-csv';
import {
  type RouteResultFile,
  type RouteSummary,
  findRouteResult,
  writeRouteResult,
} from '../../core/routes/route-result';
import { contentHash } from '../../core/storage/content-hash';
import { keys } from '../../core/storage/keys';
import { MemoryS3 } from '../helpers/memory-s3';

/** Deterministic scores in [-1, 1) and labels, from a small LCG (no library RNG involved). */
function fixture(n: number, k: number, seed: number): { scores: Float32Array; labels: number[] } {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const labels = Array.from({ length: n }, (_, i) => i % k);
  const scores = Float32Array.from({ length: n * k }, () => 2 * next() - 1);
  // Make the true class win often enough that accuracies are neither 0 nor 1.
  labels.forEach((y, i) => {
    if (next() < 0.5) scores[i * k + y]! += 0.8;
  });
  return { scores, labels };
}

/**
 * The reference: each image classified by argmax over only its own half's class ids, read from
 * the unmasked scores with a plain loop (ties to the lower id), then counted per half.
 */
function reference(scores: Float32Array, labels: number[], k: number) {
  const m = Math.ceil(k / 2);
  const hits = { base: 0, new: 0 };
  const counts = { base: 0, new: 0 };
  const predicted: number[] = [];
  labels.forEach((y, i) => {
    const [lo, hi] = y < m ? [0, m] : [m, k];
    let best = lo;
    for (let c = lo + 1; c < hi; c++) if (scores[i * k + c]! > scores[i * k + best]!) best = c;
    predicted.push(best);
    const half = y < m ? 'base' : 'new';
    counts[half]++;
    if (best === y) hits[half]++;
  });
  const base = hits.base / counts.base;
  const nw = hits.new / counts.new;
  // Mean per-class recall over classes with test images.
  const recall = Array.from({ length: k }, (_, c) => {
    const rows = labels.flatMap((y, i) => (y === c ? [i] : []));
    return rows.filter((i) => predicted[i] === c).length / rows.length;
  });
  return {
    base,
    new: nw,
    counts,
    hm: (2 * base * nw) / (base + nw),
    acc1: (hits.base + hits.new) / labels.length,
    meanPerClassRecall: recall.reduce((a, b) => a + b, 0) / k,
    predicted,
  };
}

function matrix(labels: number[]): EmbeddingMatrix {
  return {
    embeddings: new Float32Array(labels.length),
    dim: 1,
    rows: labels.map((label, i) => ({
      key: `img${i}`,
      imageId: `id${String(i).padStart(4, '0')}`,
      label,
      split: 'test',
      view: 0,
    })),
  };
}

describe('base-to-new helpers (CoCoOp subsample_classes)', () => {
  it('splits K classes into the first ceil(K/2) and the rest, and refuses K < 2', () => {
    expect(classHalves(2)).toEqual({ base: [0], new: [1] });
    expect(classHalves(5)).toEqual({ base: [0, 1, 2], new: [3, 4] });
    expect(classHalves(6)).toEqual({ base: [0, 1, 2], new: [3, 4, 5] });
    // Dassl: m = math.ceil(n / 2); base = labels[:m], new = labels[m:].
    for (const k of [2, 3, 7, 10, 101]) {
      const { base, new: nw } = classHalves(k);
      expect(base.length).toBe(Math.ceil(k / 2));
      expect([...base, ...nw]).toEqual(Array.from({ length: k }, (_, i) => i));
      for (let c = 0; c < k; c++) expect(isBaseClass(c, k)).toBe(base.includes(c));
    }
    expect(() => classHalves(1)).toThrow(/at least 2 classes/);
    expect(() => classHalves(2.5)).toThrow();
  });

  it('takes the harmonic mean, 0 when either side is 0', () => {
    expect(harmonicMean(0.8, 0.6)).toBeCloseTo((2 * 0.8 * 0.6) / 1.4, 15);
    expect(harmonicMean(0.5, 0.5)).toBe(0.5);
    expect(harmonicMean(0, 0.9)).toBe(0);
    expect(harmonicMean(0, 0)).toBe(0);
  });

  it('masks each row to its own half and scores base and new as the reference loop does', () => {
    for (const [n, k, seed] of [
      [70, 7, 1],
      [200, 12, 2],
      [40, 2, 3],
      [333, 31, 4],
    ] as const) {
      const { scores, labels } = fixture(n, k, seed);
      const masked = maskToOwnHalf(scores, labels, k);
      const m = Math.ceil(k / 2);
      labels.forEach((y, i) => {
        for (let c = 0; c < k; c++) {
          const own = c < m === y < m;
          expect(masked[i * k + c]).toBe(own ? scores[i * k + c] : -Infinity);
        }
      });
      const ref = reference(scores, labels, k);
      const got = baseToNewResult(masked, labels, k);
      expect(got.baseClasses).toBe(m);
      expect(got.newClasses).toBe(k - m);
      expect(got.base).toEqual({ n: ref.counts.base, acc1: ref.base });
      expect(got.new).toEqual({ n: ref.counts.new, acc1: ref.new });
      expect(got.hm).toBeCloseTo(ref.hm, 12);
      // A half of one class is always right (K = 2); otherwise the fixture is neither 0 nor 1.
      if (k === 2) expect([got.base.acc1, got.new.acc1]).toEqual([1, 1]);
      else expect([ref.base, ref.new].every((a) => a > 0 && a < 1)).toBe(true);
    }
    expect(() => maskToOwnHalf(new Float32Array(5), [0, 1], 3)).toThrow(/2x3/);
  });

  it('adds the protocol to a hash only under base-to-new', () => {
    const inputs = { bundle: 'b', dataset: 'd', names: ['a', 'b'] };
    // The all-classes hash is the one computed before protocols existed.
    expect(contentHash({ ...inputs, ...protocolHashPart('all-classes') })).toBe(
      contentHash(inputs),
    );
    expect(contentHash({ ...inputs, ...protocolHashPart('base-to-new') })).not.toBe(
      contentHash(inputs),
    );
  });
});

describe('writeRouteResult under both protocols', () => {
  const provenance = { dataset: 's3://b/ds/', model: 'm', pretrained: 'p' };
  const ctx = (inputsHash: string) => ({
    runId: 'run-b2n',
    route: 'zero-shot' as const,
    inputsHash,
    provenance,
  });

  async function write(k: number, n: number, protocol?: 'all-classes' | 'base-to-new') {
    const s3 = new MemoryS3(['out']);
    const store = s3.store('out');
    const { scores, labels } = fixture(n, k, k);
    const classLabels = Array.from({ length: k }, (_, c) => `class${c}`);
    const summary = await writeRouteResult({ store }, ctx(`hash-${protocol}`), {
      scores,
      test: matrix(labels),
      classLabels,
      notes: [],
      details: {},
      ...(protocol ? { protocol } : {}),
    });
    const key = (f: 'metrics.json' | 'predictions.arrow') =>
      keys.routeResult('run-b2n', 'zero-shot', undefined, f);
    const file = (await store.getJson<RouteResultFile>(key('metrics.json')))!;
    const predictions = decodePredictions((await store.getBytes(key('predictions.arrow')))!);
    return { store, scores, labels, summary, file, predictions };
  }

  it('base-to-new: pooled and per-half figures of the masked scores, top-k within the half', async () => {
    for (const k of [12, 7]) {
      const { scores, labels, summary, file, predictions } = await write(k, 240, 'base-to-new');
      const ref = reference(scores, labels, k);
      expect(summary.protocol).toBe('base-to-new');
      expect(summary.baseToNew!.base.acc1).toBe(ref.base);
      expect(summary.baseToNew!.new.acc1).toBe(ref.new);
      expect(summary.baseToNew!.hm).toBeCloseTo(ref.hm, 12);
      expect(summary.acc1).toBeCloseTo(ref.acc1, 12);
      expect(summary.meanPerClassRecall).toBeCloseTo(ref.meanPerClassRecall, 12);
      expect(file.summary).toEqual(summary);
      // Each image competes among floor(K/2) classes at least: 6 for K = 12, 3 for K = 7.
      const competing = Math.floor(k / 2);
      expect(summary.acc5 === null).toBe(competing < 5);
      expect(predictions.k).toBe(Math.min(5, competing));
      const m = Math.ceil(k / 2);
      labels.forEach((y, i) => {
        const row = Array.from(
          predictions.top.indices.slice(i * predictions.k, (i + 1) * predictions.k),
        );
        expect(row[0]).toBe(ref.predicted[i]);
        for (const c of row) expect(c < m).toBe(y < m);
      });
    }
  });

  it('base-to-new acc5 is the top-5 among the own half (reference loop)', async () => {
    const k = 12;
    const { scores, labels, summary } = await write(k, 240, 'base-to-new');
    const m = Math.ceil(k / 2);
    let hits = 0;
    labels.forEach((y, i) => {
      const [lo, hi] = y < m ? [0, m] : [m, k];
      const better = Array.from({ length: hi - lo }, (_, j) => lo + j).filter(
        (c) =>
          scores[i * k + c]! > scores[i * k + y]! ||
          (scores[i * k + c] === scores[i * k + y] && c < y),
      ).length;
      if (better < 5) hits++;
    });
    expect(summary.acc5).toBeCloseTo(hits / labels.length, 12);
  });

  it('all-classes (and no protocol) writes the unmasked figures, no baseToNew', async () => {
    const k = 7;
    const a = await write(k, 140, 'all-classes');
    const b = await write(k, 140);
    expect(a.summary.protocol).toBeUndefined();
    expect(a.summary.baseToNew).toBeUndefined();
    expect({ ...a.summary, metricsUri: '' }).toEqual({ ...b.summary, metricsUri: '' });
    let hits = 0;
    a.labels.forEach((y, i) => {
      let best = 0;
      for (let c = 1; c < k; c++) if (a.scores[i * k + c]! > a.scores[i * k + best]!) best = c;
      if (best === y) hits++;
    });
    expect(a.summary.acc1).toBeCloseTo(hits / a.labels.length, 12);
    expect(a.predictions.k).toBe(5);
    expect(a.summary.acc5).not.toBeNull();
  });

  it('reuses a stored result only under its own inputsHash', async () => {
    const { store } = await write(7, 70, 'base-to-new');
    const found = await findRouteResult({ store }, ctx('hash-base-to-new'));
    expect(found).toMatchObject({ protocol: 'base-to-new', reused: true });
    expect(await findRouteResult({ store }, ctx('hash-all-classes'))).toBeUndefined();
  });
});

describe('base-to-new in the run spec and at planning', () => {
  const base = { dataset: { uri: 's3://bkt/ds/' } };

  it('defaults to all-classes; CSC with base-to-new is refused, saying why', () => {
    const spec = parseRunSpec(base);
    expect(spec.zeroShot.protocol).toBe('all-classes');
    expect(spec.coop.protocol).toBe('all-classes');
    expect(parseRunSpec({ ...base, coop: { protocol: 'base-to-new' } }).coop.protocol).toBe(
      'base-to-new',
    );
    expect(() =>
      parseRunSpec({ ...base, coop: { protocol: 'base-to-new', classSpecific: true } }),
    ).toThrow(/coop\.classSpecific: .*new classes .* would have none/);
    expect(() => parseRunSpec({ ...base, zeroShot: { protocol: 'b2n' } })).toThrow(
      /zeroShot\.protocol/,
    );
    // The probe has no protocol: it cannot predict classes it was not fitted on.
    expect(() => parseRunSpec({ ...base, probe: { protocol: 'base-to-new' } })).toThrow(
      /Unrecognized key.*protocol/,
    );
  });

  const plan = (extra: Record<string, unknown>, labels: string[]) =>
    buildPlan({
      runId: 'r',
      spec: parseRunSpec({ ...base, ...extra }),
      kind: 'image-folder',
      items: labels.flatMap((l) =>
        (['train', 'test'] as const).map((split) => ({
          uri: `s3://bkt/ds/${split}/${l}/0.jpg`,
          size: 1,
          etag: 'e',
          className: l,
          split,
        })),
      ),
      skipped: [],
    });
  const refusal = (f: () => unknown): ConfigError => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('expected a ConfigError');
  };

  it('refuses base-to-new with too few classes, naming the field; the plan summary carries it', () => {
    const zeroShotOnly = { coop: { enabled: false }, probe: { enabled: false } };
    const one = refusal(() =>
      plan({ ...zeroShotOnly, zeroShot: { protocol: 'base-to-new' } }, ['cat']),
    );
    expect(one.message).toMatch(/zeroShot\.protocol: .*at least 2 classes.*has 1/);
    expect(one.source).toBe('zeroShot.protocol');
    const two = refusal(() =>
      plan({ probe: { enabled: false }, coop: { protocol: 'base-to-new' } }, ['cat', 'dog']),
    );
    expect(two.message).toMatch(/coop\.protocol: .*at least 3 classes.*has 2/);
    // Zero-shot alone on two classes is fine: one base class, one new class.
    expect(
      plan({ ...zeroShotOnly, zeroShot: { protocol: 'base-to-new' } }, ['cat', 'dog']).classes,
    ).toEqual(['cat', 'dog']);
    const three = plan({ coop: { protocol: 'base-to-new' } }, ['cat', 'dog', 'eel']);
    expect(summarisePlan(three, 's3://o/plan.json').routes).toMatchObject({
      zeroShotProtocol: 'all-classes',
      coopProtocol: 'base-to-new',
    });
  });
});

describe('base-to-new in the run summary and the suite leaderboard', () => {
  /** A route summary with the given base / new accuracy (9 base and 6 new test images). */
  const route = (
    r: Pick<RouteSummary, 'route' | 'variant' | 'shots' | 'seed'>,
    base: number,
    nw: number,
    protocol: 'base-to-new' | 'all-classes' = 'base-to-new',
  ): RouteSummary => ({
    ...r,
    n: 15,
    acc1: (9 * base + 6 * nw) / 15,
    acc5: null,
    meanPerClassRecall: 0,
    macroF1: 0,
    notes: [],
    ...(protocol === 'base-to-new'
      ? {
          protocol,
          baseToNew: {
            baseClasses: 3,
            newClasses: 2,
            base: { n: 9, acc1: base },
            new: { n: 6, acc1: nw },
            hm: harmonicMean(base, nw),
          },
        }
      : {}),
    metricsUri: 's3://o/m.json',
  });
  const coop = (shots: number, seed: number, base: number, nw: number) =>
    route({ route: 'coop', variant: `${shots}shot-seed${seed}`, shots, seed }, base, nw);
  const routes = [
    route({ route: 'zero-shot' }, 6 / 9, 3 / 6),
    coop(4, 1, 8 / 9, 2 / 6),
    coop(4, 2, 7 / 9, 4 / 6),
    coop(1, 1, 5 / 9, 1 / 6),
    route({ route: 'probe', variant: 'all', shots: 'all', seed: 0 }, 0, 0, 'all-classes'),
  ];

  it('tabulates base, new and H per route and shots over seeds, with H of the means', () => {
    const table = baseToNewTable(routes);
    expect(table.map((r) => [r.route, r.shots, r.seeds])).toEqual([
      ['zero-shot', null, [0]],
      ['coop', 4, [1, 2]],
      ['coop', 1, [1]],
    ]);
    const four = table[1]!;
    expect(four.base.mean).toBeCloseTo(7.5 / 9, 12);
    expect(four.base.std).toBeCloseTo(0.5 / 9, 12); // population std, as np.std
    expect(four.new.mean).toBeCloseTo(0.5, 12);
    const hms = [harmonicMean(8 / 9, 2 / 6), harmonicMean(7 / 9, 4 / 6)];
    expect(four.hm.mean).toBeCloseTo((hms[0]! + hms[1]!) / 2, 12);
    // CoCoOp's H: of the averaged base and new, not the mean of per-seed H.
    expect(four.hmOfMeans).toBeCloseTo((2 * (7.5 / 9) * 0.5) / (7.5 / 9 + 0.5), 12);
    expect(four.hmOfMeans).not.toBeCloseTo(four.hm.mean, 3);
    // The few-shot rows say which protocol their pooled acc1 is of.
    expect(fewShotTable(routes).map((r) => [r.route, r.shots, r.protocol])).toEqual([
      ['coop', 4, 'base-to-new'],
      ['coop', 1, 'base-to-new'],
      ['probe', 'all', undefined],
    ]);
  });

  it('gives base-to-new results their own -b2n columns, with base, new and H in JSON and CSV', () => {
    const keysTable = new ImageKeyTable();
    const imageKeys = Array.from({ length: 15 }, (_, i) => `img${i}`);
    const correctness = (hits: number): ImageCorrectness => ({
      ids: keysTable.intern(imageKeys),
      correct: Uint8Array.from(imageKeys, (_, i) => (i < hits ? 1 : 0)),
    });
    const cellOf = (model: string, rs: RouteSummary[]): CellResult => ({
      model,
      dataset: 'd',
      runId: `s--${model}--d`,
      status: 'completed',
      routes: rs,
      fewShot: fewShotTable(rs),
      correctness: new Map(
        ['zero-shot', 'coop/4shot-seed1', 'coop/4shot-seed2', 'probe/all'].map((j, i) => [
          j,
          correctness(5 + i),
        ]),
      ),
    });
    const allClasses = routes.map((r): RouteSummary => ({
      ...r,
      protocol: undefined,
      baseToNew: undefined,
    }));
    expect(cellColumns(routes, fewShotTable(routes)).map((c) => c.route)).toEqual([
      'zero-shot-b2n',
      'probe',
      'coop-4shot-b2n',
    ]);
    const scored = scoreDataset({
      dataset: 'd',
      models: ['m1', 'm2'],
      cells: [cellOf('m1', routes), cellOf('m2', allClasses)],
      keys: keysTable,
      statistics: { resamples: 50, seed: 0, allPairsUpTo: 10 },
    });
    const board = assembleLeaderboard({
      suiteId: 's',
      generatedAt: '2026-12-01T00:00:00Z',
      models: ['m1', 'm2'],
      datasets: ['d'],
      scored: [scored],
    });
    expect(board.columns.map((c) => c.id).sort()).toEqual(
      ['d/coop-4shot', 'd/coop-4shot-b2n', 'd/probe', 'd/zero-shot', 'd/zero-shot-b2n'].sort(),
    );
    const [m1, m2] = board.rows;
    // Never mixed: each model fills only the columns of its own protocol.
    expect(m1!.cells['d/zero-shot']).toBeNull();
    expect(m2!.cells['d/zero-shot-b2n']).toBeNull();
    const zs = m1!.cells['d/zero-shot-b2n']!;
    expect(zs.acc1).toBeCloseTo(routes[0]!.acc1, 12);
    expect(zs.baseToNew).toEqual({ base: 6 / 9, new: 0.5, hm: harmonicMean(6 / 9, 0.5) });
    const four = m1!.cells['d/coop-4shot-b2n']!;
    expect(four.acc1).toBeCloseTo((routes[1]!.acc1 + routes[2]!.acc1) / 2, 12);
    expect(four.baseToNew!.hm).toBeCloseTo(harmonicMean(7.5 / 9, 0.5), 12);
    expect(m2!.cells['d/zero-shot']!.baseToNew).toBeUndefined();
    expect(board.means).toContain('mean/coop-4shot-b2n');

    const [head, row1] = leaderboardCsv(board).split('\n');
    const cols = head!.split(',');
    const at = (name: string) => row1!.split(',')[cols.indexOf(name)];
    expect(cols).toContain('d/coop-4shot-b2n/hm');
    expect(at('d/zero-shot-b2n/base')).toBe((6 / 9).toFixed(4));
    expect(at('d/coop-4shot-b2n/hm')).toBe(harmonicMean(7.5 / 9, 0.5).toFixed(4));
    expect(cols).not.toContain('d/zero-shot/hm');
  });
});
