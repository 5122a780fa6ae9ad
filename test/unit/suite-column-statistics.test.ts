import { describe, expect, it } from 'vitest';
import { type ColumnValues, columnValues, pairedValues } from '../../core/suites/columns';
import { ImageKeyTable } from '../../core/suites/image-keys';
import { scoreColumn } from '../../core/suites/pairwise';
import {
  accuracyInterval,
  mcnemarExact,
  pairedDifferenceInterval,
  seededUniform,
} from '../../core/suites/statistics';

// scoreColumn shares one set of resamples among the models that scored the same images; these
// tests hold it to the general definition: each model's interval over its own images, each
// pair's over the images both scored, bit for bit.

const N = 300;
const OPTS = { resamples: 400, seed: 7, allPairsUpTo: 10 };

/** Random per-image values (0/1, or shares of 3 seeds) on all images but `missing`. */
function column(seed: number, missing: Set<number>, shares = false): ColumnValues {
  const next = seededUniform(seed);
  const positions = Uint32Array.from([...Array(N).keys()].filter((p) => !missing.has(p)));
  const values = Float64Array.from(positions, () =>
    shares ? Math.floor(next() * 4) / 3 : next() < 0.6 + seed / 100 ? 1 : 0,
  );
  return { positions, values };
}

describe('column statistics', () => {
  for (const kind of ['single', 'seed-mean'] as const) {
    it(`equal the per-model and per-pair bootstraps (${kind}, one model missing images)`, () => {
      const entries = [0, 1, 2, 3].map((m) => {
        const v = column(m + 1, m === 2 ? new Set([0, 5, 99, 299]) : new Set(), kind !== 'single');
        return { model: `m${m}`, acc1: v.values.reduce((s, x) => s + x, 0) / v.values.length, v };
      });
      const scored = scoreColumn({ id: 'd/r', kind }, entries, OPTS);
      for (const e of entries)
        expect(scored.intervals.get(e.model)).toEqual(accuracyInterval(e.v.values, OPTS));
      expect(scored.comparisons).toHaveLength(6);
      for (const c of scored.comparisons) {
        const a = entries.find((e) => e.model === c.a)!;
        const b = entries.find((e) => e.model === c.b)!;
        const paired = pairedValues(a.v, b.v);
        expect(c.n).toBe(paired.a.length);
        expect(c.difference).toEqual(pairedDifferenceInterval(paired.a, paired.b, OPTS));
        if (kind === 'single') expect(c.mcnemar).toEqual(mcnemarExact(paired.a, paired.b));
        else expect(c.mcnemar).toBeUndefined();
      }
    });
  }

  it('matches images by key whatever order the cells list them in', () => {
    const keys = ['s3://b/c/2.png', 's3://b/a/1.png', 's3://b/b/3.png'];
    const forward = new ImageKeyTable();
    const backward = new ImageKeyTable();
    const idsF = forward.intern(keys);
    const idsB = backward.intern([...keys].reverse());
    const a = columnValues([{ ids: idsF, correct: Uint8Array.of(1, 0, 1) }], forward.keyOrder());
    const b = columnValues(
      [{ ids: idsB, correct: Uint8Array.of(1, 0, 1).reverse() }],
      backward.keyOrder(),
    );
    // Key order: a/1 (wrong), b/3 (right), c/2 (right), in both tables.
    expect(Array.from(a.values)).toEqual([0, 1, 1]);
    expect(Array.from(b.values)).toEqual([0, 1, 1]);
    expect(forward.intern(['s3://b/b/3.png'])).toEqual(Uint32Array.of(2));
    expect(forward.size).toBe(3);
  });

  it("averages a few-shot column's seeds over the images every seed scored", () => {
    const table = new ImageKeyTable();
    const seed1 = { ids: table.intern(['k0', 'k1', 'k2']), correct: Uint8Array.of(1, 1, 0) };
    const seed2 = { ids: table.intern(['k2', 'k1']), correct: Uint8Array.of(1, 0) };
    const v = columnValues([seed1, seed2], table.keyOrder());
    expect(Array.from(v.positions)).toEqual([1, 2]);
    expect(Array.from(v.values)).toEqual([0.5, 0.5]);
  });
});
