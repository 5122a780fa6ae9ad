import { describe, expect, it } from 'vitest';
import { runIdentityProblem } from '../../core/util/run-identity';
import { CHILDREN_PER_EXECUTION, executionSlice } from '../../workflows/evaluate-suite';

/** The slices a suite's chain of executions evaluates, one per execution (continue-as-new). */
function chain(total: number, bound?: number): [number, number][] {
  const out: [number, number][] = [];
  let next = 0;
  while (next < total || out.length === 0) {
    const { from, to } = executionSlice(next, total, bound);
    out.push([from, to]);
    if (to >= total) break;
    next = to;
  }
  return out;
}

describe('suite executions (continue-as-new bound)', () => {
  it('continues as new after K children: a small fake bound', () => {
    expect(chain(5, 2)).toEqual([
      [0, 2],
      [2, 4],
      [4, 5],
    ]);
    expect(chain(2, 2)).toEqual([[0, 2]]);
    expect(chain(1, 0)).toEqual([[0, 1]]); // a bound below 1 still makes progress
  });

  it('covers 100 models x 40 datasets once each within the default bound per execution', () => {
    const slices = chain(4000);
    expect(slices).toHaveLength(4000 / CHILDREN_PER_EXECUTION);
    expect(slices.every(([a, b]) => b - a <= CHILDREN_PER_EXECUTION)).toBe(true);
    expect(slices.map(([a, b]) => b - a).reduce((s, n) => s + n, 0)).toBe(4000);
    expect(slices.every(([a], i) => i === 0 || a === slices[i - 1]![1])).toBe(true);
  });

  it('lets a suite claim only its own workflow id', () => {
    expect(runIdentityProblem('s1', { suiteId: 's1' })).toBeUndefined();
    expect(runIdentityProblem('s1', { suiteId: 's2' })).toMatch(/suites\/<its own workflow id>/);
  });
});
