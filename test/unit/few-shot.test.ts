import { describe, expect, it } from 'vitest';
import { fewShotValidation, sampleFewShot } from '../../core/routes/few-shot';
import { seededRandom, shuffledIndices } from '../../core/util/random';

/** `count[c]` images of class c, with ids `c<class>-<n>`. */
function dataset(counts: number[]) {
  const labels: number[] = [];
  const ids: string[] = [];
  counts.forEach((count, c) => {
    for (let i = 0; i < count; i++) {
      labels.push(c);
      ids.push(`c${c}-${String(i).padStart(3, '0')}`);
    }
  });
  return { labels, ids };
}

/** The sampled ids of one class. */
const sampledIds = (d: { labels: number[]; ids: string[] }, indices: number[], c: number) =>
  indices
    .filter((i) => d.labels[i] === c)
    .map((i) => d.ids[i]!)
    .sort();

describe('few-shot sampling', () => {
  const d = dataset([20, 30, 25]);

  it('draws k distinct images of each class', () => {
    const s = sampleFewShot(d.labels, 3, 8, 1, 'train', d.ids);
    expect(s.perClass).toEqual([8, 8, 8]);
    expect(s.shortfalls).toEqual([]);
    expect(new Set(s.indices).size).toBe(24);
    expect(s.indices).toEqual([...s.indices].sort((a, b) => a - b));
    for (let c = 0; c < 3; c++) expect(s.indices.filter((i) => d.labels[i] === c)).toHaveLength(8);
  });

  it('gives the same subset for a seed, and a different one for another seed', () => {
    const a = sampleFewShot(d.labels, 3, 4, 2, 'train', d.ids);
    expect(sampleFewShot(d.labels, 3, 4, 2, 'train', d.ids)).toEqual(a);
    expect(sampleFewShot(d.labels, 3, 4, 3, 'train', d.ids).indices).not.toEqual(a.indices);
    expect(sampleFewShot(d.labels, 3, 4, 2, 'val', d.ids).indices).not.toEqual(a.indices);
  });

  it('uses every image of a class with fewer than k and lists it', () => {
    const small = dataset([10, 3, 0]);
    const s = sampleFewShot(small.labels, 3, 4, 1, 'train', small.ids);
    expect(s.perClass).toEqual([4, 3, 0]);
    expect(sampledIds(small, s.indices, 1)).toEqual(['c1-000', 'c1-001', 'c1-002']);
    expect(s.shortfalls).toEqual([
      { classIndex: 1, available: 3, wanted: 4 },
      { classIndex: 2, available: 0, wanted: 4 },
    ]);
  });

  it("keeps a class's sample when other classes gain images", () => {
    const before = sampleFewShot(d.labels, 3, 4, 1, 'train', d.ids);
    // New images of classes 1 and 2, placed before everything else: class 0's rows move too.
    const extra = dataset([0, 30, 15]);
    const more = { labels: extra.labels, ids: extra.ids.map((id) => `${id}-new`) };
    const grown = { labels: [...more.labels, ...d.labels], ids: [...more.ids, ...d.ids] };
    const after = sampleFewShot(grown.labels, 3, 4, 1, 'train', grown.ids);
    expect(sampledIds(grown, after.indices, 0)).toEqual(sampledIds(d, before.indices, 0));
  });

  it('does not depend on row order when ids are given', () => {
    const order = shuffledIndices(d.labels.length, seededRandom('few-shot-test'));
    const shuffled = { labels: order.map((i) => d.labels[i]!), ids: order.map((i) => d.ids[i]!) };
    const a = sampleFewShot(d.labels, 3, 5, 1, 'train', d.ids);
    const b = sampleFewShot(shuffled.labels, 3, 5, 1, 'train', shuffled.ids);
    for (let c = 0; c < 3; c++)
      expect(sampledIds(shuffled, b.indices, c)).toEqual(sampledIds(d, a.indices, c));
  });

  it("takes CoOp's min(k, 4) per class for validation", () => {
    expect(fewShotValidation(d.labels, 3, 16, 1, d.ids).perClass).toEqual([4, 4, 4]);
    expect(fewShotValidation(d.labels, 3, 2, 1, d.ids).perClass).toEqual([2, 2, 2]);
  });

  it('refuses a bad k, labels outside the classes, or ids that do not match', () => {
    expect(() => sampleFewShot(d.labels, 3, 0, 1)).toThrow(/k must be an integer >= 1/);
    expect(() => sampleFewShot([0, 3], 3, 1, 1)).toThrow(/label 3 of row 1/);
    expect(() => sampleFewShot([0, 1], 3, 1, 1, 'train', ['a'])).toThrow(/1 ids for 2 rows/);
  });
});
